package socketio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/socketio"
)

// The Go client (Manager, ClientSocket) against the package's own Server, on both ways of
// opening a connection: WebSocket only, and polling then an upgrade to WebSocket.

// clientWait bounds every wait of these tests.
const clientWait = 10 * time.Second

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

var clientTransports = []struct {
	name       string
	transports []string
}{
	{"websocket", []string{"websocket"}},
	{"polling+upgrade", nil},
}

// forEachTransport runs f as a subtest on each way of connecting.
func forEachTransport(t *testing.T, f func(t *testing.T, transports []string)) {
	for _, tc := range clientTransports {
		t.Run(tc.name, func(t *testing.T) { f(t, tc.transports) })
	}
}

// testServer is a Socket.IO server on a loopback httptest server, with what the tests need
// to see of it: its Engine.IO sessions, and a gate that holds new connections.
type testServer struct {
	*socketio.Server
	URL string // http://127.0.0.1:N

	mu       sync.Mutex
	sessions []*engineio.Session
	gate     chan struct{} // when not nil, new Engine.IO connections wait until it is closed
	opened   chan *engineio.Session
}

func newClientTestServer(t *testing.T, opts *socketio.Options) *testServer {
	t.Helper()
	if opts == nil {
		opts = &socketio.Options{}
	}
	opts.Logger = quietLogger
	ts := &testServer{Server: socketio.NewServer(opts), opened: make(chan *engineio.Session, 64)}
	engine := ts.Engine()
	next := engine.OnConnection
	engine.OnConnection = func(s *engineio.Session) {
		ts.mu.Lock()
		ts.sessions = append(ts.sessions, s)
		ts.mu.Unlock()
		select {
		case ts.opened <- s:
		default:
		}
		next(s)
	}
	stop := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("sid") == "" {
			ts.mu.Lock()
			gate := ts.gate
			ts.mu.Unlock()
			if gate != nil {
				select {
				case <-gate:
				case <-stop:
				case <-r.Context().Done():
				}
			}
		}
		ts.ServeHTTP(w, r)
	}))
	ts.URL = hs.URL
	t.Cleanup(func() {
		close(stop)
		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		_ = ts.Shutdown(ctx)
		hs.Close()
	})
	return ts
}

// hold makes new connections wait until the returned function is called.
func (ts *testServer) hold() (release func()) {
	gate := make(chan struct{})
	ts.mu.Lock()
	ts.gate = gate
	ts.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			ts.mu.Lock()
			ts.gate = nil
			ts.mu.Unlock()
			close(gate)
		})
	}
}

// lastSession returns the newest Engine.IO session.
func (ts *testServer) lastSession(t *testing.T) *engineio.Session {
	t.Helper()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.sessions) == 0 {
		t.Fatal("no Engine.IO session")
	}
	return ts.sessions[len(ts.sessions)-1]
}

// closeSession closes the newest Engine.IO session from the server side, once it is on
// WebSocket: closed during an upgrade, a session ends as "transport error" at the client
// instead of "transport close".
func (ts *testServer) closeSession(t *testing.T) {
	t.Helper()
	s := ts.lastSession(t)
	eiotest.AwaitTransport(t, s, "websocket", clientWait)
	s.Close()
}

// managerOptions are quick reconnection options for tests.
func managerOptions(transports []string) *socketio.ManagerOptions {
	return &socketio.ManagerOptions{
		Engine:               engineio.ClientOptions{Transports: transports},
		ReconnectionDelay:    10 * time.Millisecond,
		ReconnectionDelayMax: 50 * time.Millisecond,
		Logger:               quietLogger,
	}
}

// newTestManager returns a Manager for ts, closed at the end of the test.
func newTestManager(t *testing.T, ts *testServer, opts *socketio.ManagerOptions) *socketio.Manager {
	t.Helper()
	m := socketio.NewManager(ts.URL, opts)
	t.Cleanup(m.Close)
	return m
}

func connect(t *testing.T, s *socketio.ClientSocket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("connect to %s: %v", s.Namespace(), err)
	}
}

// recv returns the next value of ch, failing the test when none comes in time.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(clientWait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// expectNone fails if ch holds a value now.
func expectNone[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected %s: %v", what, v)
	default:
	}
}

func decodeString(t *testing.T, args socketio.Args, i int) string {
	t.Helper()
	var s string
	if err := args.Decode(i, &s); err != nil {
		t.Fatalf("argument %d: %v", i, err)
	}
	return s
}

