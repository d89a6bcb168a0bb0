package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

func gcMS(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

// gcEvent is what a server reports of its connections: one JSON line of a Node script, or
// the same built by a Go twin.
type gcEvent struct {
	Op        string `json:"op"` // listening, connection, disconnect (sio); open, upgrade, message, close (eio); error
	Port      int    `json:"port"`
	Nsp       string `json:"nsp"`
	ID        string `json:"id"`
	Reason    string `json:"reason"`
	Recovered bool   `json:"recovered"`
	Transport string `json:"transport"`
	Size      int    `json:"size"`
	Binary    bool   `json:"binary"`
	Text      string `json:"text"`
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

// gcAwaitEvent skips server events until one satisfies match, failing the test after timeout.
func gcAwaitEvent(t testing.TB, srv gcServer, timeout time.Duration, what string, match func(gcEvent) bool) gcEvent {
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

// gcPorts are the ports of the servers of running tests: a killed server's port stays its
// own while it is down, so another subtest cannot take it meanwhile.
var gcPorts struct {
	mu    sync.Mutex
	taken map[int]bool
}

// The ports the Go client's test servers use: [gcPortBase, gcPortBase+gcPortSpan).
const (
	gcPortBase = 20000
	gcPortSpan = 12000
)

// gcListen listens on a new loopback port that no other test server owns, and reserves it
// for the rest of the test.
func gcListen(t testing.TB) net.Listener {
	t.Helper()
	gcPorts.mu.Lock()
	defer gcPorts.mu.Unlock()
	if gcPorts.taken == nil {
		gcPorts.taken = map[int]bool{}
	}
	var busy []net.Listener
	defer func() {
		for _, ln := range busy {
			_ = ln.Close()
		}
	}()
	for range 100 {
		// Below the kernel's ephemeral range (32768 and up by default): a port from there
		// may become the source port of some connection while its server is down or
		// not yet started (a Node server once failed with EADDRINUSE that way).
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(gcPortBase+rand.IntN(gcPortSpan)))
		if err != nil {
			continue // taken by something else
		}
		port := ln.Addr().(*net.TCPAddr).Port
		if gcPorts.taken[port] {
			busy = append(busy, ln) // held until we have another, so it is not given again
			continue
		}
		gcPorts.taken[port] = true
		t.Cleanup(func() {
			gcPorts.mu.Lock()
			delete(gcPorts.taken, port)
			gcPorts.mu.Unlock()
		})
		return ln
	}
	t.Fatal("no free loopback port")
	return nil
}

// gcFreePort returns a loopback port reserved for the test (see gcListen), free now.
func gcFreePort(t testing.TB) int {
	t.Helper()
	ln := gcListen(t)
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

// gcAwaitCond waits until cond holds, checking every few milliseconds, for at most timeout.
// For state with no event to wait on (the transport an engine settled on).
func gcAwaitCond(t testing.TB, timeout time.Duration, what string, cond func() bool) {
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
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			for i, p := range s.all() {
				t.Logf("%s run %d stderr:\n%s", s.script, i+1, p.stderr.String())
			}
		}
	})
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
	s := &gcGo{proto: proto, cfg: cfg, events: make(chan gcEvent, 10000)}
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
	var ln net.Listener
	if s.url == "" {
		ln = gcListen(t)
	} else {
		var err error
		if ln, err = net.Listen("tcp", s.addr); err != nil {
			t.Fatalf("go server: listen %s: %v", s.addr, err)
		}
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
		PingInterval:      gcMS(cfg.PingInterval),
		PingTimeout:       gcMS(cfg.PingTimeout),
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
				// The wait goes on while the socket's later events are handled, as in
				// Node, where the handler returns at once (the client may emit meanwhile).
				go func() {
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
				}()
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

// ---- the Socket.IO client tests ----

// gcSIOMode is how a client's Manager connects.
type gcSIOMode struct {
	name       string
	transports []string
}

var gcSIOModes = []gcSIOMode{
	{"websocket", []string{engineio.TransportWebSocket}},
	{"upgrade", nil}, // the default: polling, then websocket
}

// gcSIOPolling is polling only, for the tests where it differs.
var gcSIOPolling = gcSIOMode{"polling", []string{engineio.TransportPolling}}

// gcEachSIO runs f against every server kind in every mode (gcSIOModes, plus extra), in
// parallel subtests, each with a server of its own started with cfg.
func gcEachSIO(t *testing.T, cfg gcConfig, f func(t *testing.T, srv gcServer, mode gcSIOMode), extra ...gcSIOMode) {
	gcLeakCheck(t)
	for _, kind := range gcKinds {
		for _, mode := range append(slices.Clip(gcSIOModes), extra...) {
			t.Run(kind+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				f(t, startGCServer(t, kind, gcSocketIO, cfg), mode)
			})
		}
	}
}

// gcManager is a Manager of srv in the mode, with fast reconnection (100 ms doubling up to
// 400 ms, 20 % jitter); it is closed at the end of the test.
type gcManager struct {
	*socketio.Manager
	logs      lockedBuffer
	attempts  chan int
	reconnect chan int
	recErrors chan error
}

func gcNewManager(t *testing.T, srv gcServer, mode gcSIOMode) *gcManager {
	t.Helper()
	gm := &gcManager{attempts: make(chan int, 1000), reconnect: make(chan int, 100), recErrors: make(chan error, 1000)}
	opts := &socketio.ManagerOptions{
		Engine:               engineio.ClientOptions{Transports: mode.transports},
		ReconnectionDelay:    100 * time.Millisecond,
		ReconnectionDelayMax: 400 * time.Millisecond,
		RandomizationFactor:  0.2,
		Timeout:              5 * time.Second,
		Logger:               slog.New(slog.NewTextHandler(&gm.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	gm.Manager = socketio.NewManager(srv.URL(), opts)
	gm.OnReconnectAttempt(func(n int) { gm.attempts <- n })
	gm.OnReconnect(func(n int) { gm.reconnect <- n })
	gm.OnReconnectError(func(err error) {
		select {
		case gm.recErrors <- err:
		default:
		}
	})
	t.Cleanup(func() {
		gm.Close()
		if t.Failed() {
			t.Logf("client log:\n%s", gm.logs.String())
		}
	})
	return gm
}

// gcSIOEvent is an event a client socket received (OnAny), its arguments decoded.
type gcSIOEvent struct {
	name string
	vals []any
	err  error
}

// gcSock is a ClientSocket whose handlers feed channels: every event (OnAny), and the
// lifecycle ("connect", "disconnect: REASON", "connect_error: MESSAGE").
type gcSock struct {
	*socketio.ClientSocket
	events    chan gcSIOEvent
	lost      atomic.Int64
	lifecycle chan string
	connErrs  chan error
}

func gcSocket(m *gcManager, nsp string, opts *socketio.ClientSocketOptions) *gcSock {
	s := &gcSock{ClientSocket: m.Socket(nsp, opts), events: make(chan gcSIOEvent, 4096), lifecycle: make(chan string, 100), connErrs: make(chan error, 10)}
	s.OnAny(func(event string, args socketio.Args) {
		vals, err := args.Values()
		select {
		case s.events <- gcSIOEvent{event, vals, err}:
		default:
			s.lost.Add(1)
		}
	})
	s.OnConnect(func() { s.lifecycle <- "connect" })
	s.OnDisconnect(func(reason string) { s.lifecycle <- "disconnect: " + reason })
	s.OnConnectError(func(err error) {
		s.lifecycle <- "connect_error: " + err.Error()
		s.connErrs <- err
	})
	return s
}

// connect connects the socket, failing the test on an error.
func (s *gcSock) connect(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gcWait)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect %s: %v", s.Namespace(), err)
	}
	if got := s.awaitLifecycle(t, "connect"); got != "connect" {
		t.Fatalf("lifecycle: %s", got)
	}
}

// awaitLifecycle returns the socket's next lifecycle event, which should be want (the
// test checks).
func (s *gcSock) awaitLifecycle(t testing.TB, want string) string {
	t.Helper()
	select {
	case got := <-s.lifecycle:
		return got
	case <-time.After(gcWait):
		t.Fatalf("%s: no lifecycle event (%s) within %v", s.Namespace(), want, gcWait)
	}
	panic("unreachable")
}

// awaitEvent returns the next event named name, skipping others (with skip, which fails
// the test on one it must not see; nil skips all).
func (s *gcSock) awaitEvent(t testing.TB, name string, skip func(gcSIOEvent)) gcSIOEvent {
	t.Helper()
	timer := time.NewTimer(gcWait)
	defer timer.Stop()
	for {
		select {
		case ev := <-s.events:
			if ev.err != nil {
				t.Fatalf("event %s: Values: %v", ev.name, ev.err)
			}
			if ev.name == name {
				return ev
			}
			if skip != nil {
				skip(ev)
			}
		case <-timer.C:
			t.Fatalf("%s: no event %q within %v (%d lost)", s.Namespace(), name, gcWait, s.lost.Load())
		}
	}
}

// ack emits with an ack and returns its values, failing the test on an error.
func (s *gcSock) ack(t testing.TB, event string, args ...any) []any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gcWait)
	defer cancel()
	got, err := s.EmitWithAck(ctx, event, args...)
	if err != nil {
		t.Fatalf("EmitWithAck(%q): %v", event, err)
	}
	vals, err := got.Values()
	if err != nil {
		t.Fatalf("EmitWithAck(%q): Values: %v", event, err)
	}
	return vals
}

