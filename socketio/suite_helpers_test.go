package socketio_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/internal/fixture"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// Every test of the package must leave no goroutine behind: the server, its sessions and
// sockets, long polls and WebSocket connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// suiteFixture is the Socket.IO fixture (fixture.SocketIO with fixture.AddHandlers, the
// server "duplex serve --fixture" mounts at /socket.io/) behind a loopback httptest.Server,
// with a raw client of it and what the checks need to see of the server side: the Engine.IO
// sessions it opened, the sockets that connected (and how they ended), and hooks that tell
// when a request has reached the handler.
type suiteFixture struct {
	*eiotest.Client // of http://127.0.0.1:N/socket.io/
	arrivals        eiotest.Arrivals
	srv             *socketio.Server

	mu       sync.Mutex
	conns    map[string]*trackedConn      // the server's side of each TCP connection, by peer address
	sessions map[string]*engineio.Session // by Engine.IO sid
	sockets  map[string]*socketRecord     // by socket id
}

// socketRecord is what the fixture saw of one socket.
type socketRecord struct {
	nsp    string
	ended  chan struct{} // closed once OnDisconnect ran, after reason is set
	reason string
}

// newSuiteFixture starts the server the official suite runs against: ping interval 300 ms,
// ping timeout 200 ms, max payload 1e6 bytes, CORS for any origin, connect timeout 1 s; on
// "/" and "/custom" every socket is sent "auth" with its handshake auth when it connects; on
// "/" the event "message" is sent back as "message-back" with the same arguments and
// "message-with-ack" is acknowledged with them.
func newSuiteFixture(t *testing.T, mode eiotest.Mode) *suiteFixture {
	t.Helper()
	fx := &suiteFixture{
		conns:    make(map[string]*trackedConn),
		sessions: make(map[string]*engineio.Session),
		sockets:  make(map[string]*socketRecord),
	}
	fx.srv = fixture.SocketIO(fixture.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), EventLoop: mode.Loop(t)})
	// See every session the Socket.IO server is given, before its open packet is sent.
	engine := fx.srv.Engine()
	next := engine.OnConnection
	engine.OnConnection = func(s *engineio.Session) {
		fx.mu.Lock()
		fx.sessions[s.ID()] = s
		fx.mu.Unlock()
		next(s)
	}
	// Record every socket before the fixture's handlers run.
	for _, name := range []string{"/", "/custom"} {
		nsp := fx.srv.Of(name)
		nsp.OnConnection(func(s *socketio.Socket) {
			rec := &socketRecord{nsp: nsp.Name(), ended: make(chan struct{})}
			fx.mu.Lock()
			fx.sockets[s.ID()] = rec
			fx.mu.Unlock()
			s.OnDisconnect(func(reason string) {
				rec.reason = reason
				close(rec.ended)
			})
		})
	}
	fixture.AddHandlers(fx.srv)

	fx.Client = eiotest.Serve(t, fx.arrivals.Handler(fx.srv), socketio.DefaultPath, fx.srv.Shutdown,
		func(l net.Listener) net.Listener { return &trackingListener{Listener: l, fx: fx} })
	return fx
}

// trackingListener records the connections the server accepts, so that a test can see when
// the server closes one.
type trackingListener struct {
	net.Listener
	fx *suiteFixture
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, closed: make(chan struct{})}
	l.fx.mu.Lock()
	l.fx.conns[c.RemoteAddr().String()] = tc
	l.fx.mu.Unlock()
	return tc, nil
}

// trackedConn is the server's side of a connection; closed is closed by its first Close.
type trackedConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// awaitServerClose waits (bounded) until the server has closed its side of the connection
// whose client end has the address addr. It reports false when it has not.
func (fx *suiteFixture) awaitServerClose(t *testing.T, addr string) bool {
	t.Helper()
	fx.mu.Lock()
	tc := fx.conns[addr]
	fx.mu.Unlock()
	if tc == nil {
		t.Fatalf("the server accepted no connection from %s", addr)
	}
	select {
	case <-tc.closed:
		return true
	case <-time.After(eiotest.WaitLimit):
		return false
	}
}

// session returns the Engine.IO session sid, which the server reported before its open
// packet was sent.
func (fx *suiteFixture) session(t *testing.T, sid string) *engineio.Session {
	t.Helper()
	fx.mu.Lock()
	s := fx.sessions[sid]
	fx.mu.Unlock()
	if s == nil {
		t.Fatalf("the server never opened Engine.IO session %q", sid)
	}
	return s
}

// awaitSessionClosed waits (bounded) until the server has closed session sid and returns the
// reason.
func (fx *suiteFixture) awaitSessionClosed(t *testing.T, sid string) engineio.CloseReason {
	t.Helper()
	s := fx.session(t, sid)
	eiotest.Await(t, s.Done(), "session "+sid+" still open")
	reason, _ := s.Err()
	return reason
}

// awaitTransport waits (bounded) until session sid is on transport.
func (fx *suiteFixture) awaitTransport(t *testing.T, sid, transport string) {
	t.Helper()
	eiotest.AwaitTransport(t, fx.session(t, sid), transport, eiotest.WaitLimit)
}

// socket returns the record of the socket id (made before the fixture sends it "auth").
func (fx *suiteFixture) socket(t *testing.T, id string) *socketRecord {
	t.Helper()
	fx.mu.Lock()
	rec := fx.sockets[id]
	fx.mu.Unlock()
	if rec == nil {
		t.Fatalf("no socket %q connected", id)
	}
	return rec
}

// awaitDisconnect waits (bounded) until socket id has disconnected and returns the reason.
func (fx *suiteFixture) awaitDisconnect(t *testing.T, id string) string {
	t.Helper()
	rec := fx.socket(t, id)
	eiotest.Await(t, rec.ended, "socket "+id+" of "+rec.nsp+" still connected")
	return rec.reason
}

// isConnected reports whether socket id has not disconnected yet.
func (rec *socketRecord) isConnected() bool {
	select {
	case <-rec.ended:
		return false
	default:
		return true
	}
}

// connectSocketIO is the suite's initSocketIOConnection: a WebSocket session that joined the
// main namespace and received its "auth" event. It returns the connection and the id of the
// socket.
func (fx *suiteFixture) connectSocketIO(t *testing.T) (*ws.Conn, string) {
	t.Helper()
	c, _ := fx.OpenWebSocket(t)
	eiotest.Send(t, c, "40")
	id := connectAnswer(t, eiotest.ReadText(t, c), "")
	if s := eiotest.ReadText(t, c); s != `42["auth",{}]` {
		t.Fatalf("after the CONNECT answer: %q, want 42[\"auth\",{}]", s)
	}
	return c, id
}

// connectAnswer checks the Engine.IO message of a CONNECT answer for namespace nsp ("" for
// the main one), whose data must be an object with exactly a string "sid", and returns that
// socket id.
func connectAnswer(t *testing.T, msg, nsp string) string {
	t.Helper()
	prefix := "40"
	if nsp != "" {
		prefix += nsp + ","
	}
	if !strings.HasPrefix(msg, prefix) {
		t.Fatalf("%q does not start with %q (a CONNECT answer)", msg, prefix)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(msg[len(prefix):]), &v); err != nil {
		t.Fatalf("CONNECT answer %q: %v", msg, err)
	}
	sid, ok := v["sid"].(string)
	if len(v) != 1 || !ok || sid == "" {
		t.Fatalf("CONNECT answer %q: want exactly the key \"sid\", a non-empty string", msg)
	}
	return sid
}
