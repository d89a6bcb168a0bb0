//go:build !race

package socketio

// raceEnabled reports whether the race detector is on: it changes allocation counts, which
// the allocation tests then do not check.
const raceEnabled = false
