package socketio

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
)

// recoveryServer runs a server with connection-state recovery whose sockets join "news"
// (unless recovered) and report their disconnection.
func recoveryServer(t *testing.T, mode eiotest.Mode, window time.Duration) (*Server, string, chan *Socket, chan string, *atomic.Int32) {
	srv, url := newTestServer(t, mode, &Options{ConnectionStateRecovery: &RecoveryOptions{MaxDisconnectionDuration: window}})
	sockets := make(chan *Socket, 4)
	gone := make(chan string, 4)
	var middleware atomic.Int32
	srv.Use(func(s *Socket) error { middleware.Add(1); return nil })
	srv.OnConnection(func(s *Socket) {
		if !s.Recovered() {
			s.Join("news")
		}
		s.OnDisconnect(func(reason string) { gone <- reason })
		sockets <- s
	})
	return srv, url, sockets, gone, &middleware
}

// connectAnswer joins "/" with auth and decodes the CONNECT answer.
func (c *rawClient) connectWith(auth string) (sid, pid string) {
	c.t.Helper()
	c.send("0" + auth)
	p := c.packet()
	var v struct {
		SID string `json:"sid"`
		PID string `json:"pid"`
	}
	if !strings.HasPrefix(p, "0{") || json.Unmarshal([]byte(p[1:]), &v) != nil {
		c.t.Fatalf("CONNECT answer %q", p)
	}
	return v.SID, v.PID
}

// event reads an EVENT and returns its arguments as JSON values.
func (c *rawClient) event() []any {
	c.t.Helper()
	p := c.packet()
	var args []any
	if !strings.HasPrefix(p, "2[") || json.Unmarshal([]byte(p[1:]), &args) != nil {
		c.t.Fatalf("not an event: %q", p)
	}
	return args
}

func recv[T any](t *testing.T, ch chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s", what)
		var zero T
		return zero
	}
}

func TestRecoveryRestoresTheSocketAndReplaysWhatItMissed(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url, sockets, gone, middleware := recoveryServer(t, mode, time.Minute)
		c := dialRaw(t, url)
		sid, pid := c.connectWith("")
		if pid == "" {
			t.Fatal("no pid in the CONNECT answer")
		}
		first := recv(t, sockets, "socket")
		if err := srv.Emit("hello", 1); err != nil {
			t.Fatal(err)
		}
		args := c.event()
		offset, ok := args[len(args)-1].(string)
		if !ok || len(args) != 3 || args[0] != "hello" {
			t.Fatalf("event %v carries no offset", args)
		}
		// A volatile event carries no offset. (It is sent once the connection is writable.)
		select {
		case <-first.client.conn.Drain():
		case <-time.After(5 * time.Second):
			t.Fatal("the connection never drained")
		}
		if ok, err := first.Volatile("light"); !ok || err != nil {
			t.Fatalf("volatile: %v %v", ok, err)
		}
		if got := c.event(); len(got) != 1 {
			t.Fatalf("volatile event %v", got)
		}

		c.conn.CloseNow() // the connection is lost, not closed by either side's choice
		if reason := recv(t, gone, "disconnect"); reason != "transport close" {
			t.Fatalf("reason %q", reason)
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(srv.To("news").Emit("missed", 1))
		must(srv.To("elsewhere").Emit("not for it"))
		must(srv.Emit("missed", 2))
		must(srv.Except("news").Emit("not for it"))
		must(srv.Volatile().Emit("not kept"))

		c2 := dialRaw(t, url)
		sid2, pid2 := c2.connectWith(`{"pid":"` + pid + `","offset":"` + offset + `"}`)
		if sid2 != sid || pid2 != pid {
			t.Fatalf("recovered as %s/%s, was %s/%s", sid2, pid2, sid, pid)
		}
		for i := 1; i <= 2; i++ {
			if got := c2.event(); len(got) != 3 || got[0] != "missed" || got[1] != float64(i) {
				t.Fatalf("replayed %v, want missed %d", got, i)
			}
		}
		s := recv(t, sockets, "recovered socket")
		if !s.Recovered() || s.ID() != sid || !slices.Contains(s.Rooms(), "news") {
			t.Fatalf("recovered %v, id %s, rooms %v", s.Recovered(), s.ID(), s.Rooms())
		}
		if n := middleware.Load(); n != 1 {
			t.Fatalf("middleware ran %d times, want once (a recovered socket skips it)", n)
		}
		// Live events go on after the replay.
		must(srv.To("news").Emit("live"))
		if got := c2.event(); got[0] != "live" {
			t.Fatalf("got %v", got)
		}
	})
}

func TestRecoveryIsRefusedWhenItCannotApply(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		for _, tc := range []struct {
			name   string
			window time.Duration
			leave  func(c *rawClient) // how the first connection ends
			wait   time.Duration
			offset func(real string) string
		}{
			{"the client disconnected on purpose", time.Minute, func(c *rawClient) { c.send("1") }, 0, func(o string) string { return o }},
			{"the window has passed", 100 * time.Millisecond, func(c *rawClient) { c.conn.CloseNow() }, 300 * time.Millisecond, func(o string) string { return o }},
			{"an unknown offset", time.Minute, func(c *rawClient) { c.conn.CloseNow() }, 0, func(string) string { return "nope" }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				srv, url, sockets, gone, _ := recoveryServer(t, mode, tc.window)
				c := dialRaw(t, url)
				sid, pid := c.connectWith("")
				recv(t, sockets, "socket")
				if err := srv.Emit("hello"); err != nil {
					t.Fatal(err)
				}
				args := c.event()
				offset := args[len(args)-1].(string)
				tc.leave(c)
				recv(t, gone, "disconnect")
				time.Sleep(tc.wait)
				c2 := dialRaw(t, url)
				sid2, _ := c2.connectWith(`{"pid":"` + pid + `","offset":"` + tc.offset(offset) + `"}`)
				if sid2 == sid {
					t.Fatal("recovered")
				}
				if s := recv(t, sockets, "socket"); s.Recovered() {
					t.Fatal("Recovered() is true")
				}
			})
		}
	})
}

func TestNamespaceRecoveryReportsTheServerOption(t *testing.T) {
	off := NewServer(nil)
	defer func() { _ = off.Shutdown(context.Background()) }()
	if r := off.Of("/").Recovery(); r != nil {
		t.Fatalf("recovery off: got %+v", r)
	}
	on := NewServer(&Options{ConnectionStateRecovery: &RecoveryOptions{RunMiddlewares: true}})
	defer func() { _ = on.Shutdown(context.Background()) }()
	r := on.Of("/chat").Recovery()
	if r == nil || r.MaxDisconnectionDuration != DefaultMaxDisconnectionDuration || !r.RunMiddlewares {
		t.Fatalf("recovery on: got %+v", r)
	}
	r.MaxDisconnectionDuration = time.Second // a copy: the server's is unchanged
	if got := on.Of("/chat").Recovery().MaxDisconnectionDuration; got != DefaultMaxDisconnectionDuration {
		t.Fatalf("the server's option changed to %v", got)
	}
}
