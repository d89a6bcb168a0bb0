package interop

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/socketio"
)

// The Socket.IO tests run the official client, socket.io-client 4.8.4, against
// socketio.Server mounted on an httptest.Server: in Node (sio-client.js, driven
// by commands on its stdin) in three transport modes, and its browser bundle in
// headless Chromium (sio-browser.js, through browser.js's "call" scenario). The modes with
// a WebSocket run in both of the server's serving modes (eiotest.Modes).

// sioTimeout bounds every wait of these tests (an upper bound, never an expectation).
const sioTimeout = 30 * time.Second

// sioMode is how a client connects, and how the server serves its WebSocket.
type sioMode struct {
	name    string
	opts    map[string]any // Manager options
	upgrade bool           // the client opens on polling and upgrades to websocket
	final   string         // the transport once settled
	serve   eiotest.Mode
}

// sioModes are the client's transport modes, those with a WebSocket in both serving
// modes; polling runs once (an event loop serves WebSocket connections only).
var sioModes = []sioMode{
	{"polling", map[string]any{"transports": []string{"polling"}}, false, "polling", eiotest.Goroutines},
	{"websocket/goroutine", map[string]any{"transports": []string{"websocket"}}, false, "websocket", eiotest.Goroutines},
	{"upgrade/goroutine", map[string]any{}, true, "websocket", eiotest.Goroutines}, // the default: polling, then websocket
	{"websocket/evented", map[string]any{"transports": []string{"websocket"}}, false, "websocket", eiotest.Evented},
	{"upgrade/evented", map[string]any{}, true, "websocket", eiotest.Evented},
}

// sioUpgradeMode is the upgrade mode served in serve.
func sioUpgradeMode(t testing.TB, serve eiotest.Mode) sioMode {
	t.Helper()
	for _, m := range sioModes {
		if m.upgrade && m.serve == serve {
			return m
		}
	}
	t.Fatalf("no upgrade mode served in %s", serve)
	panic("unreachable")
}

func requireSIOClient(t testing.TB) {
	t.Helper()
	requireNode(t)
	_, err := os.Stat("node_modules/socket.io-client/package.json")
	needPeer(t, "node_modules/socket.io-client", err == nil)
}

// ---- the server side ----

// sioServer is a socketio.Server on an httptest.Server. Its mux also serves the page of
// the Chromium tests ("/") and its scripts ("/assets/").
type sioServer struct {
	srv  *socketio.Server
	eng  *engineio.Server
	ts   *httptest.Server
	url  string // http://127.0.0.1:port
	logs lockedBuffer
	wg   sync.WaitGroup // goroutines a test started for the server

	mu       sync.Mutex
	sessions []*engineio.Session
	conns    map[string]*sioConn // by "namespace|auth name"
	bySocket map[*socketio.Socket]*sioConn
	changed  chan struct{} // closed (and replaced) at each new session or socket
}

// sioConn is a socket as the server saw it.
type sioConn struct {
	s     *socketio.Socket
	label string            // the name in the client's auth
	sess  *engineio.Session // the socket's Engine.IO session
	evs   chan sioSrvEvent  // every event, in order (OnAny)
	asks  chan string       // "event:true|false": whether the client asked for an ack (plain, noack*)
	lost  atomic.Int64      // events not recorded (evs full)
	done  chan struct{}     // closed after OnDisconnect
	why   string            // the disconnect reason, valid after done
}

// sioSrvEvent is one event a socket received.
type sioSrvEvent struct {
	name      string
	args      socketio.Args
	vals      []any
	err       error // of args.Values()
	transport string
}

// sioConfig customizes a test server; nil fields keep the defaults.
type sioConfig struct {
	engine func(e *engineio.Server) // engine options
	opts   func(o *socketio.Options)
	setup  func(ss *sioServer) // namespaces, middleware, handlers (before serving)
}

const sioPage = `<!doctype html><meta charset=utf-8><title>duplex socket.io interop</title>
<script src="/assets/socket.io.min.js"></script>
<script src="/assets/sio-browser.js"></script>
`

// startSIOServer starts the Socket.IO server with cfg, serving WebSocket connections in
// serve.
func startSIOServer(t *testing.T, serve eiotest.Mode, cfg sioConfig) *sioServer {
	t.Helper()
	requireSIOClient(t)
	ss := &sioServer{conns: map[string]*sioConn{}, bySocket: map[*socketio.Socket]*sioConn{}, changed: make(chan struct{})}
	logger := slog.New(slog.NewTextHandler(&ss.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ss.eng = &engineio.Server{Logger: logger}
	if cfg.engine != nil {
		cfg.engine(ss.eng)
	}
	// Closed after the server's shutdown (a cleanup registered later).
	opts := &socketio.Options{Engine: ss.eng, Logger: logger, EventLoop: serve.Loop(t)}
	if cfg.opts != nil {
		cfg.opts(opts)
	}
	ss.srv = socketio.NewServer(opts)
	// Record each Engine.IO session before the Socket.IO server takes it.
	next := ss.eng.OnConnection
	ss.eng.OnConnection = func(s *engineio.Session) {
		ss.mu.Lock()
		ss.sessions = append(ss.sessions, s)
		ss.notifyLocked()
		ss.mu.Unlock()
		next(s)
	}
	ss.track(ss.srv.Of("/"))
	if cfg.setup != nil {
		cfg.setup(ss)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", ss.srv)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(sioPage))
	})
	mux.HandleFunc("GET /assets/socket.io.min.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "node_modules/socket.io-client/dist/socket.io.min.js")
	})
	mux.HandleFunc("GET /assets/sio-browser.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "sio-browser.js")
	})
	ss.ts = httptest.NewServer(mux)
	ss.url = ss.ts.URL
	t.Cleanup(func() { stopTestServer(t, ss.srv.Shutdown, ss.ts, ss.wg.Wait, &ss.logs) })
	return ss
}

func (ss *sioServer) notifyLocked() {
	close(ss.changed)
	ss.changed = make(chan struct{})
}

// track records every socket of nsp (and, for a parent of dynamic namespaces, of its
// children) and gives it the default handlers: "echo" acknowledges with the event's own
// arguments; "plain" and "noack*" record whether an ack was asked for and never answer.
func (ss *sioServer) track(nsp *socketio.Namespace) {
	nsp.OnConnection(func(s *socketio.Socket) {
		var auth struct {
			Name string `json:"name"`
		}
		_ = json.Unmarshal(s.Handshake().Auth, &auth)
		c := &sioConn{s: s, label: auth.Name, evs: make(chan sioSrvEvent, 20000), asks: make(chan string, 100), done: make(chan struct{})}
		s.SetData(auth.Name)
		s.OnAny(func(event string, args socketio.Args) {
			vals, err := args.Values()
			ev := sioSrvEvent{name: event, args: args, vals: vals, err: err}
			if c.sess != nil {
				ev.transport = c.sess.Transport()
			}
			select {
			case c.evs <- ev:
			default:
				c.lost.Add(1)
			}
		})
		s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
			if ack == nil {
				return
			}
			vals, err := args.Values()
			if err != nil {
				vals = []any{"Values: " + err.Error()}
			}
			if err := ack(vals...); err != nil {
				fmt.Fprintf(&ss.logs, "test: echo ack: %v\n", err)
			}
		})
		for _, name := range []string{"plain", "noack"} {
			s.On(name, func(_ socketio.Args, ack socketio.AckFunc) {
				select {
				case c.asks <- name + ":" + strconv.FormatBool(ack != nil):
				default:
				}
			})
		}
		s.OnDisconnect(func(reason string) {
			c.why = reason
			close(c.done)
		})
		// Published last: a test that acts on the socket as soon as it sees it must find its
		// handlers in place (a disconnection then would miss OnDisconnect).
		address := s.Handshake().Address
		ss.mu.Lock()
		for _, sess := range ss.sessions {
			if sess.RemoteAddr() == address {
				c.sess = sess
			}
		}
		ss.conns[s.Namespace().Name()+"|"+auth.Name] = c
		ss.bySocket[s] = c
		ss.notifyLocked()
		ss.mu.Unlock()
	})
}

// waitUntil waits (bounded) for f to report true, re-checking at each new session or socket.
func (ss *sioServer) waitUntil(t testing.TB, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(sioTimeout)
	for range 100000 {
		ss.mu.Lock()
		ok := f()
		ch := ss.changed
		ss.mu.Unlock()
		if ok {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		select {
		case <-ch:
		case <-time.After(left):
		}
	}
	t.Fatalf("server: %s not seen within %v", what, sioTimeout)
}

// conn returns the socket of namespace nsp whose auth name is label, once connected.
func (ss *sioServer) conn(t testing.TB, nsp, label string) *sioConn {
	t.Helper()
	var c *sioConn
	ss.waitUntil(t, fmt.Sprintf("socket %q on %s", label, nsp), func() bool { c = ss.conns[nsp+"|"+label]; return c != nil })
	return c
}

// connOf returns the record of s (set by track's handler, which runs first).
func (ss *sioServer) connOf(s *socketio.Socket) *sioConn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.bySocket[s]
}

// sessionList returns the Engine.IO sessions opened so far.
func (ss *sioServer) sessionList() []*engineio.Session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return slices.Clone(ss.sessions)
}