// gcWhoami is the server's answer to "whoami".
type gcWhoami struct {
	ID        string         `json:"id"`
	Nsp       string         `json:"nsp"`
	Recovered bool           `json:"recovered"`
	Auth      map[string]any `json:"auth"`
	Transport string         `json:"transport"`
	Engine    string         `json:"engine"`
}

func (s *gcSock) whoami(t testing.TB) gcWhoami {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gcWait)
	defer cancel()
	got, err := s.EmitWithAck(ctx, "whoami")
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	var w gcWhoami
	if err := got.Decode(0, &w); err != nil {
		t.Fatalf("whoami: %v", err)
	}
	return w
}

// awaitWebSocket waits for the Manager's engine to settle on WebSocket (after the upgrade,
// in the default mode).
func (m *gcManager) awaitWebSocket(t testing.TB) {
	t.Helper()
	gcAwaitCond(t, gcWait, "engine on websocket", func() bool {
		e := m.Engine()
		return e != nil && e.Transport() == engineio.TransportWebSocket
	})
}

// gcJSONEqual compares two values by their JSON encodings (numbers all float64 on one side,
// ints on the other, compare equal).
func gcJSONEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// TestGoClientSocketIOMultiplex: one Manager joins "/" (with auth) and "/admin" over one
// Engine.IO connection; each socket has its own id, the server sees the auth and the
// namespaces, and events and acks work on both.
func TestGoClientSocketIOMultiplex(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		main := gcSocket(m, "/", &socketio.ClientSocketOptions{Auth: map[string]any{"token": "good", "name": "main"}})
		admin := gcSocket(m, "/admin", nil)
		if m.Socket("/", nil) != main.ClientSocket || m.Socket("admin", nil) != admin.ClientSocket {
			t.Error("Socket gave a new socket for a namespace it has")
		}
		main.connect(t)
		admin.connect(t)
		if main.ID() == "" || admin.ID() == "" || main.ID() == admin.ID() {
			t.Errorf("socket ids %q and %q", main.ID(), admin.ID())
		}
		seen := map[string]string{}
		for range 2 {
			ev := gcAwaitEvent(t, srv, gcWait, "connection", func(e gcEvent) bool { return e.Op == "connection" })
			seen[ev.Nsp] = ev.ID
		}
		if seen["/"] != main.ID() || seen["/admin"] != admin.ID() {
			t.Errorf("server connections %v; client / %s, /admin %s", seen, main.ID(), admin.ID())
		}
		m.awaitWebSocket(t)
		wm, wa := main.whoami(t), admin.whoami(t)
		if wm.ID != main.ID() || wm.Nsp != "/" || wm.Auth["token"] != "good" || wm.Auth["name"] != "main" || wm.Recovered {
			t.Errorf("whoami on /: %+v", wm)
		}
		if wa.ID != admin.ID() || wa.Nsp != "/admin" || len(wa.Auth) != 0 {
			t.Errorf("whoami on /admin: %+v", wa)
		}
		if e := m.Engine(); e == nil || wm.Engine != e.ID() || wa.Engine != e.ID() {
			t.Errorf("engine sessions: / %s, /admin %s, client %v", wm.Engine, wa.Engine, e)
		}
		if wm.Transport != engineio.TransportWebSocket || wa.Transport != engineio.TransportWebSocket {
			t.Errorf("server transports %s, %s", wm.Transport, wa.Transport)
		}
		args := []any{"x", 1.5, true, nil, map[string]any{"k": "v"}, []any{1.0, "2"}}
		for _, s := range []*gcSock{main, admin} {
			if got := s.ack(t, "echo", args...); !gcJSONEqual(got, args) {
				t.Errorf("%s: echo %v, want %v", s.Namespace(), got, args)
			}
		}
	})
}

