package interop

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// The Engine.IO client tests: engineio.Dial against goclient-eio-server.js (engine.io
// 6.6.12) and its Go twin goEIOApp, in each transport mode.

// gcEIOMode is how a client connects.
type gcEIOMode struct {
	name       string
	transports []string
	first      string // the handshake's transport
	final      string // the transport once settled
}

var gcEIOModes = []gcEIOMode{
	{"polling", []string{engineio.TransportPolling}, engineio.TransportPolling, engineio.TransportPolling},
	{"websocket", []string{engineio.TransportWebSocket}, engineio.TransportWebSocket, engineio.TransportWebSocket},
	{"upgrade", nil, engineio.TransportPolling, engineio.TransportWebSocket}, // the default
}

// gcMsg is one message the client received.
type gcMsg struct {
	data   []byte
	binary bool
}

func (m gcMsg) String() string {
	if m.binary {
		return fmt.Sprintf("binary(%d)", len(m.data))
	}
	if len(m.data) > 40 {
		return fmt.Sprintf("text(%d) %q...", len(m.data), m.data[:40])
	}
	return fmt.Sprintf("text %q", m.data)
}

// gcEIOClose is the OnClose call of a client.
type gcEIOClose struct {
	reason engineio.CloseReason
	err    error
}

// gcEIOClient is an engineio.Client whose callbacks feed channels.
type gcEIOClient struct {
	*engineio.Client
	msgs     chan gcMsg
	lost     atomic.Int64 // messages msgs had no room for
	upgrades chan string
	closes   chan gcEIOClose
	nClose   atomic.Int32
}

// gcDialEIO connects a client to srv in the mode (tweak adjusts the options); the client is
// closed at the end of the test.
func gcDialEIO(t *testing.T, srv gcServer, mode gcEIOMode, tweak func(*engineio.ClientOptions)) *gcEIOClient {
	t.Helper()
	c := &gcEIOClient{msgs: make(chan gcMsg, 4096), upgrades: make(chan string, 4), closes: make(chan gcEIOClose, 4)}
	opts := &engineio.ClientOptions{
		Transports: mode.transports,
		OnMessage: func(data []byte, binary bool) {
			select {
			case c.msgs <- gcMsg{bytes.Clone(data), binary}:
			default:
				c.lost.Add(1)
			}
		},
		OnUpgrade: func(transport string) { c.upgrades <- transport },
		OnClose: func(reason engineio.CloseReason, err error) {
			c.nClose.Add(1)
			c.closes <- gcEIOClose{reason, err}
		},
	}
	if tweak != nil {
		tweak(opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), gcWait)
	defer cancel()
	client, err := engineio.Dial(ctx, srv.URL(), opts)
	if err != nil {
		t.Fatalf("Dial %s (%s server): %v", srv.URL(), srv.Kind(), err)
	}
	c.Client = client
	t.Cleanup(func() {
		_ = client.Close()
		select {
		case <-client.Done():
		case <-time.After(gcWait):
			t.Errorf("client not done %v after Close", gcWait)
		}
	})
	return c
}

// next returns the next message, failing the test after timeout.
func (c *gcEIOClient) next(t testing.TB, what string) gcMsg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case cl := <-c.closes:
		t.Fatalf("%s: the client closed first: %s (%v)", what, cl.reason, cl.err)
	case <-time.After(gcWait):
		t.Fatalf("%s: no message within %v (%d lost)", what, gcWait, c.lost.Load())
	}
	panic("unreachable")
}

// awaitClose returns the client's OnClose call, failing the test after timeout.
func (c *gcEIOClient) awaitClose(t testing.TB, what string) gcEIOClose {
	t.Helper()
	select {
	case cl := <-c.closes:
		return cl
	case <-time.After(gcWait):
		t.Fatalf("%s: the client did not close within %v", what, gcWait)
	}
	panic("unreachable")
}