// next returns the next event the socket received.
func (c *sioConn) next(t testing.TB) sioSrvEvent {
	t.Helper()
	select {
	case ev := <-c.evs:
		if ev.err != nil {
			t.Errorf("server: Values() of event %q: %v", ev.name, ev.err)
		}
		return ev
	case <-time.After(sioTimeout):
		t.Fatalf("server socket %q: no event within %v (lost %d)", c.label, sioTimeout, c.lost.Load())
	}
	panic("unreachable")
}

// expect returns the next event, failing unless it is named name.
func (c *sioConn) expect(t testing.TB, name string) sioSrvEvent {
	t.Helper()
	ev := c.next(t)
	if ev.name != name {
		t.Fatalf("server socket %q received event %q, want %q", c.label, ev.name, name)
	}
	return ev
}

// ask returns the next ack-request record ("plain:false", ...).
func (c *sioConn) ask(t testing.TB) string {
	t.Helper()
	select {
	case a := <-c.asks:
		return a
	case <-time.After(sioTimeout):
		t.Fatalf("server socket %q: no handled event within %v", c.label, sioTimeout)
	}
	panic("unreachable")
}

// closed returns the disconnect reason, failing if the socket is still connected after sioTimeout.
func (c *sioConn) closed(t testing.TB) string {
	t.Helper()
	select {
	case <-c.done:
		return c.why
	case <-time.After(sioTimeout):
		t.Fatalf("server socket %q still connected after %v", c.label, sioTimeout)
	}
	panic("unreachable")
}

func (c *sioConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// nums collects count numbered events ("num", see sio-client.js) and checks them.
func (c *sioConn) nums(t testing.TB, count int) []sioSrvEvent {
	t.Helper()
	evs := make([]sioSrvEvent, 0, count)
	for len(evs) < count {
		ev := c.next(t)
		if ev.name != "num" {
			t.Fatalf("server socket %q: event %q among the numbered events (after %d)", c.label, ev.name, len(evs))
		}
		evs = append(evs, ev)
	}
	checkNums(t, "server", evs, "c")
	return evs
}

// checkNums checks that evs are numbered events 0..len-1 from prefix p, in order.
func checkNums(t testing.TB, who string, evs []sioSrvEvent, p string) {
	t.Helper()
	for i, ev := range evs {
		want := numArgs(p, i)
		if !reflect.DeepEqual(sioNorm(ev.vals), sioNorm(want)) {
			t.Errorf("%s: numbered event %d has %v, want %v: lost, duplicated or reordered", who, i, sioNorm(ev.vals), sioNorm(want))
			return
		}
	}
}

// numArgs are the arguments of numbered event i from prefix p.
func numArgs(p string, i int) []any {
	if i%2 == 0 {
		return []any{i}
	}
	return []any{i, []byte(p + strconv.Itoa(i))}
}

// ackResult is the outcome of an EmitWithAck.
type ackResult struct {
	args socketio.Args
	err  error
}

// emitWithAck runs s.EmitWithAck in the background; its outcome comes on the channel.
func emitWithAck(ctx context.Context, s *socketio.Socket, event string, args ...any) <-chan ackResult {
	res := make(chan ackResult, 1)
	go func() {
		a, err := s.EmitWithAck(ctx, event, args...)
		res <- ackResult{a, err}
	}()
	return res
}

// roomHandler returns the handler of an event that applies change to the room its first
// argument names, then acknowledges with the socket's rooms (roomNames).
func roomHandler(s *socketio.Socket, change func(socketio.Room)) socketio.EventHandler {
	return func(args socketio.Args, ack socketio.AckFunc) {
		var room string
		_ = args.Decode(0, &room)
		change(socketio.Room(room))
		if ack != nil {
			_ = ack(roomNames(s.Rooms(), s.ID()))
		}
	}
}

// startWithSocketA starts a server with cfg and a client in mode whose socket "a" is
// connected to "/"; it returns the client and the server's side of "a".
func startWithSocketA(t *testing.T, mode sioMode, cfg sioConfig) (*sioClient, *sioConn) {
	t.Helper()
	ss := startSIOServer(t, mode.serve, cfg)
	c := startSIOClient(t, ss.url, mode, nil)
	c.connect(t, "a", "/", nil)
	return c, ss.conn(t, "/", "a")
}

// ---- the Node client ----

// sioEvent is one line printed by sio-client.js (fields by op).
type sioEvent struct {
	Op          string          `json:"op"`
	Sock        string          `json:"sock"`
	Mgr         string          `json:"mgr"`
	Req         string          `json:"req"`
	ID          string          `json:"id"`
	EngineID    string          `json:"engineId"`
	Transport   string          `json:"transport"`
	Event       string          `json:"event"`
	Args        json.RawMessage `json:"args"`
	Ack         bool            `json:"ack"`
	Err         string          `json:"err"`
	Message     string          `json:"message"`
	Data        json.RawMessage `json:"data"`
	Reason      string          `json:"reason"`
	Desc        string          `json:"desc"`
	streamStats                 // of "nums" and "stream"
}

func (ev sioEvent) String() string {
	b, _ := json.Marshal(ev)
	if len(b) > 300 {
		b = append(b[:300], "..."...)
	}
	return string(b)
}

// sioClient is a running sio-client.js.
type sioClient struct {
	p       *nodeProc
	backlog []sioEvent // read and not yet matched
	seen    int
	reqs    int
}

// startSIOClient starts sio-client.js against base; extra options are merged into the mode's.
func startSIOClient(t *testing.T, base string, mode sioMode, extra map[string]any) *sioClient {
	t.Helper()
	requireSIOClient(t)
	opts := map[string]any{}
	for k, v := range mode.opts {
		opts[k] = v
	}
	for k, v := range extra {
		opts[k] = v
	}
	js, err := json.Marshal(map[string]any{"opts": opts, "timeoutMs": int(2 * sioTimeout / time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	c := &sioClient{p: startNode(t, 2*sioTimeout+10*time.Second, "sio-client.js", base, string(js))}
	c.await(t, "ready", func(ev sioEvent) bool { return ev.Op == "ready" })
	return c
}

// cmd sends one command to the script.
func (c *sioClient) cmd(t testing.TB, cmd map[string]any) {
	t.Helper()
	line, err := json.Marshal(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.p.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("sio-client.js stdin: %v; stderr:\n%s", err, c.p.stderr.String())
	}
}

// read returns the script's next line; an "error" line or an early exit fails the test.
func (c *sioClient) read(t testing.TB, timeout time.Duration) (sioEvent, bool) {
	t.Helper()
	line, ok := c.p.nextLine(t, timeout, func() string { return fmt.Sprintf("unmatched events %v", c.backlog) })
	if !ok {
		return sioEvent{}, false
	}
	ev := decodeLine[sioEvent](t, "sio-client.js", line)
	c.seen++
	if ev.Op == "error" {
		t.Fatalf("sio-client.js failed: %s\nstderr:\n%s", ev.Message, c.p.stderr.String())
	}
	return ev, true
}

// await returns the first event (already read or to come) that match accepts; the
// others stay for later awaits. At most 200000 lines, within sioTimeout.
func (c *sioClient) await(t testing.TB, what string, match func(sioEvent) bool) sioEvent {
	t.Helper()
	for i, ev := range c.backlog {
		if match(ev) {
			c.backlog = slices.Delete(c.backlog, i, i+1)
			return ev
		}
	}
	deadline := time.Now().Add(sioTimeout)
	for range 200000 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		ev, ok := c.read(t, left)
		if !ok {
			break
		}
		if match(ev) {
			return ev
		}
		c.backlog = append(c.backlog, ev)
	}
	t.Fatalf("sio-client.js: no %s within %v; unmatched events:\n%v", what, sioTimeout, c.backlog)
	panic("unreachable")
}

// op awaits the next event with this op for this socket (sock "" matches any).
func (c *sioClient) op(t testing.TB, op, sock string) sioEvent {
	t.Helper()
	return c.await(t, fmt.Sprintf("%q event of socket %q", op, sock), func(ev sioEvent) bool {
		return ev.Op == op && (sock == "" || ev.Sock == sock)
	})
}

// mgrClose awaits the close event of manager mgr.
func (c *sioClient) mgrClose(t testing.TB, mgr string) sioEvent {
	t.Helper()
	return c.await(t, fmt.Sprintf("close of manager %q", mgr), func(ev sioEvent) bool { return ev.Op == "mgrClose" && ev.Mgr == mgr })
}

// connect opens socket sock on nsp and fails unless it connects.
func (c *sioClient) connect(t testing.TB, sock, nsp string, extra map[string]any) sioEvent {
	t.Helper()
	ev := c.tryConnect(t, sock, nsp, extra)
	if ev.Op != "connect" {
		t.Fatalf("socket %q on %s: %s: %s (data %s)", sock, nsp, ev.Op, ev.Message, ev.Data)
	}
	if ev.ID == "" || ev.EngineID == "" {
		t.Errorf("socket %q on %s: connect event without ids: %v", sock, nsp, ev)
	}
	return ev
}

// tryConnect opens socket sock on nsp and returns its connect or connect_error event.
func (c *sioClient) tryConnect(t testing.TB, sock, nsp string, extra map[string]any) sioEvent {
	t.Helper()
	cmd := map[string]any{"cmd": "connect", "sock": sock, "nsp": nsp}
	for k, v := range extra {
		cmd[k] = v
	}
	c.cmd(t, cmd)
	return c.await(t, fmt.Sprintf("connect outcome of socket %q", sock), func(ev sioEvent) bool {
		return (ev.Op == "connect" || ev.Op == "connect_error") && ev.Sock == sock
	})
}

// emit sends an event without an ack.
func (c *sioClient) emit(t testing.TB, sock, event string, args ...any) {
	t.Helper()
	c.cmd(t, map[string]any{"cmd": "emit", "sock": sock, "event": event, "args": sioClientArgs(args)})
}

// emitAck sends an event with an ack (socket.timeout(timeoutMs) when timeoutMs > 0) and
// returns the ack line.
func (c *sioClient) emitAck(t testing.TB, sock, event string, timeoutMs int, args ...any) sioEvent {
	t.Helper()
	c.reqs++
	req := strconv.Itoa(c.reqs)
	cmd := map[string]any{"cmd": "emit", "sock": sock, "event": event, "args": sioClientArgs(args), "ack": true, "req": req}
	if timeoutMs > 0 {
		cmd["timeoutMs"] = timeoutMs
	}
	c.cmd(t, cmd)
	return c.await(t, fmt.Sprintf("ack %s of socket %q", req, sock), func(ev sioEvent) bool {
		return ev.Op == "ack" && ev.Req == req && ev.Sock == sock
	})
}

// event awaits the next event of any name the socket received (or its disconnect).
func (c *sioClient) event(t testing.TB, sock string) sioEvent {
	t.Helper()
	return c.await(t, fmt.Sprintf("event of socket %q", sock), func(ev sioEvent) bool {
		return (ev.Op == "event" || ev.Op == "disconnect") && ev.Sock == sock
	})
}

// eventsUntil returns the events sock received up to and including the one named last.
func (c *sioClient) eventsUntil(t testing.TB, sock, last string) []sioEvent {
	t.Helper()
	var evs []sioEvent
	for range 1000 {
		ev := c.event(t, sock)
		if ev.Op == "disconnect" {
			t.Fatalf("socket %q disconnected (%s) after events %v", sock, ev.Reason, evNames(evs))
		}
		evs = append(evs, ev)
		if ev.Event == last {
			return evs
		}
	}
	t.Fatalf("socket %q: no %q in 1000 events", sock, last)
	panic("unreachable")
}

// namesUntil is eventsUntil's event names.
func (c *sioClient) namesUntil(t testing.TB, sock, last string) []string {
	t.Helper()
	return evNames(c.eventsUntil(t, sock, last))
}

func evNames(evs []sioEvent) []string {
	names := make([]string, len(evs))
	for i, ev := range evs {
		names[i] = ev.Event
	}
	return names
}

// kill ends the script at once (SIGKILL, by its pid): its connections close abruptly.
func (c *sioClient) kill(t testing.TB) {
	t.Helper()
	if err := c.p.cmd.Process.Kill(); err != nil {
		t.Errorf("kill sio-client.js: %v", err)
	}
}

// ---- values ----

// binForms are the forms in which sio-client.js sends binary values, in turn.
var binForms = []string{"buffer", "arraybuffer", "uint8array"}

// sioClientArgs converts Go arguments into sio-client.js's JSON: each []byte becomes
// {"$bin": HEX, "$as": FORM}, the forms taken in turn.
func sioClientArgs(args []any) []any {
	n := 0
	var conv func(v any) any
	conv = func(v any) any {
		switch x := v.(type) {
		case []byte:
			n++
			return map[string]any{"$bin": hex.EncodeToString(x), "$as": binForms[(n-1)%len(binForms)]}
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = conv(e)
			}
			return out
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = conv(e)
			}
			return out
		}
		return v
	}
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = conv(a)
	}
	return out
}

