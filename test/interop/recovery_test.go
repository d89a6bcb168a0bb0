package interop

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/socketio"
)

// TestSocketIOClientRecoversItsSession: the official socket.io-client loses its connection,
// reconnects, and gets back its socket id, its rooms and the events broadcast while it was
// away, with the recovered flag set, as with the Node server. In both serving modes.
func TestSocketIOClientRecoversItsSession(t *testing.T) {
	requireSIOClient(t)
	eiotest.InEveryMode(t, testSocketIOClientRecoversItsSession)
}

func testSocketIOClientRecoversItsSession(t *testing.T, mode eiotest.Mode) {
	srv := socketio.NewServer(&socketio.Options{EventLoop: mode.Loop(t),
		ConnectionStateRecovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}})
	disconnected := make(chan string, 2)
	srv.OnConnection(func(s *socketio.Socket) {
		if !s.Recovered() {
			s.Join("news")
		}
		s.OnDisconnect(func(reason string) { disconnected <- reason })
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	p := startNode(t, 30*time.Second, "sio-recovery.js", hs.URL)
	const wait = 10 * time.Second
	first := p.waitFor(t, wait, func(e event) bool { return e.Op == "connect" })
	if first.Match {
		t.Fatal("first connection reported as recovered")
	}
	if err := srv.To("news").Emit("before", 1); err != nil {
		t.Fatal(err)
	}
	p.waitFor(t, wait, func(e event) bool { return e.Op == "event" })

	if _, err := io.WriteString(p.stdin, "drop\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-disconnected:
		if reason != "transport close" {
			t.Fatalf("server saw %q", reason)
		}
	case <-time.After(wait):
		t.Fatal("the server did not see the connection go")
	}
	// The client reconnects 300 ms later: these are what it misses.
	if err := srv.To("news").Emit("missed", 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Emit("missed", 2); err != nil {
		t.Fatal(err)
	}
	if err := srv.To("elsewhere").Emit("not for it"); err != nil {
		t.Fatal(err)
	}

	again := p.waitFor(t, wait, func(e event) bool { return e.Op == "connect" })
	if !again.Match || again.ID != first.ID {
		t.Fatalf("reconnected as %s (recovered %v), was %s", again.ID, again.Match, first.ID)
	}
	for i := 1; i <= 2; i++ {
		ev := p.waitFor(t, wait, func(e event) bool { return e.Op == "event" })
		var args []any
		if err := json.Unmarshal([]byte(ev.Data), &args); err != nil {
			t.Fatal(err)
		}
		// The offset rides as the last argument, as from the Node server.
		if len(args) != 3 || args[0] != "missed" || args[1] != float64(i) {
			t.Fatalf("event %d: %v", i, args)
		}
		if _, ok := args[2].(string); !ok {
			t.Fatalf("no offset in %v", args)
		}
	}
	// Its rooms came back with it.
	if err := srv.To("news").Emit("after"); err != nil {
		t.Fatal(err)
	}
	ev := p.waitFor(t, wait, func(e event) bool { return e.Op == "event" })
	var args []any
	if err := json.Unmarshal([]byte(ev.Data), &args); err != nil || args[0] != "after" {
		t.Fatalf("after recovery: %s (%v)", ev.Data, err)
	}
}

// TestSocketIOClientReconnectsWithoutRecovery: with recovery off, socket.io-client mends a
// lost connection by reconnecting as a new socket (new id, recovered false) that the
// connection handlers see again, and events reach it. In both serving modes.
func TestSocketIOClientReconnectsWithoutRecovery(t *testing.T) {
	requireSIOClient(t)
	eiotest.InEveryMode(t, testSocketIOClientReconnectsWithoutRecovery)
}

func testSocketIOClientReconnectsWithoutRecovery(t *testing.T, mode eiotest.Mode) {
	srv := socketio.NewServer(&socketio.Options{EventLoop: mode.Loop(t)})
	connected := make(chan *socketio.Socket, 2)
	srv.OnConnection(func(s *socketio.Socket) { connected <- s })
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)

	p := startNode(t, 30*time.Second, "sio-recovery.js", hs.URL)
	const wait = 10 * time.Second
	first := p.waitFor(t, wait, func(e event) bool { return e.Op == "connect" })
	<-connected
	if _, err := io.WriteString(p.stdin, "drop\n"); err != nil {
		t.Fatal(err)
	}
	// The client closed its own engine: it reports "forced close", then reconnects.
	p.waitFor(t, wait, func(e event) bool { return e.Op == "disconnect" })
	again := p.waitFor(t, wait, func(e event) bool { return e.Op == "connect" })
	if again.Match || again.ID == first.ID {
		t.Fatalf("reconnected as %s (recovered %v), was %s", again.ID, again.Match, first.ID)
	}
	var s *socketio.Socket
	select {
	case s = <-connected:
	case <-time.After(wait):
		t.Fatal("the server saw no second connection")
	}
	if s.ID() != again.ID || s.Recovered() {
		t.Fatalf("server socket %s recovered %v", s.ID(), s.Recovered())
	}
	if err := s.Emit("hello"); err != nil {
		t.Fatal(err)
	}
	ev := p.waitFor(t, wait, func(e event) bool { return e.Op == "event" })
	if ev.Data != `["hello"]` {
		t.Fatalf("event %s", ev.Data)
	}
}
