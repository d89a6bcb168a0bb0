package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// Every test of the package must leave no goroutine behind: the server, its sessions and
// sockets, long polls and WebSocket connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The configuration the official Socket.IO protocol test suite expects of the server it
// tests.
const (
	suitePingInterval   = 300 * time.Millisecond
	suitePingTimeout    = 200 * time.Millisecond
	suiteMaxPayload     = 1_000_000
	suiteConnectTimeout = time.Second
)

// waitLimit bounds every wait of the suite (an answer, a message, a close). It is an upper
// bound for slow machines, never a measure of speed.
const waitLimit = 5 * time.Second

// suiteFixture is a socketio.Server in the suite's configuration behind a loopback
// httptest.Server, with what the checks need to see of the server side: the Engine.IO
// sessions it opened, the sockets that connected (and how they ended), and hooks that tell
// when a request has reached the handler.
type suiteFixture struct {
	srv    *socketio.Server
	ts     *httptest.Server
	client *http.Client
	url    string // http://127.0.0.1:N/socket.io/
	wsURL  string // ws://127.0.0.1:N/socket.io/

	mu       sync.Mutex
	conns    map[string]*trackedConn      // the server's side of each TCP connection, by peer address
	sessions map[string]*engineio.Session // by Engine.IO sid
	sockets  map[string]*socketRecord     // by socket id
	waiters  []*arrivalWaiter
}

// socketRecord is what the fixture saw of one socket.
type socketRecord struct {
	nsp    string
	ended  chan struct{} // closed once OnDisconnect ran, after reason is set
	reason string
}

type arrivalWaiter struct {
	method, sid string
	ch          chan struct{}
}

// newSuiteFixture starts the server the official suite runs against: ping interval 300 ms,
// ping timeout 200 ms, max payload 1e6 bytes, CORS for any origin, connect timeout 1 s; on
// "/" and "/custom" every socket is sent "auth" with its handshake auth when it connects; on
// "/" the event "message" is sent back as "message-back" with the same arguments and
// "message-with-ack" is acknowledged with them.
func newSuiteFixture(t *testing.T) *suiteFixture {
	t.Helper()
	fx := &suiteFixture{
		conns:    make(map[string]*trackedConn),
		sessions: make(map[string]*engineio.Session),
		sockets:  make(map[string]*socketRecord),
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine := &engineio.Server{
		PingInterval:      suitePingInterval,
		PingTimeout:       suitePingTimeout,
		MaxHTTPBufferSize: suiteMaxPayload,
		CORS:              &engineio.CORSOptions{Origins: []string{"*"}},
		Logger:            quiet,
	}
	fx.srv = socketio.NewServer(&socketio.Options{
		Engine:         engine,
		ConnectTimeout: suiteConnectTimeout,
		Logger:         quiet,
	})
	// See every session the Socket.IO server is given, before its open packet is sent.
	next := engine.OnConnection
	engine.OnConnection = func(s *engineio.Session) {
		fx.mu.Lock()
		fx.sessions[s.ID()] = s
		fx.mu.Unlock()
		next(s)
	}
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
			auth := s.Handshake().Auth
			if auth == nil {
				auth = json.RawMessage("{}") // as socket.handshake.auth in Node
			}
			_ = s.Emit("auth", auth)
		})
	}
	fx.srv.OnConnection(func(s *socketio.Socket) {
		s.On("message", func(args socketio.Args, _ socketio.AckFunc) {
			_ = s.Emit("message-back", sameArgs(args)...)
		})
		s.On("message-with-ack", func(args socketio.Args, ack socketio.AckFunc) {
			if ack != nil {
				_ = ack(sameArgs(args)...)
			}
		})
	})

	fx.ts = httptest.NewUnstartedServer(http.HandlerFunc(fx.serveHTTP))
	fx.ts.Listener = &trackingListener{Listener: fx.ts.Listener, fx: fx}
	fx.ts.Start()
	fx.client = &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
		Timeout:   waitLimit,
	}
	fx.url = fx.ts.URL + socketio.DefaultPath
	fx.wsURL = "ws" + strings.TrimPrefix(fx.url, "http")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := fx.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		fx.client.CloseIdleConnections()
		fx.ts.Close()
	})
	return fx
}

