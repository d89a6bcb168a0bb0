package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
)

// The Engine.IO tests run the official Node client, engine.io-client (eio-client.js),
// against engineio.Server mounted on an httptest.Server, in three transport modes; the two
// with a WebSocket in both of the server's serving modes (eiotest.Modes).

// eioMode is how the client connects.
type eioMode struct {
	name    string
	opts    map[string]any // engine.io-client options
	first   string         // the transport of the open
	final   string         // the transport once settled (after the upgrade, if any)
	upgrade bool           // the client upgrades polling → websocket
	serve   eiotest.Mode   // how the server serves the WebSocket connection
}

// eioModes are the client's transport modes, those with a WebSocket in both serving
// modes; polling runs once (an event loop serves WebSocket connections only).
var eioModes = []eioMode{
	{"polling", map[string]any{"transports": []string{"polling"}}, "polling", "polling", false, eiotest.Goroutines},
	{"websocket/goroutine", map[string]any{"transports": []string{"websocket"}}, "websocket", "websocket", false, eiotest.Goroutines},
	{"upgrade/goroutine", map[string]any{}, "polling", "websocket", true, eiotest.Goroutines}, // the default: polling, then websocket
	{"websocket/evented", map[string]any{"transports": []string{"websocket"}}, "websocket", "websocket", false, eiotest.Evented},
	{"upgrade/evented", map[string]any{}, "polling", "websocket", true, eiotest.Evented},
}

// eioUpgradeMode is the upgrade mode served in serve.
func eioUpgradeMode(t testing.TB, serve eiotest.Mode) eioMode {
	t.Helper()
	for _, m := range eioModes {
		if m.upgrade && m.serve == serve {
			return m
		}
	}
	t.Fatalf("no upgrade mode served in %s", serve)
	panic("unreachable")
}

// eioTimeout bounds every wait of these tests (an upper bound, never an expectation).
const eioTimeout = 30 * time.Second

func requireEIOClient(t testing.TB) {
	t.Helper()
	requireNode(t)
	_, err := os.Stat("node_modules/engine.io-client/package.json")
	needPeer(t, "node_modules/engine.io-client", err == nil)
}

// eioStep is one step of eio-client.js (see the script).
type eioStep struct {
	Op         string `json:"op"`
	Type       string `json:"type,omitempty"`
	Size       int    `json:"size,omitempty"`
	As         string `json:"as,omitempty"`
	Count      int    `json:"count,omitempty"`
	ID         string `json:"id,omitempty"`
	Ms         int    `json:"ms,omitempty"`
	After      int    `json:"after,omitempty"`
	Max        int    `json:"max,omitempty"`
	IntervalMs int    `json:"intervalMs,omitempty"`
	PerTick    int    `json:"perTick,omitempty"`
}