// sioNorm puts a value in one comparable form: JSON types (numbers as float64),
// binary as {"$bin": HEX} whether it is a []byte or the JSON of a peer ($as and $cls
// dropped).
func sioNorm(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]any{"$bin": hex.EncodeToString(x)}
	case json.RawMessage:
		var y any
		if err := json.Unmarshal(x, &y); err != nil {
			return "invalid JSON: " + string(x)
		}
		return sioNorm(y)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = sioNorm(e)
		}
		return out
	case map[string]any:
		if h, ok := x["$bin"].(string); ok {
			return map[string]any{"$bin": h}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = sioNorm(e)
		}
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unmarshalable %T", v)
	}
	var y any
	_ = json.Unmarshal(b, &y)
	return y
}

// binClasses lists the "$cls" of the binary values in a peer's JSON, depth first.
func binClasses(raw json.RawMessage) []string {
	var v any
	_ = json.Unmarshal(raw, &v)
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if cls, ok := x["$cls"].(string); ok {
				out = append(out, cls)
				return
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				walk(x[k])
			}
		}
	}
	walk(v)
	return out
}

func sameValues(got, want any) bool { return reflect.DeepEqual(sioNorm(got), sioNorm(want)) }

func shortJSON(v any) string {
	b, _ := json.Marshal(sioNorm(v))
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// ---- the tests ----

// One connection (one Engine.IO session) carries sockets on "/" and "/custom": both
// share the client's Engine.IO id, which the server's session has; each socket id
// differs from it and from the other; the server sees each auth payload, and each
// socket is in the room of its own id. In the upgrade mode both end on websocket.
func TestSocketIOConnect(t *testing.T) {
	requireSIOClient(t)
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ss := startSIOServer(t, mode.serve, sioConfig{setup: func(ss *sioServer) { ss.track(ss.srv.Of("/custom")) }})
			c := startSIOClient(t, ss.url, mode, nil)
			authMain := map[string]any{"name": "main", "token": "abc", "n": 1, "nested": map[string]any{"x": []any{true, nil}}}
			authCustom := map[string]any{"name": "custom", "token": "xyz"}
			evMain := c.connect(t, "main", "/", map[string]any{"auth": authMain})
			evCustom := c.connect(t, "custom", "/custom", map[string]any{"auth": authCustom})
			t.Logf("client: engine id %s; socket ids %s (/) and %s (/custom); opened on %s", evMain.EngineID, evMain.ID, evCustom.ID, evMain.Transport)

			if evMain.EngineID != evCustom.EngineID {
				t.Errorf("the two sockets have Engine.IO ids %q and %q: not multiplexed", evMain.EngineID, evCustom.EngineID)
			}
			if evMain.ID == evCustom.ID || evMain.ID == evMain.EngineID || evCustom.ID == evMain.EngineID {
				t.Errorf("socket ids %q, %q and Engine.IO id %q are not all distinct", evMain.ID, evCustom.ID, evMain.EngineID)
			}
			sessions := ss.sessionList()
			if len(sessions) != 1 || sessions[0].ID() != evMain.EngineID {
				ids := []string{}
				for _, s := range sessions {
					ids = append(ids, s.ID())
				}
				t.Errorf("server sessions %v, want exactly the client's %q", ids, evMain.EngineID)
			}
			if n := ss.eng.SessionCount(); n != 1 {
				t.Errorf("engine SessionCount() = %d, want 1", n)
			}
			for _, tc := range []struct {
				nsp, label string
				ev         sioEvent
				auth       map[string]any
			}{{"/", "main", evMain, authMain}, {"/custom", "custom", evCustom, authCustom}} {
				sc := ss.conn(t, tc.nsp, tc.label)
				if sc.s.ID() != tc.ev.ID {
					t.Errorf("%s: server socket id %q, client's %q", tc.nsp, sc.s.ID(), tc.ev.ID)
				}
				if sc.s.Namespace().Name() != tc.nsp {
					t.Errorf("%s: Namespace().Name() = %q", tc.nsp, sc.s.Namespace().Name())
				}
				var auth any
				if err := json.Unmarshal(sc.s.Handshake().Auth, &auth); err != nil || !sameValues(auth, tc.auth) {
					t.Errorf("%s: Handshake().Auth = %s (%v), want %s", tc.nsp, sc.s.Handshake().Auth, err, shortJSON(tc.auth))
				}
				if hs := sc.s.Handshake(); hs.Query.Get("EIO") != "4" || hs.Address == "" || hs.Time.IsZero() {
					t.Errorf("%s: Handshake() query %v, address %q, time %v", tc.nsp, hs.Query, hs.Address, hs.Time)
				}
				if rooms := sc.s.Rooms(); !slices.Contains(rooms, socketio.Room(sc.s.ID())) {
					t.Errorf("%s: Rooms() = %v, without the socket's own id", tc.nsp, rooms)
				}
				if sc.sess == nil || sc.sess.ID() != evMain.EngineID {
					t.Errorf("%s: the socket's session is not the client's", tc.nsp)
				}
				if !sc.s.Connected() {
					t.Errorf("%s: Connected() = false", tc.nsp)
				}
			}
			if mode.upgrade {
				c.cmd(t, map[string]any{"cmd": "awaitUpgrade"})
				c.op(t, "upgraded", "")
			}
			if len(sessions) == 1 {
				eiotest.AwaitTransport(t, sessions[0], mode.final, sioTimeout)
			}
			// Both sockets still work over the one connection.
			for _, sock := range []string{"main", "custom"} {
				if ack := c.emitAck(t, sock, "echo", 0, sock); !sameValues(ack.Args, []any{sock}) {
					t.Errorf("%s: echo ack %s", sock, ack.Args)
				}
			}
			if len(ss.sessionList()) != 1 {
				t.Errorf("%d sessions at the end, want 1", len(ss.sessionList()))
			}
		})
	}
}

type sioShape struct {
	name string
	args []any
}

