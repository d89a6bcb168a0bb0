// Package eiotest is a raw Engine.IO v4 client for tests: HTTP long-polling requests and
// WebSocket messages written and read by hand, so that a test sees exactly what a server
// answers (status, headers, payload) and can send what no real client would.
//
// It serves the ports of the official Engine.IO and Socket.IO protocol suites (engineio and
// socketio) and the tests of the duplex command. Every wait is bounded by WaitLimit; the
// helpers that take a testing.TB fail the test on a transport error, the others return it,
// so that they can run on any goroutine.
package eiotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/ws"
)

// WaitLimit bounds every wait of the package: an answer, a message, a close. It is an upper
// bound for slow machines, never a measure of speed.
const WaitLimit = 5 * time.Second

// readLimit is the most of an HTTP answer Do reads: four times the 1e6-byte payload limit of
// the protocol suites.
const readLimit = 4_000_000

// Client talks Engine.IO to one endpoint. Its methods may be called from many goroutines.
type Client struct {
	URL   string // http://HOST:PORT/PATH/, the endpoint's polling URL
	WSURL string // ws://HOST:PORT/PATH/, the same for WebSocket
	HTTP  *http.Client
}

// NewClient returns a client of the endpoint at url (http://HOST:PORT/PATH/) that uses no
// proxy; its idle connections are closed at the end of the test.
func NewClient(t testing.TB, url string) *Client {
	c := &Client{
		URL:   url,
		WSURL: "ws" + strings.TrimPrefix(url, "http"),
		HTTP: &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16},
			Timeout:   WaitLimit,
		},
	}
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// Serve serves h on a loopback httptest.Server, whose listener wrap may replace (nil: keep
// it), and returns a client of the endpoint at path ("/engine.io/"). When the test ends it
// shuts the server down with shutdown (bounded by WaitLimit; an error fails the test), then
// closes the client's idle connections and the httptest.Server.
func Serve(t testing.TB, h http.Handler, path string, shutdown func(context.Context) error, wrap func(net.Listener) net.Listener) *Client {
	t.Helper()
	ts := httptest.NewUnstartedServer(h)
	if wrap != nil {
		ts.Listener = wrap(ts.Listener)
	}
	ts.Start()
	c := NewClient(t, ts.URL+path)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		c.HTTP.CloseIdleConnections()
		ts.Close()
	})
	return c
}

// Reply is a complete HTTP answer.
type Reply struct {
	Status int
	Header http.Header
	Body   string
}

func (r Reply) String() string { return fmt.Sprintf("%d %q", r.Status, r.Body) }

// Do sends one request to the endpoint with the query, body (nil: none; else sent as
// text/plain) and extra header (nil: none) and reads the whole answer.
func (c *Client) Do(method, query string, body io.Reader, header http.Header) (Reply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.URL+"?"+query, body)
	if err != nil {
		return Reply{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, readLimit))
	if err != nil {
		return Reply{}, err
	}
	return Reply{Status: res.StatusCode, Header: res.Header, Body: string(b)}, nil
}

// MustDo is Do with no extra header, failing the test on a transport error.
func (c *Client) MustDo(t testing.TB, method, query string, body io.Reader) Reply {
	t.Helper()
	r, err := c.Do(method, query, body, nil)
	if err != nil {
		t.Fatalf("%s ?%s: %v", method, query, err)
	}
	return r
}

// ExpectBadRequest checks that a request with this method and no body is answered 400 for
// each of the queries.
func (c *Client) ExpectBadRequest(t testing.TB, method string, queries ...string) {
	t.Helper()
	for _, q := range queries {
		if r := c.MustDo(t, method, q, nil); r.Status != http.StatusBadRequest {
			t.Errorf("%s ?%s: %v, want 400", method, q, r)
		}
	}
}

// PollQuery is the query of a polling request of session sid.
func PollQuery(sid string) string {
	return "EIO=4&transport=polling&sid=" + url.QueryEscape(sid)
}

