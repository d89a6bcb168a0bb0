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

	"github.com/duplexio/duplex/socketio"

	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/monoclock"
	"github.com/duplexio/duplex/bench/internal/sioecho"
)

// startSIO serves duplex's Socket.IO bench server in-process and returns its
// address.
func startSIO(t *testing.T, ping time.Duration, mode sioecho.EchoMode) (string, *sioecho.Server) {
	t.Helper()
	ln := listenLoopback(t)
	srv := sioecho.Start(ln, ping, ping, mode)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), srv
}

// checkSIO runs brief event+ack loops and broadcasts and requires every ack
// and every message to be correct. It checks function, never speed.
func checkSIO(t *testing.T, addr string, window time.Duration) {
	t.Helper()
	for _, c := range []struct{ clients, size, inflight int }{{1, 1, 1}, {3, 32, 1}, {2, 1024, 1}, {2, 1024, 16}, {2, 70000, 1}, {2, 70000, 3}} {
		res, err := load.RunSIO(context.Background(), load.SIOConfig{Addr: addr, Clients: c.clients, Payload: c.size, InFlight: c.inflight,
			Warmup: 20 * time.Millisecond, Duration: window, MaxMsgs: 1 << 20})
		if err != nil {
			t.Fatalf("echo %+v: %v", c, err)
		}
		if res.Errors != 0 || res.Msgs == 0 || res.Verified < res.Msgs {
			t.Fatalf("echo %+v: %d errors (%s), %d msgs, %d verified", c, res.Errors, res.FirstError, res.Msgs, res.Verified)
		}
	}
	for _, c := range []struct{ clients, size int }{{1, 0}, {20, 10}, {30, 1024}, {3, 70000}} {
		cfg := load.SIOBroadcastConfig{Addr: addr, Clients: c.clients, Size: c.size, WarmupMessages: 3, Messages: 10,
			PacedMessages: 3, Interval: 5 * time.Millisecond, PhaseTimeout: 20 * time.Second}
		res, err := load.RunSIOBroadcast(context.Background(), cfg)
		if err != nil {
			t.Fatalf("broadcast %+v: %v", c, err)
		}
		if res.Errors != 0 || len(res.Phases) != 2 {
			t.Fatalf("broadcast %+v: %d errors (%s), %d phases", c, res.Errors, res.FirstError, len(res.Phases))
		}
		for i, want := range []int{10, 3} {
			ph := res.Phases[i]
			if ph.Deliveries != uint64(want*c.clients) || ph.PerSec <= 0 || ph.P99us <= 0 {
				t.Fatalf("broadcast %+v, %s: %d deliveries (want %d), %.0f/s, p99 %.0f µs", c, ph.Name, ph.Deliveries, want*c.clients, ph.PerSec, ph.P99us)
			}
		}
	}
}

func TestSIOSmokeDuplex(t *testing.T) {
	for _, mode := range []sioecho.EchoMode{sioecho.EchoRaw, sioecho.EchoValues} {
		t.Run(string(mode), func(t *testing.T) {
			addr, _ := startSIO(t, time.Minute, mode)
			checkSIO(t, addr, 120*time.Millisecond)
		})
	}
}

func TestSIOSmokeNode(t *testing.T) {
	addr := startNode(t, nodeSIO, time.Minute)
	checkSIO(t, addr, 120*time.Millisecond)
}

// TestSIOAnswersPings runs the load against servers that ping every 50 ms
// and give up 100 ms later: clients only survive if the load answers.
func TestSIOAnswersPings(t *testing.T) {
	t.Run("duplex", func(t *testing.T) {
		addr, _ := startSIO(t, 50*time.Millisecond, sioecho.EchoRaw)
		checkSIO(t, addr, 400*time.Millisecond)
	})
	t.Run("node", func(t *testing.T) {
		addr := startNode(t, nodeSIO, 50*time.Millisecond)
		checkSIO(t, addr, 400*time.Millisecond)
	})
}