// eioEvent is one line printed by eio-client.js (fields by op).
type eioEvent struct {
	Op           string   `json:"op"`
	Transport    string   `json:"transport"`
	ID           string   `json:"id"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
	Reason       string   `json:"reason"`
	Message      string   `json:"message"`
	Code         int      `json:"code"`
	Type         string   `json:"type"`
	Size         int      `json:"size"`
	As           string   `json:"as"`
	GotType      string   `json:"gotType"`
	GotClass     string   `json:"gotClass"`
	Len          int      `json:"len"`
	Match        bool     `json:"match"`
	SHA256       string   `json:"sha256"`
	Wire         string   `json:"wire"`
	Pings        int      `json:"pings"`
	Closed       bool     `json:"closed"`
	streamStats           // of "seq" and "stream"
}

// eioClient is a running eio-client.js.
type eioClient struct {
	p    *nodeProc
	seen []eioEvent // every event read so far
}

// startEIOClient starts eio-client.js against base in the given mode; extra
// options are merged into the mode's.
func startEIOClient(t *testing.T, base string, mode eioMode, extra map[string]any, steps []eioStep) *eioClient {
	t.Helper()
	requireEIOClient(t)
	opts := map[string]any{}
	for k, v := range mode.opts {
		opts[k] = v
	}
	args := map[string]any{"opts": opts, "steps": steps, "timeoutMs": int(eioTimeout / time.Millisecond)}
	for k, v := range extra {
		if k == "probeDelayMs" { // an argument of eio-client.js, not a client option
			args[k] = v
			continue
		}
		opts[k] = v
	}
	js, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return &eioClient{p: startNode(t, eioTimeout+10*time.Second, "eio-client.js", base, string(js))}
}

// next returns the client's next event; an "error" line or an early exit fails the test.
func (c *eioClient) next(t testing.TB, timeout time.Duration) eioEvent {
	t.Helper()
	line, ok := c.p.nextLine(t, timeout, func() string { return fmt.Sprintf("events %+v", c.seen) })
	if !ok {
		t.Fatalf("eio-client.js: no output within %v; events %+v\nstderr:\n%s", timeout, c.seen, c.p.stderr.String())
	}
	return c.record(t, line)
}

// record decodes a line of the client and adds it to seen; an "error" line fails the test.
func (c *eioClient) record(t testing.TB, line []byte) eioEvent {
	t.Helper()
	ev := decodeLine[eioEvent](t, "eio-client.js", line)
	c.seen = append(c.seen, ev)
	if ev.Op == "error" {
		t.Fatalf("eio-client.js failed: %s\nevents: %+v\nstderr:\n%s", ev.Message, c.seen, c.p.stderr.String())
	}
	return ev
}

// waitOp skips events until one with the given op (at most 100000 events, within eioTimeout).
func (c *eioClient) waitOp(t testing.TB, op string) eioEvent {
	t.Helper()
	deadline := time.Now().Add(eioTimeout)
	for range 100000 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if ev := c.next(t, left); ev.Op == op {
			return ev
		}
	}
	t.Fatalf("eio-client.js: no %q event within %v; events %+v", op, eioTimeout, c.seen)
	panic("unreachable")
}

// wait reads the rest of the client's output and waits for it to exit 0.
func (c *eioClient) wait(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(eioTimeout)
	for range 100000 {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("eio-client.js still running after %v; events %+v", eioTimeout, c.seen)
		}
		select {
		case line, ok := <-c.p.lines:
			if !ok {
				<-c.p.exited
				if c.p.err != nil {
					t.Fatalf("eio-client.js: %v; events %+v\nstderr:\n%s", c.p.err, c.seen, c.p.stderr.String())
				}
				return
			}
			c.record(t, line)
		case <-time.After(left):
		}
	}
}

// has reports whether an event with op was seen.
func (c *eioClient) has(op string) bool {
	for _, ev := range c.seen {
		if ev.Op == op {
			return true
		}
	}
	return false
}

// open reads the open event and checks it against the mode.
func (c *eioClient) open(t testing.TB, mode eioMode) eioEvent {
	t.Helper()
	ev := c.waitOp(t, "open")
	if ev.Transport != mode.first {
		t.Errorf("client opened on %q, want %q", ev.Transport, mode.first)
	}
	wantUpgrades := "[websocket]"
	if mode.first == "websocket" {
		wantUpgrades = "[]"
	}
	if got := fmt.Sprint(ev.Upgrades); got != wantUpgrades {
		t.Errorf("open packet's upgrades = %s, want %s", got, wantUpgrades)
	}
	return ev
}

// eioMsg is one message the server received.
type eioMsg struct {
	data      []byte
	binary    bool
	transport string // the session's Transport() during OnMessage
}

// eioSess is one server session as the test sees it.
type eioSess struct {
	s      *engineio.Session
	msgs   chan eioMsg
	lost   atomic.Int64 // messages not recorded (msgs full)
	done   chan struct{}
	reason engineio.CloseReason // valid after done
	cause  error
	wg     sync.WaitGroup // goroutines the test started for the session
}

// closed returns the close reason, failing if the session is still open after eioTimeout.
func (es *eioSess) closed(t testing.TB) (engineio.CloseReason, error) {
	t.Helper()
	select {
	case <-es.done:
		return es.reason, es.cause
	case <-time.After(eioTimeout):
		t.Fatalf("server session %s still open after %v", es.s.ID(), eioTimeout)
	}
	panic("unreachable")
}

// message returns the next message the session received.
func (es *eioSess) message(t testing.TB) eioMsg {
	t.Helper()
	select {
	case m := <-es.msgs:
		return m
	case <-time.After(eioTimeout):
		t.Fatalf("server session: no message within %v (lost %d)", eioTimeout, es.lost.Load())
	}
	panic("unreachable")
}

// eioServer is an engineio.Server on an httptest.Server.
type eioServer struct {
	srv      *engineio.Server
	ts       *httptest.Server
	url      string // http://127.0.0.1:port
	sessions chan *eioSess
	logs     lockedBuffer
}

// eioHooks customize the server; nil fields keep the defaults.
type eioHooks struct {
	noEcho bool                   // record messages only (default: record and echo each back, same kind)
	onOpen func(es *eioSess)      // called in OnConnection (must not block; start goroutines with es.wg)
	config func(*engineio.Server) // set options
}

// startEIOServer starts the Engine.IO server, serving WebSocket connections in serve.
func startEIOServer(t *testing.T, serve eiotest.Mode, hooks eioHooks) *eioServer {
	t.Helper()
	requireEIOClient(t)
	e := &eioServer{sessions: make(chan *eioSess, 16)}
	e.srv = &engineio.Server{
		Logger:    slog.New(slog.NewTextHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		EventLoop: serve.Loop(t), // closed after the server's shutdown (a cleanup registered later)
	}
	if hooks.config != nil {
		hooks.config(e.srv)
	}
	var all sync.WaitGroup // the sessions' goroutines
	e.srv.OnConnection = func(s *engineio.Session) {
		es := &eioSess{s: s, msgs: make(chan eioMsg, 50000), done: make(chan struct{})}
		s.OnMessage = func(data []byte, binary bool) {
			select {
			case es.msgs <- eioMsg{data: bytes.Clone(data), binary: binary, transport: s.Transport()}:
			default:
				es.lost.Add(1)
			}
			if !hooks.noEcho {
				if err := s.Send(bytes.Clone(data), sendFlag(binary)); err != nil {
					fmt.Fprintf(&e.logs, "test: echo Send: %v\n", err)
				}
			}
		}
		s.OnClose = func(reason engineio.CloseReason, cause error) {
			es.reason, es.cause = reason, cause
			close(es.done)
		}
		if hooks.onOpen != nil {
			hooks.onOpen(es)
		}
		all.Add(1)
		go func() { defer all.Done(); <-es.done; es.wg.Wait() }()
		select {
		case e.sessions <- es:
		default:
			fmt.Fprintf(&e.logs, "test: more than %d sessions\n", cap(e.sessions))
		}
	}
	e.ts = httptest.NewServer(e.srv)
	e.url = e.ts.URL
	t.Cleanup(func() { stopTestServer(t, e.srv.Shutdown, e.ts, all.Wait, &e.logs) })
	return e
}

// session returns the next new session.
func (e *eioServer) session(t testing.TB) *eioSess {
	t.Helper()
	select {
	case es := <-e.sessions:
		return es
	case <-time.After(eioTimeout):
		t.Fatalf("no Engine.IO session within %v", eioTimeout)
	}
	panic("unreachable")
}

// sendFlag is the flag that sends a message as binary or as text.
func sendFlag(binary bool) engineio.SendFlag {
	if binary {
		return engineio.Binary
	}
	return engineio.Text
}

// sendNumbered sends message i of the numbered stream with prefix p (see numbered).
func sendNumbered(s *engineio.Session, p string, i int) error {
	data, bin := numbered(p, i)
	return s.Send(data, sendFlag(bin))
}

// numbered is message i of a numbered stream with prefix p (see eio-client.js):
// "<p><i>", text when i is even, binary when odd.
func numbered(p string, i int) ([]byte, bool) {
	return []byte(p + strconv.Itoa(i)), i%2 == 1
}

// checkNumbered checks that msgs are messages 0..len-1 of prefix p, in order.
func checkNumbered(t testing.TB, who string, msgs []eioMsg, p string) {
	t.Helper()
	for i, m := range msgs {
		want, bin := numbered(p, i)
		if !bytes.Equal(m.data, want) || m.binary != bin {
			t.Errorf("%s: message %d is %q (binary=%v), want %q (binary=%v): lost, duplicated or reordered", who, i, m.data, m.binary, want, bin)
			return
		}
	}
}

// upgradeSteps makes the client wait for the upgrade in the upgrade mode.
func upgradeSteps(mode eioMode) []eioStep {
	if mode.upgrade {
		return []eioStep{{Op: "awaitUpgrade"}}
	}
	return nil
}

// checkUpgrade checks the client's upgrade events and the session's transport.
func checkUpgrade(t testing.TB, c *eioClient, es *eioSess, mode eioMode) {
	t.Helper()
	if mode.upgrade {
		if !c.has("upgrade") {
			c.waitOp(t, "upgrade")
		}
		eiotest.AwaitTransport(t, es.s, "websocket", eioTimeout)
	} else if got := es.s.Transport(); got != mode.final {
		t.Errorf("server session's Transport() = %q, want %q", got, mode.final)
	}
	if c.has("upgradeError") {
		t.Errorf("client reported an upgradeError: %+v", c.seen)
	}
}

// The client opens on each transport mode, the open packet carries the
// server's settings, the upgrade mode ends on websocket on both sides, and a
// client close is a "transport close" for the server.
func TestEngineIOClientTransports(t *testing.T) {
	requireEIOClient(t)
	for _, mode := range eioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{})
			steps := append(upgradeSteps(mode), eioStep{Op: "mark", ID: "ready"}, eioStep{Op: "echo", Type: "text", Size: 5}, eioStep{Op: "close"})
			c := startEIOClient(t, srv.url, mode, nil, steps)
			open := c.open(t, mode)
			if open.PingInterval != 25000 || open.PingTimeout != 20000 || open.MaxPayload != 1000000 {
				t.Errorf("open packet: pingInterval %d, pingTimeout %d, maxPayload %d; want the defaults 25000, 20000, 1000000",
					open.PingInterval, open.PingTimeout, open.MaxPayload)
			}
			es := srv.session(t)
			if es.s.ID() != open.ID {
				t.Errorf("client's sid %q, server session ID %q", open.ID, es.s.ID())
			}
			mark := c.waitOp(t, "mark")
			if mark.Transport != mode.final {
				t.Errorf("client's transport %q, want %q", mark.Transport, mode.final)
			}
			checkUpgrade(t, c, es, mode)
			if mode.upgrade {
				for _, ev := range c.seen {
					if (ev.Op == "upgrading" || ev.Op == "upgrade") && ev.Transport != "websocket" {
						t.Errorf("client %s to %q", ev.Op, ev.Transport)
					}
				}
			}
			ev := c.waitOp(t, "echo")
			if !ev.Match {
				t.Errorf("echo: %+v", ev)
			}
			cl := c.waitOp(t, "close")
			if cl.Reason != "forced close" {
				t.Errorf("client's own close reported %q", cl.Reason)
			}
			c.wait(t)
			reason, cause := es.closed(t)
			t.Logf("server OnClose after the client's close: %q (cause %v)", reason, cause)
			if reason != engineio.ReasonTransportClose {
				t.Errorf("server OnClose reason %q, want %q", reason, engineio.ReasonTransportClose)
			}
		})
	}
}

// eioEchoSteps: text and binary (sent as Buffer, ArrayBuffer and Uint8Array),
// empty, small and 500 KB.
var eioEchoSteps = []eioStep{
	{Op: "echo", Type: "text", Size: 0},
	{Op: "echo", Type: "text", Size: 1},
	{Op: "echo", Type: "text", Size: 100},
	{Op: "echo", Type: "binary", Size: 0},
	{Op: "echo", Type: "binary", Size: 1},
	{Op: "echo", Type: "binary", Size: 100, As: "arraybuffer"},
	{Op: "echo", Type: "binary", Size: 100, As: "uint8array"},
	{Op: "echo", Type: "text", Size: 500_000},
	{Op: "echo", Type: "binary", Size: 500_000},
}

// Text and binary messages (empty to 500 KB, under MaxHTTPBufferSize 1e6) go
// both ways on every transport mode: the server sees the client's binary as
// binary=true, and what it sends with engineio.Binary reaches the client as
// binary (over WebSocket, in a binary frame). In the upgrade mode the steps run
// from the open on (across the upgrade) and again after it.
func TestEngineIOClientMessages(t *testing.T) {
	requireEIOClient(t)
	for _, mode := range eioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{config: func(s *engineio.Server) { s.MaxHTTPBufferSize = 1e6 }})
			steps := append([]eioStep(nil), eioEchoSteps...)
			if mode.upgrade {
				steps = append(append(steps, eioStep{Op: "awaitUpgrade"}), eioEchoSteps...)
			}
			c := startEIOClient(t, srv.url, mode, nil, append(steps, eioStep{Op: "close"}))
			c.open(t, mode)
			es := srv.session(t)
			for i, st := range steps {
				if st.Op != "echo" {
					continue
				}
				name := fmt.Sprintf("%d:%s/%d", i, st.Type, st.Size)
				if st.As != "" {
					name += "/" + st.As
				}
				ev := c.waitOp(t, "echo")
				m := es.message(t)
				t.Run(name, func(t *testing.T) {
					if ev.Type != st.Type || ev.Size != st.Size {
						t.Fatalf("result is for %s/%d", ev.Type, ev.Size)
					}
					if m.binary != (st.Type == "binary") || len(m.data) != st.Size || sha256Hex(m.data) != patternSHA(st.Type, st.Size) {
						t.Errorf("server received binary=%v, %d bytes, sha256 match %v", m.binary, len(m.data), sha256Hex(m.data) == patternSHA(st.Type, st.Size))
					}
					if ev.GotType != st.Type || ev.Len != st.Size || !ev.Match || ev.SHA256 != patternSHA(st.Type, st.Size) {
						t.Errorf("client got the echo as %s (%s) of %d bytes, identical=%v", ev.GotType, ev.GotClass, ev.Len, ev.Match)
					}
					// Over a WebSocket, binary travels in binary frames and text in text frames.
					if ev.Transport == "websocket" {
						want := map[string]string{"text": "text", "binary": "binary"}[st.Type]
						if ev.Wire != want {
							t.Errorf("the echo came in a %q WebSocket frame, want %q", ev.Wire, want)
						}
					} else if ev.Transport != "polling" {
						t.Errorf("the echo came over %q", ev.Transport)
					}
				})
			}
			checkUpgrade(t, c, es, mode)
			c.wait(t)
			if n := es.lost.Load(); n != 0 {
				t.Errorf("%d server messages not recorded", n)
			}
		})
	}
}

// 1,000 messages each way at once (alternating text and binary), on every
// transport mode: all arrive, in order, with their kind. In the upgrade mode
// the upgrade happens while they flow.
func TestEngineIOClientThousandMessages(t *testing.T) {
	requireEIOClient(t)
	const count = 1000
	for _, mode := range eioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			sendErr := make(chan error, 1)
			srv := startEIOServer(t, mode.serve, eioHooks{noEcho: true, onOpen: func(es *eioSess) {
				es.wg.Add(1)
				go func() {
					defer es.wg.Done()
					sendErr <- sendAll(count, "Send", func(i int) error { return sendNumbered(es.s, "s", i) })
				}()
			}})
			// The client starts at once: in the upgrade mode the switch happens while messages flow.
			steps := append([]eioStep{{Op: "seq", Count: count}}, upgradeSteps(mode)...)
			c := startEIOClient(t, srv.url, mode, nil, append(steps, eioStep{Op: "close"}))
			c.open(t, mode)
			es := srv.session(t)
			checkClientCount(t, c.waitOp(t, "seq").streamStats, count)
			if err := <-sendErr; err != nil {
				t.Error(err)
			}
			msgs := make([]eioMsg, 0, count)
			for range count {
				msgs = append(msgs, es.message(t))
			}
			checkNumbered(t, "server", msgs, "c")
			checkUpgrade(t, c, es, mode)
			c.wait(t)
			reason, _ := es.closed(t)
			if reason != engineio.ReasonTransportClose {
				t.Errorf("server OnClose reason %q, want %q", reason, engineio.ReasonTransportClose)
			}
			select {
			case m := <-es.msgs:
				t.Errorf("server received an extra message %q", m.data)
			default:
			}
		})
	}
}

// A continuous stream each way spans the polling → websocket upgrade: both
// sides send from the open until well after the switch; nothing is lost,
// duplicated or reordered, and each direction used both transports. Three
// pacings vary how the stream interleaves with the upgrade's steps.
func TestEngineIOClientStreamAcrossUpgrade(t *testing.T) {
	requireEIOClient(t)
	paces := []struct {
		name                   string
		clientEveryMs, perTick int // the client sends perTick messages every clientEveryMs
		serverEvery            time.Duration
		serverBurst            int // the server sends serverBurst messages every serverEvery
	}{
		{"steady", 2, 2, time.Millisecond, 1},
		{"bursts", 1, 20, time.Millisecond, 10},
		{"slow", 5, 1, 3 * time.Millisecond, 1},
	}
	for _, pace := range paces {
		for _, serve := range eiotest.Modes {
			t.Run(pace.name+"/"+string(serve), func(t *testing.T) {
				t.Parallel()
				testStreamAcrossUpgrade(t, eioUpgradeMode(t, serve), pace.clientEveryMs, pace.perTick, pace.serverEvery, pace.serverBurst)
			})
		}
	}
}

func testStreamAcrossUpgrade(t *testing.T, mode eioMode, clientEveryMs, perTick int, serverEvery time.Duration, serverBurst int) {
	const after, max = 200, 20000 // messages after the upgrade; cap per direction
	sent := make(chan streamSent, 1)
	srv := startEIOServer(t, mode.serve, eioHooks{noEcho: true, onOpen: func(es *eioSess) {
		es.wg.Add(1)
		go func() {
			defer es.wg.Done()
			deadline := time.Now().Add(eioTimeout)
			n, afterN := 0, 0
			var err error
			for n < max && afterN < after && time.Now().Before(deadline) && err == nil {
				for range serverBurst {
					if err = sendNumbered(es.s, "s", n); err != nil {
						break
					}
					n++
					if es.s.Transport() == "websocket" {
						afterN++
					}
				}
				select {
				case <-es.done:
					sent <- streamSent{n, fmt.Errorf("session closed after %d messages", n)}
					return
				case <-time.After(serverEvery):
				}
			}
			if err == nil {
				err = es.s.Send([]byte("end:"+strconv.Itoa(n)), engineio.Text)
			}
			sent <- streamSent{n, err}
		}()
	}})
	c := startEIOClient(t, srv.url, mode, map[string]any{"probeDelayMs": 300}, []eioStep{{Op: "stream", After: after, Max: max, IntervalMs: clientEveryMs, PerTick: perTick}, {Op: "close"}})
	c.open(t, mode)
	es := srv.session(t)

	// Server side: the client's numbered messages up to its "end:N".
	var msgs []eioMsg
	clientTotal := -1
	for range max + 1 {
		m := es.message(t)
		if !m.binary && bytes.HasPrefix(m.data, []byte("end:")) {
			clientTotal, _ = strconv.Atoi(string(m.data[4:]))
			break
		}
		msgs = append(msgs, m)
	}
	checkNumbered(t, "server", msgs, "c")
	if clientTotal != len(msgs) {
		t.Errorf("client says it sent %d, server received %d", clientTotal, len(msgs))
	}
	var overPolling, overWS int
	for _, m := range msgs {
		if m.transport == "polling" {
			overPolling++
		} else if m.transport == "websocket" {
			overWS++
		}
	}
	t.Logf("server received %d client messages: %d while on polling, %d on websocket", len(msgs), overPolling, overWS)
	if overPolling == 0 || overWS == 0 {
		t.Errorf("the client's stream did not span the upgrade (polling %d, websocket %d)", overPolling, overWS)
	}

	// Client side.
	res := <-sent
	ev := c.waitOp(t, "stream")
	checkClientStream(t, ev.streamStats, res, len(msgs))
	if ev.SentBefore == 0 || ev.SentBefore == ev.Sent || ev.ReceivedBefore == 0 || ev.ReceivedBefore == ev.Received {
		t.Errorf("the stream did not span the upgrade: sent %d/%d and received %d/%d before it", ev.SentBefore, ev.Sent, ev.ReceivedBefore, ev.Received)
	}
	checkUpgrade(t, c, es, mode)
	c.wait(t)
	if n := es.lost.Load(); n != 0 {
		t.Errorf("%d server messages not recorded", n)
	}
}

// Server.Shutdown closes every session ("server shutting down"), refuses new
// ones with 503, and the client sees its socket close.
func TestEngineIOClientServerShutdown(t *testing.T) {
	requireEIOClient(t)
	for _, mode := range eioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{})
			c := startEIOClient(t, srv.url, mode, nil, append(upgradeSteps(mode), eioStep{Op: "mark", ID: "ready"}, eioStep{Op: "awaitClose"}))
			c.open(t, mode)
			es := srv.session(t)
			c.waitOp(t, "mark")
			checkUpgrade(t, c, es, mode)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.srv.Shutdown(ctx); err != nil {
				t.Errorf("Shutdown: %v", err)
			}
			reason, _ := es.closed(t)
			if reason != engineio.ReasonServerShutdown {
				t.Errorf("server OnClose reason %q, want %q", reason, engineio.ReasonServerShutdown)
			}
			if n := srv.srv.SessionCount(); n != 0 {
				t.Errorf("SessionCount() = %d after Shutdown", n)
			}
			resp, err := http.Get(srv.url + "/engine.io/?EIO=4&transport=polling")
			if err != nil {
				t.Errorf("handshake after Shutdown: %v", err)
			} else {
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("handshake after Shutdown: status %d, want 503", resp.StatusCode)
				}
			}
			cl := c.waitOp(t, "close")
			t.Logf("client close after Shutdown (%s): reason %q, %q, code %d", mode.name, cl.Reason, cl.Message, cl.Code)
			c.wait(t)
			srv.ts.Close()
		})
	}
}

// With PingInterval 300ms and PingTimeout 200ms: an idle client stays
// connected for 2 s (it sees the pings and its pongs count), a server
// Session.Close closes the client, and a client that stops answering is
// closed for "ping timeout".
func TestEngineIOClientHeartbeat(t *testing.T) {
	requireEIOClient(t)
	fast := func(s *engineio.Server) {
		s.PingInterval = 300 * time.Millisecond
		s.PingTimeout = 200 * time.Millisecond
	}
	for _, mode := range eioModes {
		t.Run(mode.name+"/idle", func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{config: fast})
			steps := append(upgradeSteps(mode), eioStep{Op: "sleep", Ms: 2000}, eioStep{Op: "echo", Type: "text", Size: 5}, eioStep{Op: "close"})
			c := startEIOClient(t, srv.url, mode, nil, steps)
			open := c.open(t, mode)
			if open.PingInterval != 300 || open.PingTimeout != 200 {
				t.Errorf("open packet: pingInterval %d, pingTimeout %d; want 300, 200", open.PingInterval, open.PingTimeout)
			}
			es := srv.session(t)
			slept := c.waitOp(t, "slept")
			t.Logf("client saw %d pings in 2 s", slept.Pings)
			if slept.Closed || slept.Pings < 2 {
				t.Errorf("idle client: closed=%v, %d pings in 2 s (interval 300ms); events %+v", slept.Closed, slept.Pings, c.seen)
			}
			select {
			case <-es.done:
				t.Errorf("server closed the idle session: %q (%v)", es.reason, es.cause)
			default:
			}
			if ev := c.waitOp(t, "echo"); !ev.Match {
				t.Errorf("echo after idle: %+v", ev)
			}
			checkUpgrade(t, c, es, mode)
			c.wait(t)
			if reason, _ := es.closed(t); reason != engineio.ReasonTransportClose {
				t.Errorf("server OnClose reason %q, want %q", reason, engineio.ReasonTransportClose)
			}
		})
		t.Run(mode.name+"/server Close", func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{config: fast})
			c := startEIOClient(t, srv.url, mode, nil, append(upgradeSteps(mode), eioStep{Op: "mark", ID: "ready"}, eioStep{Op: "awaitClose"}))
			c.open(t, mode)
			es := srv.session(t)
			c.waitOp(t, "mark")
			checkUpgrade(t, c, es, mode)
			if err := es.s.Close(); err != nil {
				t.Errorf("Session.Close: %v", err)
			}
			if reason, _ := es.closed(t); reason != engineio.ReasonForcedClose {
				t.Errorf("server OnClose reason %q, want %q", reason, engineio.ReasonForcedClose)
			}
			cl := c.waitOp(t, "close")
			t.Logf("client close after Session.Close (%s): reason %q, %q, code %d", mode.name, cl.Reason, cl.Message, cl.Code)
			c.wait(t)
		})
		t.Run(mode.name+"/pong timeout", func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{config: fast})
			c := startEIOClient(t, srv.url, mode, nil, append(upgradeSteps(mode), eioStep{Op: "mutePongs"}, eioStep{Op: "awaitClose"}))
			c.open(t, mode)
			es := srv.session(t)
			if reason, cause := es.closed(t); reason != engineio.ReasonPingTimeout {
				t.Errorf("server OnClose reason %q (%v), want %q", reason, cause, engineio.ReasonPingTimeout)
			}
			cl := c.waitOp(t, "close")
			t.Logf("client close after its pongs stopped (%s): reason %q, %q, code %d", mode.name, cl.Reason, cl.Message, cl.Code)
			c.wait(t)
		})
	}
}

// With MaxHTTPBufferSize 1e6 a packet of exactly 1e6 bytes passes both ways,
// and a client message over the limit (a POST body or a WebSocket message of
// 1,000,002 bytes) closes the session without reaching
// OnMessage, and the client sees its socket close.
func TestEngineIOClientOverLimit(t *testing.T) {
	requireEIOClient(t)
	for _, mode := range eioModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{config: func(s *engineio.Server) { s.MaxHTTPBufferSize = 1e6 }})
			steps := append(upgradeSteps(mode),
				eioStep{Op: "echo", Type: "text", Size: 10},
				eioStep{Op: "echo", Type: "text", Size: 999_999}, // "4" + 999,999 bytes: exactly the limit
				eioStep{Op: "send", Type: "text", Size: 1_000_001},
				eioStep{Op: "awaitClose"})
			c := startEIOClient(t, srv.url, mode, nil, steps)
			c.open(t, mode)
			es := srv.session(t)
			for _, size := range []int{10, 999_999} {
				if m := es.message(t); len(m.data) != size {
					t.Errorf("server message has %d bytes, want %d", len(m.data), size)
				}
				if ev := c.waitOp(t, "echo"); !ev.Match || ev.Size != size {
					t.Errorf("echo of %d bytes: %+v", size, ev)
				}
			}
			reason, cause := es.closed(t)
			t.Logf("server OnClose after the over-limit message (%s): %q (cause %v)", mode.name, reason, cause)
			cl := c.waitOp(t, "close")
			t.Logf("client close after the over-limit message (%s): reason %q, %q, code %d", mode.name, cl.Reason, cl.Message, cl.Code)
			c.wait(t)
			select {
			case m := <-es.msgs:
				t.Errorf("the over-limit message reached OnMessage (%d bytes)", len(m.data))
			default:
			}
		})
	}
}

// With forceBase64 the client asks for b64=1: over WebSocket its binary goes
// as "b"+base64 text frames, and the server answers binary the same way (the
// client's binary arrives as binary=true all the same).
func TestEngineIOClientForceBase64(t *testing.T) {
	requireEIOClient(t)
	for _, mode := range eioModes {
		if mode.final != "websocket" {
			continue
		}
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			srv := startEIOServer(t, mode.serve, eioHooks{})
			echoes := []eioStep{
				{Op: "echo", Type: "text", Size: 100},
				{Op: "echo", Type: "binary", Size: 100},
				{Op: "echo", Type: "binary", Size: 70_000, As: "arraybuffer"},
			}
			c := startEIOClient(t, srv.url, mode, map[string]any{"forceBase64": true}, append(append(upgradeSteps(mode), echoes...), eioStep{Op: "close"}))
			c.open(t, mode)
			es := srv.session(t)
			for _, st := range echoes {
				ev := c.waitOp(t, "echo")
				m := es.message(t)
				if m.binary != (st.Type == "binary") || sha256Hex(m.data) != patternSHA(st.Type, st.Size) {
					t.Errorf("%s/%d: server received binary=%v, %d bytes", st.Type, st.Size, m.binary, len(m.data))
				}
				want := map[string]string{"text": "text", "binary": "base64"}[st.Type]
				if !ev.Match || ev.Transport != "websocket" || ev.Wire != want {
					t.Errorf("%s/%d: client got %s of %d bytes (identical %v) over %s in a %q frame, want a %q frame",
						st.Type, st.Size, ev.GotType, ev.Len, ev.Match, ev.Transport, ev.Wire, want)
				}
			}
			checkUpgrade(t, c, es, mode)
			c.wait(t)
		})
	}
}
