package engineio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// testClient is a Client whose callbacks feed channels.
type testClient struct {
	*Client
	t        *testing.T
	messages chan clientMessage
	upgraded chan string
	closed   chan closeEvent
}

type clientMessage struct {
	data   string
	binary bool
}

// The transport modes a client can run in against a server that allows both.
var clientModes = []struct {
	name    string
	opts    ClientOptions
	upgrade bool // the connection should end up on the WebSocket through an upgrade
}{
	{"polling", ClientOptions{Transports: []string{TransportPolling}}, false},
	{"websocket", ClientOptions{Transports: []string{TransportWebSocket}}, false},
	{"upgrade", ClientOptions{}, true},
}

func dialTest(t *testing.T, rawURL string, opts ClientOptions) *testClient {
	t.Helper()
	tc := &testClient{
		t:        t,
		messages: make(chan clientMessage, 4096),
		upgraded: make(chan string, 1),
		closed:   make(chan closeEvent, 1),
	}
	opts.OnMessage = func(data []byte, binary bool) { tc.messages <- clientMessage{string(data), binary} }
	opts.OnUpgrade = func(transport string) { tc.upgraded <- transport }
	opts.OnClose = func(reason CloseReason, err error) { tc.closed <- closeEvent{reason: reason, err: err} }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, rawURL, &opts)
	if err != nil {
		t.Fatal(err)
	}
	tc.Client = c
	t.Cleanup(func() {
		_ = c.Close()
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Error("the client did not end after Close")
		}
	})
	return tc
}

func (tc *testClient) next() clientMessage {
	tc.t.Helper()
	select {
	case m := <-tc.messages:
		return m
	case <-time.After(5 * time.Second):
		tc.t.Fatal("no message")
		return clientMessage{}
	}
}

func (tc *testClient) waitClose() closeEvent {
	tc.t.Helper()
	select {
	case e := <-tc.closed:
		return e
	case <-time.After(5 * time.Second):
		tc.t.Fatal("the client did not close")
		return closeEvent{}
	}
}

func (tc *testClient) waitUpgrade() {
	tc.t.Helper()
	select {
	case tr := <-tc.upgraded:
		if tr != TransportWebSocket || tc.Transport() != TransportWebSocket {
			tc.t.Fatalf("upgraded to %q, Transport() %q", tr, tc.Transport())
		}
	case <-time.After(5 * time.Second):
		tc.t.Fatal("no upgrade")
	}
}

// echo sends every message back as it came.
func echo(s *Session, data []byte, binary bool) {
	flags := Text
	if binary {
		flags = Binary
	}
	_ = s.Send(bytes.Clone(data), flags)
}

func TestClientEchoesTextAndBinaryOnEveryTransport(t *testing.T) {
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, &Server{}, echo)
			c := dialTest(t, ts.http.URL, mode.opts)
			if mode.upgrade {
				c.waitUpgrade()
			}
			big := strings.Repeat("é", 150_000)
			sent := []clientMessage{{"hello", false}, {"\x00\x01\xff", true}, {"", false}, {big, false}, {big, true}}
			for _, m := range sent {
				flags := Text
				if m.binary {
					flags = Binary
				}
				if err := c.Send([]byte(m.data), flags); err != nil {
					t.Fatal(err)
				}
			}
			for i, want := range sent {
				if got := c.next(); got != want {
					t.Fatalf("message %d: got %d bytes binary=%v, want %d bytes binary=%v", i, len(got.data), got.binary, len(want.data), want.binary)
				}
			}
		})
	}
}

func TestClientKeepsOrderAcrossTheUpgrade(t *testing.T) {
	const count = 1000
	ts := newTestServer(t, &Server{}, echo)
	c := dialTest(t, ts.http.URL, ClientOptions{})
	for i := range count {
		if err := c.Send([]byte(fmt.Sprint(i)), Text); err != nil {
			t.Fatal(err)
		}
	}
	for i := range count {
		if got := c.next(); got.data != fmt.Sprint(i) {
			t.Fatalf("message %d: got %q", i, got.data)
		}
	}
	c.waitUpgrade()
}