// TestGoClientSocketIODial: socketio.Dial joins the namespace in the URL's path on a
// Manager of its own.
func TestGoClientSocketIODial(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		ctx, cancel := context.WithTimeout(context.Background(), gcWait)
		defer cancel()
		mopts := &socketio.ManagerOptions{Engine: engineio.ClientOptions{Transports: mode.transports}}
		s, err := socketio.Dial(ctx, srv.URL()+"/admin", mopts, &socketio.ClientSocketOptions{Auth: map[string]any{"name": "dialed"}})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		t.Cleanup(s.Manager().Close)
		if !s.Connected() || s.Namespace() != "/admin" {
			t.Errorf("connected %v to %q", s.Connected(), s.Namespace())
		}
		got, err := s.EmitWithAck(ctx, "whoami")
		if err != nil {
			t.Fatal(err)
		}
		var w gcWhoami
		if err := got.Decode(0, &w); err != nil || w.Nsp != "/admin" || w.ID != s.ID() || w.Auth["name"] != "dialed" {
			t.Errorf("whoami: %+v (%v)", w, err)
		}
		s.Disconnect()
		ev := gcAwaitEvent(t, srv, gcWait, "disconnect", func(e gcEvent) bool { return e.Op == "disconnect" })
		if ev.ID != w.ID || ev.Nsp != "/admin" {
			t.Errorf("server: %+v", ev)
		}
	})
}