var sioShapes = []sioShape{
	{"no args", []any{}},
	{"string", []any{"hello"}},
	{"strings", []any{"", "duplex é€𝄞", "quote \" backslash \\ newline \n tab \t nul \u0000 \u2028"}},
	{"numbers", []any{0, -1, 3.5, 1e21, 9007199254740991, 0.1, -2.5e-7}},
	{"booleans", []any{true, false}},
	{"null", []any{nil}},
	{"nulls among others", []any{nil, "x", nil}},
	{"nested", []any{map[string]any{"a": 1, "b": []any{1, "two", map[string]any{"c": nil}}, "d": map[string]any{"e": map[string]any{"f": []any{}}}}}},
	{"empty containers", []any{[]any{}, map[string]any{}, []any{[]any{[]any{}}}}},
	{"array of objects", []any{[]any{map[string]any{"id": 1}, map[string]any{"id": 2, "tags": []any{"a", "b"}}}}},
}

func sioBinaryShapes() []sioShape {
	ten := make([]any, 10)
	for i := range ten {
		ten[i] = patternBinary(i + 1)
	}
	return []sioShape{
		{"empty", []any{[]byte{}}},
		{"top level", []any{patternBinary(100)}},
		{"among other args", []any{"label", patternBinary(10), 7, nil}},
		{"nested in objects", []any{map[string]any{"file": map[string]any{"name": "a.png", "data": patternBinary(1000)}, "list": []any{patternBinary(3), map[string]any{"x": patternBinary(5)}}}}},
		{"nested in arrays", []any{[]any{patternBinary(1), []any{patternBinary(2), []any{patternBinary(3)}}}, patternBinary(4)}},
		{"ten attachments", ten},
		{"200 KB", []any{patternBinary(200_000)}},
	}
}

// roundTrips sends each shape both ways, each answered by an ack with the same
// arguments: client emit → server (checks what it got) → ack → client; server
// EmitWithAck → client (checks what it got) → ack → server. It returns the classes
// of the binary values the client received.
func roundTrips(t *testing.T, c *sioClient, sc *sioConn, sock string, shapes []sioShape) map[string]int {
	classes := map[string]int{}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			ack := c.emitAck(t, sock, "echo", 0, sh.args...)
			ev := sc.expect(t, "echo")
			if !sameValues(ev.vals, sh.args) {
				t.Errorf("client → server: the server got %s, want %s", shortJSON(ev.vals), shortJSON(sh.args))
			}
			if ev.args.Len() != len(sh.args) {
				t.Errorf("client → server: Args.Len() = %d, want %d", ev.args.Len(), len(sh.args))
			}
			if ack.Err != "" || !sameValues(ack.Args, sh.args) {
				t.Errorf("server's ack: the client got %s (err %q), want %s", shortJSON(ack.Args), ack.Err, shortJSON(sh.args))
			}
			for _, cls := range binClasses(ack.Args) {
				classes["ack:"+cls]++
			}

			ctx, cancel := context.WithTimeout(context.Background(), sioTimeout)
			defer cancel()
			res := emitWithAck(ctx, sc.s, "echo", sh.args...)
			cev := c.event(t, sock)
			if cev.Op != "event" || cev.Event != "echo" || !cev.Ack {
				t.Errorf("server → client: the client got %v, want an echo asking for an ack", cev)
			} else if !sameValues(cev.Args, sh.args) {
				t.Errorf("server → client: the client got %s, want %s", shortJSON(cev.Args), shortJSON(sh.args))
			}
			for _, cls := range binClasses(cev.Args) {
				classes["event:"+cls]++
			}
			r := <-res
			if r.err != nil {
				t.Fatalf("EmitWithAck: %v", r.err)
			}
			vals, err := r.args.Values()
			if err != nil || !sameValues(vals, sh.args) {
				t.Errorf("client's ack: the server got %s (err %v), want %s", shortJSON(vals), err, shortJSON(sh.args))
			}
		})
	}
	return classes
}

// Events go both ways with strings, numbers, nested objects, null and no
// arguments, each acknowledged by the other side with the same arguments; an
// event without an ack asks for none; a client's socket.timeout(ms).emit that
// the server never answers gets the timeout error, and a server EmitWithAck
// whose context ends gets ErrAckTimeout.
func TestSocketIOEvents(t *testing.T) {
	requireSIOClient(t)
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			c, sc := startWithSocketA(t, mode, sioConfig{})
			roundTrips(t, c, sc, "a", sioShapes)

			t.Run("no ack asked", func(t *testing.T) {
				c.emit(t, "a", "plain", "x", 1)
				if ev := sc.expect(t, "plain"); !sameValues(ev.vals, []any{"x", 1}) {
					t.Errorf("server got %s", shortJSON(ev.vals))
				}
				if a := sc.ask(t); a != "plain:false" {
					t.Errorf("handler saw %q, want no ack function", a)
				}
				if err := sc.s.Emit("srvPlain", "y", map[string]any{"k": 2}); err != nil {
					t.Fatal(err)
				}
				if ev := c.event(t, "a"); ev.Event != "srvPlain" || ev.Ack || !sameValues(ev.Args, []any{"y", map[string]any{"k": 2}}) {
					t.Errorf("client got %v, want srvPlain without ack", ev)
				}
			})
			t.Run("client ack timeout", func(t *testing.T) {
				ack := c.emitAck(t, "a", "noack", 300, "never answered")
				if ack.Err != "operation has timed out" {
					t.Errorf("client's callback got err %q args %s, want the timeout error", ack.Err, ack.Args)
				}
				sc.expect(t, "noack")
				if a := sc.ask(t); a != "noack:true" {
					t.Errorf("handler saw %q, want an ack function", a)
				}
			})
			t.Run("server ack timeout", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				defer cancel()
				res := emitWithAck(ctx, sc.s, "noack-s", 1)
				if ev := c.event(t, "a"); ev.Event != "noack-s" || !ev.Ack {
					t.Errorf("client got %v, want noack-s asking for an ack", ev)
				}
				r := <-res
				if !errors.Is(r.err, socketio.ErrAckTimeout) {
					t.Errorf("EmitWithAck = %v, want ErrAckTimeout", r.err)
				}
				// The socket still works after both timeouts.
				if ack := c.emitAck(t, "a", "echo", 0, "after"); !sameValues(ack.Args, []any{"after"}) {
					t.Errorf("echo after the timeouts: %s", ack.Args)
				}
				sc.expect(t, "echo")
			})
			if n := sc.lost.Load(); n != 0 {
				t.Errorf("%d server events not recorded", n)
			}
		})
	}
}

// Binary values (Buffer, ArrayBuffer and Uint8Array from the client; []byte from
// the server) go both ways at the top level, nested in objects and arrays,
// several per event (up to the 10 attachments the parser allows) and up to 200
// KB, in events and in acks. Args.Decode reads them into a struct.
func TestSocketIOBinary(t *testing.T) {
	requireSIOClient(t)
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			c, sc := startWithSocketA(t, mode, sioConfig{})
			classes := roundTrips(t, c, sc, "a", sioBinaryShapes())
			t.Logf("classes of the binary values the Node client received: %v", classes)
			for k := range classes {
				if !strings.HasSuffix(k, ":Buffer") {
					t.Errorf("the Node client received binary as %s, want Buffer", k)
				}
			}

			t.Run("Decode", func(t *testing.T) {
				c.emit(t, "a", "typed", map[string]any{"name": "n", "n": 5, "data": patternBinary(20), "tags": []any{"x", "y"}}, patternBinary(7))
				ev := sc.expect(t, "typed")
				var v struct {
					Name string   `json:"name"`
					N    int      `json:"n"`
					Data []byte   `json:"data"`
					Tags []string `json:"tags"`
				}
				if err := ev.args.Decode(0, &v); err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if v.Name != "n" || v.N != 5 || string(v.Data) != string(patternBinary(20)) || !slices.Equal(v.Tags, []string{"x", "y"}) {
					t.Errorf("Decode into a struct: %+v", v)
				}
				if b, ok := ev.args.Binary(1); !ok || string(b) != string(patternBinary(7)) {
					t.Errorf("Binary(1) = %x, %v", b, ok)
				}
				var raw any
				if err := json.Unmarshal(ev.args.Raw(1), &raw); err != nil {
					t.Errorf("Raw(1) = %s: %v", ev.args.Raw(1), err)
				}
			})
		})
	}
}