// request asks the server what the request that opened the session carried.
func (c *gcEIOClient) request(t testing.TB) (r struct{ Header, Query, Transport string }) {
	t.Helper()
	if err := c.Send([]byte("__request"), engineio.Text); err != nil {
		t.Fatal(err)
	}
	m := c.next(t, "__request answer")
	if m.binary || json.Unmarshal(m.data, &r) != nil {
		t.Fatalf("__request answered with %v", m)
	}
	return r
}

// echo sends one message and checks that it comes back as it went.
func (c *gcEIOClient) echo(t testing.TB, data []byte, binary bool) {
	t.Helper()
	flags := engineio.Text
	if binary {
		flags = engineio.Binary
	}
	if err := c.Send(data, flags); err != nil {
		t.Fatalf("Send: %v", err)
	}
	sent := gcMsg{data, binary}
	if got := c.next(t, "echo of "+sent.String()); got.binary != binary || !bytes.Equal(got.data, data) {
		t.Fatalf("sent %v, echoed %v", sent, got)
	}
}

// gcEachEIO runs f against every server kind in every mode, in parallel subtests, each with a
// server of its own started with cfg.
func gcEachEIO(t *testing.T, modes []gcEIOMode, cfg gcConfig, f func(t *testing.T, srv gcServer, mode gcEIOMode)) {
	gcLeakCheck(t)
	for _, kind := range gcKinds {
		for _, mode := range modes {
			t.Run(kind+"/"+mode.name, func(t *testing.T) {
				t.Parallel()
				f(t, startGCServer(t, kind, gcEngineIO, cfg), mode)
			})
		}
	}
}

// TestGoClientEngineIOTransports: Dial opens on each transport with the server's
// handshake, and the default mode upgrades to WebSocket (OnUpgrade, Transport), which the
// server sees too; a polling-only client never upgrades.
func TestGoClientEngineIOTransports(t *testing.T) {
	cfg := gcConfig{PingInterval: 2500, PingTimeout: 2000}
	gcEachEIO(t, gcEIOModes, cfg, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		c := gcDialEIO(t, srv, mode, nil)
		hs := c.Handshake()
		if c.ID() == "" || hs.SID != c.ID() {
			t.Errorf("ID %q, handshake sid %q", c.ID(), hs.SID)
		}
		if hs.PingInterval != cfg.PingInterval || hs.PingTimeout != cfg.PingTimeout || hs.MaxPayload != 1e6 {
			t.Errorf("handshake %+v", hs)
		}
		wantUpgrades := []string{}
		if mode.first == engineio.TransportPolling {
			wantUpgrades = []string{engineio.TransportWebSocket}
		}
		if !slices.Equal(hs.Upgrades, wantUpgrades) && !(len(hs.Upgrades) == 0 && len(wantUpgrades) == 0) {
			t.Errorf("handshake upgrades %q, want %q", hs.Upgrades, wantUpgrades)
		}
		open := gcAwaitEvent(t, srv, gcWait, "open", func(e gcEvent) bool { return e.Op == "open" })
		if open.ID != c.ID() || open.Transport != mode.first {
			t.Errorf("server opened %s on %s; client %s on %s", open.ID, open.Transport, c.ID(), mode.first)
		}
		if mode.final != mode.first {
			select {
			case tr := <-c.upgrades:
				if tr != mode.final {
					t.Errorf("OnUpgrade(%q)", tr)
				}
			case cl := <-c.closes:
				t.Fatalf("closed before the upgrade: %s (%v)", cl.reason, cl.err)
			case <-time.After(gcWait):
				t.Fatalf("no upgrade within %v", gcWait)
			}
		}
		if tr := c.Transport(); tr != mode.final {
			t.Errorf("Transport() = %q, want %q", tr, mode.final)
		}
		if r := c.request(t); r.Transport != mode.final {
			t.Errorf("the server's session is on %q, want %q", r.Transport, mode.final)
		}
		c.echo(t, []byte("hello"), false)
		c.echo(t, []byte{0, 1, 2, 0xff}, true)
		select {
		case tr := <-c.upgrades:
			if mode.final == mode.first {
				t.Errorf("OnUpgrade(%q) in mode %s", tr, mode.name)
			} else {
				t.Errorf("a second OnUpgrade(%q)", tr)
			}
		default:
		}
		if tr := c.Transport(); tr != mode.final {
			t.Errorf("Transport() = %q at the end, want %q", tr, mode.final)
		}
	})
}