// TestGoClientSocketIOConnectError: a middleware's refusal reaches Connect and
// OnConnectError as a *socketio.ConnectError with the server's message and data; the
// Manager's connection stays usable for another namespace.
func TestGoClientSocketIOConnectError(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		bad := gcSocket(m, "/", &socketio.ClientSocketOptions{Auth: map[string]any{"token": "bad"}})
		ctx, cancel := context.WithTimeout(context.Background(), gcWait)
		defer cancel()
		err := bad.Connect(ctx)
		var ce *socketio.ConnectError
		if !errors.As(err, &ce) {
			t.Fatalf("Connect: %v (%T), want a *socketio.ConnectError", err, err)
		}
		if ce.Message != "unauthorized" || !gcJSONEqual(ce.Data, map[string]any{"code": 401}) {
			t.Errorf("ConnectError %q, data %#v", ce.Message, ce.Data)
		}
		if got := bad.awaitLifecycle(t, "connect_error"); got != "connect_error: "+ce.Error() {
			t.Errorf("lifecycle %q", got)
		}
		if err := <-bad.connErrs; !errors.As(err, &ce) || ce.Message != "unauthorized" {
			t.Errorf("OnConnectError(%v)", err)
		}
		if bad.Connected() || bad.ID() != "" {
			t.Errorf("refused socket: connected %v, id %q", bad.Connected(), bad.ID())
		}
		admin := gcSocket(m, "/admin", nil)
		admin.connect(t)
		if got := admin.ack(t, "echo", "after"); !gcJSONEqual(got, []any{"after"}) {
			t.Errorf("echo on /admin: %v", got)
		}
	})
}

// TestGoClientSocketIOAck: EmitWithAck gets the server's answer; an event the server never
// acknowledges ends with the context's deadline, and the socket goes on working.
func TestGoClientSocketIOAck(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		s := gcSocket(m, "/", nil)
		s.connect(t)
		if got := s.ack(t, "echo", "a", 2.0, map[string]any{"nested": []any{"b", nil}}); !gcJSONEqual(got, []any{"a", 2, map[string]any{"nested": []any{"b", nil}}}) {
			t.Errorf("echo: %v", got)
		}
		if got := s.ack(t, "echo"); len(got) != 0 {
			t.Errorf("echo of nothing: %v", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		got, err := s.EmitWithAck(ctx, "ignore", 1)
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, socketio.ErrAckTimeout) {
			t.Errorf("EmitWithAck(ignore) = %v, %v; want the deadline", got, err)
		}
		if got := s.ack(t, "count", 0); !gcJSONEqual(got, []any{0}) {
			t.Errorf("after the timeout: %v", got)
		}
		if !s.Connected() {
			t.Error("not connected any more")
		}
	})
}

