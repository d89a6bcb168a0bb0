package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
)

// The Go client tests (TestGoClient...) run the Go Engine.IO and Socket.IO clients against
// two servers each, one suite for both: the official Node servers (goclient-server.js,
// socket.io 4.8.4, and goclient-eio-server.js, engine.io 6.6.12) and their Go twins
// (goSIOApp, goEIOApp) on socketio.Server and engineio.Server. A twin behaves as its Node
// script does, event for event; the scripts' comments describe that behaviour.
//
// Either server runs on a loopback port that the test knows before it starts, so that it
// can be killed (Node: SIGKILL; Go: its listener and every connection closed at once) and
// started again on the same port, and frozen (Node: SIGSTOP; Go: every write blocked), to
// look like a server that stops answering.

// gcWait bounds every wait of these tests: an upper bound for slow machines, never an
// expectation.
const gcWait = 15 * time.Second

// gcKinds are the servers every test runs against.
var gcKinds = []string{"node", "go"}

// gcConfig is what a test server is started with (the JSON argument of the Node scripts).
type gcConfig struct {
	Port              int `json:"port"`
	PingInterval      int `json:"pingInterval,omitempty"`      // ms; 0: the default, 25 s
	PingTimeout       int `json:"pingTimeout,omitempty"`       // ms; 0: the default, 20 s
	MaxHTTPBufferSize int `json:"maxHttpBufferSize,omitempty"` // bytes; 0: the default, 1e6
}

func msDuration(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// gcEvent is what a server reports of its connections: one JSON line of a Node script, or
// the same built by a Go twin.
type gcEvent struct {
	Op        string `json:"op"` // listening, connection, disconnect (sio); open, upgrade, close (eio); error
	Port      int    `json:"port"`
	Nsp       string `json:"nsp"`
	ID        string `json:"id"`
	Reason    string `json:"reason"`
	Recovered bool   `json:"recovered"`
	Transport string `json:"transport"`
	Message   string `json:"message"`
}

// gcServer is a test server, Node or Go.
type gcServer interface {
	Kind() string
	// URL is http://127.0.0.1:PORT.
	URL() string
	// Events delivers what the server reports, in order, across restarts.
	Events() <-chan gcEvent
	// Kill ends the server abruptly: its connections drop, its state is lost.
	Kill(t testing.TB)
	// Restart starts a killed server again, on the same port, with a fresh state.
	Restart(t testing.TB)
	// Freeze makes the server stop answering, connections left open; Thaw undoes it.
	Freeze(t testing.TB)
	Thaw(t testing.TB)
}

// gcProto says which of the two protocols a test server speaks.
type gcProto struct {
	script string                                                           // the Node server
	build  func(cfg gcConfig, ev chan<- gcEvent, logger *slog.Logger) gcApp // the Go twin
	module string                                                           // the npm package the script needs
}

// gcApp is one run of a Go twin: the handler and how to shut it down.
type gcApp struct {
	handler  http.Handler
	shutdown func(context.Context) error
}

var (
	gcSocketIO = gcProto{script: "goclient-server.js", build: goSIOApp, module: "socket.io"}
	gcEngineIO = gcProto{script: "goclient-eio-server.js", build: goEIOApp, module: "engine.io"}
)

// startGCServer starts a server of the given kind for the test; it is stopped at the end.
func startGCServer(t *testing.T, kind string, proto gcProto, cfg gcConfig) gcServer {
	t.Helper()
	switch kind {
	case "node":
		return startGCNode(t, proto, cfg)
	case "go":
		return startGCGo(t, proto, cfg)
	}
	t.Fatalf("unknown server kind %q", kind)
	return nil
}

// gcSend reports a server event without ever blocking the server: the channel is large,
// and a test that needs events reads them.
func gcSend(ch chan<- gcEvent, ev gcEvent) {
	select {
	case ch <- ev:
	default:
	}
}

// awaitEvent skips server events until one satisfies match, failing the test after timeout.
func awaitEvent(t testing.TB, srv gcServer, timeout time.Duration, what string, match func(gcEvent) bool) gcEvent {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []gcEvent
	for {
		select {
		case ev := <-srv.Events():
			if ev.Op == "error" {
				t.Fatalf("%s server failed: %s", srv.Kind(), ev.Message)
			}
			if match(ev) {
				return ev
			}
			seen = append(seen, ev)
		case <-timer.C:
			t.Fatalf("%s server: no %s within %v (saw %+v)", srv.Kind(), what, timeout, seen)
		}
	}
}

// gcFreePort returns a loopback port that was free a moment ago.
func gcFreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// gcLeakCheck fails the test if goroutines started during it are still running once it and
// its subtests are done and their cleanups have run (the servers, the clients).
func gcLeakCheck(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if err := goleak.Find(before); err != nil {
			t.Errorf("goroutines left behind: %v", err)
		}
	})
}

