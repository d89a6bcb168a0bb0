package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"

	"github.com/duplexio/duplex/bench/internal/harness"
	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/sioecho"
)

// startRedis starts a redis-server of the test's own with the code
// rediscompare uses and stops it (by its PID) at cleanup. Without
// redis-server the test is skipped, as a missing Node skips the Node tests
// (or fails, when DUPLEX_INTEROP=required).
func startRedis(t *testing.T) *harness.Redis {
	t.Helper()
	if err := harness.CheckRedis(); err != nil {
		if os.Getenv("DUPLEX_INTEROP") == "required" {
			t.Fatalf("%v (DUPLEX_INTEROP=required)", err)
		}
		t.Skipf("%v (set DUPLEX_INTEROP=required to fail instead)", err)
	}
	r, err := harness.StartRedis("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// TestRedisClusterSmokeDuplex runs the cluster broadcast load in-process
// against two duplex bench servers sharing a room through the Redis adapter,
// and requires every message to reach every client on both nodes. It checks
// function, never speed.
func TestRedisClusterSmokeDuplex(t *testing.T) {
	rds := startRedis(t)
	var addrs []string
	for range 2 {
		client := redis.NewClient(&redis.Options{Addr: rds.Addr})
		ln := listenLoopback(t)
		srv := sioecho.StartWith(ln, time.Minute, time.Minute, sioecho.EchoRaw, redisadapter.New(client, nil), nil)
		t.Cleanup(func() { srv.Close(); client.Close() })
		addrs = append(addrs, ln.Addr().String())
	}
	cfg := load.SIOClusterConfig{Addrs: addrs, Clients: 20, Size: 300, Batch: 5, InFlightBatches: 2,
		Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, PacedMessages: 4, PacedInterval: 5 * time.Millisecond,
		Grace: 10 * time.Second, PIDs: []int{os.Getpid()}}
	res, err := load.RunSIOCluster(context.Background(), cfg)
	if err != nil || res.Errors != 0 {
		t.Fatalf("%v; %d errors (%s)", err, res.Errors, res.FirstError)
	}
	if res.Messages == 0 || res.Deliveries == 0 || res.PerSec <= 0 || res.P99us <= 0 || len(res.Groups) != 2 || len(res.CPUSeconds) != 1 {
		t.Fatalf("nothing measured: %+v", res)
	}
	for _, g := range res.Groups {
		if g.Clients != 10 || g.Deliveries == 0 || g.P50us <= 0 || g.PacedDeliveries != 4*10 || g.PacedP99us <= 0 {
			t.Fatalf("group %+v", g)
		}
	}
}

// TestRedisCompareEndToEnd builds the commands and runs rediscompare tiny
// (20 clients, 1 s, one run, unpinned) with its own redis-server, to check
// that the processes, parsing and tables work and that every number of each
// row is there; with Node when it is installed.
func TestRedisCompareEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	if err := harness.CheckRedis(); err != nil {
		startRedis(t) // skips, or fails with DUPLEX_INTEROP=required
	}
	nodeRedis := nodeSIO
	nodeRedis.Package = "@socket.io/redis-adapter"
	impls := []string{"duplex", "node"}
	if checkNode(t, nodeRedis) != nil {
		impls = impls[:1]
	}
	dir := buildCommands(t, "./cmd/sioserver", "./cmd/load", "./cmd/rediscompare")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "rediscompare"), "-bin", dir, "-pin=false", "-out", "", "-quiet-wait", "0",
		"-impls", strings.Join(impls, ","), "-runs", "1", "-clients", "20", "-size", "200", "-duration", "1s", "-warmup", "100ms",
		"-batch", "5", "-inflight-batches", "2", "-paced-messages", "4", "-paced-interval", "5ms")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("rediscompare: %v\n%s", err, out)
	}
	rows := 0
	for _, line := range strings.Split(string(out), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 16 || (strings.TrimSpace(cells[1]) != "duplex" && strings.TrimSpace(cells[1]) != "node") {
			continue
		}
		// The throughput table's row: deliveries/s, per server CPU-s,
		// broadcasts/s and the four latencies must be numbers above 0.
		rows++
		for _, col := range []int{2, 4, 6, 7, 8, 9, 10} {
			v, err := strconv.ParseFloat(strings.TrimSpace(cells[col]), 64)
			if err != nil || v <= 0 {
				t.Errorf("row %q: column %d is %q, want a number > 0", line, col, cells[col])
			}
		}
	}
	if rows != len(impls) {
		t.Errorf("%d throughput rows, want %d (%v)", rows, len(impls), impls)
	}
	if strings.Contains(string(out), "failed") {
		t.Errorf("output has failed rows")
	}
	if !strings.Contains(string(out), "| duplex | paced") {
		t.Errorf("output lacks the paced latency row")
	}
	if len(impls) == 2 && !strings.Contains(string(out), "## Targets") {
		t.Errorf("output lacks the targets table")
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