// TestSIOIdleClients connects idle clients and checks the server holds them
// all.
func TestSIOIdleClients(t *testing.T) {
	addr, srv := startSIO(t, time.Minute, sioecho.EchoRaw)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := -1
	err := load.IdleSIO(ctx, load.SIOConfig{Addr: addr, Clients: 20}, 10*time.Second, func() {
		got = srv.SocketCount()
		cancel()
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != 20 {
		t.Fatalf("server has %d sockets with 20 idle clients connected", got)
	}
}

// TestBroadcastTimestamps checks that the server's timestamps and the load's
// arrival times come from one clock: latencies are positive and small.
func TestBroadcastTimestamps(t *testing.T) {
	addr, _ := startSIO(t, time.Minute, sioecho.EchoRaw)
	before := monoclock.Now()
	res, err := load.RunSIOBroadcast(context.Background(), load.SIOBroadcastConfig{Addr: addr, Clients: 2, Size: 64,
		Messages: 5, PhaseTimeout: 10 * time.Second})
	if err != nil || res.Errors != 0 {
		t.Fatalf("%v, %+v", err, res)
	}
	elapsed := float64(monoclock.Now()-before) / 1e3
	for _, ph := range res.Phases {
		if ph.P50us <= 0 || ph.MaxUs > elapsed {
			t.Fatalf("%s: p50 %.1f µs, max %.1f µs, run took %.1f µs", ph.Name, ph.P50us, ph.MaxUs, elapsed)
		}
	}
}

// badServer is a Socket.IO server whose answers go wrong in one way.
func badServer(t *testing.T, mangle string) string {
	t.Helper()
	ln := listenLoopback(t)
	srv := socketio.NewServer(nil)
	pattern := sioecho.Pattern(4096)
	srv.OnConnection(func(s *socketio.Socket) {
		n := 0
		s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
			var text string
			_ = args.Decode(0, &text)
			if n++; n == 5 {
				switch mangle {
				case "ack-flipped-char":
					text = text[:len(text)-1] + "!"
				case "ack-extra-arg":
					_ = ack(text, 1)
					return
				case "ack-as-event":
					_ = s.Emit("echo", text)
					return
				}
			}
			_ = ack(text)
		})
		s.On("join", func(args socketio.Args, ack socketio.AckFunc) {
			var room string
			_ = args.Decode(0, &room)
			s.Join(socketio.Room(room))
			_ = ack()
		})
		s.On("bcast", func(args socketio.Args, ack socketio.AckFunc) {
			var req struct {
				Room  string `json:"room"`
				N     int    `json:"n"`
				Size  int    `json:"size"`
				Start int    `json:"start"`
			}
			_ = args.Decode(0, &req)
			for i := req.Start; i < req.Start+min(req.N, 1000); i++ {
				idx := i
				if i == 4 && mangle == "bcast-skip" {
					continue
				}
				if i == 4 && mangle == "bcast-reorder" {
					idx = 5
				}
				prefix := fmt.Sprintf("%d:%d:", monoclock.Now(), idx)
				msg := prefix + pattern[len(prefix):req.Size]
				switch {
				case i == 4 && mangle == "bcast-char":
					msg = msg[:len(msg)-1] + "!"
				case i == 4 && mangle == "bcast-short":
					msg = msg[:len(msg)-1]
				}
				_ = srv.To(socketio.Room(req.Room)).Emit("m", msg)
			}
			_ = ack()
		})
		s.On("stats", func(_ socketio.Args, ack socketio.AckFunc) { _ = ack(map[string]any{}) })
	})
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// TestSIODetectsBadAnswers checks that the Socket.IO load fails a run when an
// ack or a broadcast message is wrong or missing.
func TestSIODetectsBadAnswers(t *testing.T) {
	for _, mangle := range []string{"ack-flipped-char", "ack-extra-arg", "ack-as-event"} {
		t.Run(mangle, func(t *testing.T) {
			res, err := load.RunSIO(context.Background(), load.SIOConfig{Addr: badServer(t, mangle), Clients: 1, Payload: 32,
				Duration: 200 * time.Millisecond, Grace: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors == 0 {
				t.Fatalf("bad ack not detected: %+v", res)
			}
			t.Logf("detected: %s", res.FirstError)
		})
	}
	for _, mangle := range []string{"bcast-skip", "bcast-reorder", "bcast-char", "bcast-short"} {
		t.Run(mangle, func(t *testing.T) {
			res, err := load.RunSIOBroadcast(context.Background(), load.SIOBroadcastConfig{Addr: badServer(t, mangle), Clients: 2,
				Size: 100, Messages: 10, PhaseTimeout: 3 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 2 {
				t.Fatalf("bad message not detected by both clients: %+v", res)
			}
			t.Logf("detected: %s", res.FirstError)
		})
	}
}

// TestSIOCompareEndToEnd builds the commands and runs siocompare over a tiny
// matrix, unpinned, to check that the processes, parsing and tables work;
// with Node when it is installed.
func TestSIOCompareEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	impls := []string{"duplex", "node"}
	if checkNode(t, nodeSIO) != nil {
		impls = impls[:1]
	}
	dir := buildCommands(t, "./cmd/sioserver", "./cmd/load", "./cmd/siocompare")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "siocompare"), "-bin", dir, "-pin=false", "-out", "",
		"-impls", strings.Join(impls, ","), "-runs", "1", "-duration", "150ms", "-warmup", "30ms",
		"-clients", "2", "-inflight", "1,4", "-size", "64", "-bcast-clients", "20", "-bcast-messages", "10", "-bcast-warmup", "2",
		"-paced-messages", "3", "-paced-interval", "5ms", "-idle", "30", "-settle", "100ms")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("siocompare: %v\n%s", err, out)
	}
	for _, impl := range impls {
		for _, row := range []string{"| 2 | 1 | " + impl + " |", "| 2 | 4 | " + impl + " |", "| " + impl + " | ", "| 30 | " + impl + " |"} {
			if !strings.Contains(string(out), row) {
				t.Errorf("output lacks row %q", row)
			}
		}
	}
	if strings.Contains(string(out), "failed") {
		t.Errorf("output has failed rows")
	}
	if len(impls) == 2 && !strings.Contains(string(out), "## Targets") {
		t.Errorf("output lacks the targets table")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
