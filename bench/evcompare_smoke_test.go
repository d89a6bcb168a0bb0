package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEvcompareEndToEnd runs cmd/evcompare (issue 9's benchmark) with tiny
// counts, unpinned, to check that its processes, the -sources spreading, the
// servers' collection on SIGUSR1, parsing and tables work; and that a count
// above the open-file limit is reported as skipped, not failed. It checks
// function, never the numbers.
func TestEvcompareEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir := buildCommands(t, "./cmd/echoserver", "./cmd/sioserver", "./cmd/load", "./cmd/evcompare")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "evcompare"), "-bin", dir, "-pin=false", "-out", "",
		"-runs", "1", "-duration", "150ms", "-warmup", "30ms", "-settle", "50ms",
		"-idle", "60,100000000", "-conns", "3", "-ws-impls", "duplex-evented,duplex-raw-evented,duplex")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("evcompare: %v\n%s", err, out)
	}
	for _, want := range []string{
		"| duplex-evented |", "| duplex-raw-evented |", "| duplex |", // both tables
		"| 3 |", // the throughput row
		"| RSS per idle WebSocket (event mode, largest count) |",
		"| RSS per idle Socket.IO client (event mode, largest count) |",
		"| echo msgs/s at 3 conns, evented ÷ goroutines |",
		"- 100000000 idle connections: the open-file limit is",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}

	// Socket.IO only: an empty -ws-impls and -conns skip the rest.
	cmd = exec.CommandContext(ctx, filepath.Join(dir, "evcompare"), "-bin", dir, "-pin=false", "-out", "",
		"-runs", "2", "-settle", "50ms", "-idle", "40", "-conns", "", "-ws-impls", "")
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("evcompare Socket.IO only: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "WebSocket:") || !strings.Contains(string(out), "| RSS per idle Socket.IO client") {
		t.Errorf("Socket.IO-only output:\n%s", out)
	}
}