// awaitCond waits until cond holds, checking every few milliseconds, for at most timeout.
// For state with no event to wait on (the transport an engine settled on).
func awaitCond(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---- Node servers ----

// gcNodeLifetime bounds a Node server process.
const gcNodeLifetime = 3 * time.Minute

type gcNode struct {
	script string
	cfg    gcConfig
	url    string
	events chan gcEvent

	mu     sync.Mutex
	procs  []*nodeProc // every process started, the last one current
	frozen bool
}

func startGCNode(t *testing.T, proto gcProto, cfg gcConfig) *gcNode {
	t.Helper()
	requireNode(t)
	_, err := os.Stat("node_modules/" + proto.module + "/package.json")
	needPeer(t, "node_modules/"+proto.module, err == nil)
	cfg.Port = gcFreePort(t)
	s := &gcNode{script: proto.script, cfg: cfg, url: "http://127.0.0.1:" + strconv.Itoa(cfg.Port), events: make(chan gcEvent, 10000)}
	t.Cleanup(s.stop)
	s.spawn(t)
	return s
}

func (s *gcNode) Kind() string           { return "node" }
func (s *gcNode) URL() string            { return s.url }
func (s *gcNode) Events() <-chan gcEvent { return s.events }
func (s *gcNode) Restart(t testing.TB)   { t.Helper(); s.spawn(t) }
func (s *gcNode) Freeze(t testing.TB)    { t.Helper(); s.signal(t, syscall.SIGSTOP, true) }
func (s *gcNode) Thaw(t testing.TB)      { t.Helper(); s.signal(t, syscall.SIGCONT, false) }
func (s *gcNode) current() *nodeProc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.procs[len(s.procs)-1]
}
func (s *gcNode) stderr() string          { return s.current().stderr.String() }
func (s *gcNode) String() string          { return s.script + " on " + s.url }
func (s *gcNode) add(p *nodeProc)         { s.mu.Lock(); s.procs = append(s.procs, p); s.mu.Unlock() }
func (s *gcNode) isFrozen() (frozen bool) { s.mu.Lock(); defer s.mu.Unlock(); return s.frozen }
func (s *gcNode) setFrozen(frozen bool)   { s.mu.Lock(); s.frozen = frozen; s.mu.Unlock() }
func (s *gcNode) all() (procs []*nodeProc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(procs, s.procs...)
}

// spawn starts the script on the server's port and waits for its listening line.
func (s *gcNode) spawn(t testing.TB) {
	t.Helper()
	js, err := json.Marshal(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spawnNode(gcNodeLifetime, s.script, string(js))
	if err != nil {
		t.Fatalf("start node %s: %v", s.script, err)
	}
	s.add(p)
	line, ok := p.nextLine(t, gcWait, nil)
	if !ok {
		t.Fatalf("%s: not listening within %v; stderr:\n%s", s, gcWait, p.stderr.String())
	}
	if ev := decodeLine[gcEvent](t, s.script, line); ev.Op != "listening" || ev.Port != s.cfg.Port {
		t.Fatalf("%s: first line %s; stderr:\n%s", s, line, p.stderr.String())
	}
	go func() { // ends when the process's stdout does
		for line := range p.lines {
			var ev gcEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				ev = gcEvent{Op: "error", Message: fmt.Sprintf("not JSON: %q", line)}
			}
			gcSend(s.events, ev)
		}
	}()
}

// Kill sends SIGKILL to the current process (one this test started) and waits for its end.
func (s *gcNode) Kill(t testing.TB) {
	t.Helper()
	p := s.current()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", s, err)
	}
	select {
	case <-p.exited:
	case <-time.After(gcWait):
		t.Fatalf("%s still running %v after SIGKILL", s, gcWait)
	}
}

func (s *gcNode) signal(t testing.TB, sig syscall.Signal, frozen bool) {
	t.Helper()
	if err := s.current().cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, s, err)
	}
	s.setFrozen(frozen)
}

// stop ends every process the test started (a frozen one is thawed first, or it could not
// handle its stdin closing).
func (s *gcNode) stop() {
	if s.isFrozen() {
		_ = s.current().cmd.Process.Signal(syscall.SIGCONT)
	}
	for _, p := range s.all() {
		p.stop(5 * time.Second)
	}
}

// ---- Go servers ----

// gcGo runs a Go twin behind an http.Server on a loopback listener of its own, whose
// connections it tracks (WebSocket ones too, once hijacked) so that Kill can drop them all.
type gcGo struct {
	proto  gcProto
	cfg    gcConfig
	addr   string
	url    string
	events chan gcEvent
	logs   lockedBuffer
	bg     sync.WaitGroup // shutdowns of killed runs

	mu   sync.Mutex
	run  *gcGoRun      // nil when killed
	thaw chan struct{} // non-nil while frozen; closed by Thaw
}