// Middleware refuses with a ConnectError (message and data reach the client's
// connect_error) or a plain error (message only); an unknown namespace is an
// "Invalid namespace"; OfRegexp creates children on demand whose parent's
// middleware and handlers apply, and a broadcast on the parent reaches all of
// them. Refusals leave the other sockets of the connection alone.
func TestSocketIOMiddlewareAndNamespaces(t *testing.T) {
	requireSIOClient(t)
	dynRe := regexp.MustCompile(`^/dyn-\d+$`)
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var dyn *socketio.Namespace
			var mwCalls atomic.Int64
			ss := startSIOServer(t, mode.serve, sioConfig{setup: func(ss *sioServer) {
				ss.srv.Use(func(s *socketio.Socket) error { mwCalls.Add(1); return nil })
				ss.srv.Of("/private").Use(func(s *socketio.Socket) error {
					return &socketio.ConnectError{Message: "not authorized", Data: map[string]any{"code": 42}}
				})
				guarded := ss.srv.Of("/guarded")
				guarded.Use(func(s *socketio.Socket) error {
					var auth struct {
						Token string `json:"token"`
					}
					_ = json.Unmarshal(s.Handshake().Auth, &auth)
					if auth.Token != "letmein" {
						return errors.New("bad token")
					}
					return nil
				})
				ss.track(guarded)
				dyn = ss.srv.OfRegexp(dynRe)
				dyn.Use(func(s *socketio.Socket) error {
					var auth struct {
						Token string `json:"token"`
					}
					_ = json.Unmarshal(s.Handshake().Auth, &auth)
					if auth.Token != "ok" {
						return &socketio.ConnectError{Message: "dyn refused", Data: map[string]any{"nsp": s.Namespace().Name()}}
					}
					return nil
				})
				ss.track(dyn)
				dyn.OnConnection(func(s *socketio.Socket) {
					_ = s.Emit("welcome", s.Namespace().Name())
				})
			}})
			c := startSIOClient(t, ss.url, mode, nil)
			c.connect(t, "main", "/", nil)
			if n := mwCalls.Load(); n != 1 {
				t.Errorf("main middleware ran %d times, want 1", n)
			}

			type refusal struct {
				sock, nsp string
				auth      map[string]any
				message   string
				data      any
			}
			for _, tc := range []refusal{
				{"priv", "/private", nil, "not authorized", map[string]any{"code": 42}},
				{"nope", "/nope", nil, "Invalid namespace", nil},
				{"g2", "/guarded", map[string]any{"name": "g2", "token": "wrong"}, "bad token", nil},
				{"d3", "/dyn-3", map[string]any{"name": "d3", "token": "bad"}, "dyn refused", map[string]any{"nsp": "/dyn-3"}},
				{"dx", "/dyn-x", map[string]any{"name": "dx", "token": "ok"}, "Invalid namespace", nil},
			} {
				extra := map[string]any{}
				if tc.auth != nil {
					extra["auth"] = tc.auth
				}
				ev := c.tryConnect(t, tc.sock, tc.nsp, extra)
				var data any
				if len(ev.Data) > 0 {
					data = sioNorm(ev.Data)
				}
				if ev.Op != "connect_error" || ev.Message != tc.message || !reflect.DeepEqual(data, sioNorm(tc.data)) {
					t.Errorf("%s: client got %s %q data %s, want connect_error %q data %s", tc.nsp, ev.Op, ev.Message, ev.Data, tc.message, shortJSON(tc.data))
				}
			}

			// (another manager: socket.io-client reuses a manager's socket of a namespace, auth included)
			c.connect(t, "g1", "/guarded", map[string]any{"mgr": "mg", "auth": map[string]any{"name": "g1", "token": "letmein"}})
			for _, d := range []struct{ sock, nsp string }{{"d1", "/dyn-1"}, {"d2", "/dyn-22"}} {
				c.connect(t, d.sock, d.nsp, map[string]any{"auth": map[string]any{"name": d.sock, "token": "ok"}})
				if ev := c.event(t, d.sock); ev.Event != "welcome" || !sameValues(ev.Args, []any{d.nsp}) {
					t.Errorf("%s: client got %v, want welcome %q (the parent's handler)", d.nsp, ev, d.nsp)
				}
				sc := ss.conn(t, d.nsp, d.sock)
				if got := sc.s.Namespace().Name(); got != d.nsp {
					t.Errorf("child namespace name %q, want %q", got, d.nsp)
				}
				// The parent's tracked handlers (echo) apply to the child.
				if ack := c.emitAck(t, d.sock, "echo", 0, "hi", d.nsp); !sameValues(ack.Args, []any{"hi", d.nsp}) {
					t.Errorf("%s: echo ack %s", d.nsp, ack.Args)
				}
				sc.expect(t, "echo")
			}
			if err := dyn.Emit("all", "to every child"); err != nil {
				t.Fatal(err)
			}
			if err := ss.srv.Of("/dyn-1").Emit("only1"); err != nil {
				t.Fatal(err)
			}
			if err := dyn.Emit("end"); err != nil {
				t.Fatal(err)
			}
			if got := c.namesUntil(t, "d1", "end"); !slices.Equal(got, []string{"all", "only1", "end"}) {
				t.Errorf("/dyn-1 got %v", got)
			}
			if got := c.namesUntil(t, "d2", "end"); !slices.Equal(got, []string{"all", "end"}) {
				t.Errorf("/dyn-22 got %v", got)
			}
			if ss.srv.Of("/dyn-3").SocketCount() != 0 {
				t.Errorf("/dyn-3 has sockets after its refusal")
			}
			// The refusals left the connection and its other sockets alone.
			main := ss.conn(t, "/", "main")
			if main.isClosed() || len(ss.sessionList()) != 2 {
				t.Errorf("main socket closed %v, %d sessions (want 2: m and mg)", main.isClosed(), len(ss.sessionList()))
			}
			if ack := c.emitAck(t, "main", "echo", 0, "still here"); !sameValues(ack.Args, []any{"still here"}) {
				t.Errorf("main echo after the refusals: %s", ack.Args)
			}
			if ack := c.emitAck(t, "g1", "echo", 0, 1); !sameValues(ack.Args, []any{1}) {
				t.Errorf("/guarded echo: %s", ack.Args)
			}
		})
	}
}