func TestClientMultiplexesNamespacesWithAuth(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		auths := make(chan string, 4)
		for _, name := range []string{"/", "/admin"} {
			nsp := ts.Of(name)
			nsp.Use(func(s *socketio.Socket) error {
				auths <- name + " " + string(s.Handshake().Auth)
				return nil
			})
			nsp.OnConnection(func(s *socketio.Socket) { _ = s.Emit("welcome", name, s.ID()) })
		}
		m := newTestManager(t, ts, managerOptions(transports))
		main := m.Socket("/", &socketio.ClientSocketOptions{Auth: map[string]string{"token": "abc"}})
		calls := 0
		admin := m.Socket("admin", &socketio.ClientSocketOptions{AuthFunc: func() (any, error) {
			calls++
			return map[string]int{"call": calls}, nil
		}})
		if again := m.Socket("/admin", nil); again != admin {
			t.Fatal("Socket returned a second socket for /admin")
		}
		welcomes := make(chan string, 4)
		for _, s := range []*socketio.ClientSocket{main, admin} {
			s.On("welcome", func(args socketio.Args, _ socketio.AckFunc) {
				welcomes <- decodeString(t, args, 0) + " " + decodeString(t, args, 1)
			})
		}
		connect(t, main)
		connect(t, admin)
		got := map[string]bool{recv(t, auths, "auth"): true, recv(t, auths, "auth"): true}
		want := map[string]bool{`/ {"token":"abc"}`: true, `/admin {"call":1}`: true}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("auth seen by the server: %v, want %v", got, want)
		}
		w := map[string]bool{recv(t, welcomes, "welcome"): true, recv(t, welcomes, "welcome"): true}
		for _, s := range []*socketio.ClientSocket{main, admin} {
			if !w[s.Namespace()+" "+s.ID()] {
				t.Fatalf("welcomes %v: none for %s with id %q", w, s.Namespace(), s.ID())
			}
		}
		if n := ts.Engine().SessionCount(); n != 1 {
			t.Fatalf("the server has %d Engine.IO sessions, want 1 for both namespaces", n)
		}
		if !main.Connected() || !admin.Connected() || main.ID() == admin.ID() {
			t.Fatalf("connected %v %v, ids %q %q", main.Connected(), admin.Connected(), main.ID(), admin.ID())
		}
	})
}