// TestGoClientEngineIOEcho: text and binary messages up to 300 KB come back from the
// server unchanged, sent all at once (over the upgrade, in the default mode).
func TestGoClientEngineIOEcho(t *testing.T) {
	sizes := []int{1, 125, 1000, 65536, 300_000}
	gcEachEIO(t, gcEIOModes, gcConfig{}, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		c := gcDialEIO(t, srv, mode, nil)
		var sent []gcMsg
		for _, typ := range msgTypes {
			for _, n := range sizes {
				m := gcMsg{pattern(typ, n), typ == "binary"}
				flags := engineio.Text
				if m.binary {
					flags = engineio.Binary
				}
				if err := c.Send(m.data, flags); err != nil {
					t.Fatalf("Send %v: %v", m, err)
				}
				sent = append(sent, m)
			}
		}
		for i, m := range sent {
			got := c.next(t, fmt.Sprintf("echo %d of %d", i, len(sent)))
			if got.binary != m.binary || !bytes.Equal(got.data, m.data) {
				t.Fatalf("echo %d: sent %v, got %v", i, m, got)
			}
		}
	})
}

// TestGoClientEngineIOOrdered: 1,000 messages, text and binary in turn, sent at once, come
// back all and in order.
func TestGoClientEngineIOOrdered(t *testing.T) {
	const count = 1000
	gcEachEIO(t, gcEIOModes, gcConfig{}, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		c := gcDialEIO(t, srv, mode, nil)
		err := sendAll(count, "message", func(i int) error {
			if i%2 == 0 {
				return c.Send([]byte("m"+strconv.Itoa(i)), engineio.Text)
			}
			return c.Send(binary.BigEndian.AppendUint32(nil, uint32(i)), engineio.Binary)
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := range count {
			got := c.next(t, fmt.Sprintf("message %d", i))
			want := gcMsg{[]byte("m" + strconv.Itoa(i)), false}
			if i%2 == 1 {
				want = gcMsg{binary.BigEndian.AppendUint32(nil, uint32(i)), true}
			}
			if got.binary != want.binary || !bytes.Equal(got.data, want.data) {
				t.Fatalf("message %d: got %v, want %v", i, got, want)
			}
		}
	})
}

// TestGoClientEngineIOHeartbeat: with pings every 300 ms and a 200 ms timeout, an idle
// client answers every ping and stays connected (neither side closes for 2 s), then still
// echoes.
func TestGoClientEngineIOHeartbeat(t *testing.T) {
	gcEachEIO(t, gcEIOModes, gcConfig{PingInterval: 300, PingTimeout: 200}, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		c := gcDialEIO(t, srv, mode, nil)
		idle := time.NewTimer(2 * time.Second)
		defer idle.Stop()
		for quiet := false; !quiet; {
			select {
			case cl := <-c.closes:
				t.Fatalf("closed while idle: %s (%v)", cl.reason, cl.err)
			case ev := <-srv.Events():
				if ev.Op == "close" {
					t.Fatalf("the server closed the session while idle: %s", ev.Reason)
				}
			case <-idle.C:
				quiet = true
			}
		}
		c.echo(t, []byte("still here"), false)
		for len(srv.Events()) > 0 {
			if ev := <-srv.Events(); ev.Op == "close" {
				t.Fatalf("the server closed the session: %s", ev.Reason)
			}
		}
	})
}