// Three clients (one connection each) in rooms: joins and leaves from the client
// (ack with the rooms) and the server; socket.To(room) leaves the sender out;
// several rooms reach each socket once; Except; namespace-wide and server-wide
// Emit; EmitWithAck to two rooms collects every client's answer; volatile events
// reach idle clients; FetchSockets, SocketsJoin, SocketsLeave and DisconnectSockets
// select the right sockets.
func TestSocketIORooms(t *testing.T) {
	requireSIOClient(t)
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ss := startSIOServer(t, mode.serve, sioConfig{setup: func(ss *sioServer) {
				ss.srv.OnConnection(func(s *socketio.Socket) {
					s.On("join", roomHandler(s, func(room socketio.Room) { s.Join(room) }))
					s.On("leave", roomHandler(s, s.Leave))
					s.On("relay", func(args socketio.Args, ack socketio.AckFunc) {
						var room string
						_ = args.Decode(0, &room)
						vals, _ := args.Values()
						_ = s.To(socketio.Room(room)).Emit("relayed", vals[1:]...)
						if ack != nil {
							_ = ack()
						}
					})
				})
			}})
			c := startSIOClient(t, ss.url, mode, nil)
			socks := []string{"a", "b", "c"}
			conns := map[string]*sioConn{}
			for _, s := range socks {
				c.connect(t, s, "/", map[string]any{"mgr": "m" + s})
				conns[s] = ss.conn(t, "/", s)
			}
			if n := len(ss.sessionList()); n != 3 {
				t.Errorf("%d sessions for 3 managers", n)
			}
			nsp := ss.srv.Of("/")
			join := func(sock, room string, want ...string) {
				t.Helper()
				ack := c.emitAck(t, sock, "join", 0, room)
				if !sameValues(ack.Args, []any{toAny(want)}) {
					t.Errorf("%s joined %s: rooms %s, want %v", sock, room, ack.Args, want)
				}
				conns[sock].expect(t, "join")
			}
			join("a", "r1", "r1")
			join("b", "r1", "r1")
			join("b", "r2", "r1", "r2")
			join("b", "r3", "r1", "r2", "r3")
			join("c", "r2", "r2")
			ack := c.emitAck(t, "b", "leave", 0, "r3")
			if !sameValues(ack.Args, []any{[]any{"r1", "r2"}}) {
				t.Errorf("b left r3: rooms %s", ack.Args)
			}
			conns["b"].expect(t, "leave")

			// a relays to r1 through socket.To: b only (a is in r1 too).
			if ack := c.emitAck(t, "a", "relay", 0, "r1", "hello", patternBinary(8)); ack.Err != "" {
				t.Errorf("relay ack: %v", ack)
			}
			conns["a"].expect(t, "relay")
			sa, sb := conns["a"].s, conns["b"].s
			must(t, sa.Broadcast().Emit("bc"))                         // b, c
			must(t, nsp.To("r1", "r2").Emit("multi"))                  // a, b, c once each
			must(t, nsp.To("r1").To("r2").Except("r1").Emit("except")) // c
			must(t, nsp.Except("r2").Emit("exceptR2"))                 // a
			must(t, ss.srv.To(socketio.Room(sb.ID())).Emit("direct"))  // b
			must(t, sb.To("r1", "r2").Except("r9").Emit("fromB"))      // a, c
			must(t, ss.srv.Emit("all", map[string]any{"n": 1}))        // a, b, c
			must(t, nsp.Compress(false).To("r2").Emit("uncompressed")) // b, c

			// EmitWithAck to r1 and r2: every client answers with its name.
			ctx, cancel := context.WithTimeout(context.Background(), sioTimeout)
			answers, err := nsp.To("r1", "r2").Timeout(sioTimeout).EmitWithAck(ctx, "whoami")
			cancel()
			var names []string
			for _, a := range answers {
				var n string
				_ = a.Decode(0, &n)
				names = append(names, n)
			}
			slices.Sort(names)
			if err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
				t.Errorf("EmitWithAck whoami: answers %v, err %v; want a, b, c", names, err)
			}
			// A room EmitWithAck that nobody answers ends with ErrAckTimeout.
			ctx, cancel = context.WithTimeout(context.Background(), sioTimeout)
			answers, err = nsp.To("r2").Timeout(300*time.Millisecond).EmitWithAck(ctx, "noack-room")
			cancel()
			if !errors.Is(err, socketio.ErrAckTimeout) || len(answers) != 0 {
				t.Errorf("EmitWithAck without answers: %d answers, err %v; want ErrAckTimeout", len(answers), err)
			}

			// Volatile: once every queue has drained, the clients are writable and get it.
			for _, s := range ss.sessionList() {
				select {
				case <-s.Drain():
				case <-time.After(sioTimeout):
					t.Errorf("session %s did not drain", s.ID())
				}
			}
			must(t, nsp.Volatile().Emit("vol"))
			must(t, ss.srv.Emit("end"))

			want := map[string][]string{
				"a": {"multi", "exceptR2", "fromB", "all", "whoami", "vol", "end"},
				"b": {"relayed", "bc", "multi", "direct", "all", "uncompressed", "whoami", "noack-room", "vol", "end"},
				"c": {"bc", "multi", "except", "fromB", "all", "uncompressed", "whoami", "noack-room", "vol", "end"},
			}
			for _, s := range socks {
				evs := c.eventsUntil(t, s, "end")
				if got := evNames(evs); !slices.Equal(got, want[s]) {
					t.Errorf("client %s got %v, want %v", s, got, want[s])
				}
				for _, ev := range evs {
					switch ev.Event {
					case "relayed": // the sender's arguments, binary included
						if !sameValues(ev.Args, []any{"hello", patternBinary(8)}) {
							t.Errorf("relayed args %s", ev.Args)
						}
					case "whoami", "noack-room":
						if !ev.Ack {
							t.Errorf("%s did not ask %s for an ack", ev.Event, s)
						}
					case "all":
						if !sameValues(ev.Args, []any{map[string]any{"n": 1}}) {
							t.Errorf("all args %s", ev.Args)
						}
					}
				}
			}

			t.Run("Socket.Volatile", func(t *testing.T) {
				// A burst: each event Volatile reports sent arrives, in order; the others are
				// dropped. The first goes to an idle connection, so it is sent.
				select {
				case <-conns["a"].sess.Drain():
				case <-time.After(sioTimeout):
					t.Fatalf("session of a did not drain")
				}
				var sent []string
				for i := range 300 {
					ok, err := sa.Volatile("v", i)
					if err != nil {
						t.Fatalf("Volatile %d: %v", i, err)
					}
					if ok {
						sent = append(sent, strconv.Itoa(i))
					}
				}
				must(t, sa.Emit("vend"))
				var got []string
				for range 1000 {
					ev := c.event(t, "a")
					if ev.Event == "vend" {
						break
					}
					var args []any
					_ = json.Unmarshal(ev.Args, &args)
					got = append(got, fmt.Sprint(args...))
				}
				t.Logf("Socket.Volatile burst: %d of 300 sent", len(sent))
				if len(sent) == 0 || !slices.Equal(got, sent) {
					t.Errorf("sent %d volatile events %v, the client got %v", len(sent), sent, got)
				}
			})

			t.Run("FetchSockets", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), sioTimeout)
				defer cancel()
				infos, err := nsp.In("r2").FetchSockets(ctx)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string]string{}
				for _, in := range infos {
					label, _ := in.Data.(string)
					got[label] = in.ID
					if !slices.Contains(in.Rooms, socketio.Room("r2")) || !slices.Contains(in.Rooms, socketio.Room(in.ID)) {
						t.Errorf("FetchSockets: %s rooms %v", label, in.Rooms)
					}
					var auth struct {
						Name string `json:"name"`
					}
					if err := json.Unmarshal(in.Handshake.Auth, &auth); err != nil || auth.Name != label {
						t.Errorf("FetchSockets: %s handshake auth %s", label, in.Handshake.Auth)
					}
				}
				if len(infos) != 2 || got["b"] != conns["b"].s.ID() || got["c"] != conns["c"].s.ID() {
					t.Errorf("FetchSockets(r2) = %v, want b and c", got)
				}
				all, err := nsp.FetchSockets(ctx)
				if err != nil || len(all) != 3 {
					t.Errorf("FetchSockets() = %d sockets, %v; want 3", len(all), err)
				}
			})

			t.Run("SocketsJoin and SocketsLeave", func(t *testing.T) {
				nsp.In("r1").SocketsJoin("r9") // a, b
				nsp.In("r9").Except(socketio.Room(sa.ID())).SocketsLeave("r9")
				for s, want := range map[string]bool{"a": true, "b": false, "c": false} {
					if got := slices.Contains(conns[s].s.Rooms(), "r9"); got != want {
						t.Errorf("%s in r9: %v, want %v (rooms %v)", s, got, want, conns[s].s.Rooms())
					}
				}
				nsp.In("r2").SocketsJoin("r10") // b, c
				must(t, nsp.To("r9", "r10").Emit("r9r10"))
				must(t, ss.srv.Emit("end2"))
				for _, s := range socks {
					if got := c.namesUntil(t, s, "end2"); !slices.Equal(got, []string{"r9r10", "end2"}) {
						t.Errorf("client %s got %v", s, got)
					}
				}
			})

			t.Run("DisconnectSockets", func(t *testing.T) {
				nsp.In("r9").DisconnectSockets(false) // a
				if ev := c.op(t, "disconnect", "a"); ev.Reason != "io server disconnect" {
					t.Errorf("client a disconnect reason %q, want io server disconnect", ev.Reason)
				}
				if why := conns["a"].closed(t); why != socketio.ReasonServerNamespaceDisconnect {
					t.Errorf("server a reason %q", why)
				}
				must(t, ss.srv.Emit("end3"))
				for _, s := range []string{"b", "c"} {
					if got := c.namesUntil(t, s, "end3"); !slices.Equal(got, []string{"end3"}) {
						t.Errorf("client %s got %v", s, got)
					}
				}
				nsp.DisconnectSockets(true) // b, c and their connections
				for _, s := range []string{"b", "c"} {
					ev := c.op(t, "disconnect", s)
					mc := c.mgrClose(t, "m"+s)
					t.Logf("DisconnectSockets(true): client %s disconnect %q, its manager closed %q", s, ev.Reason, mc.Reason)
					if ev.Reason != "io server disconnect" {
						t.Errorf("client %s disconnect reason %q, want io server disconnect", s, ev.Reason)
					}
					if why := conns[s].closed(t); why != socketio.ReasonServerNamespaceDisconnect {
						t.Errorf("server %s reason %q", s, why)
					}
				}
				if n := nsp.SocketCount(); n != 0 {
					t.Errorf("SocketCount() = %d after DisconnectSockets", n)
				}
			})
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// roomNames lists rooms without the socket's own, sorted.
func roomNames(rooms []socketio.Room, own string) []any {
	var names []string
	for _, r := range rooms {
		if string(r) != own {
			names = append(names, string(r))
		}
	}
	slices.Sort(names)
	return toAny(names)
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Disconnections and their reasons on both sides, on one connection carrying "/"
// and "/custom": the client's socket.disconnect(), the server's Disconnect(false)
// (the other namespace stays) and Disconnect(true) (the connection closes).
func TestSocketIODisconnect(t *testing.T) {
	requireSIOClient(t)
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ss := startSIOServer(t, mode.serve, sioConfig{setup: func(ss *sioServer) { ss.track(ss.srv.Of("/custom")) }})
			c := startSIOClient(t, ss.url, mode, nil)
			pair := func(mgr string) (*sioConn, *sioConn) {
				c.connect(t, mgr+"-main", "/", map[string]any{"mgr": mgr})
				c.connect(t, mgr+"-custom", "/custom", map[string]any{"mgr": mgr})
				return ss.conn(t, "/", mgr+"-main"), ss.conn(t, "/custom", mgr+"-custom")
			}
			stillWorks := func(sock string, sc *sioConn) {
				t.Helper()
				if sc.isClosed() {
					t.Errorf("%s closed on the server (%s)", sock, sc.why)
				}
				if ack := c.emitAck(t, sock, "echo", 0, sock); !sameValues(ack.Args, []any{sock}) {
					t.Errorf("%s echo: %v", sock, ack)
				}
			}
			t.Run("client disconnect", func(t *testing.T) {
				main, custom := pair("m1")
				c.cmd(t, map[string]any{"cmd": "disconnect", "sock": "m1-main"})
				if ev := c.op(t, "disconnect", "m1-main"); ev.Reason != "io client disconnect" {
					t.Errorf("client reason %q", ev.Reason)
				}
				if why := main.closed(t); why != socketio.ReasonClientNamespaceDisconnect {
					t.Errorf("server reason %q, want %q", why, socketio.ReasonClientNamespaceDisconnect)
				}
				stillWorks("m1-custom", custom)
			})
			t.Run("server Disconnect(false)", func(t *testing.T) {
				main, custom := pair("m2")
				main.s.Disconnect(false)
				if ev := c.op(t, "disconnect", "m2-main"); ev.Reason != "io server disconnect" {
					t.Errorf("client reason %q, want io server disconnect", ev.Reason)
				}
				if why := main.closed(t); why != socketio.ReasonServerNamespaceDisconnect {
					t.Errorf("server reason %q, want %q", why, socketio.ReasonServerNamespaceDisconnect)
				}
				if err := main.s.Emit("late"); !errors.Is(err, socketio.ErrDisconnected) {
					t.Errorf("Emit after Disconnect: %v, want ErrDisconnected", err)
				}
				stillWorks("m2-custom", custom)
			})
			t.Run("server Disconnect(true)", func(t *testing.T) {
				main, custom := pair("m3")
				sess := main.sess
				main.s.Disconnect(true)
				for _, sock := range []string{"m3-main", "m3-custom"} {
					ev := c.op(t, "disconnect", sock)
					t.Logf("Disconnect(true): client %s reason %q", sock, ev.Reason)
					if ev.Reason != "io server disconnect" {
						t.Errorf("client %s reason %q, want io server disconnect", sock, ev.Reason)
					}
				}
				mc := c.mgrClose(t, "m3")
				t.Logf("Disconnect(true): client manager closed: %q", mc.Reason)
				for _, sc := range []*sioConn{main, custom} {
					if why := sc.closed(t); why != socketio.ReasonServerNamespaceDisconnect {
						t.Errorf("server %s reason %q, want %q", sc.label, why, socketio.ReasonServerNamespaceDisconnect)
					}
				}
				if sess == nil {
					t.Fatal("no session")
				}
				select {
				case <-sess.Done():
					reason, _ := sess.Err()
					t.Logf("Disconnect(true): the Engine.IO session closed: %q", reason)
				case <-time.After(sioTimeout):
					t.Errorf("the Engine.IO session is still open after Disconnect(true)")
				}
			})
		})
	}
}

