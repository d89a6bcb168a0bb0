package bench

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/servers"
)

func startImpl(t *testing.T, impl string) string {
	t.Helper()
	ln := listenLoopback(t)
	srv, err := servers.Start(impl, ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestSmoke runs every implementation through the load generator briefly and
// requires every echo to be correct. It checks function, never speed.
func TestSmoke(t *testing.T) {
	cases := []struct{ conns, size, inflight int }{
		{1, 16, 1},
		{3, 125, 4},   // largest 7-bit length
		{3, 126, 16},  // smallest 16-bit length
		{2, 65536, 4}, // 64-bit length
	}
	for _, impl := range servers.Names() {
		t.Run(impl, func(t *testing.T) {
			addr := startImpl(t, impl)
			for _, c := range cases {
				cfg := load.Config{Addr: addr, WebSocket: servers.IsWebSocket(impl),
					Conns: c.conns, Payload: c.size, InFlight: c.inflight,
					Warmup: 20 * time.Millisecond, Duration: 120 * time.Millisecond, MaxMsgs: 1 << 20}
				res, err := load.Run(context.Background(), cfg)
				if err != nil {
					t.Fatalf("%+v: %v", c, err)
				}
				if res.Errors != 0 || res.Msgs == 0 || res.Verified < res.Msgs {
					t.Fatalf("%+v: %d errors (%s), %d msgs, %d verified", c, res.Errors, res.FirstError, res.Msgs, res.Verified)
				}
			}
		})
	}
}

// TestDetectsBadEchoes checks that the load generator fails a run when the
// server's echo is wrong in content, opcode or length.
func TestDetectsBadEchoes(t *testing.T) {
	bad := map[string]func(typ int, p []byte) (int, []byte){
		"flipped-byte": func(typ int, p []byte) (int, []byte) { p[len(p)-1] ^= 1; return typ, p },
		"text-opcode":  func(_ int, p []byte) (int, []byte) { return websocket.TextMessage, p },
		"truncated":    func(typ int, p []byte) (int, []byte) { return typ, p[:len(p)-1] },
		"doubled":      func(typ int, p []byte) (int, []byte) { return typ, append(p, p...) },
	}
	for name, mangle := range bad {
		t.Run(name, func(t *testing.T) {
			ln := listenLoopback(t)
			up := websocket.Upgrader{}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer c.Close()
				for i := 0; i < 1000; i++ {
					typ, p, err := c.ReadMessage()
					if err != nil {
						return
					}
					if i == 5 {
						typ, p = mangle(typ, p)
					}
					if c.WriteMessage(typ, p) != nil {
						return
					}
				}
			})}
			go srv.Serve(ln)
			defer srv.Close()
			res, err := load.Run(context.Background(), load.Config{Addr: ln.Addr().String(), WebSocket: true,
				Conns: 1, Payload: 64, InFlight: 2, Duration: 200 * time.Millisecond, Grace: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors == 0 {
				t.Fatalf("bad echo not detected: %+v", res)
			}
			t.Logf("detected: %s", res.FirstError)
		})
	}
}

// TestCompareEndToEnd builds the three commands and runs the runner over a
// tiny matrix, unpinned, to check that the processes, parsing and tables work.
func TestCompareEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := buildCommands(t, "./cmd/echoserver", "./cmd/load", "./cmd/compare")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "compare"), "-bin", dir, "-pin=false", "-out", "",
		"-runs", "1", "-duration", "150ms", "-warmup", "30ms",
		"-conns", "2", "-sizes", "16", "-inflight", "1,4", "-idle", "100", "-settle", "100ms")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compare: %v\n%s", err, out)
	}
	for _, impl := range servers.Names() {
		if servers.IsDeflate(impl) {
			continue
		}
		for _, row := range []string{fmt.Sprintf("| 2 | 16 B | 4 | %s |", impl), fmt.Sprintf("| %s |", impl)} {
			if !strings.Contains(string(out), row) {
				t.Errorf("output lacks row %q", row)
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}

	// The compressed matrix: every deflate impl, ratios against gws-deflate.
	cmd = exec.CommandContext(ctx, filepath.Join(dir, "compare"), "-bin", dir, "-pin=false", "-out", "",
		"-runs", "1", "-duration", "150ms", "-warmup", "30ms", "-conns", "2", "-sizes", "1024",
		"-deflate", offerTakeover)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("compare -deflate: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "vs gws-deflate") {
		t.Errorf("output lacks the gws-deflate ratio column")
	}
	for _, impl := range servers.Names() {
		if !servers.IsDeflate(impl) {
			continue
		}
		if row := fmt.Sprintf("| 2 | 1 KiB | 1 | %s |", impl); !strings.Contains(string(out), row) {
			t.Errorf("deflate output lacks row %q", row)
		}
	}
	if t.Failed() {
		t.Logf("deflate output:\n%s", out)
	}
}

// The two permessage-deflate offers cmd/compare -deflate is run with (README).
const (
	offerNoTakeover = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	offerTakeover   = "permessage-deflate; client_max_window_bits"
)

// TestSmokeDeflate runs every permessage-deflate implementation briefly with
// both offers and requires every echo to be correct and compressed. It checks
// function, never speed.
func TestSmokeDeflate(t *testing.T) {
	cases := []struct{ conns, size, inflight int }{
		{1, 1024, 1},
		{2, 65536, 1},
		{3, 200, 4}, // pipelined: several compressed frames per write
	}
	for _, impl := range servers.Names() {
		if !servers.IsDeflate(impl) {
			continue
		}
		for _, offer := range []string{offerNoTakeover, offerTakeover} {
			t.Run(impl+"/"+offer, func(t *testing.T) {
				addr := startImpl(t, impl)
				for _, c := range cases {
					res, err := load.Run(context.Background(), load.Config{Addr: addr, WebSocket: true, Deflate: offer,
						Conns: c.conns, Payload: c.size, InFlight: c.inflight,
						Warmup: 20 * time.Millisecond, Duration: 300 * time.Millisecond, MaxMsgs: 1 << 20})
					if err != nil {
						t.Fatalf("%+v: %v", c, err)
					}
					// Verified, not Msgs: under -race a 64 KiB compressed echo
					// can take longer than the window.
					if res.Errors != 0 || res.Verified == 0 || res.Verified < res.Msgs {
						t.Fatalf("%+v: %d errors (%s), %d msgs, %d verified", c, res.Errors, res.FirstError, res.Msgs, res.Verified)
					}
					if res.Compressed != res.Verified {
						t.Fatalf("%+v: %d of %d echoes compressed", c, res.Compressed, res.Verified)
					}
					if res.EchoWireBytes >= res.Verified*uint64(c.size) {
						t.Fatalf("%+v: echoes not smaller than the payload (%d bytes for %d messages)", c, res.EchoWireBytes, res.Verified)
					}
				}
			})
		}
	}
}

// TestLoadDeflateAgainstDuplex checks the load generator's permessage-deflate
// path against duplex-deflate: the negotiated parameters for each offer,
// runs of several messages per connection so that context takeover carries
// history across messages (a wrong dictionary on either side would corrupt
// an echo or fail the server's inflate), and
// that a server which declines the offer fails the run.
func TestLoadDeflateAgainstDuplex(t *testing.T) {
	addr := startImpl(t, "duplex-deflate")
	for _, tc := range []struct {
		offer, want string
	}{
		{offerNoTakeover, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{offerTakeover, "permessage-deflate"},
	} {
		for _, size := range []int{1024, 65536} {
			res, err := load.Run(context.Background(), load.Config{Addr: addr, WebSocket: true, Deflate: tc.offer,
				Conns: 2, Payload: size, InFlight: 1, Duration: 800 * time.Millisecond, MaxMsgs: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			// At least a few messages per connection, so that later ones
			// depend on history (slow machines and -race do few).
			if res.Errors != 0 || res.Verified < 4 || res.Compressed != res.Verified {
				t.Fatalf("%q %d B: %d errors (%s), %d verified, %d compressed", tc.offer, size, res.Errors, res.FirstError, res.Verified, res.Compressed)
			}
			if res.Negotiated != tc.want {
				t.Fatalf("%q: negotiated %q, want %q", tc.offer, res.Negotiated, tc.want)
			}
			t.Logf("%q %d B: %d echoes, wire bytes per message %d out, %d back", tc.offer, size, res.Verified,
				res.SentWireBytes/res.Verified, res.EchoWireBytes/res.Verified)
		}
	}
	plain := startImpl(t, "duplex")
	if _, err := load.Run(context.Background(), load.Config{Addr: plain, WebSocket: true, Deflate: offerTakeover,
		Conns: 1, Payload: 64, InFlight: 1, Duration: 50 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "declined") {
		t.Fatalf("a server declining permessage-deflate: err = %v", err)
	}
}