// Poll sends one long-polling GET for sid.
func (c *Client) Poll(t testing.TB, sid string) Reply {
	t.Helper()
	return c.MustDo(t, http.MethodGet, PollQuery(sid), nil)
}

// Push POSTs body for sid.
func (c *Client) Push(t testing.TB, sid, body string) Reply {
	t.Helper()
	return c.MustDo(t, http.MethodPost, PollQuery(sid), strings.NewReader(body))
}

// OpenPolling performs a polling handshake and returns the sid of its open packet.
func (c *Client) OpenPolling(t testing.TB) string {
	t.Helper()
	r := c.MustDo(t, http.MethodGet, "EIO=4&transport=polling", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("polling handshake: got %v, want 200 and an open packet", r)
	}
	return SIDOf(t, r.Body)
}

// SplitPayload splits a polling payload into its packets, without the heartbeat pings ("2")
// that a short ping interval can slip into any poll on a slow machine, and counts those.
func SplitPayload(body string) (packets []string, pings int) {
	for _, p := range strings.Split(body, "\x1e") {
		if p == "2" {
			pings++
			continue
		}
		packets = append(packets, p)
	}
	return packets, pings
}

// DropPings removes the ping packets ("2") from a polling payload.
func DropPings(body string) (rest string, pings int) {
	packets, pings := SplitPayload(body)
	return strings.Join(packets, "\x1e"), pings
}

// PollSkippingPings long-polls sid and returns the answer without its ping packets, which it
// answers with a pong so that the session stays alive. A body of pings only is answered and
// polled again, at most five polls in all.
func (c *Client) PollSkippingPings(t testing.TB, sid string) Reply {
	t.Helper()
	for i := 0; ; i++ {
		r := c.Poll(t, sid)
		if r.Status != http.StatusOK {
			return r
		}
		rest, pings := DropPings(r.Body)
		if pings > 0 {
			t.Logf("poll carried %d heartbeat ping(s) besides %q; answering with a pong", pings, rest)
			c.pong(t, sid)
		}
		if rest != "" || i == 4 {
			r.Body = rest
			return r
		}
	}
}

// PollPackets long-polls sid until it has received n packets besides heartbeat pings (each
// poll that carried one is answered with a pong), at most ten polls; each poll must be
// answered 200.
func (c *Client) PollPackets(t testing.TB, sid string, n int) []string {
	t.Helper()
	var got []string
	for i := 0; i < 10 && len(got) < n; i++ {
		r := c.Poll(t, sid)
		if r.Status != http.StatusOK {
			t.Fatalf("poll: %v (after %q), want 200", r, got)
		}
		packets, pings := SplitPayload(r.Body)
		if pings > 0 {
			c.pong(t, sid)
		}
		got = append(got, packets...)
	}
	if len(got) < n {
		t.Fatalf("polled %q, want %d packets", got, n)
	}
	return got
}

// pong answers a heartbeat ping of sid; a failure is only logged (the check that follows
// tells whether the session survived).
func (c *Client) pong(t testing.TB, sid string) {
	t.Helper()
	if _, err := c.Do(http.MethodPost, PollQuery(sid), strings.NewReader("3"), nil); err != nil {
		t.Logf("pong: %v", err)
	}
}

// PollDuring sends a long poll for sid in the background, waits until it has reached the
// handler behind a (as AwaitArrival does), runs during, and returns the poll's answer once it
// came.
func (c *Client) PollDuring(t testing.TB, a *Arrivals, sid string, during func()) (Reply, error) {
	t.Helper()
	arrived := a.Arrived(http.MethodGet, sid)
	var r Reply
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		r, err = c.Do(http.MethodGet, PollQuery(sid), nil, nil)
	}()
	AwaitArrival(t, arrived, "the poll")
	during()
	<-done
	return r, err
}