func TestClientSplitsPostsAtTheServersMaxPayload(t *testing.T) {
	ts := newTestServer(t, &Server{MaxHTTPBufferSize: 1000}, echo)
	c := dialTest(t, ts.http.URL, ClientOptions{Transports: []string{TransportPolling}})
	if c.Handshake().MaxPayload != 1000 {
		t.Fatalf("maxPayload %d", c.Handshake().MaxPayload)
	}
	msg := strings.Repeat("x", 400)
	for range 10 {
		if err := c.Send([]byte(msg), Text); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		if got := c.next(); got.data != msg {
			t.Fatalf("message %d: %d bytes", i, len(got.data))
		}
	}
}

func TestClientSendsHeadersAndQuery(t *testing.T) {
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, &Server{}, nil)
			opts := mode.opts
			opts.Header = http.Header{"X-Token": {"secret"}}
			opts.Query = url.Values{"room": {"blue"}}
			c := dialTest(t, ts.http.URL+"/ignored?lang=go", opts)
			s := ts.nextSession()
			if s.ID() != c.ID() {
				t.Fatalf("server session %q, client %q", s.ID(), c.ID())
			}
			r := s.Request()
			if r.Header.Get("X-Token") != "secret" || r.URL.Query().Get("room") != "blue" || r.URL.Query().Get("lang") != "go" {
				t.Fatalf("server saw header %q, query %q", r.Header.Get("X-Token"), r.URL.RawQuery)
			}
		})
	}
}

func TestClientAnswersPingsAndDetectsASilentServer(t *testing.T) {
	ts := newTestServer(t, &Server{PingInterval: 40 * time.Millisecond, PingTimeout: 250 * time.Millisecond}, nil)
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			c := dialTest(t, ts.http.URL, mode.opts)
			// Many ping intervals: the server would close a session that stopped answering, the
			// client one that stopped pinging.
			select {
			case e := <-c.closed:
				t.Fatalf("closed while pinged: %v %v", e.reason, e.err)
			case <-time.After(500 * time.Millisecond):
			}
		})
	}

	// A server that opens the session and then says nothing.
	silent := scriptedServer(Handshake{SID: "silent", PingInterval: 30, PingTimeout: 30, MaxPayload: 1000})
	defer silent.Close()
	c := dialTest(t, silent.URL, ClientOptions{Transports: []string{TransportWebSocket}})
	if e := c.waitClose(); e.reason != ReasonPingTimeout {
		t.Fatalf("reason %q (%v), want ping timeout", e.reason, e.err)
	}
}

func TestClientCloseReachesTheServer(t *testing.T) {
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, &Server{}, nil)
			c := dialTest(t, ts.http.URL, mode.opts)
			if mode.upgrade {
				c.waitUpgrade()
			}
			ts.nextSession()
			if err := c.Send([]byte("last"), Text); err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := c.Send([]byte("late"), Text); !errors.Is(err, ErrClientClosed) {
				t.Fatalf("Send after Close: %v", err)
			}
			if e := c.waitClose(); e.reason != ReasonForcedClose {
				t.Fatalf("client reason %q (%v)", e.reason, e.err)
			}
			if e := ts.nextClose(); e.reason != ReasonTransportClose {
				t.Fatalf("server reason %q (%v)", e.reason, e.err)
			}
		})
	}
}

func TestClientSeesTheServerClose(t *testing.T) {
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			ts := newTestServer(t, &Server{}, nil)
			c := dialTest(t, ts.http.URL, mode.opts)
			if mode.upgrade {
				c.waitUpgrade()
			}
			s := ts.nextSession()
			_ = s.Send([]byte("bye"), Text)
			_ = s.Close()
			if m := c.next(); m.data != "bye" {
				t.Fatalf("got %q before the close", m.data)
			}
			if e := c.waitClose(); e.reason != ReasonTransportClose {
				t.Fatalf("reason %q (%v)", e.reason, e.err)
			}
		})
	}
}

