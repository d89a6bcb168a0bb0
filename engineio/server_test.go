package engineio

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// Behaviour of the server beyond the official protocol suite (suite_test.go): bounded
// queues, drain, shutdown, callback order, response splitting, HTTP compression, cookies.

// testServer runs srv on a loopback httptest server and collects its sessions.
type testServer struct {
	t        *testing.T
	srv      *Server
	http     *httptest.Server
	sessions chan *Session
	closed   chan closeEvent
}

type closeEvent struct {
	sid    string
	reason CloseReason
	err    error
}

func newTestServer(t *testing.T, srv *Server, onMessage func(s *Session, data []byte, binary bool)) *testServer {
	t.Helper()
	ts := &testServer{t: t, srv: srv, sessions: make(chan *Session, 16), closed: make(chan closeEvent, 16)}
	srv.OnConnection = func(s *Session) {
		if onMessage != nil {
			s.OnMessage = func(data []byte, binary bool) { onMessage(s, data, binary) }
		}
		s.OnClose = func(reason CloseReason, err error) { ts.closed <- closeEvent{s.ID(), reason, err} }
		ts.sessions <- s
	}
	ts.http = httptest.NewServer(srv)
	t.Cleanup(func() {
		// Idle polling clients never come for their close packet: do not wait long.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.http.Close()
	})
	return ts
}

// inEveryWebSocketMode runs test once with each way the server can serve its WebSockets: a
// goroutine each, and on an event loop (the loop given, set as Server.EventLoop; closed when
// the test ends). (internal/eiotest has the same for the external tests; it imports this
// package, so these cannot use it.)
func inEveryWebSocketMode(t *testing.T, test func(t *testing.T, loop *ws.EventLoop)) {
	t.Run("goroutine", func(t *testing.T) { test(t, nil) })
	t.Run("evented", func(t *testing.T) {
		loop, err := ws.NewEventLoop(nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { loop.Close() })
		test(t, loop)
	})
}

func (ts *testServer) url(query string) string {
	return ts.http.URL + DefaultPath + "?EIO=4&" + query
}

func (ts *testServer) do(method, query, body string, header http.Header) (*http.Response, string) {
	ts.t.Helper()
	req, err := http.NewRequest(method, ts.url(query), strings.NewReader(body))
	if err != nil {
		ts.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp, string(b)
}

// openPolling performs a polling handshake and returns the session.
func (ts *testServer) openPolling() *Session {
	ts.t.Helper()
	resp, body := ts.do("GET", "transport=polling", "", nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "0{") {
		ts.t.Fatalf("handshake: %d %q", resp.StatusCode, body)
	}
	return ts.nextSession()
}

func (ts *testServer) nextSession() *Session {
	ts.t.Helper()
	select {
	case s := <-ts.sessions:
		return s
	case <-time.After(5 * time.Second):
		ts.t.Fatal("no session")
		return nil
	}
}

func (ts *testServer) nextClose() closeEvent {
	ts.t.Helper()
	select {
	case e := <-ts.closed:
		return e
	case <-time.After(5 * time.Second):
		ts.t.Fatal("no session closed")
		return closeEvent{}
	}
}

func (ts *testServer) dial(query string) *ws.Conn {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(ts.url(query), "http"), nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { c.CloseNow() })
	return c
}

func readWS(t *testing.T, c *ws.Conn) (ws.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return typ, string(b)
}

func writeWS(t *testing.T, c *ws.Conn, typ ws.MessageType, s string) {
	t.Helper()
	if err := c.WriteMessage(context.Background(), typ, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestSendPastTheQueueBoundsClosesTheSession(t *testing.T) {
	for _, tc := range []struct {
		name    string
		srv     *Server
		message string
		fits    int
	}{
		{"packets", &Server{MaxQueuedPackets: 3}, "x", 3},
		{"bytes", &Server{MaxQueuedBytes: 100}, strings.Repeat("x", 30), 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.srv, nil)
			// The handshake poll took the open packet; nobody polls now.
			s := ts.openPolling()
			for i := range tc.fits {
				if err := s.Send([]byte(tc.message), Text); err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
			}
			if err := s.Send([]byte(tc.message), Text); !errors.Is(err, ErrQueueFull) {
				t.Fatalf("send past the bound: %v, want ErrQueueFull", err)
			}
			if e := ts.nextClose(); e.reason != ReasonQueueFull || !errors.Is(e.err, ErrQueueFull) {
				t.Fatalf("closed with %q %v", e.reason, e.err)
			}
			if reason, err := s.Err(); reason != ReasonQueueFull || !errors.Is(err, ErrQueueFull) {
				t.Fatalf("Err() = %q, %v", reason, err)
			}
			if err := s.Send([]byte("late"), Text); !errors.Is(err, ErrSessionClosed) {
				t.Fatalf("send after close: %v", err)
			}
		})
	}
}