// RetryOnPing runs attempt up to three times, each with a fresh session, while it reports
// that a heartbeat ping answered the poll it raced against (a short ping interval against a
// slow machine, not a server fault).
func RetryOnPing(t *testing.T, attempt func(t *testing.T) (pinged bool)) {
	t.Helper()
	for i := 1; i <= 3; i++ {
		if !attempt(t) {
			return
		}
		t.Logf("attempt %d: a heartbeat ping answered the poll first; starting over", i)
	}
	t.Fatal("a heartbeat ping answered the poll in three attempts out of three")
}

// Dial opens a WebSocket to the endpoint with query; the connection is closed at the end of
// the test.
func (c *Client) Dial(t testing.TB, query string) (*ws.Conn, error) {
	t.Helper()
	conn, _, err := c.DialFrom(t, query)
	return conn, err
}

// DialFrom is Dial that also returns the address of the client's end of the connection.
func (c *Client) DialFrom(t testing.TB, query string) (conn *ws.Conn, local string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	var d net.Dialer
	conn, _, err = ws.Dial(ctx, c.WSURL+"?"+query, &ws.DialOptions{
		Proxy: func(*http.Request) (*url.URL, error) { return nil, nil },
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				local = nc.LocalAddr().String()
			}
			return nc, err
		},
	})
	if conn != nil {
		t.Cleanup(func() { conn.CloseNow() })
	}
	return conn, local, err
}

// MustDial is Dial, failing the test if the handshake fails.
func (c *Client) MustDial(t testing.TB, query string) *ws.Conn {
	t.Helper()
	conn, err := c.Dial(t, query)
	if err != nil {
		t.Fatalf("WebSocket ?%s: %v", query, err)
	}
	return conn
}

// OpenWebSocket opens a session over WebSocket and returns the connection and the sid of its
// open packet, which must come first, as text.
func (c *Client) OpenWebSocket(t testing.TB) (*ws.Conn, string) {
	t.Helper()
	conn := c.MustDial(t, "EIO=4&transport=websocket")
	typ, s := MustRead(t, conn)
	if typ != ws.MessageText {
		t.Fatalf("first message: %v % x, want the open packet", typ, s)
	}
	return conn, SIDOf(t, s)
}

// Probe dials the WebSocket of the polling session sid and sends the upgrade probe, whose
// answer must be the text "3probe"; it returns the connection, for the upgrade packet ("5").
func (c *Client) Probe(t testing.TB, sid string) *ws.Conn {
	t.Helper()
	conn := c.MustDial(t, "EIO=4&transport=websocket&sid="+sid)
	Send(t, conn, "2probe")
	if typ, s := MustRead(t, conn); typ != ws.MessageText || s != "3probe" {
		t.Fatalf("answer to the probe: %v %q, want text \"3probe\"", typ, s)
	}
	return conn
}

// SendUpgrade dials the WebSocket of the polling session sid and sends the probe and the
// upgrade packet at once, as the official suites do, without waiting for the probe's answer
// ("3probe", which a later read must skip).
func (c *Client) SendUpgrade(t testing.TB, sid string) *ws.Conn {
	t.Helper()
	conn := c.MustDial(t, "EIO=4&transport=websocket&sid="+sid)
	Send(t, conn, "2probe")
	Send(t, conn, "5")
	return conn
}

// ExpectRefusedWebSocket checks that a WebSocket to query opens no session: the handshake is
// refused with a 4xx status or, as the Node server does for some refusals, the connection is
// closed right after the 101 with no message. It returns the refusal's status (0 when the
// connection was closed after a 101).
func (c *Client) ExpectRefusedWebSocket(t testing.TB, query string) int {
	t.Helper()
	conn, err := c.Dial(t, query)
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
	if got := AwaitWSClose(t, conn, false); len(got) > 0 {
		t.Errorf("?%s: the connection carried %q before closing, want nothing", query, got)
	}
	return 0
}

// Read reads one message, bounded by WaitLimit.
func Read(c *ws.Conn) (ws.MessageType, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	typ, b, err := c.ReadMessage(ctx)
	return typ, string(b), err
}

// MustRead reads one message and fails the test on error.
func MustRead(t testing.TB, c *ws.Conn) (ws.MessageType, string) {
	t.Helper()
	typ, s, err := Read(c)
	if err != nil {
		t.Fatalf("reading a message: %v", err)
	}
	return typ, s
}

