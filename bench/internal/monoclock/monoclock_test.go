package monoclock

import (
	"testing"
	"time"
)

// TestNowTracksTheRawClock checks the calibrated clock against direct reads.
func TestNowTracksTheRawClock(t *testing.T) {
	for i := 0; i < 3; i++ {
		a := raw()
		n := Now()
		b := raw()
		if n < a-int64(time.Millisecond) || n > b+int64(time.Millisecond) {
			t.Fatalf("Now %d outside [%d, %d] ± 1 ms", n, a, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
