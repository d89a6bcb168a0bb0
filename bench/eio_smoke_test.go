package bench

import (
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"

	"github.com/duplexio/duplex/bench/internal/eioecho"
	"github.com/duplexio/duplex/bench/internal/load"
)

var eioTransports = []string{load.EIOWebSocket, load.EIOPolling}

// startEIO serves duplex's Engine.IO echo in-process and returns its address.
func startEIO(t *testing.T, ping time.Duration) (string, *eioecho.Server) {
	t.Helper()
	ln := listenLoopback(t)
	// A pong timeout of ten intervals: the pings still come often, but a loaded machine
	// (the suite runs beside other tests) does not time a session out.
	srv := eioecho.Start(ln, ping, 10*ping)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), srv
}

// checkEIOEcho runs a few brief closed loops on both transports and requires
// every echo to be correct. It checks function, never speed.
func checkEIOEcho(t *testing.T, addr string, window time.Duration) {
	t.Helper()
	for _, tr := range eioTransports {
		for _, c := range []struct{ sessions, size int }{{1, 1}, {3, 32}, {2, 70000}} {
			res, err := load.RunEIO(context.Background(), load.EIOConfig{Addr: addr, Transport: tr,
				Sessions: c.sessions, Payload: c.size, Warmup: 20 * time.Millisecond, Duration: window, MaxMsgs: 1 << 20})
			if err != nil {
				t.Fatalf("%s %+v: %v", tr, c, err)
			}
			if res.Errors != 0 || res.Msgs == 0 || res.Verified < res.Msgs {
				t.Fatalf("%s %+v: %d errors (%s), %d msgs, %d verified", tr, c, res.Errors, res.FirstError, res.Msgs, res.Verified)
			}
		}
	}
}

func TestEIOSmokeDuplex(t *testing.T) {
	addr, _ := startEIO(t, time.Minute)
	checkEIOEcho(t, addr, 120*time.Millisecond)
}

func TestEIOSmokeNode(t *testing.T) {
	addr := startNode(t, nodeEIO, time.Minute)
	checkEIOEcho(t, addr, 120*time.Millisecond)
}

// TestEIOAnswersPings runs the load against servers that ping every 50 ms
// and give up 100 ms later: sessions only survive if the load answers.
func TestEIOAnswersPings(t *testing.T) {
	t.Run("duplex", func(t *testing.T) {
		addr, _ := startEIO(t, 50*time.Millisecond)
		checkEIOEcho(t, addr, 400*time.Millisecond)
	})
	t.Run("node", func(t *testing.T) {
		addr := startNode(t, nodeEIO, 50*time.Millisecond)
		checkEIOEcho(t, addr, 400*time.Millisecond)
	})
}

// TestEIOIdleSessions opens idle sessions and checks the server holds them all.
func TestEIOIdleSessions(t *testing.T) {
	addr, srv := startEIO(t, time.Minute)
	for _, tr := range eioTransports {
		ctx, cancel := context.WithCancel(context.Background())
		got := -1
		err := load.IdleEIO(ctx, load.EIOConfig{Addr: addr, Transport: tr, Sessions: 20}, 10*time.Second, func() {
			got = srv.SessionCount()
			cancel()
		})
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tr, err)
		}
		if got != 20 {
			t.Fatalf("%s: server has %d sessions with 20 idle ones open", tr, got)
		}
		deadline := time.Now().Add(10 * time.Second)
		for srv.SessionCount() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestEIODetectsBadEchoes checks that the Engine.IO load fails a run when
// an echo is wrong.
func TestEIODetectsBadEchoes(t *testing.T) {
	bad := map[string]func(p []byte) ([]byte, engineio.SendFlag){
		"flipped-char": func(p []byte) ([]byte, engineio.SendFlag) { p[len(p)-1] ^= 1; return p, engineio.Text },
		"truncated":    func(p []byte) ([]byte, engineio.SendFlag) { return p[:len(p)-1], engineio.Text },
		"binary":       func(p []byte) ([]byte, engineio.SendFlag) { return p, engineio.Binary },
	}
	for name, mangle := range bad {
		t.Run(name, func(t *testing.T) {
			ln := listenLoopback(t)
			eio := &engineio.Server{OnConnection: func(s *engineio.Session) {
				n := 0
				s.OnMessage = func(data []byte, _ bool) {
					p, flags := append([]byte(nil), data...), engineio.Text
					if n++; n == 5 {
						p, flags = mangle(p)
					}
					_ = s.Send(p, flags)
				}
			}}
			hs := &http.Server{Handler: eio}
			go hs.Serve(ln)
			defer hs.Close()
			for _, tr := range eioTransports {
				res, err := load.RunEIO(context.Background(), load.EIOConfig{Addr: ln.Addr().String(), Transport: tr,
					Sessions: 1, Payload: 32, Duration: 200 * time.Millisecond, Grace: time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if res.Errors == 0 {
					t.Fatalf("%s: bad echo not detected: %+v", tr, res)
				}
				t.Logf("%s: detected: %s", tr, res.FirstError)
			}
		})
	}
}

// TestEIOCompareEndToEnd builds the commands and runs eiocompare over a tiny
// matrix, unpinned, to check that the processes, parsing and tables work;
// with Node when it is installed.
func TestEIOCompareEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	impls := []string{"duplex", "node"}
	if checkNode(t, nodeEIO) != nil {
		impls = impls[:1]
	}
	dir := buildCommands(t, "./cmd/eioserver", "./cmd/load", "./cmd/eiocompare")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "eiocompare"), "-bin", dir, "-pin=false", "-out", "",
		"-impls", strings.Join(impls, ","), "-runs", "1", "-duration", "150ms", "-warmup", "30ms",
		"-sessions", "2", "-idle-websocket", "50", "-idle-polling", "50", "-settle", "100ms")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("eiocompare: %v\n%s", err, out)
	}
	for _, impl := range impls {
		for _, tr := range eioTransports {
			for _, row := range []string{"| " + tr + " | 2 | " + impl + " |", "| " + tr + " | 50 | " + impl + " |"} {
				if !strings.Contains(string(out), row) {
					t.Errorf("output lacks row %q", row)
				}
			}
		}
	}
	if len(impls) == 2 && !strings.Contains(string(out), "## Targets") {
		t.Errorf("output lacks the targets table")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
