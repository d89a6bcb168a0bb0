package eiotest

import (
	"testing"

	"github.com/duplexio/duplex/ws"
)

// Mode is how a server under test serves its WebSocket connections: one goroutine each (the
// default) or on a ws.EventLoop (engineio.Server.EventLoop, socketio.Options.EventLoop).
type Mode string

// The server modes; a test that runs in every mode names its subtests after them.
const (
	Goroutines Mode = "goroutine"
	Evented    Mode = "evented"
)

// Modes lists every server mode.
var Modes = []Mode{Goroutines, Evented}

// Loop returns the event loop of the mode: nil, or a new loop closed when the test ends — after
// the cleanups registered later, a server's shutdown among them.
func (m Mode) Loop(t testing.TB) *ws.EventLoop {
	t.Helper()
	if m != Evented {
		return nil
	}
	loop, err := ws.NewEventLoop(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loop.Close() })
	return loop
}

// InEveryMode runs test as one subtest per mode.
func InEveryMode(t *testing.T, test func(t *testing.T, mode Mode)) {
	t.Helper()
	for _, mode := range Modes {
		t.Run(string(mode), func(t *testing.T) { test(t, mode) })
	}
}