func TestClientDialTakesNamespaceFromURL(t *testing.T) {
	ts := newClientTestServer(t, nil)
	ts.Of("/chat").OnConnection(func(s *socketio.Socket) {
		s.On("ping", func(args socketio.Args, ack socketio.AckFunc) { _ = ack("pong") })
	})
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	s, err := socketio.Dial(ctx, ts.URL+"/chat", managerOptions(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Manager().Close()
	if s.Namespace() != "/chat" {
		t.Fatalf("namespace %q", s.Namespace())
	}
	args, err := s.EmitWithAck(ctx, "ping")
	if err != nil || decodeString(t, args, 0) != "pong" {
		t.Fatalf("ack %v, %v", args, err)
	}
	closed := make(chan string, 1)
	s.Manager().OnClose(func(reason string, _ error) { closed <- reason })
	s.Disconnect() // the last socket: the connection closes
	if r := recv(t, closed, "connection close"); r != "forced close" {
		t.Fatalf("close reason %q", r)
	}
	if _, err := socketio.Dial(ctx, ts.URL+"/nowhere", managerOptions(nil), nil); err == nil || err.Error() != "Invalid namespace" {
		t.Fatalf("dial of an unknown namespace: %v", err)
	}
}

func TestClientConnectError(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		ts.Of("/private").Use(func(s *socketio.Socket) error {
			return &socketio.ConnectError{Message: "not authorized", Data: map[string]any{"code": 401}}
		})
		m := newTestManager(t, ts, managerOptions(transports))
		main := m.Socket("/", nil)
		connect(t, main)
		private := m.Socket("/private", nil)
		errs := make(chan error, 2)
		private.OnConnectError(func(err error) { errs <- err })
		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		err := private.Connect(ctx)
		var ce *socketio.ConnectError
		if !errors.As(err, &ce) || ce.Message != "not authorized" {
			t.Fatalf("Connect: %v, want the ConnectError", err)
		}
		data, ok := ce.Data.(json.RawMessage)
		if !ok || string(data) != `{"code":401}` {
			t.Fatalf("data %#v", ce.Data)
		}
		if got := recv(t, errs, "OnConnectError"); got != error(ce) {
			t.Fatalf("OnConnectError got %v", got)
		}
		if private.Connected() {
			t.Fatal("refused socket is connected")
		}
		// The other namespace keeps the connection.
		if !main.Connected() || m.Engine() == nil {
			t.Fatal("the refusal closed the shared connection")
		}
		if err := main.Emit("still", "here"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClientEmitAndAckBothWays(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		serverGot := make(chan []any, 4)
		serverAcks := make(chan []any, 4)
		ts.OnConnection(func(s *socketio.Socket) {
			s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
				vals, err := args.Values()
				if err != nil {
					t.Error(err)
				}
				serverGot <- vals
				if ack != nil {
					_ = ack(vals...)
				}
			})
			s.On("ask-me", func(args socketio.Args, _ socketio.AckFunc) {
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), clientWait)
					defer cancel()
					a, err := s.EmitWithAck(ctx, "question", "q", []byte{7, 8})
					if err != nil {
						t.Error(err)
						return
					}
					vals, err := a.Values()
					if err != nil {
						t.Error(err)
					}
					serverAcks <- vals
				}()
			})
		})
		m := newTestManager(t, ts, managerOptions(transports))
		s := m.Socket("/", nil)
		s.On("question", func(args socketio.Args, ack socketio.AckFunc) {
			bin, ok := args.Binary(1)
			if ack == nil || !ok || !bytes.Equal(bin, []byte{7, 8}) {
				t.Errorf("question: ack %v, binary %v %v", ack != nil, bin, ok)
				return
			}
			if err := ack("answer", map[string]any{"nested": []any{[]byte{1, 2, 3}}}); err != nil {
				t.Error(err)
			}
			if err := ack("twice"); err != nil {
				t.Error(err)
			}
		})
		connect(t, s)

		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		// Plain, then binary nested in a map and a slice.
		args, err := s.EmitWithAck(ctx, "echo", 1, "two", map[string]any{"three": true})
		if err != nil {
			t.Fatal(err)
		}
		if vals, _ := args.Values(); !reflect.DeepEqual(vals, []any{1.0, "two", map[string]any{"three": true}}) {
			t.Fatalf("ack %v", vals)
		}
		recv(t, serverGot, "event")
		payload := map[string]any{"blob": []byte{0, 1, 2}, "list": []any{"x", []byte{0xff}}}
		args, err = s.EmitWithAck(ctx, "echo", payload, []byte("raw"))
		if err != nil {
			t.Fatal(err)
		}
		want := []any{payload, []byte("raw")}
		if got := recv(t, serverGot, "binary event"); !reflect.DeepEqual(got, want) {
			t.Fatalf("server got %#v, want %#v", got, want)
		}
		if vals, _ := args.Values(); !reflect.DeepEqual(vals, want) {
			t.Fatalf("binary ack %#v, want %#v", vals, want)
		}
		// The server asks, the client answers (with a binary ack, once).
		if err := s.Emit("ask-me"); err != nil {
			t.Fatal(err)
		}
		got := recv(t, serverAcks, "client ack")
		wantAck := []any{"answer", map[string]any{"nested": []any{[]byte{1, 2, 3}}}}
		if !reflect.DeepEqual(got, wantAck) {
			t.Fatalf("server got ack %#v, want %#v", got, wantAck)
		}
		// Emit without ack reaches the server too.
		if err := s.Emit("echo", "plain"); err != nil {
			t.Fatal(err)
		}
		if got := recv(t, serverGot, "event"); !reflect.DeepEqual(got, []any{"plain"}) {
			t.Fatalf("server got %v", got)
		}
		if err := s.Emit("disconnect"); !errors.Is(err, socketio.ErrReservedEvent) {
			t.Fatalf("reserved name: %v", err)
		}
	})
}

func TestClientOnAnyAndOrder(t *testing.T) {
	const n = 1000
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		serverSeq := make(chan int, n)
		ts.OnConnection(func(s *socketio.Socket) {
			s.On("n", func(args socketio.Args, _ socketio.AckFunc) {
				var i int
				_ = args.Decode(0, &i)
				serverSeq <- i
			})
			s.On("send-back", func(socketio.Args, socketio.AckFunc) {
				for i := range n {
					_ = s.Emit("m", i)
				}
				_ = s.Emit("done")
			})
		})
		m := newTestManager(t, ts, managerOptions(transports))
		s := m.Socket("/", nil)
		var mu sync.Mutex
		var anyNames []string
		var order []string
		s.OnAny(func(event string, _ socketio.Args) {
			mu.Lock()
			anyNames = append(anyNames, event)
			order = append(order, "any:"+event)
			mu.Unlock()
		})
		clientSeq := make(chan int, n)
		done := make(chan struct{})
		s.On("m", func(args socketio.Args, _ socketio.AckFunc) {
			var i int
			_ = args.Decode(0, &i)
			if i == 0 {
				mu.Lock()
				order = append(order, "on:m")
				mu.Unlock()
			}
			clientSeq <- i
		})
		s.On("done", func(socketio.Args, socketio.AckFunc) { close(done) })
		connect(t, s)
		for i := range n {
			if err := s.Emit("n", i); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			if got := recv(t, serverSeq, "event at the server"); got != i {
				t.Fatalf("server got %d at position %d", got, i)
			}
		}
		if err := s.Emit("send-back"); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if got := recv(t, clientSeq, "event at the client"); got != i {
				t.Fatalf("client got %d at position %d", got, i)
			}
		}
		recv(t, done, "done")
		mu.Lock()
		defer mu.Unlock()
		if len(anyNames) != n+1 || anyNames[n] != "done" || order[0] != "any:m" || order[1] != "on:m" {
			t.Fatalf("OnAny saw %d events (last %q), order %v", len(anyNames), anyNames[len(anyNames)-1], order[:2])
		}
	})
}

