package socketio

import (
	"testing"
	"time"
)

func TestBackoffDoublesUpToTheCeilingWithJitter(t *testing.T) {
	tests := []struct {
		name   string
		jitter float64
		rands  []float64 // deviation, then direction (< 0.5: down) for each delay
		want   []time.Duration
	}{
		{"no jitter", 0, nil, []time.Duration{100, 200, 400, 800, 1000, 1000}},
		{"down by half", 0.5, []float64{1, 0}, []time.Duration{50, 100, 200, 400, 500, 500}},
		{"up by a quarter, never past the ceiling", 0.5, []float64{0.5, 0.9}, []time.Duration{125, 250, 500, 1000, 1000, 1000}},
		{"jitter capped at 1", 7, []float64{1, 0}, []time.Duration{0, 0, 0, 0, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBackoff(100*time.Millisecond, time.Second, tc.jitter)
			i := 0
			b.rand = func() float64 { r := tc.rands[i%len(tc.rands)]; i++; return r }
			for n, want := range tc.want {
				if got := b.duration(); got != want*time.Millisecond {
					t.Fatalf("delay %d: %v, want %v", n, got, want*time.Millisecond)
				}
			}
			b.reset()
			if b.attempts != 0 {
				t.Fatal("reset kept the attempts")
			}
		})
	}
}

func TestBackoffNeverOverflows(t *testing.T) {
	b := newBackoff(time.Second, 1<<62, 0.5)
	for range 200 {
		if d := b.duration(); d < 0 {
			t.Fatalf("negative delay %v after %d attempts", d, b.attempts)
		}
	}
}
