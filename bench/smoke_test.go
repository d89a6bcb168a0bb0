package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
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
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/echoserver", "./cmd/load", "./cmd/compare")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
		for _, row := range []string{fmt.Sprintf("| 2 | 16 B | 4 | %s |", impl), fmt.Sprintf("| %s |", impl)} {
			if !strings.Contains(string(out), row) {
				t.Errorf("output lacks row %q", row)
			}
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