// sameArgs returns the arguments of an event as values to send again unchanged: the JSON of
// each argument as it came, except that an argument holding binary values is decoded, so that
// they travel again as attachments.
func sameArgs(args socketio.Args) []any {
	out := make([]any, args.Len())
	for i := range out {
		if b, ok := args.Binary(i); ok {
			out[i] = b
			continue
		}
		var v any
		if err := args.Decode(i, &v); err == nil && holdsBytes(v) {
			out[i] = v
			continue
		}
		out[i] = json.RawMessage(args.Raw(i))
	}
	return out
}

// holdsBytes reports whether v, as Args.Decode gives it into an *any, holds a []byte.
func holdsBytes(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if holdsBytes(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if holdsBytes(e) {
				return true
			}
		}
	}
	return false
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
	case <-time.After(waitLimit):
		return false
	}
}

// serveHTTP wakes the waiters of the request, then hands it to the Socket.IO server.
func (fx *suiteFixture) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sid := r.URL.Query().Get("sid")
	fx.mu.Lock()
	kept := fx.waiters[:0]
	for _, a := range fx.waiters {
		if a.method == r.Method && a.sid == sid {
			close(a.ch)
		} else {
			kept = append(kept, a)
		}
	}
	fx.waiters = kept
	fx.mu.Unlock()
	fx.srv.ServeHTTP(w, r)
}

// arrived returns a channel closed when the next request with this method and sid reaches
// the handler.
func (fx *suiteFixture) arrived(method, sid string) <-chan struct{} {
	a := &arrivalWaiter{method: method, sid: sid, ch: make(chan struct{})}
	fx.mu.Lock()
	fx.waiters = append(fx.waiters, a)
	fx.mu.Unlock()
	return a.ch
}

// awaitArrival waits (bounded) for ch from arrived, then leaves the handler a moment to take
// the request in (register the long poll): the server offers no way to observe that, and the
// official suite relies on the same kind of ordering.
func awaitArrival(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("%s did not reach the server within %v", what, waitLimit)
	}
	time.Sleep(50 * time.Millisecond)
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
	select {
	case <-s.Done():
	case <-time.After(waitLimit):
		t.Fatalf("session %s still open after %v", sid, waitLimit)
	}
	reason, _ := s.Err()
	return reason
}

// awaitTransport waits (bounded) until session sid is on transport.
func (fx *suiteFixture) awaitTransport(t *testing.T, sid, transport string) {
	t.Helper()
	s := fx.session(t, sid)
	deadline := time.Now().Add(waitLimit)
	for s.Transport() != transport {
		if time.Now().After(deadline) {
			t.Fatalf("session %s is on %q, not %q, after %v", sid, s.Transport(), transport, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// socket returns the record of the socket id (made before its CONNECT answer was sent).
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
	select {
	case <-rec.ended:
	case <-time.After(waitLimit):
		t.Fatalf("socket %s of %s still connected after %v", id, rec.nsp, waitLimit)
	}
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

// reply is a complete HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) String() string { return fmt.Sprintf("%d %q", r.status, r.body) }

// do sends one request to the Socket.IO path with the query and body (nil: none) and reads
// the whole answer. Errors are returned, not fatal, so that it can run on any goroutine.
func (fx *suiteFixture) do(method, query string, body io.Reader) (reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, fx.url+"?"+query, body)
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	res, err := fx.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4*suiteMaxPayload))
	if err != nil {
		return reply{}, err
	}
	return reply{status: res.StatusCode, header: res.Header, body: string(b)}, nil
}

// mustDo is do, failing the test on a transport error.
func (fx *suiteFixture) mustDo(t *testing.T, method, query string, body io.Reader) reply {
	t.Helper()
	r, err := fx.do(method, query, body)
	if err != nil {
		t.Fatalf("%s ?%s: %v", method, query, err)
	}
	return r
}

// pollQuery is the query of a polling request of session sid.
func pollQuery(sid string) string {
	return "EIO=4&transport=polling&sid=" + url.QueryEscape(sid)
}

// poll sends one long-polling GET for sid.
func (fx *suiteFixture) poll(t *testing.T, sid string) reply {
	t.Helper()
	return fx.mustDo(t, http.MethodGet, pollQuery(sid), nil)
}

// push POSTs body for sid.
func (fx *suiteFixture) push(t *testing.T, sid, body string) reply {
	t.Helper()
	return fx.mustDo(t, http.MethodPost, pollQuery(sid), strings.NewReader(body))
}

// openPolling performs a polling handshake (as initLongPollingSession does) and returns the
// sid.
func (fx *suiteFixture) openPolling(t *testing.T) string {
	t.Helper()
	r := fx.mustDo(t, http.MethodGet, "EIO=4&transport=polling", nil)
	if r.status != http.StatusOK {
		t.Fatalf("polling handshake: got %v, want 200 and an open packet", r)
	}
	return sidOf(t, r.body)
}

// sidOf returns the sid of an open packet.
func sidOf(t *testing.T, open string) string {
	t.Helper()
	if !strings.HasPrefix(open, "0") {
		t.Fatalf("%q is not an open packet", open)
	}
	var h struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(open[1:]), &h); err != nil || h.SID == "" {
		t.Fatalf("open packet %q: sid %q, %v", open, h.SID, err)
	}
	return h.SID
}