// clientEvents records a socket's lifecycle events in order.
type clientEvents struct {
	ch chan string
}

func watch(s *socketio.ClientSocket) *clientEvents {
	e := &clientEvents{ch: make(chan string, 64)}
	s.OnConnect(func() { e.ch <- "connect" })
	s.OnDisconnect(func(reason string) { e.ch <- "disconnect: " + reason })
	s.OnConnectError(func(err error) { e.ch <- "connect_error: " + err.Error() })
	return e
}

func (e *clientEvents) expect(t *testing.T, want string) {
	t.Helper()
	if got := recv(t, e.ch, want); got != want {
		t.Fatalf("event %q, want %q", got, want)
	}
}

func TestClientDisconnectReasons(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		t.Run("server disconnect", func(t *testing.T) {
			ts := newClientTestServer(t, nil)
			var mu sync.Mutex
			var mainSock *socketio.Socket
			ts.OnConnection(func(s *socketio.Socket) {
				mu.Lock()
				mainSock = s
				mu.Unlock()
			})
			adminConns := make(chan *socketio.Socket, 4)
			ts.Of("/admin").OnConnection(func(s *socketio.Socket) { adminConns <- s })
			m := newTestManager(t, ts, managerOptions(transports))
			attempts := make(chan int, 16)
			m.OnReconnectAttempt(func(n int) { attempts <- n })
			main, admin := m.Socket("/", nil), m.Socket("/admin", nil)
			mainEv, adminEv := watch(main), watch(admin)
			connect(t, main)
			connect(t, admin)
			mainEv.expect(t, "connect")
			adminEv.expect(t, "connect")
			recv(t, adminConns, "admin connection")

			mu.Lock()
			mainSock.Disconnect(false)
			mu.Unlock()
			mainEv.expect(t, "disconnect: io server disconnect")
			if main.Connected() {
				t.Fatal("still connected")
			}
			// The connection goes on for /admin; when it is lost, /admin comes back and /
			// does not.
			ts.closeSession(t)
			adminEv.expect(t, "disconnect: transport close")
			recv(t, attempts, "reconnection attempt")
			adminEv.expect(t, "connect")
			recv(t, adminConns, "admin reconnection")
			if main.Connected() || ts.Of("/").SocketCount() != 0 {
				t.Fatal("the socket the server disconnected reconnected")
			}
			expectNone(t, mainEv.ch, "event of /")
		})
		t.Run("server disconnect of the only socket", func(t *testing.T) {
			ts := newClientTestServer(t, nil)
			sockets := make(chan *socketio.Socket, 1)
			ts.OnConnection(func(s *socketio.Socket) { sockets <- s })
			m := newTestManager(t, ts, managerOptions(transports))
			closes := make(chan string, 4)
			attempts := make(chan int, 4)
			m.OnClose(func(reason string, _ error) { closes <- reason })
			m.OnReconnectAttempt(func(n int) { attempts <- n })
			s := m.Socket("/", nil)
			ev := watch(s)
			connect(t, s)
			ev.expect(t, "connect")
			recv(t, sockets, "server socket").Disconnect(false)
			ev.expect(t, "disconnect: io server disconnect")
			// No socket left: the Manager closes the connection and does not reconnect.
			if r := recv(t, closes, "close"); r != "forced close" {
				t.Fatalf("close reason %q", r)
			}
			if m.Engine() != nil {
				t.Fatal("connection still open")
			}
			expectNone(t, attempts, "reconnection attempt")
		})
		t.Run("client disconnect", func(t *testing.T) {
			ts := newClientTestServer(t, nil)
			serverReasons := make(chan string, 1)
			ts.OnConnection(func(s *socketio.Socket) {
				s.OnDisconnect(func(reason string) { serverReasons <- reason })
			})
			m := newTestManager(t, ts, managerOptions(transports))
			s := m.Socket("/", nil)
			ev := watch(s)
			connect(t, s)
			ev.expect(t, "connect")
			s.Disconnect()
			ev.expect(t, "disconnect: io client disconnect")
			if r := recv(t, serverReasons, "server disconnect"); r != socketio.ReasonClientNamespaceDisconnect {
				t.Fatalf("server reason %q", r)
			}
			if err := s.Volatile("x"); err != nil {
				t.Fatal(err)
			}
			// Open connects it again, on a new connection.
			connect(t, s)
			ev.expect(t, "connect")
		})
	})
}

