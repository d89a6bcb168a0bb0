package main

import (
	"testing"

	"github.com/duplexio/duplex/engineio"
)

// The observer calls on the path of every message add to resolved series: no allocation.
func TestCountingAMessageDoesNotAllocate(t *testing.T) {
	m := newMetrics()
	eo, bo := engineObserver{m}, broadcastObserver{m}
	for name, f := range map[string]func(){
		"engineio in":    func() { eo.MessagesReceived(engineio.TransportWebSocket, 1, 42) },
		"engineio out":   func() { eo.MessagesSent(engineio.TransportPolling, 3, 120) },
		"echo":           func() { m.echo.messagesIn.Inc(); m.echo.bytesIn.Add(42) },
		"broadcast":      func() { bo.Broadcast("/", 10) },
		"session opened": func() { eo.SessionOpened(engineio.TransportPolling) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, n)
		}
	}
}