// TestGoClientEngineIOPingTimeout: a server that stops answering (Node: SIGSTOP; Go: every
// write held back) sends no more pings, and the client ends the connection with "ping
// timeout" (within pingInterval + pingTimeout, 500 ms, plus the scheduling of a loaded
// machine).
func TestGoClientEngineIOPingTimeout(t *testing.T) {
	gcEachEIO(t, gcEIOModes, gcConfig{PingInterval: 300, PingTimeout: 200}, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		c := gcDialEIO(t, srv, mode, nil)
		if mode.final != mode.first {
			select {
			case <-c.upgrades:
			case <-time.After(gcWait):
				t.Fatal("no upgrade")
			}
		}
		c.echo(t, []byte("before"), false)
		srv.Freeze(t)
		defer srv.Thaw(t)
		cl := c.awaitClose(t, "frozen server")
		if cl.reason != engineio.ReasonPingTimeout {
			t.Errorf("closed with %q (%v), want %q", cl.reason, cl.err, engineio.ReasonPingTimeout)
		}
		if reason, _ := c.Err(); reason != engineio.ReasonPingTimeout {
			t.Errorf("Err() = %q", reason)
		}
		if err := c.Send([]byte("after"), engineio.Text); err == nil {
			t.Error("Send after the timeout: no error")
		}
	})
}

// TestGoClientEngineIOMaxPayload: the handshake announces the server's maxHttpBufferSize;
// a message within it echoes; a message over it makes the server end the session (Node
// destroys the POST's connection or closes the WebSocket with 1009), and the client sees
// its connection end (transport error or close) without the message ever coming back.
func TestGoClientEngineIOMaxPayload(t *testing.T) {
	const limit = 10_000
	modes := gcEIOModes[:2] // polling: the POST body; websocket: the message
	gcEachEIO(t, modes, gcConfig{MaxHTTPBufferSize: limit}, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		c := gcDialEIO(t, srv, mode, nil)
		if mp := c.Handshake().MaxPayload; mp != limit {
			t.Errorf("handshake maxPayload %d, want %d", mp, limit)
		}
		c.echo(t, pattern("text", limit/2), false)
		c.echo(t, pattern("binary", limit/2), true)
		big := pattern("text", 5*limit)
		if err := c.Send(big, engineio.Text); err != nil {
			t.Logf("Send of %d bytes: %v", len(big), err)
		}
		for {
			select {
			case m := <-c.msgs:
				t.Fatalf("got %v after sending %d bytes to a server that takes %d", m, len(big), limit)
			case cl := <-c.closes:
				if cl.reason != engineio.ReasonTransportError && cl.reason != engineio.ReasonTransportClose {
					t.Errorf("closed with %q (%v), want transport error or close", cl.reason, cl.err)
				}
				t.Logf("client closed: %s (%v)", cl.reason, cl.err)
			case <-time.After(gcWait):
				t.Fatalf("the connection did not end within %v", gcWait)
			}
			break
		}
		ev := gcAwaitEvent(t, srv, gcWait, "close", func(e gcEvent) bool { return e.Op == "close" })
		if ev.ID != c.ID() {
			t.Errorf("server closed %s, client is %s", ev.ID, c.ID())
		}
		t.Logf("server closed: %s", ev.Reason)
	})
}

// TestGoClientEngineIOHeaderQuery: the client's custom header and query reach the server
// with the request that opens the session, on every transport.
func TestGoClientEngineIOHeaderQuery(t *testing.T) {
	gcEachEIO(t, gcEIOModes, gcConfig{}, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		c := gcDialEIO(t, srv, mode, func(o *engineio.ClientOptions) {
			o.Header = http.Header{"X-Duplex-Test": {"from go " + mode.name}}
			o.Query = url.Values{"duplex": {"q-" + mode.name}}
		})
		r := c.request(t)
		if r.Header != "from go "+mode.name || r.Query != "q-"+mode.name {
			t.Errorf("the server saw header %q, query %q", r.Header, r.Query)
		}
	})
}