func TestClientReconnectsAfterTransportClose(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		conns := make(chan string, 4)
		ts.OnConnection(func(s *socketio.Socket) {
			conns <- s.ID() + " " + string(s.Handshake().Auth)
			s.On("echo", func(args socketio.Args, ack socketio.AckFunc) { _ = ack(decodeString(t, args, 0)) })
		})
		m := newTestManager(t, ts, managerOptions(transports))
		var mu sync.Mutex
		var log []string
		note := func(s string) {
			mu.Lock()
			log = append(log, s)
			mu.Unlock()
		}
		m.OnClose(func(reason string, _ error) { note("close " + reason) })
		m.OnReconnectAttempt(func(n int) { note(fmt.Sprint("attempt ", n)) })
		reconnected := make(chan int, 1)
		m.OnReconnect(func(n int) { note(fmt.Sprint("reconnect ", n)); reconnected <- n })
		opens := make(chan struct{}, 4)
		m.OnOpen(func() { opens <- struct{}{} })
		var calls atomic.Int32
		s := m.Socket("/", &socketio.ClientSocketOptions{AuthFunc: func() (any, error) {
			return map[string]any{"call": calls.Add(1)}, nil
		}})
		ev := watch(s)
		connect(t, s)
		ev.expect(t, "connect")
		first, firstAuth, _ := strings.Cut(recv(t, conns, "server connection"), " ")
		recv(t, opens, "open")

		ts.closeSession(t)
		ev.expect(t, "disconnect: transport close")
		if n := recv(t, reconnected, "reconnect"); n != 1 {
			t.Fatalf("reconnected after %d attempts", n)
		}
		ev.expect(t, "connect")
		recv(t, opens, "open")
		second, secondAuth, _ := strings.Cut(recv(t, conns, "server reconnection"), " ")
		if first == second || s.ID() != second {
			t.Fatalf("ids %q then %q, client has %q", first, second, s.ID())
		}
		if firstAuth != `{"call":1}` || secondAuth != `{"call":2}` {
			t.Fatalf("auth %s then %s, want AuthFunc called for each CONNECT", firstAuth, secondAuth)
		}
		mu.Lock()
		got := strings.Join(log, ", ")
		mu.Unlock()
		if got != "close transport close, attempt 1, reconnect 1" {
			t.Fatalf("manager events: %s", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		if args, err := s.EmitWithAck(ctx, "echo", "again"); err != nil || decodeString(t, args, 0) != "again" {
			t.Fatalf("after reconnection: %v", err)
		}
	})
}

func TestClientBuffersWhileDisconnected(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		got := make(chan string, 64)
		ts.OnConnection(func(s *socketio.Socket) {
			s.OnAny(func(event string, args socketio.Args) {
				got <- event + " " + string(args.Raw(0))
			})
			s.On("ask", func(args socketio.Args, ack socketio.AckFunc) { _ = ack("answered") })
		})
		m := newTestManager(t, ts, managerOptions(transports))
		s := m.Socket("/", &socketio.ClientSocketOptions{MaxBufferedPackets: 4})
		ev := watch(s)
		// Emitted before the first connection: held too.
		if err := s.Emit("b", 0); err != nil {
			t.Fatal(err)
		}
		connect(t, s)
		ev.expect(t, "connect")
		if g := recv(t, got, "first buffered"); g != "b 0" {
			t.Fatalf("server got %q", g)
		}

		release := ts.hold()
		defer release()
		ts.closeSession(t)
		ev.expect(t, "disconnect: transport close")
		for i := 1; i <= 2; i++ {
			if err := s.Emit("b", i); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Volatile("v", 0); err != nil {
			t.Fatalf("volatile while disconnected: %v", err)
		}
		acked := make(chan string, 1)
		held := &doneNotifier{Context: context.Background(), called: make(chan struct{})}
		go func() {
			args, err := s.EmitWithAck(held, "ask", 3)
			if err != nil {
				acked <- err.Error()
				return
			}
			acked <- decodeString(t, args, 0)
		}()
		recv(t, held.called, "EmitWithAck held")
		if err := s.Emit("probe", 4); err != nil {
			t.Fatal(err)
		}
		if err := s.Emit("over", 5); !errors.Is(err, socketio.ErrBufferFull) {
			t.Fatalf("emit past MaxBufferedPackets: %v", err)
		}
		release()
		ev.expect(t, "connect")
		if err := s.Emit("after", 6); err != nil {
			t.Fatal(err)
		}
		var seq []string
		for len(seq) < 5 {
			seq = append(seq, recv(t, got, "event after reconnection"))
		}
		if want := []string{"b 1", "b 2", "ask 3", "probe 4", "after 6"}; !reflect.DeepEqual(seq, want) {
			t.Fatalf("server got %q after reconnection, want %q", seq, want)
		}
		if a := recv(t, acked, "ack of a held event"); a != "answered" {
			t.Fatalf("held EmitWithAck: %s", a)
		}
		expectNone(t, got, "event (the volatile one?)")
	})
}

