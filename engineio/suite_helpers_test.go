package engineio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/ws"
)

// Every test of the package must leave no goroutine behind: servers, sessions, long polls and
// WebSocket connections included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The configuration the official Engine.IO protocol test suite expects of the server it tests.
const (
	suitePingInterval = 300 * time.Millisecond
	suitePingTimeout  = 200 * time.Millisecond
	suiteMaxPayload   = 1_000_000
)

// waitLimit bounds every wait of the suite: a reply, a message, a close. It is an upper bound
// for slow machines, never a measure of speed.
const waitLimit = 5 * time.Second

// suiteFixture is an engineio.Server in the suite's configuration behind a loopback
// httptest.Server, with the test-side bookkeeping the checks need: the sessions the server
// opened (and how they ended) and hooks that tell when a request has reached the server.
type suiteFixture struct {
	srv    *engineio.Server
	ts     *httptest.Server
	client *http.Client
	url    string // http://127.0.0.1:N/engine.io/
	wsURL  string // ws://127.0.0.1:N/engine.io/

	mu       sync.Mutex
	sessions map[string]*sessionRecord
	waiters  []*arrivalWaiter
}

// sessionRecord is what the fixture knows of one server session.
type sessionRecord struct {
	s      *engineio.Session
	closed chan struct{} // closed by OnClose, after reason and cause are set
	at     time.Time     // when OnClose ran
	reason engineio.CloseReason
	cause  error
}

type arrivalWaiter struct {
	method, sid string
	ch          chan struct{}
}

// newSuiteFixture starts the server the official suite runs against: ping interval 300 ms,
// ping timeout 200 ms, max payload 1e6 bytes, CORS for any origin, and every message echoed
// back as it came (text as text, binary as binary).
func newSuiteFixture(t *testing.T) *suiteFixture {
	t.Helper()
	fx := &suiteFixture{sessions: make(map[string]*sessionRecord)}
	fx.srv = &engineio.Server{
		PingInterval:      suitePingInterval,
		PingTimeout:       suitePingTimeout,
		MaxHTTPBufferSize: suiteMaxPayload,
		CORS:              &engineio.CORSOptions{Origins: []string{"*"}},
		OnConnection: func(s *engineio.Session) {
			rec := &sessionRecord{s: s, closed: make(chan struct{})}
			fx.mu.Lock()
			fx.sessions[s.ID()] = rec
			fx.mu.Unlock()
			s.OnMessage = func(d []byte, bin bool) {
				f := engineio.Text
				if bin {
					f = engineio.Binary
				}
				s.Send(append([]byte(nil), d...), f)
			}
			s.OnClose = func(reason engineio.CloseReason, cause error) {
				rec.at = time.Now()
				rec.reason, rec.cause = reason, cause
				close(rec.closed)
			}
		},
	}
	fx.ts = httptest.NewServer(http.HandlerFunc(fx.serveHTTP))
	fx.client = &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
		Timeout:   waitLimit,
	}
	fx.url = fx.ts.URL + engineio.DefaultPath
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

// serveHTTP wakes the waiters of the request, then hands it to the engine.io server.
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

// arrived returns a channel closed when the next request with this method and sid reaches the
// server's handler.
func (fx *suiteFixture) arrived(method, sid string) <-chan struct{} {
	a := &arrivalWaiter{method: method, sid: sid, ch: make(chan struct{})}
	fx.mu.Lock()
	fx.waiters = append(fx.waiters, a)
	fx.mu.Unlock()
	return a.ch
}

