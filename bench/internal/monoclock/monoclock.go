// Package monoclock reads CLOCK_MONOTONIC in nanoseconds, the clock Node's
// process.hrtime.bigint() reads, so that a timestamp one process (a Go or
// Node Socket.IO server) puts in a message can be compared with the time
// another process (the load generator) receives it on the same machine.
package monoclock

import (
	"sync"
	"time"
)

var (
	once  sync.Once
	mono0 int64     // CLOCK_MONOTONIC at base
	base  time.Time // carries Go's monotonic reading
)

// Now returns CLOCK_MONOTONIC in nanoseconds. After a one-time calibration
// (one clock_gettime system call, centred between two readings of Go's own
// clock, which is CLOCK_MONOTONIC on Linux) it costs what time.Since costs.
func Now() int64 {
	once.Do(calibrate)
	return mono0 + int64(time.Since(base))
}

// calibrate pairs a raw CLOCK_MONOTONIC reading with a time.Time, keeping the
// tightest of a few attempts.
func calibrate() {
	best := time.Duration(1 << 62)
	for i := 0; i < 8; i++ {
		t0 := time.Now()
		m := raw()
		d := time.Since(t0)
		if d < best {
			best = d
			base = t0.Add(d / 2)
			mono0 = m
		}
	}
}