// doneNotifier tells when EmitWithAck starts waiting on its context, which it does once
// the event is sent or held in the buffer.
type doneNotifier struct {
	context.Context
	once   sync.Once
	called chan struct{}
}

func (d *doneNotifier) Done() <-chan struct{} {
	d.once.Do(func() { close(d.called) })
	return d.Context.Done()
}

func TestClientRecovery(t *testing.T) {
	for _, how := range []string{"server closes", "client closes"} {
		t.Run(how, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, transports []string) {
				ts := newClientTestServer(t, &socketio.Options{
					ConnectionStateRecovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute},
				})
				ended := make(chan string, 4)
				connections := make(chan bool, 4)
				auths := make(chan map[string]string, 4)
				ts.OnConnection(func(s *socketio.Socket) {
					var auth map[string]string
					_ = json.Unmarshal(s.Handshake().Auth, &auth)
					auths <- auth
					connections <- s.Recovered()
					s.OnDisconnect(func(reason string) { ended <- reason })
				})
				m := newTestManager(t, ts, managerOptions(transports))
				s := m.Socket("/", &socketio.ClientSocketOptions{Auth: map[string]string{"user": "u1"}})
				ev := watch(s)
				news := make(chan string, 8)
				s.On("news", func(args socketio.Args, _ socketio.AckFunc) {
					news <- decodeString(t, args, 0)
				})
				connect(t, s)
				ev.expect(t, "connect")
				if recv(t, connections, "connection") {
					t.Fatal("first connection recovered")
				}
				id := s.ID()
				if err := ts.Emit("news", "one"); err != nil {
					t.Fatal(err)
				}
				if n := recv(t, news, "news"); n != "one" {
					t.Fatalf("news %q", n)
				}

				release := ts.hold()
				defer release()
				if how == "server closes" {
					ts.closeSession(t)
					ev.expect(t, "disconnect: transport close")
				} else {
					if err := m.Engine().Close(); err != nil {
						t.Fatal(err)
					}
					ev.expect(t, "disconnect: forced close")
				}
				recv(t, ended, "server-side disconnect")
				// Missed while disconnected.
				for _, n := range []string{"two", "three"} {
					if err := ts.Emit("news", n); err != nil {
						t.Fatal(err)
					}
				}
				release()
				ev.expect(t, "connect")
				if !s.Recovered() || s.ID() != id {
					t.Fatalf("recovered %v, id %q (was %q)", s.Recovered(), s.ID(), id)
				}
				for _, want := range []string{"two", "three"} {
					if n := recv(t, news, "missed news"); n != want {
						t.Fatalf("news %q, want %q", n, want)
					}
				}
				if !recv(t, connections, "reconnection") {
					t.Fatal("the server did not recover the socket")
				}
				first, second := recv(t, auths, "auth"), recv(t, auths, "auth")
				if len(first) != 1 || first["user"] != "u1" {
					t.Fatalf("first auth %v", first)
				}
				if second["user"] != "u1" || second["pid"] == "" || second["offset"] == "" || len(second) != 3 {
					t.Fatalf("auth on reconnection %v, want user, pid and offset", second)
				}
			})
		})
	}
}

