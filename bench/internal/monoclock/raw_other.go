//go:build !linux

package monoclock

import "time"

var start = time.Now()

// raw has no shared clock outside Linux: timestamps are then comparable only
// within one process.
func raw() int64 { return int64(time.Since(start)) }
