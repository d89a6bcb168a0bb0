package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// One headless Chromium (browser.js) serves the whole package; TestMain stops it.
var chromium struct {
	once sync.Once
	b    *browserProc
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if chromium.b != nil {
		chromium.b.proc.stop(10 * time.Second)
	}
	os.Exit(code)
}

type browserProc struct {
	proc    *nodeProc
	mu      sync.Mutex
	nextID  int
	waiters map[int]chan browserReply
}

type browserReply struct {
	ID     int             `json:"id"`
	Op     string          `json:"op"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

func getBrowser(t *testing.T) *browserProc {
	t.Helper()
	requireChromium(t)
	chromium.once.Do(func() { chromium.b, chromium.err = startBrowser() })
	if chromium.err != nil {
		t.Fatalf("start headless chromium: %v", chromium.err)
	}
	return chromium.b
}

func startBrowser() (*browserProc, error) {
	p, err := spawnNode(10*time.Minute, "browser.js")
	if err != nil {
		return nil, err
	}
	b := &browserProc{proc: p, waiters: map[int]chan browserReply{}}
	ready := make(chan error, 1)
	go func() {
		sentReady := false
		for line := range p.lines {
			var r browserReply
			if err := json.Unmarshal(line, &r); err != nil {
				continue
			}
			if r.Op == "ready" && !sentReady {
				sentReady = true
				ready <- nil
				continue
			}
			b.mu.Lock()
			ch := b.waiters[r.ID]
			delete(b.waiters, r.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		}
		if !sentReady {
			ready <- fmt.Errorf("browser.js exited before it was ready; stderr:\n%s", p.stderr.String())
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.stop(0)
			return nil, err
		}
		return b, nil
	case <-time.After(60 * time.Second):
		p.stop(0)
		return nil, fmt.Errorf("browser.js not ready within 60s; stderr:\n%s", p.stderr.String())
	}
}

// run runs scenario in a fresh tab showing page and decodes its result into out.
func (b *browserProc) run(t *testing.T, timeout time.Duration, page, scenario string, args, out any) {
	t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan browserReply, 1)
	b.waiters[id] = ch
	line, err := json.Marshal(map[string]any{"id": id, "page": page, "scenario": scenario, "args": args})
	if err == nil {
		_, err = b.proc.stdin.Write(append(line, '\n'))
	}
	b.mu.Unlock()
	if err != nil {
		t.Fatalf("send to browser.js: %v", err)
	}
	select {
	case r := <-ch:
		if r.Error != "" {
			t.Fatalf("chromium %s: %s", scenario, r.Error)
		}
		if err := json.Unmarshal(r.Result, out); err != nil {
			t.Fatalf("chromium %s result %s: %v", scenario, r.Result, err)
		}
	case <-b.proc.exited:
		t.Fatalf("browser.js exited (%v); stderr:\n%s", b.proc.err, b.proc.stderr.String())
	case <-time.After(timeout):
		t.Fatalf("chromium %s: no result within %v", scenario, timeout)
	}
}

// Every size and type sent by Chromium's WebSocket comes back byte-exact from
// the duplex server, which received the exact bytes. The page generates the
// data and compares SHA-256 digests (crypto.subtle) itself. With UpgradeConn
// the page comes from another port, accepted through AllowedOrigins; that mode
// stops at 64 KiB (16 MiB through Chromium takes seconds, and the net/http
// mode covers it).
func TestDuplexServerEchoesChromium(t *testing.T) {
	b := getBrowser(t)
	for _, mode := range serverModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			up := &ws.Upgrader{}
			page := ""
			if mode.accept == modeConn {
				page = startPageServer(t)
				up.AllowedOrigins = []string{strings.TrimSuffix(page, "/")}
			}
			srv := startDuplexServer(t, mode, up)
			if page == "" {
				page = srv.pageURL
			}
			maxSize := 16 << 20
			if mode.accept == modeConn {
				maxSize = 65536
			}
			steps := echoSteps(maxSize)
			var results []event
			b.run(t, 90*time.Second, page, "echo", map[string]any{"url": srv.url("echo"), "steps": steps}, &results)
			srv.expect(t, "echo", "open")
			checkEchoEvents(t, steps, results)
			srv.checkMessages(t, "echo", steps)
			checkCloseError(t, srv.expect(t, "echo", "closed").Err, ws.CloseError{Code: 1000, Remote: true})
		})
	}
}

// Close codes travel both ways between Chromium and the duplex server, in both serving
// modes.
func TestDuplexServerCloseCodesWithChromium(t *testing.T) {
	b := getBrowser(t)
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) { testCloseCodesWithChromium(t, b, mode) })
}

func testCloseCodesWithChromium(t *testing.T, b *browserProc, mode eiotest.Mode) {
	srv := startDuplexServer(t, httpMode(mode), &ws.Upgrader{})
	cases := []struct {
		name     string
		scenario string
		args     map[string]any
		wantPage event          // onclose code, reason, wasClean
		wantOp   string         // the server's last event
		wantErr  *ws.CloseError // the server's read error when wantOp is "closed"
	}{
		{
			name:     "page closes 4001 done",
			scenario: "close",
			args:     map[string]any{"url": srv.url("p4001"), "code": 4001, "reason": "done"},
			wantPage: event{Code: 4001, WasClean: true}, // the server's echo: its reason is optional
			wantOp:   "closed",
			wantErr:  &ws.CloseError{Code: 4001, Reason: "done", Remote: true},
		},
		{
			name:     "server closes 1001 going away",
			scenario: "awaitClose",
			args:     map[string]any{"url": srv.url("s1001", "close", "1001", "reason", "going away")},
			wantPage: event{Code: 1001, Reason: "going away", WasClean: true},
			wantOp:   "closeSent",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got event
			b.run(t, 30*time.Second, srv.pageURL, tc.scenario, tc.args, &got)
			initiator := tc.scenario == "close"
			if got.Code != tc.wantPage.Code || (!initiator && got.Reason != tc.wantPage.Reason) || got.WasClean != tc.wantPage.WasClean {
				t.Errorf("page onclose: code %d reason %q wasClean %v, want %d %q %v",
					got.Code, got.Reason, got.WasClean, tc.wantPage.Code, tc.wantPage.Reason, tc.wantPage.WasClean)
			}
			id := map[string]string{"close": "p4001", "awaitClose": "s1001"}[tc.scenario]
			srv.expect(t, id, "open")
			ev := srv.expect(t, id, tc.wantOp)
			if tc.wantErr != nil {
				checkCloseError(t, ev.Err, *tc.wantErr)
			} else if ev.Err != nil {
				t.Errorf("server Close: %v", ev.Err)
			}
		})
	}
}

// The default Upgrader accepts a page from its own origin and refuses a page
// from another origin (403): the browser sees onerror and onclose 1006. The check is
// the handshake's, before a serving mode takes the connection: one mode is enough.
func TestDuplexServerChecksChromiumOrigin(t *testing.T) {
	b := getBrowser(t)
	srv := startDuplexServer(t, httpMode(eiotest.Goroutines), &ws.Upgrader{})
	other := startPageServer(t)

	cases := []struct {
		name, page, id string
		wantOpen       bool
	}{
		{"same origin accepted", srv.pageURL, "same", true},
		{"other origin refused", other, "other", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got event
			b.run(t, 30*time.Second, tc.page, "connect", map[string]any{"url": srv.url(tc.id, "close", "1000")}, &got)
			ev := srv.next(t, tc.id, 10*time.Second)
			if tc.wantOpen {
				if !got.Opened || got.Errored || got.Code != 1000 {
					t.Errorf("page: opened=%v errored=%v close code %d, want opened and closed 1000", got.Opened, got.Errored, got.Code)
				}
				if ev.Op != "open" {
					t.Errorf("server event %+v, want open", ev)
				}
				return
			}
			if got.Opened || !got.Errored || got.Code != 1006 {
				t.Errorf("page: opened=%v errored=%v close code %d, want error and 1006", got.Opened, got.Errored, got.Code)
			}
			if ev.Op != "rejected" || ev.Err == nil {
				t.Errorf("server event %+v, want a rejected handshake", ev)
			}
			// The browser does not expose the status; replay its handshake from Go.
			if code := handshakeStatus(t, srv.pageURL+"ws?id=probe", tc.page[:len(tc.page)-1]); code != http.StatusForbidden {
				t.Errorf("handshake with Origin %s: status %d, want 403", tc.page, code)
			}
		})
	}
}

// handshakeStatus sends a WebSocket handshake with the given Origin and returns the status.
func handshakeStatus(t *testing.T, httpURL, origin string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// Pings from the duplex server are answered by every peer with the same payload, in both
// serving modes.
func TestDuplexServerPingAnsweredByPeers(t *testing.T) {
	requireNode(t)
	const payload = "are you there?"
	peers := []struct {
		name string
		run  func(t *testing.T, srv *duplexServer, u string)
	}{
		{"ws", func(t *testing.T, srv *duplexServer, u string) {
			runClient(t, "ws-client.js", u, clientArgs{Steps: []step{{Op: "echo", Type: "text", Size: 5}, {Op: "close", Code: 1000}}})
		}},
		{"websocket", func(t *testing.T, srv *duplexServer, u string) {
			runClient(t, "websocket-client.js", u, clientArgs{Steps: []step{{Op: "echo", Type: "text", Size: 5}, {Op: "close", Code: 1000}}})
		}},
		{"chromium", func(t *testing.T, srv *duplexServer, u string) {
			var results []event
			getBrowser(t).run(t, 30*time.Second, srv.pageURL, "echo", map[string]any{"url": u, "steps": []step{{Type: "text", Size: 5}}}, &results)
		}},
	}
	for _, peer := range peers {
		for _, mode := range eiotest.Modes {
			t.Run(peer.name+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				srv := startDuplexServer(t, httpMode(mode), &ws.Upgrader{})
				peer.run(t, srv, srv.url("ping", "ping", payload))
				var pongs []string
				for i := 0; i < 10; i++ {
					ev := srv.next(t, "ping", 10*time.Second)
					if ev.Op == "pong" {
						pongs = append(pongs, ev.Data)
					}
					if ev.Op == "closed" || ev.Op == "pingError" || ev.Op == "writeError" {
						break
					}
				}
				if len(pongs) != 1 || pongs[0] != payload {
					t.Errorf("pongs %q, want exactly one %q", pongs, payload)
				}
			})
		}
	}
}

// The duplex server selects its preferred subprotocol among those Chromium offers. The
// choice is the handshake's, before a serving mode takes the connection: one mode is
// enough.
func TestDuplexServerNegotiatesSubprotocolWithChromium(t *testing.T) {
	b := getBrowser(t)
	srv := startDuplexServer(t, httpMode(eiotest.Goroutines), &ws.Upgrader{Subprotocols: []string{"v2.duplex", "v1.duplex"}})
	cases := []struct {
		name    string
		offered []string
		want    string
	}{
		{"server preference wins", []string{"v1.duplex", "v2.duplex"}, "v2.duplex"},
		{"single common protocol", []string{"chat", "v1.duplex"}, "v1.duplex"},
		{"none offered", nil, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			id := fmt.Sprint("proto", i)
			var got event
			b.run(t, 30*time.Second, srv.pageURL, "connect", map[string]any{"url": srv.url(id, "close", "1000"), "protocols": tc.offered}, &got)
			if !got.Opened || got.Protocol != tc.want {
				t.Errorf("page: opened=%v protocol %q, want opened with %q", got.Opened, got.Protocol, tc.want)
			}
			if ev := srv.expect(t, id, "open"); ev.Subprotocol != tc.want {
				t.Errorf("duplex Conn.Subprotocol() = %q, want %q", ev.Subprotocol, tc.want)
			}
		})
	}
}