// splitPayload splits a polling payload into its packets, dropping the heartbeat pings ("2")
// that the suite's 300 ms ping interval can slip into any poll on a slow machine.
func splitPayload(body string) (packets []string, pings int) {
	for _, p := range strings.Split(body, "\x1e") {
		if p == "2" {
			pings++
			continue
		}
		packets = append(packets, p)
	}
	return packets, pings
}

// pollPackets long-polls sid until it has received n packets besides heartbeat pings (each
// answered with a pong, so that the session stays alive), a bounded number of times.
func (fx *suiteFixture) pollPackets(t *testing.T, sid string, n int) []string {
	t.Helper()
	var got []string
	for i := 0; i < 10 && len(got) < n; i++ {
		r := fx.poll(t, sid)
		if r.status != http.StatusOK {
			t.Fatalf("poll: %v (after %q), want 200", r, got)
		}
		packets, pings := splitPayload(r.body)
		if pings > 0 {
			if _, err := fx.do(http.MethodPost, pollQuery(sid), strings.NewReader("3")); err != nil {
				t.Logf("pong: %v", err)
			}
		}
		got = append(got, packets...)
	}
	if len(got) < n {
		t.Fatalf("polled %q, want %d packets", got, n)
	}
	return got
}

// dial opens a WebSocket to the Socket.IO path with query; the connection is closed at the
// end of the test.
func (fx *suiteFixture) dial(t *testing.T, query string) (*ws.Conn, error) {
	t.Helper()
	c, _, err := fx.dialFrom(t, query)
	return c, err
}

// dialFrom is dial that also returns the address of the client's end of the connection.
func (fx *suiteFixture) dialFrom(t *testing.T, query string) (c *ws.Conn, local string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var d net.Dialer
	c, _, err = ws.Dial(ctx, fx.wsURL+"?"+query, &ws.DialOptions{
		Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				local = nc.LocalAddr().String()
			}
			return nc, err
		},
	})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, local, err
}

// mustDial is dial, failing the test if the handshake fails.
func (fx *suiteFixture) mustDial(t *testing.T, query string) *ws.Conn {
	t.Helper()
	c, err := fx.dial(t, query)
	if err != nil {
		t.Fatalf("WebSocket ?%s: %v", query, err)
	}
	return c
}

// read reads one message, bounded by waitLimit.
func read(c *ws.Conn) (ws.MessageType, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	typ, b, err := c.ReadMessage(ctx)
	return typ, string(b), err
}

// mustRead reads one message and fails the test on error.
func mustRead(t *testing.T, c *ws.Conn) (ws.MessageType, string) {
	t.Helper()
	typ, s, err := read(c)
	if err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	return typ, s
}

// readSkipping reads the next message that is neither a heartbeat ping (answered with a pong,
// so that the session stays alive on a slow machine) nor one of the skip texts.
func readSkipping(t *testing.T, c *ws.Conn, skip ...string) (ws.MessageType, string) {
	t.Helper()
next:
	for i := 0; i < 100; i++ {
		typ, s := mustRead(t, c)
		if typ == ws.MessageText && s == "2" {
			send(t, c, "3")
			continue
		}
		for _, k := range skip {
			if typ == ws.MessageText && s == k {
				continue next
			}
		}
		return typ, s
	}
	t.Fatal("100 messages without the one expected")
	return 0, ""
}

// readText is readSkipping for a message that must be text.
func readText(t *testing.T, c *ws.Conn, skip ...string) string {
	t.Helper()
	typ, s := readSkipping(t, c, skip...)
	if typ != ws.MessageText {
		t.Fatalf("got a %v message % x, want text", typ, s)
	}
	return s
}

// send writes a text message.
func send(t *testing.T, c *ws.Conn, s string) {
	t.Helper()
	sendMessage(t, c, ws.MessageText, []byte(s))
}

func sendMessage(t *testing.T, c *ws.Conn, typ ws.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.WriteMessage(ctx, typ, b); err != nil {
		t.Fatalf("writing %v %q: %v", typ, b, err)
	}
}