// TestGoClientEngineIOClose: Close ends the connection (OnClose once, "forced close"; Send
// fails) after writing what was sent before it, and the server sees the client close its
// session: "transport close" once the connection has settled; right after Dial, in the
// middle of the upgrade in the default mode, with messages still in flight, the server
// still receives them all first (its echo of the last one may meet the closed WebSocket:
// Node then says "transport error").
func TestGoClientEngineIOClose(t *testing.T) {
	gcEachEIO(t, gcEIOModes, gcConfig{}, func(t *testing.T, srv gcServer, mode gcEIOMode) {
		closeNow := func(t *testing.T, c *gcEIOClient, sent, received []string, reasons ...string) {
			t.Helper()
			for _, m := range sent {
				if err := c.Send([]byte(m), engineio.Text); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			cl := c.awaitClose(t, "Close")
			if cl.reason != engineio.ReasonForcedClose {
				t.Errorf("OnClose(%q, %v), want %q", cl.reason, cl.err, engineio.ReasonForcedClose)
			}
			select {
			case <-c.Done():
			case <-time.After(gcWait):
				t.Fatal("Done not closed")
			}
			if n := c.nClose.Load(); n != 1 {
				t.Errorf("OnClose called %d times", n)
			}
			if err := c.Send([]byte("late"), engineio.Text); err == nil {
				t.Error("Send after Close: no error")
			}
			if err := c.Close(); err == nil {
				t.Error("a second Close: no error")
			}
			var got []string
			ev := gcAwaitEvent(t, srv, gcWait, "close", func(e gcEvent) bool {
				if e.Op == "message" && e.ID == c.ID() {
					got = append(got, e.Text)
				}
				return e.Op == "close" && e.ID == c.ID()
			})
			if !slices.Equal(got, received) {
				t.Errorf("the server received %q before the close, want %q", got, received)
			}
			if !slices.Contains(reasons, ev.Reason) {
				t.Errorf("the server closed the session with %q, want one of %q", ev.Reason, reasons)
			}
		}

		settled := gcDialEIO(t, srv, mode, nil)
		if mode.final != mode.first {
			select {
			case <-settled.upgrades:
			case <-time.After(gcWait):
				t.Fatal("no upgrade")
			}
		}
		settled.echo(t, []byte("hello"), false)
		closeNow(t, settled, nil, []string{"hello"}, "transport close")

		inFlight := []string{"first", "last words"}
		closeNow(t, gcDialEIO(t, srv, mode, nil), inFlight, inFlight, "transport close", "transport error")
	})
}

// ---- the Engine.IO twin of goclient-eio-server.js ----

// goEIOApp is goclient-eio-server.js on engineio.Server: every message reported and echoed
// as it came, "__request" answered with what the request that opened the session carried.
func goEIOApp(cfg gcConfig, events chan<- gcEvent, logger *slog.Logger) gcApp {
	srv := &engineio.Server{
		PingInterval:      gcMS(cfg.PingInterval),
		PingTimeout:       gcMS(cfg.PingTimeout),
		MaxHTTPBufferSize: int64(cfg.MaxHTTPBufferSize),
		Logger:            logger,
	}
	srv.OnConnection = func(s *engineio.Session) {
		id := s.ID()
		gcSend(events, gcEvent{Op: "open", ID: id, Transport: s.Transport()})
		r := s.Request()
		s.OnMessage = func(data []byte, binary bool) {
			ev := gcEvent{Op: "message", ID: id, Size: len(data), Binary: binary}
			if !binary {
				ev.Text = string(data) // the first 40 characters (ASCII ones: JavaScript counts UTF-16 units)
				if r := []rune(ev.Text); len(r) > 40 {
					ev.Text = string(r[:40])
				}
			}
			gcSend(events, ev)
			if !binary && string(data) == "__request" {
				reply, _ := json.Marshal(map[string]string{
					"header":    r.Header.Get("X-Duplex-Test"),
					"query":     r.URL.Query().Get("duplex"),
					"transport": s.Transport(),
				})
				_ = s.Send(reply, engineio.Text)
				return
			}
			flags := engineio.Text
			if binary {
				flags = engineio.Binary
			}
			_ = s.Send(bytes.Clone(data), flags) // data is the server's only during the call
		}
		s.OnClose = func(reason engineio.CloseReason, _ error) {
			gcSend(events, gcEvent{Op: "close", ID: id, Reason: string(reason)})
		}
	}
	return gcApp{handler: srv, shutdown: srv.Shutdown}
}