// Server.Shutdown disconnects every socket of every connection; the clients see
// their sockets disconnect and their connections close.
func TestSocketIOShutdown(t *testing.T) {
	requireSIOClient(t)
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ss := startSIOServer(t, mode.serve, sioConfig{setup: func(ss *sioServer) { ss.track(ss.srv.Of("/custom")) }})
			c := startSIOClient(t, ss.url, mode, nil)
			c.connect(t, "a", "/", nil)
			c.connect(t, "a2", "/custom", nil)
			c.connect(t, "b", "/", map[string]any{"mgr": "mb"})
			if mode.upgrade {
				// Both connections finish their upgrade first: engine.io-client stops polling
				// once its probe succeeded and does not poll again if the probe WebSocket then
				// closes, so a shutdown in that window leaves it waiting for its own heartbeat
				// timeout (with the Node server as well).
				for _, m := range []string{"m", "mb"} {
					c.cmd(t, map[string]any{"cmd": "awaitUpgrade", "mgr": m})
					c.await(t, "upgraded "+m, func(ev sioEvent) bool { return ev.Op == "upgraded" && ev.Mgr == m })
				}
			}
			conns := []*sioConn{ss.conn(t, "/", "a"), ss.conn(t, "/custom", "a2"), ss.conn(t, "/", "b")}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ss.srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			for _, sc := range conns {
				why := sc.closed(t)
				if why != string(engineio.ReasonServerShutdown) {
					t.Errorf("server %s reason %q, want %q", sc.label, why, engineio.ReasonServerShutdown)
				}
			}
			for _, sock := range []string{"a", "a2", "b"} {
				ev := c.op(t, "disconnect", sock)
				t.Logf("after Shutdown (%s): client %s disconnect reason %q %s", mode.name, sock, ev.Reason, ev.Desc)
				if ev.Reason == "" {
					t.Errorf("client %s: empty disconnect reason", sock)
				}
			}
			for _, m := range []string{"m", "mb"} {
				ev := c.mgrClose(t, m)
				t.Logf("after Shutdown (%s): client manager %s closed: %q", mode.name, m, ev.Reason)
			}
			if n := ss.eng.SessionCount(); n != 0 {
				t.Errorf("SessionCount() = %d after Shutdown", n)
			}
		})
	}
}

// A client that vanishes: killed (its connections close at once), or frozen
// (SIGSTOP: the connections stay open and nothing answers the pings). The server
// disconnects its sockets in both cases; the reasons are logged, and the frozen one
// must be "ping timeout".
func TestSocketIOClientGone(t *testing.T) {
	requireSIOClient(t)
	fast := func(e *engineio.Server) {
		e.PingInterval = 300 * time.Millisecond
		e.PingTimeout = 300 * time.Millisecond
	}
	for _, mode := range sioModes {
		for _, how := range []string{"killed", "frozen"} {
			t.Run(mode.name+"/"+how, func(t *testing.T) {
				t.Parallel()
				c, sc := startWithSocketA(t, mode, sioConfig{engine: fast})
				if mode.upgrade {
					c.cmd(t, map[string]any{"cmd": "awaitUpgrade"})
					c.op(t, "upgraded", "")
				}
				if ack := c.emitAck(t, "a", "echo", 0, 1); !sameValues(ack.Args, []any{1}) {
					t.Errorf("echo: %v", ack)
				}
				pid := c.p.cmd.Process.Pid
				if how == "killed" {
					c.kill(t)
				} else {
					if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
						t.Fatalf("SIGSTOP %d: %v", pid, err)
					}
					t.Cleanup(func() { _ = c.p.cmd.Process.Kill() }) // before stop's SIGTERM, which a stopped process would not handle
				}
				why := sc.closed(t)
				t.Logf("client %s (%s): server disconnect reason %q", how, mode.name, why)
				switch how {
				case "frozen":
					if why != string(engineio.ReasonPingTimeout) {
						t.Errorf("server reason %q, want %q", why, engineio.ReasonPingTimeout)
					}
				case "killed":
					// WebSocket: the read fails ("transport close"); polling: the pending poll's
					// connection closes ("transport error", as Node's "poll connection closed
					// prematurely"), or nothing is pending and the pings go unanswered.
					switch engineio.CloseReason(why) {
					case engineio.ReasonTransportClose, engineio.ReasonTransportError, engineio.ReasonPingTimeout:
					default:
						t.Errorf("server reason %q, want transport close, transport error or ping timeout", why)
					}
				}
			})
		}
	}
}

// 1,000 events each way, sent at once (every other one with a binary argument):
// all arrive in order. In the upgrade mode the upgrade happens while they flow.
func TestSocketIOThousandEvents(t *testing.T) {
	requireSIOClient(t)
	const count = 1000
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			sendErr := make(chan error, 1)
			c, sc := startWithSocketA(t, mode, sioConfig{setup: func(ss *sioServer) {
				ss.srv.OnConnection(func(sock *socketio.Socket) {
					ss.wg.Add(1)
					go func() {
						defer ss.wg.Done()
						sendErr <- sendAll(count, "Emit", func(i int) error { return sock.Emit("num", numArgs("s", i)...) })
					}()
				})
			}})
			c.cmd(t, map[string]any{"cmd": "seq", "sock": "a", "count": count})
			c.cmd(t, map[string]any{"cmd": "awaitNums", "sock": "a", "count": count})
			sc.nums(t, count)
			checkClientCount(t, c.op(t, "nums", "a").streamStats, count)
			if err := <-sendErr; err != nil {
				t.Error(err)
			}
			if mode.upgrade {
				c.cmd(t, map[string]any{"cmd": "awaitUpgrade"})
				c.op(t, "upgraded", "")
			}
			if sc.sess != nil {
				eiotest.AwaitTransport(t, sc.sess, mode.final, sioTimeout)
			}
			select {
			case ev := <-sc.evs:
				t.Errorf("server received an extra event %q", ev.name)
			default:
			}
		})
	}
}

// A stream of events each way spans the polling → websocket upgrade: both sides
// emit from the connection on until well after the switch; nothing is lost,
// duplicated or reordered, and each direction used both transports.
func TestSocketIOStreamAcrossUpgrade(t *testing.T) {
	requireSIOClient(t)
	eiotest.InEveryMode(t, func(t *testing.T, serve eiotest.Mode) {
		t.Parallel()
		testSIOStreamAcrossUpgrade(t, sioUpgradeMode(t, serve))
	})
}

func testSIOStreamAcrossUpgrade(t *testing.T, mode sioMode) {
	const after, max = 200, 20000 // events after the upgrade; cap per direction
	sent := make(chan streamSent, 1)
	ss := startSIOServer(t, mode.serve, sioConfig{setup: func(ss *sioServer) {
		ss.srv.OnConnection(func(s *socketio.Socket) {
			c := ss.connOf(s)
			ss.wg.Add(1)
			go func() {
				defer ss.wg.Done()
				deadline := time.Now().Add(sioTimeout)
				n, afterN := 0, 0
				var err error
				for n < max && afterN < after && time.Now().Before(deadline) {
					if err = s.Emit("num", numArgs("s", n)...); err != nil {
						break
					}
					n++
					if c.sess != nil && c.sess.Transport() == "websocket" {
						afterN++
					}
					time.Sleep(time.Millisecond)
				}
				if err == nil {
					err = s.Emit("numEnd", n)
				}
				sent <- streamSent{n, err}
			}()
		})
	}})
	c := startSIOClient(t, ss.url, mode, nil)
	// The client starts its upgrade probe 300 ms after the open (instead of at once), so
	// that the upgrade happens in the middle of the stream rather than with the CONNECT.
	c.connect(t, "a", "/", map[string]any{"probeDelayMs": 300})
	c.cmd(t, map[string]any{"cmd": "stream", "sock": "a", "after": after, "max": max, "intervalMs": 2, "perTick": 2})
	sc := ss.conn(t, "/", "a")

	// Server side: the client's numbered events up to its numEnd.
	var evs []sioSrvEvent
	clientTotal := -1
	for range max + 1 {
		ev := sc.next(t)
		if ev.name == "numEnd" {
			var n int
			_ = ev.args.Decode(0, &n)
			clientTotal = n
			break
		}
		evs = append(evs, ev)
	}
	for i := range evs {
		if evs[i].name != "num" {
			t.Fatalf("server received %q among the numbered events", evs[i].name)
		}
	}
	checkNums(t, "server", evs, "c")
	if clientTotal != len(evs) {
		t.Errorf("client says it sent %d, server received %d", clientTotal, len(evs))
	}
	var overPolling, overWS int
	for _, ev := range evs {
		switch ev.transport {
		case "polling":
			overPolling++
		case "websocket":
			overWS++
		}
	}
	t.Logf("server received %d client events: %d while on polling, %d on websocket", len(evs), overPolling, overWS)

	res := <-sent
	ev := c.op(t, "stream", "a")
	checkClientStream(t, ev.streamStats, res, len(evs))
	// The stream spans the upgrade when events went each way both before and after it.
	if ev.ReceivedBefore == 0 || ev.ReceivedBefore == ev.Received || overWS == 0 || overPolling == 0 {
		t.Errorf("the stream did not span the upgrade: client sent %d/%d before it (server saw %d on polling), received %d/%d before it",
			ev.SentBefore, ev.Sent, overPolling, ev.ReceivedBefore, ev.Received)
	}
	eiotest.AwaitTransport(t, sc.sess, "websocket", sioTimeout)
}