// awaitArrival waits (bounded) for ch from arrived, then leaves the handler a moment to take
// the request in (register a long poll, start reading a body): the server offers no way to
// observe that, and the official suite relies on the same kind of ordering.
func awaitArrival(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitLimit):
		t.Fatalf("%s did not reach the server within %v", what, waitLimit)
	}
	time.Sleep(50 * time.Millisecond)
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
	select {
	case <-rec.closed:
	case <-time.After(waitLimit):
		t.Fatalf("session %s still open after %v", sid, waitLimit)
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
	rec := fx.session(t, sid)
	deadline := time.Now().Add(waitLimit)
	for rec.s.Transport() != transport {
		if time.Now().After(deadline) {
			t.Fatalf("session %s is on %q, not %q, after %v", sid, rec.s.Transport(), transport, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reply is a complete HTTP answer.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) String() string { return fmt.Sprintf("%d %q", r.status, r.body) }

// do sends one request to the engine.io path with the given query and body (nil: none) and
// reads the whole answer. Errors are returned, not fatal, so it can run on any goroutine.
func (fx *suiteFixture) do(method, query string, body io.Reader, header http.Header) (reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, fx.url+"?"+query, body)
	if err != nil {
		return reply{}, err
	}
	for k, v := range header {
		req.Header[k] = v
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
	r, err := fx.do(method, query, body, nil)
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

// openPolling performs a polling handshake and returns the sid.
func (fx *suiteFixture) openPolling(t *testing.T) string {
	t.Helper()
	r := fx.mustDo(t, http.MethodGet, "EIO=4&transport=polling", nil)
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, "0") {
		t.Fatalf("polling handshake: got %v, want 200 and an open packet", r)
	}
	var h struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(r.body[1:]), &h); err != nil || h.SID == "" {
		t.Fatalf("polling handshake: open packet %q: sid %q, %v", r.body, h.SID, err)
	}
	return h.SID
}

// pollSkippingPings long-polls sid and returns the body without its ping packets. The suite's
// 300 ms ping interval can put a ping in any poll on a slow machine; checks that are not about
// the heartbeat drop it and answer it with a pong, so that the session stays alive. A body of
// pings only is answered and polled again, a bounded number of times.
func (fx *suiteFixture) pollSkippingPings(t *testing.T, sid string) reply {
	t.Helper()
	for i := 0; ; i++ {
		r := fx.poll(t, sid)
		if r.status != http.StatusOK {
			return r
		}
		rest, pings := dropPings(r.body)
		if pings > 0 {
			t.Logf("poll carried %d heartbeat ping(s) besides %q; answering with a pong", pings, rest)
			if _, err := fx.do(http.MethodPost, pollQuery(sid), strings.NewReader("3"), nil); err != nil {
				t.Logf("pong: %v", err)
			}
		}
		if rest != "" || i == 4 {
			r.body = rest
			return r
		}
	}
}

// dropPings removes the ping packets ("2") from a polling payload.
func dropPings(body string) (rest string, pings int) {
	var kept []string
	for _, p := range strings.Split(body, "\x1e") {
		if p == "2" {
			pings++
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "\x1e"), pings
}

// errorAnswer decodes the JSON body of an error answer.
type errorAnswer struct {
	Code    *int   `json:"code"`
	Message string `json:"message"`
}

// expectError checks that r is a 400 error answer with the given code and the Node message.
func expectError(t *testing.T, what string, r reply, code engineio.ErrorCode) {
	t.Helper()
	if r.status != code.HTTPStatus() {
		t.Errorf("%s: status %d (body %q), want %d", what, r.status, r.body, code.HTTPStatus())
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e errorAnswer
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Code == nil {
		t.Errorf("%s: body %q is not {\"code\":N,\"message\":...}: %v", what, r.body, err)
		return
	}
	if *e.Code != int(code) || e.Message != code.Message() {
		t.Errorf("%s: body %q, want code %d and message %q", what, r.body, int(code), code.Message())
	}
}

// dial opens a WebSocket to the engine.io path with query. The connection is closed at the end
// of the test.
func (fx *suiteFixture) dial(t *testing.T, query string) (*ws.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, res, err := ws.Dial(ctx, fx.wsURL+"?"+query, &ws.DialOptions{
		Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
	})
	if c != nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, res, err
}

// mustDial is dial, failing the test if the handshake fails.
func (fx *suiteFixture) mustDial(t *testing.T, query string) *ws.Conn {
	t.Helper()
	c, _, err := fx.dial(t, query)
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

// readSkipping reads the next message that is not a heartbeat ping (answered with a pong, so
// that the session stays alive on slow machines) nor one of the skip texts.
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
// before. It fails the test if the connection is still open after waitLimit.
func awaitWSClose(t *testing.T, c *ws.Conn) []string {
	t.Helper()
	var got []string
	for i := 0; i < 1000; i++ {
		_, s, err := read(c)
		if err == nil {
			got = append(got, s)
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("connection still open after %v (received %q)", waitLimit, got)
		}
		return got
	}
	t.Fatalf("connection still open after 1000 messages")
	return nil
}

// openWebSocket opens a WebSocket session and returns the connection and the sid of its
// open packet.
func (fx *suiteFixture) openWebSocket(t *testing.T) (*ws.Conn, string) {
	t.Helper()
	c := fx.mustDial(t, "EIO=4&transport=websocket")
	typ, s := mustRead(t, c)
	if typ != ws.MessageText || !strings.HasPrefix(s, "0") {
		t.Fatalf("first message: %v %q, want the open packet", typ, s)
	}
	var h struct {
		SID string `json:"sid"`
	}
	if err := json.Unmarshal([]byte(s[1:]), &h); err != nil || h.SID == "" {
		t.Fatalf("open packet %q: sid %q, %v", s, h.SID, err)
	}
	return c, h.SID
}

// expectRefusedWebSocket checks that a WebSocket to query does not open a session: the
// handshake is refused with a 4xx status or, as the Node server does for some refusals, the
// connection is closed right after the 101 with no message. It returns the refusal's status
// (0 when the connection was closed after a 101).
func (fx *suiteFixture) expectRefusedWebSocket(t *testing.T, query string) int {
	t.Helper()
	c, _, err := fx.dial(t, query)
	if err != nil {
		var he *ws.HandshakeError
		if !errors.As(err, &he) {
			t.Errorf("?%s: %v, want a refusal", query, err)
			return 0
		}
		if he.StatusCode < 400 || he.StatusCode > 499 {
			t.Errorf("?%s: refused with %d, want a 4xx", query, he.StatusCode)
		}
		return he.StatusCode
	}
	if got := awaitWSClose(t, c); len(got) > 0 {
		t.Errorf("?%s: the connection carried %q before closing, want nothing", query, got)
	}
	return 0
}

// decodeOpen decodes the JSON of an open packet, every field kept.
func decodeOpen(t *testing.T, data string) map[string]any {
	t.Helper()
	if !strings.HasPrefix(data, "0") {
		t.Fatalf("%q does not start with 0 (open)", data)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(data[1:]), &v); err != nil {
		t.Fatalf("open packet %q: %v", data, err)
	}
	return v
}

// checkOpen checks the open packet fields against the suite's configuration.
func checkOpen(t *testing.T, v map[string]any, upgrades []any) {
	t.Helper()
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	want := []string{"maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"}
	if len(v) != len(want) {
		t.Errorf("open packet keys %q, want exactly %q", keys, want)
	}
	for _, k := range want {
		if _, ok := v[k]; !ok {
			t.Errorf("open packet keys %q lack %q", keys, k)
		}
	}
	if _, ok := v["sid"].(string); !ok {
		t.Errorf("sid %#v is not a string", v["sid"])
	}
	if got, ok := v["upgrades"].([]any); !ok || fmt.Sprint(got) != fmt.Sprint(upgrades) {
		t.Errorf("upgrades %#v, want %v", v["upgrades"], upgrades)
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