// TestGoClientSocketIOBinary: []byte values go both ways, top-level and nested in maps and
// slices, through acks and events, up to 200 KB.
func TestGoClientSocketIOBinary(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		s := gcSocket(m, "/", nil)
		s.connect(t)
		big := patternBinary(100_000)
		nested := map[string]any{"name": "file", "data": []byte{1, 2, 3}, "list": []any{[]byte{4}, "s", []byte{}}}
		got := s.ack(t, "echo", big, nested, "text")
		if len(got) != 3 {
			t.Fatalf("echo: %d values", len(got))
		}
		if b, ok := got[0].([]byte); !ok || !bytes.Equal(b, big) {
			t.Errorf("echo arg 0: %T of %d bytes", got[0], len(b))
		}
		if !reflect.DeepEqual(got[1], nested) {
			t.Errorf("echo arg 1: %#v, want %#v", got[1], nested)
		}
		if got[2] != "text" {
			t.Errorf("echo arg 2: %#v", got[2])
		}

		ctx, cancel := context.WithTimeout(context.Background(), gcWait)
		defer cancel()
		args, err := s.EmitWithAck(ctx, "binary", 200_000)
		if err != nil {
			t.Fatal(err)
		}
		if b, ok := args.Binary(0); !ok || !bytes.Equal(b, patternBinary(200_000)) {
			t.Errorf("binary ack: %v, %d bytes", ok, len(b))
		}
		var file struct {
			Name string `json:"name"`
			Data []byte `json:"data"`
		}
		args, err = s.EmitWithAck(ctx, "echo", nested)
		if err != nil {
			t.Fatal(err)
		}
		if err := args.Decode(0, &file); err != nil || file.Name != "file" || !bytes.Equal(file.Data, []byte{1, 2, 3}) {
			t.Errorf("Decode into a struct: %+v, %v", file, err)
		}

		if err := s.Emit("relay", []byte("event bytes"), map[string]any{"inner": []byte{9, 8}}); err != nil {
			t.Fatal(err)
		}
		ev := s.awaitEvent(t, "relayed", nil)
		if len(ev.vals) < 2 {
			t.Fatalf("relayed: %v", ev.vals)
		}
		if b, ok := ev.vals[0].([]byte); !ok || string(b) != "event bytes" {
			t.Errorf("relayed arg 0: %#v", ev.vals[0])
		}
		if !reflect.DeepEqual(ev.vals[1], map[string]any{"inner": []byte{9, 8}}) {
			t.Errorf("relayed arg 1: %#v", ev.vals[1])
		}
	})
}

// TestGoClientSocketIOOnAny: OnAny sees every event, with or without a handler of its own,
// before that event's handlers (as socket.io-client calls its any-listeners first), in
// arrival order.
func TestGoClientSocketIOOnAny(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		s := gcSocket(m, "/", nil)
		var mu sync.Mutex
		var calls []string
		last := make(chan struct{})
		record := func(what string, args socketio.Args) {
			var n any
			_ = args.Decode(0, &n)
			mu.Lock()
			calls = append(calls, fmt.Sprint(what, " ", n))
			mu.Unlock()
			if what == "any relayed" {
				close(last)
			}
		}
		s.OnAny(func(event string, args socketio.Args) { record("any "+event, args) })
		s.On("seq", func(args socketio.Args, ack socketio.AckFunc) {
			record("on seq", args)
			if ack != nil {
				t.Error("seq came with an ack function")
			}
		})
		s.connect(t)
		if got := s.ack(t, "count", 3); !gcJSONEqual(got, []any{3}) {
			t.Errorf("count: %v", got)
		}
		if err := s.Emit("relay", "r"); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if ev := s.awaitEvent(t, "seq", nil); !gcJSONEqual(ev.vals[0], i) {
				t.Errorf("seq %d: %v", i, ev.vals)
			}
		}
		select {
		case <-last:
		case <-time.After(gcWait):
			t.Fatal("OnAny did not see relayed")
		}
		mu.Lock()
		defer mu.Unlock()
		want := []string{"any seq 0", "on seq 0", "any seq 1", "on seq 1", "any seq 2", "on seq 2", "any relayed r"}
		if !slices.Equal(calls, want) {
			t.Errorf("handler calls %q, want %q", calls, want)
		}
	})
}