func TestClientReconnectFailed(t *testing.T) {
	// An address nothing listens on any more.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()

	opts := managerOptions([]string{"websocket"})
	opts.ReconnectionAttempts = 2
	m := socketio.NewManager(url, opts)
	defer m.Close()
	var mu sync.Mutex
	var log []string
	note := func(s string) {
		mu.Lock()
		log = append(log, s)
		mu.Unlock()
	}
	failed := make(chan struct{})
	m.OnReconnectAttempt(func(n int) { note(fmt.Sprint("attempt ", n)) })
	m.OnReconnectError(func(error) { note("error") })
	m.OnReconnectFailed(func() { note("failed"); close(failed) })
	s := m.Socket("/", nil)
	connectErrors := make(chan error, 8)
	s.OnConnectError(func(err error) { connectErrors <- err })
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	err := s.Connect(ctx)
	if !errors.Is(err, socketio.ErrReconnectFailed) {
		t.Fatalf("Connect: %v, want ErrReconnectFailed", err)
	}
	recv(t, failed, "reconnect failed")
	mu.Lock()
	got := strings.Join(log, ", ")
	mu.Unlock()
	if got != "attempt 1, error, attempt 2, error, failed" {
		t.Fatalf("manager events: %s", got)
	}
	for range 3 { // the first dial and two attempts
		recv(t, connectErrors, "connect error")
	}

	// Without reconnection, the dial error itself.
	opts = managerOptions([]string{"websocket"})
	opts.NoReconnect = true
	if _, err := socketio.Dial(ctx, url, opts, nil); err == nil || errors.Is(err, socketio.ErrReconnectFailed) {
		t.Fatalf("Dial without reconnection: %v", err)
	}
}

func TestClientEmitWithAckContext(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		pending := make(chan socketio.AckFunc, 2)
		sockets := make(chan *socketio.Socket, 1)
		ts.OnConnection(func(s *socketio.Socket) {
			sockets <- s
			s.On("slow", func(_ socketio.Args, ack socketio.AckFunc) { pending <- ack })
		})
		m := newTestManager(t, ts, managerOptions(transports))
		s := m.Socket("/", nil)
		ev := watch(s)
		connect(t, s)
		ev.expect(t, "connect")
		recv(t, sockets, "server socket")

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		_, err := s.EmitWithAck(ctx, "slow", 1)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("EmitWithAck: %v, want the deadline", err)
		}
		// The late answer is ignored.
		if err := recv(t, pending, "slow event")("late"); err != nil {
			t.Fatal(err)
		}
		// A pending ack fails when the connection is lost.
		result := make(chan error, 1)
		go func() {
			_, err := s.EmitWithAck(context.Background(), "slow", 2)
			result <- err
		}()
		recv(t, pending, "second slow event")
		ts.closeSession(t)
		if err := recv(t, result, "EmitWithAck end"); !errors.Is(err, socketio.ErrDisconnected) {
			t.Fatalf("EmitWithAck across a disconnection: %v", err)
		}
		ev.expect(t, "disconnect: transport close")
		ev.expect(t, "connect")
	})
}

// A server that breaks the protocol: the client closes the connection with "parse error"
// and reconnects; an ack nobody asked for is ignored.
func TestClientParseError(t *testing.T) {
	var mu sync.Mutex
	var sessions []*engineio.Session
	engine := &engineio.Server{Path: socketio.DefaultPath}
	engine.OnConnection = func(s *engineio.Session) {
		mu.Lock()
		sessions = append(sessions, s)
		n := len(sessions)
		mu.Unlock()
		s.OnMessage = func(data []byte, binary bool) {
			if string(data) != "0" {
				return
			}
			_ = s.Send([]byte(`0{"sid":"abc"}`), engineio.Text)
			_ = s.Send([]byte(`37["nobody asked"]`), engineio.Text)
			_ = s.Send([]byte(`2["hello"]`), engineio.Text)
			if n == 1 {
				_ = s.Send([]byte(`2["broken"`), engineio.Text)
			}
		}
	}
	hs := httptest.NewServer(engine)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), clientWait)
		defer cancel()
		_ = engine.Shutdown(ctx)
		hs.Close()
	}()
	m := socketio.NewManager(hs.URL, managerOptions([]string{"websocket"}))
	defer m.Close()
	type closeEvent struct {
		reason string
		err    error
	}
	closes := make(chan closeEvent, 4)
	m.OnClose(func(reason string, err error) { closes <- closeEvent{reason, err} })
	s := m.Socket("/", nil)
	ev := watch(s)
	hellos := make(chan struct{}, 4)
	s.On("hello", func(socketio.Args, socketio.AckFunc) { hellos <- struct{}{} })
	connect(t, s)
	ev.expect(t, "connect")
	recv(t, hellos, "hello")
	ev.expect(t, "disconnect: parse error")
	if c := recv(t, closes, "close"); c.reason != "parse error" || !errors.Is(c.err, socketio.ErrInvalidPacket) {
		t.Fatalf("close: %q, %v", c.reason, c.err)
	}
	ev.expect(t, "connect")
	recv(t, hellos, "hello after reconnection")
}

