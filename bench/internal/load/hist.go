package load

import (
	"math/bits"
	"time"
)

// Histogram is a log-linear latency histogram: values are bucketed by their
// highest set bit and the next subBits bits, so every bucket is within
// 1/2^subBits (≈1.6%) of its values. Record never allocates.
type Histogram struct {
	counts [64 << subBits]uint64
	n      uint64
}

const subBits = 6

func bucketOf(v uint64) int {
	if v < 1<<subBits {
		return int(v)
	}
	e := bits.Len64(v) - 1 - subBits // shift so that the top subBits+1 bits remain
	return (e+1)<<subBits | int(v>>uint(e))&(1<<subBits-1)
}

// lowerBound is the smallest value in bucket b.
func lowerBound(b int) uint64 {
	if b < 1<<subBits {
		return uint64(b)
	}
	e := b>>subBits - 1
	return (1<<subBits | uint64(b)&(1<<subBits-1)) << uint(e)
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Merge adds o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Quantile returns the value at quantile q (0..1), as the middle of its
// bucket; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			lo := lowerBound(b)
			hi := lowerBound(b + 1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return time.Duration(lowerBound(len(h.counts) - 1))
}