func TestWritableAndDrainFollowTheQueue(t *testing.T) {
	ts := newTestServer(t, &Server{}, nil)
	s := ts.openPolling()
	if reason, err := s.Err(); reason != "" || err != nil {
		t.Fatalf("Err() of an open session = %q, %v", reason, err)
	}
	if !s.Writable() {
		t.Fatal("a session with nothing queued is not writable")
	}
	select {
	case <-s.Drain():
	default:
		t.Fatal("Drain of an empty queue is not closed")
	}
	if err := s.Send([]byte("hello"), Text); err != nil {
		t.Fatal(err)
	}
	if s.Writable() || s.Buffered() != 5 {
		t.Fatalf("after a send: writable %v, buffered %d", s.Writable(), s.Buffered())
	}
	drain := s.Drain()
	select {
	case <-drain:
		t.Fatal("Drain closed with a message queued")
	default:
	}
	if _, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil); body != "4hello" {
		t.Fatalf("poll: %q", body)
	}
	select {
	case <-drain:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain not closed once the poll took the queue")
	}
	if !s.Writable() || s.Buffered() != 0 {
		t.Fatalf("after the poll: writable %v, buffered %d", s.Writable(), s.Buffered())
	}
}

func TestShutdownClosesEverySessionAndRefusesNewOnes(t *testing.T) {
	inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
		ts := newTestServer(t, &Server{EventLoop: loop}, nil)
		polling := ts.openPolling()
		conn := ts.dial("transport=websocket")
		if _, open := readWS(t, conn); !strings.HasPrefix(open, "0{") {
			t.Fatalf("open: %q", open)
		}
		ts.nextSession()

		pollDone := make(chan string, 1)
		go func() {
			_, body := ts.do("GET", "transport=polling&sid="+polling.ID(), "", nil)
			pollDone <- body
		}()
		// Let the poll arrive and wait, so that shutdown answers it.
		deadline := time.Now().Add(5 * time.Second)
		for !pollWaiting(polling) && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if body := <-pollDone; body != "1" {
			t.Fatalf("pending poll answered %q, want the close packet", body)
		}
		_, _, err := conn.ReadMessage(ctx)
		if code := ws.CloseStatus(err); code != ws.StatusGoingAway {
			t.Fatalf("websocket ended with %v, want 1001", err)
		}
		for range 2 {
			if e := ts.nextClose(); e.reason != ReasonServerShutdown {
				t.Fatalf("closed with %q", e.reason)
			}
		}
		if n := ts.srv.SessionCount(); n != 0 {
			t.Fatalf("%d sessions left", n)
		}
		if resp, _ := ts.do("GET", "transport=polling", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("handshake after shutdown: %d", resp.StatusCode)
		}
	})
}

func pollWaiting(s *Session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pollWake != nil
}