// gcGoRun is one start of a Go server.
type gcGoRun struct {
	app    gcApp
	ln     net.Listener
	hs     *http.Server
	served chan struct{}
	conns  map[*gcConn]struct{} // guarded by gcGo.mu
	closed bool                 // guarded by gcGo.mu: accept no more
}

func startGCGo(t *testing.T, proto gcProto, cfg gcConfig) *gcGo {
	t.Helper()
	s := &gcGo{proto: proto, cfg: cfg, addr: "127.0.0.1:0", events: make(chan gcEvent, 10000)}
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("go server log:\n%s", s.logs.String())
		}
	})
	s.start(t)
	return s
}

func (s *gcGo) Kind() string           { return "go" }
func (s *gcGo) URL() string            { return s.url }
func (s *gcGo) Events() <-chan gcEvent { return s.events }
func (s *gcGo) Restart(t testing.TB)   { t.Helper(); s.start(t) }

func (s *gcGo) start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("go server: listen %s: %v", s.addr, err)
	}
	if s.url == "" {
		s.addr = ln.Addr().String()
		s.url = "http://" + s.addr
		s.cfg.Port = ln.Addr().(*net.TCPAddr).Port
	}
	logger := slog.New(slog.NewTextHandler(&s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	run := &gcGoRun{
		app:    s.proto.build(s.cfg, s.events, logger),
		ln:     ln,
		served: make(chan struct{}),
		conns:  map[*gcConn]struct{}{},
	}
	run.hs = &http.Server{Handler: run.app.handler, ReadHeaderTimeout: gcWait, ErrorLog: log.New(&s.logs, "http: ", 0)}
	s.mu.Lock()
	s.run = run
	s.mu.Unlock()
	go func() {
		defer close(run.served)
		_ = run.hs.Serve(&gcListener{Listener: ln, srv: s, run: run})
	}()
}

// Kill closes the listener and every connection at once, as a crash would; the server's
// sessions then end on their own (a shutdown runs in the background to make sure).
func (s *gcGo) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	run := s.run
	s.run = nil
	if run == nil {
		s.mu.Unlock()
		t.Fatal("go server: Kill while not running")
	}
	run.closed = true
	conns := make([]*gcConn, 0, len(run.conns))
	for c := range run.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	_ = run.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.end(run)
	}()
}

// end shuts a run down: the twin (its sessions), then the HTTP server.
func (s *gcGo) end(run *gcGoRun) {
	ctx, cancel := context.WithTimeout(context.Background(), gcWait)
	defer cancel()
	if err := run.app.shutdown(ctx); err != nil {
		fmt.Fprintf(&s.logs, "shutdown: %v\n", err)
	}
	_ = run.hs.Close()
	<-run.served
}

func (s *gcGo) stop(t testing.TB) {
	s.Thaw(t)
	s.mu.Lock()
	run := s.run
	s.run = nil
	s.mu.Unlock()
	if run != nil {
		s.end(run)
	}
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * gcWait):
		t.Errorf("go server: a killed run still shutting down after %v", 2*gcWait)
	}
}

// Freeze blocks every write of the server's connections, present and future, until Thaw:
// the server goes on running but nothing it sends reaches a client.
func (s *gcGo) Freeze(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.thaw == nil {
		s.thaw = make(chan struct{})
	}
}

func (s *gcGo) Thaw(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.thaw != nil {
		close(s.thaw)
		s.thaw = nil
	}
}

func (s *gcGo) frozen() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.thaw
}

type gcListener struct {
	net.Listener
	srv *gcGo
	run *gcGoRun
}

func (l *gcListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &gcConn{Conn: c, l: l, done: make(chan struct{})}
	l.srv.mu.Lock()
	closed := l.run.closed
	if !closed {
		l.run.conns[gc] = struct{}{}
	}
	l.srv.mu.Unlock()
	if closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	return gc, nil
}

// gcConn is a server connection that Kill can close and Freeze can silence.
type gcConn struct {
	net.Conn
	l    *gcListener
	once sync.Once
	done chan struct{}
}

func (c *gcConn) Write(p []byte) (int, error) {
	if thaw := c.l.srv.frozen(); thaw != nil {
		select {
		case <-thaw:
		case <-c.done:
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Write(p)
}

func (c *gcConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.l.srv.mu.Lock()
		delete(c.l.run.conns, c)
		c.l.srv.mu.Unlock()
	})
	return c.Conn.Close()
}

// ---- the Socket.IO twin of goclient-server.js ----