// TestGoClientSocketIOOrdered: 1,000 events each way arrive all and in order: the server's
// "seq" 0..999 (then its ack), and the client's "relay" 0..999, relayed back (in the
// default mode, both cross the upgrade).
func TestGoClientSocketIOOrdered(t *testing.T) {
	const count = 1000
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		s := gcSocket(m, "/", nil)
		s.connect(t)
		if err := sendAll(count, "relay", func(i int) error { return s.Emit("relay", i) }); err != nil {
			t.Fatal(err)
		}
		for i := range count {
			ev := s.awaitEvent(t, "relayed", nil)
			if !gcJSONEqual(ev.vals[0], i) {
				t.Fatalf("relayed %d: %v", i, ev.vals)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), gcWait)
		defer cancel()
		acked := make(chan error, 1)
		go func() {
			_, err := s.EmitWithAck(ctx, "count", count)
			acked <- err
		}()
		for i := range count {
			ev := s.awaitEvent(t, "seq", nil)
			if !gcJSONEqual(ev.vals[0], i) {
				t.Fatalf("seq %d: %v", i, ev.vals)
			}
		}
		if err := <-acked; err != nil {
			t.Fatalf("count ack: %v", err)
		}
	})
}

// TestGoClientSocketIOServerAck: the server asks the client for an ack ("question", sent
// when the client emits "ask"): the client's handler gets an AckFunc, may itself wait for
// an ack of the server meanwhile, and its answer reaches the server, which says so.
func TestGoClientSocketIOServerAck(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		s := gcSocket(m, "/", nil)
		s.On("question", func(args socketio.Args, ack socketio.AckFunc) {
			var q string
			if err := args.Decode(0, &q); err != nil || ack == nil {
				t.Errorf("question %v (%v), ack %v", args.Raw(0), err, ack != nil)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), gcWait)
			defer cancel()
			echo, err := s.EmitWithAck(ctx, "echo", q) // from a handler: must not deadlock
			var e string
			if err != nil || echo.Decode(0, &e) != nil {
				t.Errorf("echo from the handler: %v", err)
			}
			if err := ack("re: " + e); err != nil {
				t.Errorf("ack: %v", err)
			}
		})
		s.connect(t)
		if got := s.ack(t, "ask", "why?"); !gcJSONEqual(got, []any{"re: why?"}) {
			t.Errorf("ask: %v", got)
		}
		if ev := s.awaitEvent(t, "answer", nil); len(ev.vals) == 0 || ev.vals[0] != "re: why?" {
			t.Errorf("answer: %v", ev.vals)
		}
	})
}