func TestOnCloseWaitsForTheRunningOnMessage(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var events []string
	ts := newTestServer(t, &Server{}, func(s *Session, data []byte, binary bool) {
		close(entered)
		<-release
		mu.Lock()
		events = append(events, "message")
		mu.Unlock()
	})
	s := ts.openPolling()
	go ts.do("POST", "transport=polling&sid="+s.ID(), "4slow", nil)
	<-entered
	s.Close()
	select {
	case e := <-ts.closed:
		t.Fatalf("OnClose (%q) ran while OnMessage was running", e.reason)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	// The polling client comes for its close packet.
	if _, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil); body != "1" {
		t.Fatalf("poll after Close: %q", body)
	}
	if e := ts.nextClose(); e.reason != ReasonForcedClose {
		t.Fatalf("reason %q", e.reason)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 {
		t.Fatalf("events %v", events)
	}
}

func TestPollingResponsesStayWithinMaxPayload(t *testing.T) {
	ts := newTestServer(t, &Server{MaxHTTPBufferSize: 100}, nil)
	s := ts.openPolling()
	var want []string
	for i := range 10 {
		m := fmt.Sprintf("%02d%s", i, strings.Repeat("m", 38)) // 41 bytes encoded
		want = append(want, "4"+m)
		if err := s.Send([]byte(m), Text); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for polls := 0; len(got) < len(want) && polls < 20; polls++ {
		_, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil)
		if len(body) > 100 {
			t.Fatalf("response of %d bytes, over maxPayload 100", len(body))
		}
		got = append(got, strings.Split(body, "\x1e")...)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestPollingResponsesAreCompressedAboveTheThreshold(t *testing.T) {
	big := strings.Repeat("compressible ", 200)
	for _, tc := range []struct {
		name     string
		srv      *Server
		accept   string
		flags    SendFlag
		message  string
		encoding string
	}{
		{"gzip", &Server{}, "gzip, deflate", Text, big, "gzip"},
		{"deflate", &Server{}, "deflate", Text, big, "deflate"},
		{"refused with q=0", &Server{}, "gzip;q=0", Text, big, ""},
		{"below the threshold", &Server{}, "gzip", Text, "short", ""},
		{"NoCompress", &Server{}, "gzip", NoCompress, big, ""},
		{"disabled", &Server{DisableHTTPCompression: true}, "gzip", Text, big, ""},
		{"lower threshold", &Server{HTTPCompressionThreshold: 4}, "gzip", Text, "short", "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.srv, nil)
			s := ts.openPolling()
			if err := s.Send([]byte(tc.message), tc.flags); err != nil {
				t.Fatal(err)
			}
			resp, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", http.Header{"Accept-Encoding": {tc.accept}})
			if got := resp.Header.Get("Content-Encoding"); got != tc.encoding {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.encoding)
			}
			if n, _ := strconv.Atoi(resp.Header.Get("Content-Length")); n != len(body) {
				t.Fatalf("Content-Length %d for %d bytes", n, len(body))
			}
			var r io.Reader = strings.NewReader(body)
			switch tc.encoding {
			case "gzip":
				r, _ = gzip.NewReader(r)
			case "deflate":
				r, _ = zlib.NewReader(r)
			}
			plain, err := io.ReadAll(r)
			if err != nil || string(plain) != "4"+tc.message {
				t.Fatalf("body %q (%v)", plain, err)
			}
		})
	}
}

func TestCookieCarriesTheSessionID(t *testing.T) {
	ts := newTestServer(t, &Server{Cookie: &http.Cookie{Name: "io", Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}}, nil)
	resp, _ := ts.do("GET", "transport=polling", "", nil)
	s := ts.nextSession()
	if got, want := resp.Header.Get("Set-Cookie"), "io="+s.ID()+"; Path=/; HttpOnly; SameSite=Lax"; got != want {
		t.Fatalf("polling Set-Cookie %q, want %q", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(ts.url("transport=websocket"), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	s = ts.nextSession()
	if got := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(got, "io="+s.ID()+";") {
		t.Fatalf("websocket Set-Cookie %q", got)
	}
}

func TestAllowRequestRefusesWithItsMessage(t *testing.T) {
	ts := newTestServer(t, &Server{AllowRequest: func(r *http.Request) error {
		if r.Header.Get("Authorization") == "" {
			return errors.New("no credentials")
		}
		return nil
	}}, nil)
	resp, body := ts.do("GET", "transport=polling", "", nil)
	if resp.StatusCode != http.StatusForbidden || body != `{"code":4,"message":"no credentials"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	resp, body = ts.do("GET", "transport=polling", "", http.Header{"Authorization": {"Bearer x"}})
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "0{") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestRequestsOutsideThePathAreNotFound(t *testing.T) {
	ts := newTestServer(t, &Server{}, nil)
	resp, err := http.Get(ts.http.URL + "/other/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestBinaryGoesAsBase64ToClientsThatAskForIt(t *testing.T) {
	inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
		ts := newTestServer(t, &Server{EventLoop: loop}, func(s *Session, data []byte, binary bool) {
			f := Text
			if binary {
				f = Binary
			}
			_ = s.Send(bytes.Clone(data), f)
		})
		c := ts.dial("transport=websocket&b64=1")
		readWS(t, c) // open
		ts.nextSession()
		writeWS(t, c, ws.MessageText, "bAQID") // a binary message sent as base64
		if typ, m := readWS(t, c); typ != ws.MessageText || m != "bAQID" {
			t.Fatalf("%v %q, want text bAQID", typ, m)
		}
	})
}

func TestWebSocketMessageOverTheLimitClosesTheSession(t *testing.T) {
	inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
		ts := newTestServer(t, &Server{MaxHTTPBufferSize: 1000, EventLoop: loop}, nil)
		c := ts.dial("transport=websocket")
		readWS(t, c)
		ts.nextSession()
		writeWS(t, c, ws.MessageText, "4"+strings.Repeat("x", 1000))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			_, _, err := c.ReadMessage(ctx)
			if err != nil {
				if code := ws.CloseStatus(err); code != ws.StatusMessageTooBig {
					t.Fatalf("ended with %v, want 1009", err)
				}
				break
			}
		}
		if e := ts.nextClose(); e.reason != ReasonTransportError || e.err == nil {
			t.Fatalf("closed with %q %v", e.reason, e.err)
		}
	})
}

func TestSendRefusesTheRecordSeparatorOnPolling(t *testing.T) {
	ts := newTestServer(t, &Server{}, nil)
	s := ts.openPolling()
	if err := s.Send([]byte("a\x1eb"), Text); !errors.Is(err, ErrInvalidPacket) {
		t.Fatalf("err %v, want ErrInvalidPacket", err)
	}
	if err := s.Send([]byte("a\x1eb"), Binary); err != nil {
		t.Fatalf("binary: %v", err)
	}
}

// TestUpgradeKeepsEveryPacketInOrder streams messages both ways while a polling session
// upgrades, with a raw client that follows engine.io-client's steps, and checks that each
// side receives every message once, in order.
func TestUpgradeKeepsEveryPacketInOrder(t *testing.T) {
	inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
		const n = 300
		var mu sync.Mutex
		var received []string
		ts := newTestServer(t, &Server{EventLoop: loop}, func(s *Session, data []byte, binary bool) {
			mu.Lock()
			received = append(received, string(data))
			mu.Unlock()
		})
		s := ts.openPolling()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for i := range n {
				if s.Send([]byte(strconv.Itoa(i)), Text) != nil {
					return
				}
				if i%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		var got []string
		collect := func(body string) {
			for _, p := range strings.Split(body, "\x1e") {
				if m, ok := strings.CutPrefix(p, "4"); ok {
					got = append(got, m)
				}
			}
		}
		sid := s.ID()
		clientSent := 0
		// Some polls and posts first.
		for range 3 {
			_, body := ts.do("GET", "transport=polling&sid="+sid, "", nil)
			collect(body)
			ts.do("POST", "transport=polling&sid="+sid, fmt.Sprintf("4c%d\x1e4c%d", clientSent, clientSent+1), nil)
			clientSent += 2
		}
		// Upgrade: probe, then a poll that the noop releases, then the upgrade packet.
		c := ts.dial("transport=websocket&sid=" + sid)
		writeWS(t, c, ws.MessageText, "2probe")
		if _, m := readWS(t, c); m != "3probe" {
			t.Fatalf("probe answered %q", m)
		}
		// The client pauses polling: its last poll is answered at once, with the packets
		// queued by then or a noop.
		_, body := ts.do("GET", "transport=polling&sid="+sid, "", nil)
		collect(body)
		writeWS(t, c, ws.MessageText, "5")
		for range 20 {
			writeWS(t, c, ws.MessageText, fmt.Sprintf("4c%d", clientSent))
			clientSent++
		}
		<-sent
		for len(got) < n {
			_, m := readWS(t, c)
			if rest, ok := strings.CutPrefix(m, "4"); ok {
				got = append(got, rest)
			} else if m == "2" {
				writeWS(t, c, ws.MessageText, "3")
			}
		}
		for i, m := range got {
			if m != strconv.Itoa(i) {
				t.Fatalf("client got %v", got)
			}
		}
		if s.Transport() != TransportWebSocket {
			t.Fatalf("transport %q", s.Transport())
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			k := len(received)
			mu.Unlock()
			if k == clientSent || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, m := range received {
			if m != "c"+strconv.Itoa(i) {
				t.Fatalf("server got %v", received)
			}
		}
		if len(received) != clientSent {
			t.Fatalf("server got %d of %d", len(received), clientSent)
		}
		// Polling is over for this session.
		if resp, _ := ts.do("GET", "transport=polling&sid="+sid, "", nil); resp.StatusCode != 400 {
			t.Fatalf("poll after upgrade: %d", resp.StatusCode)
		}
	})
}

func TestAMessageOverTheByteBoundGoesAloneInAnEmptyQueue(t *testing.T) {
	ts := newTestServer(t, &Server{MaxQueuedBytes: 10}, nil)
	s := ts.openPolling()
	big := strings.Repeat("b", 50)
	if err := s.Send([]byte(big), Text); err != nil {
		t.Fatalf("alone: %v", err)
	}
	if _, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil); body != "4"+big {
		t.Fatalf("poll %q", body)
	}
}

func TestSendBatchKeepsItsMessagesTogether(t *testing.T) {
	// Four senders may each add a batch of two after seeing the queue empty: 16 leaves room.
	ts := newTestServer(t, &Server{MaxQueuedPackets: 16}, nil)
	s := ts.openPolling()
	const senders, batches = 4, 50
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range batches {
				tag := fmt.Sprintf("%d.%d", g, i)
				// The session is polled below; a full queue would close it.
				for !s.Writable() {
					time.Sleep(time.Millisecond)
				}
				_ = s.SendBatch([]Outgoing{{Data: []byte(tag)}, {Data: []byte(tag), Binary: true}}, 0)
			}
		}()
	}
	// A last batch marks the end, so that no poll waits once everything is taken.
	go func() {
		wg.Wait()
		for !s.Writable() {
			time.Sleep(time.Millisecond)
		}
		_ = s.SendBatch([]Outgoing{{Data: []byte("end")}, {Data: []byte("end"), Binary: true}}, 0)
	}()
	var got []string
	for polls, end := 0, false; polls < 10*senders*batches && !end; polls++ {
		_, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil)
		for p := range strings.SplitSeq(body, "\x1e") {
			end = end || p == "4end"
			if p != "2" && p != "6" {
				got = append(got, p)
			}
		}
	}
	if n := len(got); n != 2*(senders*batches+1) {
		t.Fatalf("%d messages, want %d", n, 2*(senders*batches+1))
	}
	if len(got)%2 != 0 {
		t.Fatalf("odd number of messages: %d", len(got))
	}
	for i := 0; i < len(got); i += 2 {
		text, bin := got[i], got[i+1]
		if !strings.HasPrefix(text, "4") || bin != "b"+base64Std(text[1:]) {
			t.Fatalf("messages %d, %d: %q %q are not a text and its binary twin", i, i+1, text, bin)
		}
	}
	if err := s.SendBatch(make([]Outgoing, 17), 0); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("batch over MaxQueuedPackets: %v", err)
	}
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestTransportOptions(t *testing.T) {
	t.Run("polling only", func(t *testing.T) {
		ts := newTestServer(t, &Server{Transports: []string{TransportPolling}}, nil)
		_, body := ts.do("GET", "transport=polling", "", nil)
		if !strings.Contains(body, `"upgrades":[]`) {
			t.Fatalf("open %q offers an upgrade", body)
		}
		resp, body := ts.do("GET", "transport=websocket", "", nil)
		if resp.StatusCode != 400 || body != `{"code":0,"message":"Transport unknown"}` {
			t.Fatalf("websocket: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("websocket only", func(t *testing.T) {
		ts := newTestServer(t, &Server{Transports: []string{TransportWebSocket}}, nil)
		resp, body := ts.do("GET", "transport=polling", "", nil)
		if resp.StatusCode != 400 || body != `{"code":0,"message":"Transport unknown"}` {
			t.Fatalf("polling: %d %s", resp.StatusCode, body)
		}
		c := ts.dial("transport=websocket")
		if _, open := readWS(t, c); !strings.Contains(open, `"upgrades":[]`) {
			t.Fatalf("open %q", open)
		}
	})
	t.Run("upgrades disabled", func(t *testing.T) {
		ts := newTestServer(t, &Server{DisableUpgrades: true}, nil)
		s := ts.openPolling()
		resp, body := ts.do("GET", "transport=websocket&sid="+s.ID(), "", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}})
		if resp.StatusCode != 400 || !strings.Contains(body, `"code":3`) {
			t.Fatalf("upgrade: %d %s", resp.StatusCode, body)
		}
		if s.Transport() != TransportPolling {
			t.Fatal("session left polling")
		}
	})
}

func TestInitialPacketFollowsTheOpenPacket(t *testing.T) {
	ts := newTestServer(t, &Server{InitialPacket: []byte("welcome")}, nil)
	_, body := ts.do("GET", "transport=polling", "", nil)
	if _, rest, ok := strings.Cut(body, "\x1e"); !ok || rest != "4welcome" {
		t.Fatalf("handshake body %q", body)
	}
	c := ts.dial("transport=websocket")
	readWS(t, c)
	if _, m := readWS(t, c); m != "4welcome" {
		t.Fatalf("second message %q", m)
	}
}

func TestPerMessageDeflateIsNegotiatedWhenEnabled(t *testing.T) {
	inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
		for _, enabled := range []bool{false, true} {
			t.Run(fmt.Sprint(enabled), func(t *testing.T) {
				srv := &Server{EventLoop: loop}
				if enabled {
					srv.PerMessageDeflate = &ws.CompressionOptions{}
				}
				ts := newTestServer(t, srv, func(s *Session, data []byte, binary bool) { _ = s.Send(bytes.Clone(data), Text) })
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(ts.url("transport=websocket"), "http"), &ws.DialOptions{Compression: &ws.CompressionOptions{}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if got := c.Compression() != ""; got != enabled {
					t.Fatalf("compression %q, enabled %v", c.Compression(), enabled)
				}
				readWS(t, c)
				big := "4" + strings.Repeat("deflate me ", 100)
				writeWS(t, c, ws.MessageText, big)
				if _, m := readWS(t, c); m != big {
					t.Fatalf("echo of %d bytes: %d bytes", len(big), len(m))
				}
			})
		}
	})
}

func TestAClosingPollingSessionSendsItsClosePacketAloneAfterItsQueue(t *testing.T) {
	ts := newTestServer(t, &Server{}, nil)
	s := ts.openPolling()
	if err := s.Send([]byte("last words"), Text); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil); body != "4last words" {
		t.Fatalf("first poll %q, want the queue without the close packet", body)
	}
	if _, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil); body != "1" {
		t.Fatalf("second poll %q, want the close packet", body)
	}
	if e := ts.nextClose(); e.reason != ReasonForcedClose {
		t.Fatalf("reason %q", e.reason)
	}
}

func TestCORSHeaders(t *testing.T) {
	preflight := http.Header{"Origin": {"https://app.example"}, "Access-Control-Request-Headers": {"x-token"}}
	for _, tc := range []struct {
		name   string
		cors   *CORSOptions
		method string
		header http.Header
		want   map[string]string // "" means absent
	}{
		{"any origin", &CORSOptions{Origins: []string{"*"}}, "GET", http.Header{"Origin": {"https://a.example"}},
			map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Credentials": ""}},
		{"any origin with credentials echoes it", &CORSOptions{Origins: []string{"*"}, Credentials: true}, "GET", http.Header{"Origin": {"https://a.example"}},
			map[string]string{"Access-Control-Allow-Origin": "https://a.example", "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}},
		{"listed origin", &CORSOptions{Origins: []string{"https://a.example"}, ExposedHeaders: []string{"X-One", "X-Two"}}, "GET", http.Header{"Origin": {"https://a.example"}},
			map[string]string{"Access-Control-Allow-Origin": "https://a.example", "Access-Control-Expose-Headers": "X-One,X-Two"}},
		{"unlisted origin", &CORSOptions{Origins: []string{"https://a.example"}}, "GET", http.Header{"Origin": {"https://evil.example"}},
			map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"}},
		{"AllowOrigin decides", &CORSOptions{Origins: []string{"*"}, AllowOrigin: func(o string) bool { return o == "https://b.example" }}, "GET", http.Header{"Origin": {"https://b.example"}},
			map[string]string{"Access-Control-Allow-Origin": "https://b.example"}},
		{"preflight defaults", &CORSOptions{Origins: []string{"https://app.example"}, MaxAge: time.Hour}, "OPTIONS", preflight,
			map[string]string{"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
				"Access-Control-Allow-Headers": "x-token", "Access-Control-Max-Age": "3600"}},
		{"preflight configured", &CORSOptions{Origins: []string{"*"}, Methods: []string{"GET", "POST"}, Headers: []string{"Authorization"}}, "OPTIONS", preflight,
			map[string]string{"Access-Control-Allow-Methods": "GET,POST", "Access-Control-Allow-Headers": "Authorization", "Access-Control-Max-Age": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, &Server{CORS: tc.cors}, nil)
			resp, _ := ts.do(tc.method, "transport=polling", "", tc.header)
			wantStatus := 200
			if tc.method == "OPTIONS" {
				wantStatus = http.StatusNoContent
			}
			if resp.StatusCode != wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, wantStatus)
			}
			for name, want := range tc.want {
				got := strings.Join(resp.Header.Values(name), ", ")
				if got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestAClosingSessionFinishesAnAnsweredUpgrade(t *testing.T) {
	inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
		ts := newTestServer(t, &Server{EventLoop: loop}, nil)
		s := ts.openPolling()
		c := ts.dial("transport=websocket&sid=" + s.ID())
		writeWS(t, c, ws.MessageText, "2probe")
		if _, got := readWS(t, c); got != "3probe" {
			t.Fatalf("probe answered with %q", got)
		}
		// The client has stopped polling, as engine.io-client does once its probe is answered,
		// when the server closes the session: what was queued must still reach it.
		if err := s.Send([]byte("bye"), Text); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		writeWS(t, c, ws.MessageText, "5")
		if _, got := readWS(t, c); got != "4bye" {
			t.Fatalf("after the upgrade: %q, want 4bye", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, _, err := c.ReadMessage(ctx); !errors.As(err, new(*ws.CloseError)) {
			t.Fatalf("after the queue: %v, want the close", err)
		}
		if e := ts.nextClose(); e.reason != ReasonForcedClose {
			t.Fatalf("reason %q (%v)", e.reason, e.err)
		}
	})
}

func TestAStalledUpgradeTimesOutAndTheSessionStaysOnPolling(t *testing.T) {
	for _, probed := range []bool{false, true} {
		t.Run(fmt.Sprintf("probed=%v", probed), func(t *testing.T) {
			inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
				ts := newTestServer(t, &Server{UpgradeTimeout: 200 * time.Millisecond, EventLoop: loop}, nil)
				s := ts.openPolling()
				c := ts.dial("transport=websocket&sid=" + s.ID())
				if probed {
					writeWS(t, c, ws.MessageText, "2probe")
					if _, got := readWS(t, c); got != "3probe" {
						t.Fatalf("probe answered with %q", got)
					}
				}
				// The client never sends its upgrade packet: the server gives up on the WebSocket.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, _, err := c.ReadMessage(ctx); err == nil || ctx.Err() != nil {
					t.Fatalf("the stalled WebSocket: %v, want it closed by the server", err)
				}
				if s.Transport() != TransportPolling {
					t.Fatalf("transport %q", s.Transport())
				}
				if err := s.Send([]byte("still here"), Text); err != nil {
					t.Fatal(err)
				}
				if _, body := ts.do("GET", "transport=polling&sid="+s.ID(), "", nil); !strings.HasSuffix(body, "4still here") {
					t.Fatalf("poll after the failed upgrade: %q", body)
				}
			})
		})
	}
}

func TestIdleWebSocketSessionsOnAnEventLoopHoldNoGoroutine(t *testing.T) {
	loop, err := ws.NewEventLoop(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loop.Close() })
	ts := newTestServer(t, &Server{EventLoop: loop}, func(s *Session, data []byte, binary bool) {
		_ = s.Send(bytes.Clone(data), Text)
	})
	ts.sessions, ts.closed = make(chan *Session, 256), make(chan closeEvent, 256)
	const n = 200
	before := runtime.NumGoroutine()
	conns := make([]*ws.Conn, n)
	for i := range conns {
		conns[i] = ts.dial("transport=websocket")
		readWS(t, conns[i])
		writeWS(t, conns[i], ws.MessageText, "4hi")
		if _, m := readWS(t, conns[i]); m != "4hi" {
			t.Fatalf("echo %q", m)
		}
	}
	// The client side holds no goroutine per connection either (its reads are synchronous).
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine()-before >= n/2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if grown := runtime.NumGoroutine() - before; grown >= n/2 {
		t.Fatalf("%d goroutines more with %d idle sessions", grown, n)
	}
}

func TestAClientThatStopsReadingOnAnEventLoopIsClosedWhenItsQueueIsFull(t *testing.T) {
	loop, err := ws.NewEventLoop(&ws.EventLoopOptions{MaxQueuedBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loop.Close() })
	ts := newTestServer(t, &Server{EventLoop: loop}, nil)
	c := ts.dial("transport=websocket") // never read: the kernel's buffers fill, then the queue
	s := ts.nextSession()
	msg := bytes.Repeat([]byte("x"), 4096)
	for i := 0; i < 50_000 && s.Send(msg, Text) == nil; i++ {
		if i%64 == 0 {
			time.Sleep(time.Millisecond) // let the writers run
		}
	}
	if e := ts.nextClose(); e.reason != ReasonQueueFull || !errors.Is(e.err, ws.ErrWriteQueueFull) {
		t.Fatalf("closed with %q %v, want %q", e.reason, e.err, ReasonQueueFull)
	}
	c.CloseNow()
}

func TestTheHeartbeatOfAWebSocketSessionOnAnEventLoopIsTheLoops(t *testing.T) {
	for _, upgraded := range []bool{false, true} {
		t.Run(fmt.Sprintf("upgraded=%v", upgraded), func(t *testing.T) {
			loop, err := ws.NewEventLoop(nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { loop.Close() })
			ts := newTestServer(t, &Server{EventLoop: loop, PingInterval: 150 * time.Millisecond, PingTimeout: 150 * time.Millisecond}, nil)
			var c *ws.Conn
			var s *Session
			if upgraded {
				s = ts.openPolling()
				c = ts.dial("transport=websocket&sid=" + s.ID())
				writeWS(t, c, ws.MessageText, "2probe")
				readWS(t, c)
				writeWS(t, c, ws.MessageText, "5")
			} else {
				c = ts.dial("transport=websocket")
				readWS(t, c)
				s = ts.nextSession()
			}
			for range 3 { // pings keep coming while answered
				if _, m := readWS(t, c); m != "2" {
					t.Fatalf("got %q, want a ping", m)
				}
				writeWS(t, c, ws.MessageText, "3")
			}
			s.mu.Lock()
			timer := s.timer
			s.mu.Unlock()
			if timer != nil {
				t.Error("the session has a time.Timer of its own on an event loop")
			}
			if e := ts.nextClose(); e.reason != ReasonPingTimeout { // the fourth is not answered
				t.Fatalf("closed with %q, want %q", e.reason, ReasonPingTimeout)
			}
		})
	}
}

func TestVolatileMessagesToAClientThatStopsReadingAreDropped(t *testing.T) {
	inEveryWebSocketMode(t, func(t *testing.T, loop *ws.EventLoop) {
		if loop != nil { // a small write queue, so that it fills fast
			var err error
			if loop, err = ws.NewEventLoop(&ws.EventLoopOptions{MaxQueuedBytes: 64 << 10}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { loop.Close() })
		}
		ts := newTestServer(t, &Server{EventLoop: loop, MaxQueuedBytes: 64 << 10}, nil)
		c := ts.dial("transport=websocket") // never read
		defer c.CloseNow()
		s := ts.nextSession()
		msg := bytes.Repeat([]byte("v"), 4096)
		dropped := 0
		for i := range 20_000 { // ~80 MB offered: far more than the kernel's buffers hold
			switch err := s.Send(msg, Text|Volatile); {
			case errors.Is(err, ErrDropped):
				dropped++
			case err != nil:
				t.Fatalf("volatile send %d: %v", i, err)
			}
			if i%256 == 0 {
				time.Sleep(time.Millisecond) // let the writers run
			}
		}
		if reason, err := s.Err(); reason != "" {
			t.Fatalf("the session closed (%q, %v) on volatile messages", reason, err)
		}
		t.Logf("%d of 20000 volatile messages refused by Send", dropped)
		// Ordinary messages are not dropped: the queue's bound closes the session.
		for i := 0; i < 20_000 && s.Send(msg, Text) == nil; i++ {
			if i%256 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		if e := ts.nextClose(); e.reason != ReasonQueueFull {
			t.Fatalf("closed with %q %v, want %q", e.reason, e.err, ReasonQueueFull)
		}
	})
}

// TestAQueueFullSendDoesNotWaitForTheClient: the Send that finds the queue of a WebSocket
// client that stopped reading full closes the session and returns: it does not wait, up to
// the close timeout, to hand a close frame to a client that reads nothing (in the goroutine
// mode that stalled the sender, a broadcast to a whole room say, for 5 s per slow client).
func TestAQueueFullSendDoesNotWaitForTheClient(t *testing.T) {
	ts := newTestServer(t, &Server{MaxQueuedBytes: 64 << 10}, nil)
	c := ts.dial("transport=websocket") // never read: the kernel's buffers fill, then the queue
	defer c.CloseNow()
	s := ts.nextSession()
	msg := bytes.Repeat([]byte("x"), 4096)
	var err error
	var took time.Duration
	stuck := false // the queue stopped draining: the socket is full, the writer blocked in it
	for i := 0; i < 50_000 && err == nil; i++ {
		start := time.Now()
		err = s.Send(msg, Text)
		took = time.Since(start)
		if !stuck {
			select {
			case <-s.Drain():
			case <-time.After(200 * time.Millisecond):
				stuck = true
			}
		}
	}
	if !stuck {
		t.Fatal("the queue never stopped draining")
	}
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Send: %v, want ErrQueueFull", err)
	}
	if took >= ws.DefaultCloseTimeout/2 {
		t.Errorf("the Send that found the queue full returned after %v: it waited for the client", took)
	}
	if e := ts.nextClose(); e.reason != ReasonQueueFull || !errors.Is(e.err, ErrQueueFull) {
		t.Fatalf("closed with %q %v, want %q", e.reason, e.err, ReasonQueueFull)
	}
}

func TestDoneIsClosedWhenTheSessionEndsWhetherAskedBeforeOrAfter(t *testing.T) {
	ts := newTestServer(t, &Server{}, nil)
	s := ts.openPolling()
	before := s.Done()
	select {
	case <-before:
		t.Fatal("Done closed while the session is open")
	default:
	}
	s.closeNow(ReasonForcedClose, nil)
	for name, done := range map[string]<-chan struct{}{"asked before": before, "asked after": s.Done()} {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Done %s the end is not closed", name)
		}
	}
	ts.nextClose()
}