// goSIOApp is goclient-server.js on socketio.Server.
func goSIOApp(cfg gcConfig, events chan<- gcEvent, logger *slog.Logger) gcApp {
	eng := &engineio.Server{
		PingInterval:      msDuration(cfg.PingInterval),
		PingTimeout:       msDuration(cfg.PingTimeout),
		MaxHTTPBufferSize: int64(cfg.MaxHTTPBufferSize),
		Logger:            logger,
	}
	srv := socketio.NewServer(&socketio.Options{
		Engine:                  eng,
		Logger:                  logger,
		ConnectionStateRecovery: &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute},
	})

	// A socket's Engine.IO session (for close-transport and whoami's transport): CONNECT
	// packets are handled one at a time, each with its session in connecting, and the
	// connection handlers run on that goroutine before the handling returns.
	var connectMu sync.Mutex
	var connecting *engineio.Session
	onConn := eng.OnConnection
	eng.OnConnection = func(sess *engineio.Session) {
		onConn(sess)
		onMessage := sess.OnMessage
		sess.OnMessage = func(data []byte, binary bool) {
			if binary || len(data) == 0 || data[0] != '0' {
				onMessage(data, binary)
				return
			}
			connectMu.Lock()
			defer connectMu.Unlock()
			connecting = sess
			onMessage(data, binary)
			connecting = nil
		}
	}

	srv.Use(func(s *socketio.Socket) error {
		var auth struct {
			Token string `json:"token"`
		}
		_ = json.Unmarshal(s.Handshake().Auth, &auth)
		if auth.Token == "bad" {
			return &socketio.ConnectError{Message: "unauthorized", Data: map[string]any{"code": 401}}
		}
		return nil
	})
	for _, name := range []string{"/", "/admin"} {
		nsp := srv.Of(name)
		nsp.OnConnection(func(s *socketio.Socket) {
			sess := connecting
			id := s.ID()
			gcSend(events, gcEvent{Op: "connection", Nsp: name, ID: id, Recovered: s.Recovered()})
			s.OnDisconnect(func(reason string) {
				gcSend(events, gcEvent{Op: "disconnect", Nsp: name, ID: id, Reason: reason})
			})
			values := func(args socketio.Args) []any {
				vals, err := args.Values()
				if err != nil {
					return []any{"Values: " + err.Error()}
				}
				return vals
			}
			intArg := func(args socketio.Args) int {
				var n int
				_ = args.Decode(0, &n)
				return n
			}
			s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
				if ack != nil {
					_ = ack(values(args)...)
				}
			})
			s.On("count", func(args socketio.Args, ack socketio.AckFunc) {
				n := intArg(args)
				for i := range n {
					_ = s.Emit("seq", i)
				}
				if ack != nil {
					_ = ack(n)
				}
			})
			s.On("ask", func(args socketio.Args, ack socketio.AckFunc) {
				var payload any
				if vals := values(args); len(vals) > 0 {
					payload = vals[0]
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				got, err := s.EmitWithAck(ctx, "question", payload)
				if err != nil {
					_ = s.Emit("answer-error", err.Error())
					return
				}
				var answer any // the first value acked, as Node's emitWithAck resolves
				if vals := values(got); len(vals) > 0 {
					answer = vals[0]
				}
				_ = s.Emit("answer", answer)
				if ack != nil {
					_ = ack(answer)
				}
			})
			s.On("binary", func(args socketio.Args, ack socketio.AckFunc) {
				if ack != nil {
					_ = ack(patternBinary(intArg(args)))
				}
			})
			s.On("relay", func(args socketio.Args, _ socketio.AckFunc) {
				_ = s.Emit("relayed", values(args)...)
			})
			s.On("server-disconnect", func(socketio.Args, socketio.AckFunc) { s.Disconnect(false) })
			s.On("close-transport", func(socketio.Args, socketio.AckFunc) { _ = sess.Close() })
			s.On("close-transport-and-emit", func(args socketio.Args, _ socketio.AckFunc) {
				n := intArg(args)
				s.OnDisconnect(func(string) {
					for i := range n {
						_ = nsp.To(socketio.Room(id)).Emit("missed", i)
					}
				})
				_ = sess.Close()
			})
			s.On("whoami", func(_ socketio.Args, ack socketio.AckFunc) {
				if ack == nil {
					return
				}
				auth := map[string]any{} // Node's handshake.auth when none was sent
				_ = json.Unmarshal(s.Handshake().Auth, &auth)
				_ = ack(map[string]any{"id": id, "nsp": name, "recovered": s.Recovered(), "auth": auth,
					"transport": sess.Transport(), "engine": sess.ID()})
			})
		})
	}
	return gcApp{handler: srv, shutdown: srv.Shutdown}
}