// TestGoClientSocketIODisconnect: the server's disconnect gives "io server disconnect" and
// no reconnection; the client's Disconnect gives "io client disconnect", and the server
// sees "client namespace disconnect" (not "transport close", though the Manager closes
// its connection right after the DISCONNECT, its last socket gone: the Node server handles
// a DISCONNECT on the next tick, after a close packet of the same polling payload). Also
// polling only, where the DISCONNECT and the close go by POST.
func TestGoClientSocketIODisconnect(t *testing.T) {
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		t.Run("server", func(t *testing.T) {
			m := gcNewManager(t, srv, mode)
			s := gcSocket(m, "/", nil)
			s.connect(t)
			id := s.ID()
			if err := s.Emit("server-disconnect"); err != nil {
				t.Fatal(err)
			}
			if got := s.awaitLifecycle(t, "disconnect"); got != "disconnect: io server disconnect" {
				t.Errorf("lifecycle %q", got)
			}
			ev := gcAwaitEvent(t, srv, gcWait, "disconnect", func(e gcEvent) bool { return e.Op == "disconnect" })
			if ev.ID != id || ev.Reason != "server namespace disconnect" {
				t.Errorf("server: %+v", ev)
			}
			if s.Connected() {
				t.Error("still connected")
			}
			// Ten times the first reconnection delay: a reconnection would have begun.
			quiet := time.NewTimer(time.Second)
			defer quiet.Stop()
			for {
				select {
				case n := <-m.attempts:
					t.Fatalf("reconnection attempt %d after io server disconnect", n)
				case l := <-s.lifecycle:
					t.Fatalf("lifecycle %q after io server disconnect", l)
				case ev := <-srv.Events():
					if ev.Op == "connection" {
						t.Fatalf("the server saw a new connection: %+v", ev)
					}
					continue
				case <-quiet.C:
				}
				break
			}
		})
		t.Run("client", func(t *testing.T) {
			m := gcNewManager(t, srv, mode)
			s := gcSocket(m, "/", nil)
			s.connect(t)
			id := s.ID()
			gcAwaitEvent(t, srv, gcWait, "connection", func(e gcEvent) bool { return e.Op == "connection" && e.ID == id })
			s.Disconnect()
			if got := s.awaitLifecycle(t, "disconnect"); got != "disconnect: io client disconnect" {
				t.Errorf("lifecycle %q", got)
			}
			ev := gcAwaitEvent(t, srv, gcWait, "disconnect", func(e gcEvent) bool { return e.Op == "disconnect" && e.ID == id })
			if ev.Reason != "client namespace disconnect" {
				t.Errorf("the server's socket ended with %q, want client namespace disconnect", ev.Reason)
			}
			if s.Connected() {
				t.Error("still connected")
			}
		})
	}, gcSIOPolling)
}

// TestGoClientSocketIOReconnect: the server dies (Node: SIGKILL; Go: listener and every
// connection closed) and comes back on the same port later: meanwhile the client tries
// again with backoff, and then reconnects by itself (OnReconnect, OnConnect) as a new
// socket (the server forgot it); its handlers work again, the emits made while it was
// down arrive in order, the volatile one does not.
func TestGoClientSocketIOReconnect(t *testing.T) {
	const held = 20
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		s := gcSocket(m, "/", nil)
		s.connect(t)
		m.awaitWebSocket(t)
		first := s.ID()
		if got := s.ack(t, "echo", "before"); !gcJSONEqual(got, []any{"before"}) {
			t.Fatalf("echo: %v", got)
		}

		srv.Kill(t)
		got := s.awaitLifecycle(t, "disconnect")
		if got != "disconnect: transport close" && got != "disconnect: transport error" {
			t.Errorf("lifecycle %q, want a transport close or error", got)
		}
		if s.Connected() {
			t.Error("connected after the server died")
		}
		if err := sendAll(held, "relay", func(i int) error { return s.Emit("relay", i) }); err != nil {
			t.Fatalf("while down: %v", err)
		}
		if err := s.Volatile("relay", "volatile"); err != nil {
			t.Errorf("Volatile while down: %v", err)
		}
		// Two failed attempts: the client backs off and tries again by itself.
		for want := 1; want <= 2; want++ {
			select {
			case n := <-m.attempts:
				if n != want {
					t.Errorf("reconnection attempt %d, want %d", n, want)
				}
			case <-time.After(gcWait):
				t.Fatalf("no reconnection attempt %d within %v", want, gcWait)
			}
			select {
			case err := <-m.recErrors:
				t.Logf("attempt %d: %v", want, err)
			case <-time.After(gcWait):
				t.Fatalf("attempt %d did not fail within %v", want, gcWait)
			}
		}

		srv.Restart(t)
		select {
		case n := <-m.reconnect:
			if n < 3 {
				t.Errorf("OnReconnect(%d), want the attempt number (>= 3)", n)
			}
		case <-time.After(gcWait):
			t.Fatalf("no reconnection within %v of the restart", gcWait)
		}
		// Each failed attempt also gave OnConnectError, as socket.io-client's sockets get
		// connect_error for each error of their Manager.
		for l := ""; l != "connect"; {
			if l = s.awaitLifecycle(t, "connect"); l != "connect" && !strings.HasPrefix(l, "connect_error: ") {
				t.Fatalf("lifecycle %q", l)
			}
		}
		if !s.Connected() || s.ID() == "" || s.ID() == first || s.Recovered() {
			t.Errorf("after the restart: connected %v, id %q (was %q), recovered %v", s.Connected(), s.ID(), first, s.Recovered())
		}
		gcAwaitEvent(t, srv, gcWait, "connection", func(e gcEvent) bool { return e.Op == "connection" && e.ID == s.ID() })
		for i := range held {
			ev := s.awaitEvent(t, "relayed", nil)
			if !gcJSONEqual(ev.vals[0], i) {
				t.Fatalf("held emit %d came back as %v", i, ev.vals)
			}
		}
		if err := s.Emit("relay", "marker"); err != nil {
			t.Fatal(err)
		}
		if ev := s.awaitEvent(t, "relayed", nil); ev.vals[0] != "marker" {
			t.Errorf("after the held emits: %v (the volatile emit should have been dropped)", ev.vals)
		}
		if got := s.ack(t, "echo", "after"); !gcJSONEqual(got, []any{"after"}) {
			t.Errorf("echo after the restart: %v", got)
		}
	})
}