func TestDialReportsTheServersRefusal(t *testing.T) {
	ts := newTestServer(t, &Server{AllowRequest: func(r *http.Request) error { return errors.New("no entry") }}, nil)
	_, err := Dial(context.Background(), ts.http.URL, &ClientOptions{Transports: []string{TransportPolling}})
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden || he.Code != ErrorForbidden || he.Message != "no entry" {
		t.Fatalf("err %v", err)
	}
	_, err = Dial(context.Background(), ts.http.URL, &ClientOptions{Path: "/elsewhere/", Transports: []string{TransportPolling}})
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound || he.Code != -1 {
		t.Fatalf("err %v", err)
	}
	_, err = Dial(context.Background(), ts.http.URL, &ClientOptions{Transports: []string{"carrier-pigeon"}})
	if err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("err %v", err)
	}
}

func TestDialTriesTheNextTransport(t *testing.T) {
	ts := newTestServer(t, &Server{Transports: []string{TransportPolling}}, echo)
	c := dialTest(t, ts.http.URL, ClientOptions{Transports: []string{TransportWebSocket, TransportPolling}})
	if c.Transport() != TransportPolling {
		t.Fatalf("transport %q", c.Transport())
	}
}

func TestClientClosesOnAMalformedPacket(t *testing.T) {
	bad := scriptedServer(Handshake{SID: "bad", PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000}, "9what")
	defer bad.Close()
	c := dialTest(t, bad.URL, ClientOptions{Transports: []string{TransportWebSocket}})
	if e := c.waitClose(); e.reason != ReasonParseError {
		t.Fatalf("reason %q (%v)", e.reason, e.err)
	}
}

func TestClientOverTLS(t *testing.T) {
	srv := &Server{}
	srv.OnConnection = func(s *Session) {
		s.OnMessage = func(data []byte, binary bool) { echo(s, data, binary) }
	}
	web := httptest.NewTLSServer(srv)
	defer web.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	tlsConfig := web.Client().Transport.(*http.Transport).TLSClientConfig
	for _, mode := range clientModes {
		t.Run(mode.name, func(t *testing.T) {
			opts := mode.opts
			opts.TLSConfig = tlsConfig
			c := dialTest(t, web.URL, opts)
			if mode.upgrade {
				c.waitUpgrade()
			}
			_ = c.Send([]byte("secret"), Text)
			if m := c.next(); m.data != "secret" {
				t.Fatalf("got %q", m.data)
			}
		})
	}
}

func TestClientSendsTheJarsCookiesWithTheUpgrade(t *testing.T) {
	srv := &Server{Cookie: &http.Cookie{Name: "io", Path: "/"}}
	upgradeCookies := make(chan string, 1)
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") == TransportWebSocket {
			upgradeCookies <- r.Header.Get("Cookie")
		}
		srv.ServeHTTP(w, r)
	}))
	defer web.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := dialTest(t, web.URL, ClientOptions{HTTPClient: &http.Client{Jar: jar}})
	c.waitUpgrade()
	if got := <-upgradeCookies; got != "io="+c.ID() {
		t.Fatalf("the upgrade carried cookies %q, want io=%s", got, c.ID())
	}
}

// scriptedServer is a WebSocket-only Engine.IO server that opens a session with hs, sends
// the messages given, then says nothing until the client leaves.
func scriptedServer(hs Handshake, messages ...string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := (&ws.Upgrader{}).Upgrade(w, r)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		_ = conn.WriteMessage(context.Background(), ws.MessageText, AppendPacket(nil, hs.Packet()))
		for _, m := range messages {
			_ = conn.WriteMessage(context.Background(), ws.MessageText, []byte(m))
		}
		_, _, _ = conn.ReadMessage(context.Background())
	}))
}

func TestCorkedSendsLeaveTogetherAtUncork(t *testing.T) {
	ts := newTestServer(t, &Server{}, echo)
	c := dialTest(t, ts.http.URL, ClientOptions{Transports: []string{TransportWebSocket}})
	c.Cork()
	c.Cork() // corks nest
	for _, m := range []string{"a", "b", "c"} {
		if err := c.Send([]byte(m), Text); err != nil {
			t.Fatal(err)
		}
	}
	c.Uncork()
	select {
	case m := <-c.messages:
		t.Fatalf("%q was echoed while the connection was still corked", m.data)
	case <-time.After(50 * time.Millisecond):
	}
	c.Uncork()
	for _, want := range []string{"a", "b", "c"} {
		if got := c.next(); got.data != want {
			t.Fatalf("got %q, want %q", got.data, want)
		}
	}
}
