package load

import (
	"math/rand"
	"sort"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 1 << 20, 1<<40 + 12345, 1<<63 + 1} {
		b := bucketOf(v)
		if b <= prev {
			t.Fatalf("bucket of %d = %d not increasing", v, b)
		}
		prev = b
		if lo, hi := lowerBound(b), lowerBound(b+1); v < lo || (b+1 < 64<<subBits && v >= hi) {
			t.Fatalf("%d not in bucket %d [%d,%d)", v, b, lo, hi)
		}
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	r := rand.New(rand.NewSource(1))
	var vals []int
	for i := 0; i < 10000; i++ {
		v := 1000 + r.Intn(1000000)
		vals = append(vals, v)
		h.Record(time.Duration(v))
	}
	sort.Ints(vals)
	for _, q := range []float64{0.5, 0.99} {
		want := float64(vals[int(q*float64(len(vals)-1))])
		got := float64(h.Quantile(q))
		if got < want*0.97 || got > want*1.03 {
			t.Errorf("q%.2f: got %v want %v", q, got, want)
		}
	}
}