// TestGoClientSocketIORecovery: with connection-state recovery, a connection lost under
// the socket (the server closing the transport, or the client's own engine closed) is
// mended by the client: it reconnects with its pid and offset, gets back the same id
// (Recovered), and receives the events the server sent to it while it was away, in order
// and once.
func TestGoClientSocketIORecovery(t *testing.T) {
	const missed = 5
	gcEachSIO(t, gcConfig{}, func(t *testing.T, srv gcServer, mode gcSIOMode) {
		m := gcNewManager(t, srv, mode)
		s := gcSocket(m, "/", &socketio.ClientSocketOptions{Auth: map[string]any{"name": "r"}})
		s.connect(t)
		m.awaitWebSocket(t)
		id := s.ID()
		// Events with offsets: the client must have one to present.
		s.ack(t, "count", 3)
		for range 3 {
			s.awaitEvent(t, "seq", nil)
		}

		// The server closes the transport, then emits to the socket's room.
		if err := s.Emit("close-transport-and-emit", missed); err != nil {
			t.Fatal(err)
		}
		if got := s.awaitLifecycle(t, "disconnect"); got != "disconnect: transport close" {
			t.Errorf("lifecycle %q, want transport close", got)
		}
		ev := gcAwaitEvent(t, srv, gcWait, "disconnect", func(e gcEvent) bool { return e.Op == "disconnect" })
		if ev.ID != id || ev.Reason != "forced close" {
			t.Errorf("server: %+v", ev)
		}
		if got := s.awaitLifecycle(t, "connect"); got != "connect" {
			t.Fatalf("lifecycle %q", got)
		}
		if !s.Recovered() || s.ID() != id {
			t.Fatalf("reconnected as %q (recovered %v), was %q", s.ID(), s.Recovered(), id)
		}
		noSeq := func(ev gcSIOEvent) { t.Errorf("event %s %v replayed or unexpected", ev.name, ev.vals) }
		for i := range missed {
			ev := s.awaitEvent(t, "missed", noSeq)
			if !gcJSONEqual(ev.vals[0], i) {
				t.Fatalf("missed event %d: %v", i, ev.vals)
			}
		}
		w := s.whoami(t)
		if !w.Recovered || w.ID != id || w.Auth["name"] != "r" {
			t.Errorf("whoami after recovery: %+v", w)
		}
		if pid, _ := w.Auth["pid"].(string); pid == "" {
			t.Errorf("the reconnection's auth has no pid: %v", w.Auth)
		}
		gcAwaitEvent(t, srv, gcWait, "recovered connection", func(e gcEvent) bool { return e.Op == "connection" && e.ID == id && e.Recovered })

		// The client's own engine closed: the Manager reconnects, the socket recovers.
		s.ack(t, "count", 1)
		s.awaitEvent(t, "seq", nil)
		m.awaitWebSocket(t)
		if err := m.Engine().Close(); err != nil {
			t.Fatal(err)
		}
		got := s.awaitLifecycle(t, "disconnect")
		t.Logf("engine closed by the client: %s", got)
		if got := s.awaitLifecycle(t, "connect"); got != "connect" {
			t.Fatalf("lifecycle %q", got)
		}
		if !s.Recovered() || s.ID() != id {
			t.Fatalf("reconnected as %q (recovered %v), was %q", s.ID(), s.Recovered(), id)
		}
		if got := s.ack(t, "echo", "again"); !gcJSONEqual(got, []any{"again"}) {
			t.Errorf("echo: %v", got)
		}
	})
}
