package engineio_test

import (
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/internal/fixture"
)

// Every test of the package must leave no goroutine behind: servers, sessions, long polls and
// WebSocket connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// suiteFixture is the Engine.IO fixture (fixture.Engine, the server "duplex serve --fixture"
// mounts at /engine.io/) behind a loopback httptest.Server, with a raw client of it and the
// test-side bookkeeping the checks need: the sessions the server opened (and how they ended)
// and hooks that tell when a request has reached the server.
type suiteFixture struct {
	*eiotest.Client // of http://127.0.0.1:N/engine.io/
	arrivals        eiotest.Arrivals
	srv             *engineio.Server

	mu       sync.Mutex
	sessions map[string]*sessionRecord
}

// sessionRecord is what the fixture knows of one server session.
type sessionRecord struct {
	s      *engineio.Session
	closed chan struct{} // closed by OnClose, after reason and cause are set
	at     time.Time     // when OnClose ran
	reason engineio.CloseReason
	cause  error
}

// newSuiteFixture starts the server the official suite runs against: ping interval 300 ms,
// ping timeout 200 ms, max payload 1e6 bytes, CORS for any origin, and every message echoed
// back as it came (text as text, binary as binary).
func newSuiteFixture(t *testing.T, mode eiotest.Mode) *suiteFixture {
	t.Helper()
	fx := &suiteFixture{sessions: make(map[string]*sessionRecord)}
	fx.srv = fixture.Engine(fixture.Options{EventLoop: mode.Loop(t)})
	echo := fx.srv.OnConnection
	fx.srv.OnConnection = func(s *engineio.Session) {
		rec := &sessionRecord{s: s, closed: make(chan struct{})}
		fx.mu.Lock()
		fx.sessions[s.ID()] = rec
		fx.mu.Unlock()
		echo(s)
		s.OnClose = func(reason engineio.CloseReason, cause error) {
			rec.at = time.Now()
			rec.reason, rec.cause = reason, cause
			close(rec.closed)
		}
	}
	fx.Client = eiotest.Serve(t, fx.arrivals.Handler(fx.srv), engineio.DefaultPath, fx.srv.Shutdown, nil)
	return fx
}

// session returns the record of the session sid (registered before its open packet is sent).
func (fx *suiteFixture) session(t *testing.T, sid string) *sessionRecord {
	t.Helper()
	fx.mu.Lock()
	rec := fx.sessions[sid]
	fx.mu.Unlock()
	if rec == nil {
		t.Fatalf("the server never reported session %q to OnConnection", sid)
	}
	return rec
}

// awaitClosed waits (bounded) until the server has closed session sid and returns its record.
func (fx *suiteFixture) awaitClosed(t *testing.T, sid string) *sessionRecord {
	t.Helper()
	rec := fx.session(t, sid)
	eiotest.Await(t, rec.closed, "session "+sid+" still open")
	return rec
}

// awaitCloseReason is awaitClosed that also checks the reason the server gave.
func (fx *suiteFixture) awaitCloseReason(t *testing.T, sid string, want engineio.CloseReason) *sessionRecord {
	t.Helper()
	rec := fx.awaitClosed(t, sid)
	if rec.reason != want {
		t.Errorf("reason %q (%v), want %q", rec.reason, rec.cause, want)
	}
	return rec
}

// isClosed reports whether the server has closed session sid (OnClose ran).
func (rec *sessionRecord) isClosed() bool {
	select {
	case <-rec.closed:
		return true
	default:
		return false
	}
}

// awaitTransport waits (bounded) until the server reports session sid on transport.
func (fx *suiteFixture) awaitTransport(t *testing.T, sid, transport string) {
	t.Helper()
	eiotest.AwaitTransport(t, fx.session(t, sid).s, transport, eiotest.WaitLimit)
}