// awaitWSClose reads until the connection ends and returns the text of the messages received
// before; with pong set it answers every heartbeat ping meanwhile. It fails the test if the
// connection is still open after waitLimit.
func awaitWSClose(t *testing.T, c *ws.Conn, pong bool) []string {
	t.Helper()
	var got []string
	for i := 0; i < 1000; i++ {
		typ, s, err := read(c)
		if err == nil {
			got = append(got, s)
			if pong && typ == ws.MessageText && s == "2" {
				ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
				_ = c.WriteMessage(ctx, ws.MessageText, []byte("3")) // fails once the server closed
				cancel()
			}
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("connection still open after %v (received %q)", waitLimit, got)
		}
		return got
	}
	t.Fatal("connection still open after 1000 messages")
	return nil
}

// openWebSocket opens an Engine.IO session over WebSocket and returns the connection and the
// sid of its open packet.
func (fx *suiteFixture) openWebSocket(t *testing.T) (*ws.Conn, string) {
	t.Helper()
	c := fx.mustDial(t, "EIO=4&transport=websocket")
	typ, s := mustRead(t, c)
	if typ != ws.MessageText {
		t.Fatalf("first message: %v % x, want the open packet", typ, s)
	}
	return c, sidOf(t, s)
}

// connectSocketIO is the suite's initSocketIOConnection: a WebSocket session that joined the
// main namespace and received its "auth" event. It returns the connection and the id of the
// socket.
func (fx *suiteFixture) connectSocketIO(t *testing.T) (*ws.Conn, string) {
	t.Helper()
	c, _ := fx.openWebSocket(t)
	send(t, c, "40")
	id := connectAnswer(t, readText(t, c), "")
	if s := readText(t, c); s != `42["auth",{}]` {
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

// expectRefusedWebSocket checks that a WebSocket to query opens no session: the handshake is
// refused with a 4xx status or the connection is closed after the 101 with no message.
func (fx *suiteFixture) expectRefusedWebSocket(t *testing.T, query string) {
	t.Helper()
	c, err := fx.dial(t, query)
	if err != nil {
		var he *ws.HandshakeError
		if !errors.As(err, &he) {
			t.Errorf("?%s: %v, want a refusal", query, err)
		} else if he.StatusCode < 400 || he.StatusCode > 499 {
			t.Errorf("?%s: refused with %d, want a 4xx", query, he.StatusCode)
		}
		return
	}
	if got := awaitWSClose(t, c, false); len(got) > 0 {
		t.Errorf("?%s: the connection carried %q before closing, want nothing", query, got)
	}
}

// checkOpen checks an open packet against the suite's configuration: exactly the keys sid (a
// string), upgrades, pingInterval, pingTimeout and maxPayload.
func checkOpen(t *testing.T, open string, upgrades []string) {
	t.Helper()
	if !strings.HasPrefix(open, "0") {
		t.Fatalf("%q does not start with 0 (open)", open)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(open[1:]), &v); err != nil {
		t.Fatalf("open packet %q: %v", open, err)
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if want := "maxPayload pingInterval pingTimeout sid upgrades"; strings.Join(keys, " ") != want {
		t.Errorf("open packet keys %q, want exactly %q", keys, want)
	}
	if _, ok := v["sid"].(string); !ok {
		t.Errorf("sid %#v is not a string", v["sid"])
	}
	if got, _ := json.Marshal(v["upgrades"]); string(got) != mustJSON(upgrades) {
		t.Errorf("upgrades %s, want %s", got, mustJSON(upgrades))
	}
	for k, n := range map[string]float64{
		"pingInterval": float64(suitePingInterval / time.Millisecond),
		"pingTimeout":  float64(suitePingTimeout / time.Millisecond),
		"maxPayload":   suiteMaxPayload,
	} {
		if v[k] != n {
			t.Errorf("%s %#v, want %v", k, v[k], n)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// retryOnPing runs attempt up to three times, each with a fresh session, while it reports that
// a heartbeat ping answered the poll it raced against (the suite's 300 ms ping interval on a
// slow machine, not a server fault).
func retryOnPing(t *testing.T, attempt func(t *testing.T) (pinged bool)) {
	t.Helper()
	for i := 1; i <= 3; i++ {
		if !attempt(t) {
			return
		}
		t.Logf("attempt %d: a heartbeat ping answered the poll first; starting over", i)
	}
	t.Fatal("a heartbeat ping answered the poll in three attempts out of three")
}
