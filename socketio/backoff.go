package socketio

import (
	"math"
	"math/rand/v2"
	"time"
)

// backoff computes the delays between a Manager's reconnection attempts: the base delay
// doubles with each attempt up to a ceiling, then a random deviation of up to jitter times
// the delay is added or taken away, so that many clients cut off at once do not come back
// in step.
//
// A backoff is not safe for concurrent use: the Manager holds its lock around it.
type backoff struct {
	base, max time.Duration
	jitter    float64 // in [0, 1]; 0: no randomness
	attempts  int     // delays handed out since the last reset
	rand      func() float64
}

// newBackoff returns a backoff whose delays start at base and stop growing at ceiling. A jitter
// outside [0, 1] is brought into it.
func newBackoff(base, ceiling time.Duration, jitter float64) backoff {
	if ceiling < base {
		ceiling = base
	}
	return backoff{base: base, max: ceiling, jitter: min(max(jitter, 0), 1), rand: rand.Float64}
}

// duration returns the delay before the next attempt, min(base*2^attempts, max) moved by up
// to ±jitter of itself and kept at most max, and counts the attempt.
func (b *backoff) duration() time.Duration {
	d := float64(b.base) * math.Pow(2, float64(b.attempts))
	if b.attempts < math.MaxInt {
		b.attempts++
	}
	if math.IsInf(d, 0) || math.IsNaN(d) || d > float64(b.max) {
		d = float64(b.max)
	}
	if b.jitter > 0 {
		dev := b.rand() * b.jitter * d
		if b.rand() < 0.5 {
			d -= dev
		} else {
			d += dev
		}
	}
	return time.Duration(min(d, float64(b.max))) // jitter never goes past the ceiling, as in socket.io-client
}

// reset starts the sequence again from the base delay.
func (b *backoff) reset() { b.attempts = 0 }