func TestClientManagerClose(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		arrived := make(chan struct{}, 1)
		ts.OnConnection(func(s *socketio.Socket) {
			s.On("never", func(socketio.Args, socketio.AckFunc) { arrived <- struct{}{} })
		})
		m := socketio.NewManager(ts.URL, managerOptions(transports))
		t.Cleanup(m.Close)
		a, b := m.Socket("/", nil), m.Socket("/b", nil)
		ts.Of("/b")
		evA, evB := watch(a), watch(b)
		connect(t, a)
		connect(t, b)
		evA.expect(t, "connect")
		evB.expect(t, "connect")
		result := make(chan error, 1)
		go func() {
			_, err := a.EmitWithAck(context.Background(), "never")
			result <- err
		}()
		recv(t, arrived, "event at the server")
		// Close from a handler.
		b.On("close-now", func(socketio.Args, socketio.AckFunc) { m.Close() })
		if err := ts.Of("/b").Emit("close-now"); err != nil {
			t.Fatal(err)
		}
		evA.expect(t, "disconnect: io client disconnect")
		evB.expect(t, "disconnect: io client disconnect")
		if err := recv(t, result, "EmitWithAck end"); !errors.Is(err, socketio.ErrDisconnected) {
			t.Fatalf("EmitWithAck: %v", err)
		}
		if m.Engine() != nil || a.Connected() || b.Connected() {
			t.Fatal("still connected after Close")
		}
	})
}

func TestClientRefusesBadAuth(t *testing.T) {
	ts := newClientTestServer(t, nil)
	m := newTestManager(t, ts, managerOptions([]string{"websocket"}))
	ctx, cancel := context.WithTimeout(context.Background(), clientWait)
	defer cancel()
	authErr := errors.New("no token")
	for _, tc := range []struct {
		nsp  string
		opts *socketio.ClientSocketOptions
		want string
	}{
		{"/a", &socketio.ClientSocketOptions{Auth: "not an object"}, "does not encode to a JSON object"},
		{"/b", &socketio.ClientSocketOptions{AuthFunc: func() (any, error) { return nil, authErr }}, "no token"},
		{"/c", &socketio.ClientSocketOptions{Auth: func() {}}, "unsupported type"},
	} {
		ts.Of(tc.nsp)
		s := m.Socket(tc.nsp, tc.opts)
		ev := watch(s)
		err := s.Connect(ctx)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: Connect %v, want %q", tc.nsp, err, tc.want)
		}
		if got := recv(t, ev.ch, "connect error"); !strings.Contains(got, tc.want) {
			t.Fatalf("%s: %s", tc.nsp, got)
		}
	}
}

// A handler that falls behind: events wait in the socket's inbox, then the connection stops
// reading; none is lost and the order holds.
func TestClientSlowHandlerLosesNothing(t *testing.T) {
	const n = 3000
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		sent := make(chan struct{})
		ts.OnConnection(func(s *socketio.Socket) {
			s.On("flood", func(socketio.Args, socketio.AckFunc) {
				for i := range n {
					if err := s.Emit("m", i); err != nil {
						t.Errorf("server emit %d: %v", i, err)
						break
					}
				}
				close(sent)
			})
		})
		m := newTestManager(t, ts, managerOptions(transports))
		s := m.Socket("/", nil)
		gate := make(chan struct{})
		seq := make(chan int, n)
		s.On("m", func(args socketio.Args, _ socketio.AckFunc) {
			var i int
			_ = args.Decode(0, &i)
			if i == 0 {
				<-gate
			}
			seq <- i
		})
		connect(t, s)
		if err := s.Emit("flood"); err != nil {
			t.Fatal(err)
		}
		recv(t, sent, "server done")
		close(gate)
		for i := range n {
			if got := recv(t, seq, "event"); got != i {
				t.Fatalf("event %d at position %d", got, i)
			}
		}
	})
}

// Contexts that end while the socket waits for its connection: Connect returns and the
// socket goes on trying; a held EmitWithAck leaves the buffer and is never sent.
func TestClientContextEndsWhileDisconnected(t *testing.T) {
	forEachTransport(t, func(t *testing.T, transports []string) {
		ts := newClientTestServer(t, nil)
		got := make(chan string, 8)
		ts.OnConnection(func(s *socketio.Socket) {
			s.OnAny(func(event string, _ socketio.Args) { got <- event })
		})
		release := ts.hold()
		defer release()
		m := newTestManager(t, ts, managerOptions(transports))
		s := m.Socket("/", nil)
		ev := watch(s)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := s.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Connect: %v, want the deadline", err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if _, err := s.EmitWithAck(ctx, "dropped"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("EmitWithAck: %v, want the deadline", err)
		}
		if err := s.Emit("kept"); err != nil {
			t.Fatal(err)
		}
		release()
		ev.expect(t, "connect")
		if err := s.Emit("last"); err != nil {
			t.Fatal(err)
		}
		if a, b := recv(t, got, "event"), recv(t, got, "event"); a != "kept" || b != "last" {
			t.Fatalf("server got %q, %q", a, b)
		}
	})
}