// ---- Chromium ----

// browserCall runs window[fn](args) in a fresh tab on page (browser.js's "call"
// scenario) and returns the result. Unlike browserProc.run it needs no *testing.T, so
// several pages can run at once from goroutines.
func browserCall(b *browserProc, timeout time.Duration, page, fn string, args any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan browserReply, 1)
	b.waiters[id] = ch
	line, err := json.Marshal(map[string]any{"id": id, "page": page, "scenario": "call", "args": map[string]any{"fn": fn, "args": args}})
	if err == nil {
		_, err = b.proc.stdin.Write(append(line, '\n'))
	}
	b.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("send to browser.js: %w", err)
	}
	select {
	case r := <-ch:
		if r.Error != "" {
			return nil, fmt.Errorf("chromium %s: %s", fn, r.Error)
		}
		return r.Result, nil
	case <-b.proc.exited:
		return nil, fmt.Errorf("browser.js exited (%v); stderr:\n%s", b.proc.err, b.proc.stderr.String())
	case <-time.After(timeout):
		return nil, fmt.Errorf("chromium %s: no result within %v", fn, timeout)
	}
}

// socket.io-client's browser bundle in Chromium, served by the Go test server:
// connect with auth, an event with an ack and binary (ArrayBuffer, Uint8Array)
// both ways, in events and acks, on every transport mode; and a room broadcast
// between two pages, the sender left out.
func TestSocketIOChromium(t *testing.T) {
	requireSIOClient(t)
	b := getBrowser(t)
	echoArgs := []any{"hi", 42, map[string]any{"a": []any{1, nil, map[string]any{"b": "c"}}}, nil,
		patternBinary(300), map[string]any{"nested": []any{patternBinary(5)}}}
	question := []any{"q", []byte{1, 2, 3}, map[string]any{"deep": []any{[]byte{4, 5}}}}
	pageAnswer := []any{map[string]any{"got": 3}, []byte{9, 8, 7}, map[string]any{"nested": []any{[]byte{1, 2}}}}
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			type qa struct {
				vals []any
				err  error
			}
			answered := make(chan qa, 1)
			ss := startSIOServer(t, mode.serve, sioConfig{setup: func(ss *sioServer) {
				ss.srv.OnConnection(func(s *socketio.Socket) {
					s.On("ready", func(socketio.Args, socketio.AckFunc) {
						ctx, cancel := context.WithTimeout(context.Background(), sioTimeout)
						defer cancel()
						a, err := s.EmitWithAck(ctx, "question", question...)
						var vals []any
						if err == nil {
							vals, err = a.Values()
						}
						answered <- qa{vals, err}
						_ = s.Emit("bye", append([]any{"thanks"}, vals...)...)
					})
				})
			}})
			args := sioClientArgs(echoArgs) // the page sends "buffer" as an ArrayBuffer
			raw, err := browserCall(b, 60*time.Second, ss.url+"/", "sioBasic", map[string]any{
				"opts": mode.opts, "auth": map[string]any{"name": "page", "tab": 1}, "echoArgs": args, "upgrade": mode.upgrade,
			})
			if err != nil {
				t.Fatal(err)
			}
			var res struct {
				ID, EngineID, Transport, FinalTransport string
				Echo, Question, Bye                     json.RawMessage
			}
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatalf("result %s: %v", raw, err)
			}
			t.Logf("page: socket %s, engine %s, opened on %s, ended on %s; binary classes: echo %v, question %v",
				res.ID, res.EngineID, res.Transport, res.FinalTransport, binClasses(res.Echo), binClasses(res.Question))
			sc := ss.conn(t, "/", "page")
			if sc.s.ID() != res.ID || res.ID == res.EngineID || sc.sess == nil || sc.sess.ID() != res.EngineID {
				t.Errorf("ids: page socket %q engine %q; server socket %q", res.ID, res.EngineID, sc.s.ID())
			}
			if res.FinalTransport != mode.final {
				t.Errorf("page ended on %q, want %q", res.FinalTransport, mode.final)
			}
			if ev := sc.expect(t, "echo"); !sameValues(ev.vals, echoArgs) {
				t.Errorf("page → server: %s, want %s", shortJSON(ev.vals), shortJSON(echoArgs))
			}
			if !sameValues(res.Echo, echoArgs) {
				t.Errorf("server's ack → page: %s, want %s", shortJSON(res.Echo), shortJSON(echoArgs))
			}
			if !sameValues(res.Question, question) {
				t.Errorf("server → page: %s, want %s", shortJSON(res.Question), shortJSON(question))
			}
			for _, cls := range append(binClasses(res.Echo), binClasses(res.Question)...) {
				if cls != "ArrayBuffer" {
					t.Errorf("the page received binary as %s, want ArrayBuffer", cls)
				}
			}
			select {
			case a := <-answered:
				if a.err != nil || !sameValues(a.vals, pageAnswer) {
					t.Errorf("page's ack → server: %s (err %v), want %s", shortJSON(a.vals), a.err, shortJSON(pageAnswer))
				}
			case <-time.After(sioTimeout):
				t.Errorf("no answer to the question")
			}
			if !sameValues(res.Bye, append([]any{"thanks"}, pageAnswer...)) {
				t.Errorf("bye: %s", shortJSON(res.Bye))
			}
			if why := sc.closed(t); why != socketio.ReasonClientNamespaceDisconnect {
				t.Errorf("server reason after the page's disconnect: %q", why)
			}
		})
	}

	for _, serve := range eiotest.Modes {
		t.Run("rooms/"+string(serve), func(t *testing.T) {
			t.Parallel()
			testSIOChromiumRooms(t, b, serve)
		})
	}
}

// testSIOChromiumRooms: two pages join a room of the server (serving in serve); a
// broadcast reaches both, a relay from one only the other.
func testSIOChromiumRooms(t *testing.T, b *browserProc, serve eiotest.Mode) {
	const room = "lobby"
	payload := patternBinary(64)
	var joined atomic.Int32
	ss := startSIOServer(t, serve, sioConfig{setup: func(ss *sioServer) {
		nsp := ss.srv.Of("/")
		ss.srv.OnConnection(func(s *socketio.Socket) {
			s.On("join", func(args socketio.Args, ack socketio.AckFunc) {
				var r string
				_ = args.Decode(0, &r)
				s.Join(socketio.Room(r))
				if ack != nil {
					_ = ack(roomNames(s.Rooms(), s.ID()))
				}
				if joined.Add(1) == 2 { // both pages are in the room
					_ = nsp.To(socketio.Room(r)).Emit("news", "both here", []byte{0xca, 0xfe})
				}
			})
			s.On("relay", func(args socketio.Args, ack socketio.AckFunc) {
				var r string
				_ = args.Decode(0, &r)
				vals, _ := args.Values()
				label, _ := s.Data().(string)
				_ = s.To(socketio.Room(r)).Emit("relayed", append([]any{label}, vals[1:]...)...)
				if ack != nil {
					_ = ack()
				}
				_ = nsp.To(socketio.Room(r)).Emit("done")
			})
		})
	}})
	type pageResult struct {
		ID        string
		Joined    json.RawMessage
		Transport string
		Events    []struct {
			Event string
			Args  json.RawMessage
		}
	}
	results := make([]pageResult, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, name := range []string{"sender", "listener"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, err := browserCall(b, 60*time.Second, ss.url+"/", "sioRoom", map[string]any{
				"opts": map[string]any{}, "name": name, "room": room, "sender": i == 0,
				"payload": map[string]any{"$bin": hex.EncodeToString(payload), "$as": "arraybuffer"},
			})
			if err == nil {
				err = json.Unmarshal(raw, &results[i])
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	names := func(r pageResult) []string {
		var out []string
		for _, ev := range r.Events {
			out = append(out, ev.Event)
		}
		return out
	}
	if got := names(results[0]); !slices.Equal(got, []string{"news", "done"}) {
		t.Errorf("sender got %v, want news, done (not its own relay)", got)
	}
	if got := names(results[1]); !slices.Equal(got, []string{"news", "relayed", "done"}) {
		t.Errorf("listener got %v, want news, relayed, done", got)
	} else {
		if !sameValues(results[1].Events[0].Args, []any{"both here", []byte{0xca, 0xfe}}) {
			t.Errorf("news args %s", results[1].Events[0].Args)
		}
		if !sameValues(results[1].Events[1].Args, []any{"sender", payload}) {
			t.Errorf("relayed args %s", shortJSON(results[1].Events[1].Args))
		}
	}
	for i, r := range results {
		if !sameValues(r.Joined, []any{[]any{room}}) {
			t.Errorf("page %d join ack %s", i, r.Joined)
		}
	}
}