// MustReadText reads one message, which must be text.
func MustReadText(t testing.TB, c *ws.Conn) string {
	t.Helper()
	typ, s := MustRead(t, c)
	return text(t, typ, s)
}

// text returns s, failing the test unless its type is text.
func text(t testing.TB, typ ws.MessageType, s string) string {
	t.Helper()
	if typ != ws.MessageText {
		t.Fatalf("got a %v message % x, want text", typ, s)
	}
	return s
}

// ReadSkipping reads the next message that is neither a heartbeat ping (answered with a
// pong, so that the session stays alive on a slow machine) nor one of the skip texts, at
// most 100 messages.
func ReadSkipping(t testing.TB, c *ws.Conn, skip ...string) (ws.MessageType, string) {
	t.Helper()
next:
	for i := 0; i < 100; i++ {
		typ, s := MustRead(t, c)
		if typ == ws.MessageText && s == "2" {
			Send(t, c, "3")
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

// ReadText is ReadSkipping for a message that must be text.
func ReadText(t testing.TB, c *ws.Conn, skip ...string) string {
	t.Helper()
	typ, s := ReadSkipping(t, c, skip...)
	return text(t, typ, s)
}

// ReadBinary is ReadSkipping for a message that must be binary.
func ReadBinary(t testing.TB, c *ws.Conn) string {
	t.Helper()
	typ, s := ReadSkipping(t, c)
	if typ != ws.MessageBinary {
		t.Fatalf("got a %v message %q, want binary", typ, s)
	}
	return s
}

// Send writes a text message.
func Send(t testing.TB, c *ws.Conn, s string) {
	t.Helper()
	SendMessage(t, c, ws.MessageText, []byte(s))
}

// SendMessage writes a message of type typ.
func SendMessage(t testing.TB, c *ws.Conn, typ ws.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
	defer cancel()
	if err := c.WriteMessage(ctx, typ, b); err != nil {
		t.Fatalf("writing %v %q: %v", typ, b, err)
	}
}

// AwaitWSClose reads until the connection ends and returns the text of the messages received
// before; with pong set it answers every heartbeat ping meanwhile. It fails the test if the
// connection is still open after WaitLimit or 1000 messages.
func AwaitWSClose(t testing.TB, c *ws.Conn, pong bool) []string {
	t.Helper()
	var got []string
	for i := 0; i < 1000; i++ {
		typ, s, err := Read(c)
		if err == nil {
			got = append(got, s)
			if pong && typ == ws.MessageText && s == "2" {
				ctx, cancel := context.WithTimeout(context.Background(), WaitLimit)
				_ = c.WriteMessage(ctx, ws.MessageText, []byte("3")) // fails once the server closed
				cancel()
			}
			continue
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("connection still open after %v (received %q)", WaitLimit, got)
		}
		return got
	}
	t.Fatal("connection still open after 1000 messages")
	return nil
}

// Open is the handshake data of an open packet.
type Open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"` // in milliseconds
	PingTimeout  int      `json:"pingTimeout"`  // in milliseconds
	MaxPayload   int      `json:"maxPayload"`
}

// DecodeOpen decodes an open packet ("0" and its JSON), failing the test if it is not one or
// has no sid.
func DecodeOpen(t testing.TB, packet string) Open {
	t.Helper()
	if !strings.HasPrefix(packet, "0") {
		t.Fatalf("%q is not an open packet", packet)
	}
	var o Open
	if err := json.Unmarshal([]byte(packet[1:]), &o); err != nil || o.SID == "" {
		t.Fatalf("open packet %q: sid %q, %v", packet, o.SID, err)
	}
	return o
}

// SIDOf returns the sid of an open packet.
func SIDOf(t testing.TB, packet string) string {
	t.Helper()
	return DecodeOpen(t, packet).SID
}

// CheckOpen checks an open packet: exactly the keys sid (a string), upgrades (these, in this
// order; pass an empty slice for none), pingInterval and pingTimeout (these, in
// milliseconds) and maxPayload (this).
func CheckOpen(t testing.TB, packet string, upgrades []string, pingInterval, pingTimeout time.Duration, maxPayload int64) {
	t.Helper()
	if !strings.HasPrefix(packet, "0") {
		t.Fatalf("%q does not start with 0 (open)", packet)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(packet[1:]), &v); err != nil {
		t.Fatalf("open packet %q: %v", packet, err)
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
	got, _ := json.Marshal(v["upgrades"])
	want, _ := json.Marshal(upgrades)
	if string(got) != string(want) {
		t.Errorf("upgrades %s, want %s", got, want)
	}
	for k, n := range map[string]float64{
		"pingInterval": float64(pingInterval / time.Millisecond),
		"pingTimeout":  float64(pingTimeout / time.Millisecond),
		"maxPayload":   float64(maxPayload),
	} {
		if v[k] != n {
			t.Errorf("%s %#v, want %v", k, v[k], n)
		}
	}
}

// ExpectError checks that r is the error answer of code, as the Node server sends it: its
// status, a JSON Content-Type and the body {"code":N,"message":...} with the code's number
// and message.
func ExpectError(t testing.TB, what string, r Reply, code engineio.ErrorCode) {
	t.Helper()
	if r.Status != code.HTTPStatus() {
		t.Errorf("%s: status %d (body %q), want %d", what, r.Status, r.Body, code.HTTPStatus())
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q, want application/json", what, ct)
	}
	var e struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil || e.Code == nil {
		t.Errorf("%s: body %q is not {\"code\":N,\"message\":...}: %v", what, r.Body, err)
		return
	}
	if *e.Code != int(code) || e.Message != code.Message() {
		t.Errorf("%s: body %q, want code %d and message %q", what, r.Body, int(code), code.Message())
	}
}

// Arrivals tells a test when a request has reached a server's handler, for the checks built
// on a request that must be pending when the next one is sent. The zero value is ready to
// use; its methods may be called from many goroutines.
type Arrivals struct {
	mu      sync.Mutex
	waiters []arrivalWaiter
}

type arrivalWaiter struct {
	method, sid string
	ch          chan struct{}
}

// Handler returns h behind a handler that first wakes the waiters of each request (its
// method and the sid of its query).
func (a *Arrivals) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sid := r.URL.Query().Get("sid")
		a.mu.Lock()
		kept := a.waiters[:0]
		for _, aw := range a.waiters {
			if aw.method == r.Method && aw.sid == sid {
				close(aw.ch)
			} else {
				kept = append(kept, aw)
			}
		}
		a.waiters = kept
		a.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

// Arrived returns a channel closed when the next request with this method and sid reaches
// the handler.
func (a *Arrivals) Arrived(method, sid string) <-chan struct{} {
	aw := arrivalWaiter{method: method, sid: sid, ch: make(chan struct{})}
	a.mu.Lock()
	a.waiters = append(a.waiters, aw)
	a.mu.Unlock()
	return aw.ch
}

// AwaitArrival waits (bounded) for ch from Arrived, then leaves the handler a moment to take
// the request in (register a long poll, start reading a body): a server offers no way to
// observe that, and the official suites rely on the same kind of ordering.
func AwaitArrival(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	Await(t, ch, what+" did not reach the server")
	time.Sleep(50 * time.Millisecond)
}

// Await waits until done is closed, at most WaitLimit; the test fails with the message "what
// after WaitLimit" (what: "session X still open") otherwise.
func Await(t testing.TB, done <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(WaitLimit):
		t.Fatalf("%s after %v", what, WaitLimit)
	}
}

// AwaitTransport waits, at most within, until the server reports session s on transport.
func AwaitTransport(t testing.TB, s *engineio.Session, transport string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for s.Transport() != transport {
		if time.Now().After(deadline) {
			t.Fatalf("session %s is on %q, not %q, after %v", s.ID(), s.Transport(), transport, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
