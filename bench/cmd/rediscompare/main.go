// Command rediscompare runs the Redis-cluster broadcast benchmark: a room of
// 1,000 clients spread over two Socket.IO servers that share it through the
// Redis adapter, duplex's (cmd/sioserver -redis: socketio.Server with
// adapter/redisadapter) against Node's (node/sioserver.js with
// @socket.io/redis-adapter), both on one redis-server that this command
// starts on a free loopback port. For each run and impl it starts the two
// servers (node 1 pinned to CPU 0, node 2 to CPU 1; the load generator and
// Redis unpinned by default, so they share both CPUs with them), runs the
// cluster broadcast load (cmd/load -proto sio-cluster: half the clients on
// each node, the sender on node 1), and stops the servers. It prints
// markdown tables of medians: deliveries/s, deliveries per server
// CPU-second, latency on the sender's node and on the other node (the
// difference is the Redis hop), the duplex/node ratios and the issue's
// target.
//
// Run it from the bench directory (Node's packages come from
// ../test/interop/node_modules: cd ../test/interop && npm ci):
//
//	go run ./cmd/rediscompare -runs 3 -duration 5s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/bench/internal/harness"
	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/report"
)

type options struct {
	runs             int
	impls            []string
	clients          int
	size             int
	batch            int
	inflightBatches  int
	duration, warmup time.Duration
	pacedMessages    int
	pacedInterval    time.Duration
	pingInterval     time.Duration
	quietWait        time.Duration
	pin              bool
	nodeCPUs         [2]string
	loadCPU          string
	redisCPU         string
	binDir           string
	outDir           string
	node             harness.NodeServer
}

// The target of issue 8: duplex at least 3× Node's broadcast deliveries/s
// per server core, both clustered over Redis.
const targetSpeedup = 3.0

func main() {
	var o options
	impls := flag.String("impls", "duplex,node", "servers: duplex (cmd/sioserver -redis) and/or node (node/sioserver.js with @socket.io/redis-adapter)")
	flag.IntVar(&o.runs, "runs", 3, "runs; tables show medians")
	flag.IntVar(&o.clients, "clients", 1000, "clients in the room, spread evenly over the two nodes")
	flag.IntVar(&o.size, "size", 1024, "characters of each broadcast message")
	flag.IntVar(&o.batch, "batch", 10, "messages per trigger: the server emits them back to back")
	flag.IntVar(&o.inflightBatches, "inflight-batches", 16, "batches in flight: the sender triggers batch b once every client has received batch b-N")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured window")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "broadcasts before the window, not measured")
	flag.IntVar(&o.pacedMessages, "paced-messages", 50, "broadcasts sent one every -paced-interval after the window, for the latency per hop at a moderate rate (0 skips)")
	flag.DurationVar(&o.pacedInterval, "paced-interval", 20*time.Millisecond, "time between paced broadcasts")
	flag.DurationVar(&o.pingInterval, "ping-interval", 5*time.Minute, "pingInterval and pingTimeout of the servers (long, so heartbeats stay out of the numbers)")
	flag.DurationVar(&o.quietWait, "quiet-wait", 10*time.Second, "before each run of an impl, wait at most this long for the machine to be nearly idle (all CPUs under 15% of one; 0: don't wait)")
	flag.BoolVar(&o.pin, "pin", true, "pin the nodes (and the load and Redis when their -*-cpu is set) with taskset")
	flag.StringVar(&o.nodeCPUs[0], "node1-cpu", "0", "taskset CPU list of node 1 (the sender's)")
	flag.StringVar(&o.nodeCPUs[1], "node2-cpu", "1", "taskset CPU list of node 2")
	flag.StringVar(&o.loadCPU, "load-cpu", "", "taskset CPU list of the load generator (\"\": unpinned)")
	flag.StringVar(&o.redisCPU, "redis-cpu", "", "taskset CPU list of redis-server (\"\": unpinned)")
	flag.StringVar(&o.binDir, "bin", "", "directory with prebuilt sioserver and load (default: go build them)")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	o.node = harness.NodeServer{Package: "@socket.io/redis-adapter"}
	o.node.AddFlags(flag.CommandLine, "node/sioserver.js", "the Node socket.io bench server")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("rediscompare: ")

	o.impls = harness.SplitList(*impls)
	for _, im := range o.impls {
		if im != "duplex" && im != "node" {
			log.Fatalf("unknown impl %q (have duplex, node)", im)
		}
	}
	if o.runs < 1 || o.size < 1 || len(o.impls) == 0 || o.clients < 2 || o.batch < 1 || o.inflightBatches < 1 || o.duration <= 0 {
		log.Fatal("need -runs ≥ 1, -size ≥ 1, -clients ≥ 2, -batch ≥ 1, -inflight-batches ≥ 1, -duration > 0 and an impl")
	}
	if slices.Contains(o.impls, "node") {
		if err := o.node.Check(); err != nil {
			log.Fatalf("%v (use -impls duplex to run without Node)", err)
		}
	}
	if err := harness.CheckRedis(); err != nil {
		log.Fatal(err)
	}
	procs := harness.Processes{Pin: o.pin, BinDir: o.binDir}
	cleanup, err := procs.Prepare("rediscompare", "./cmd/sioserver")
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	o.binDir = procs.BinDir

	redisCPU := ""
	if o.pin {
		redisCPU = o.redisCPU
	}
	rds, err := harness.StartRedis(redisCPU)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("redis-server %s (PID %d)", rds.Addr, rds.PID)
	rep := run(context.Background(), o, rds)
	rds.Stop()
	report.Save(o.outDir, "redis-", rep.Started, rep)
	rep.print(os.Stdout, o)
	if err := report.FailuresError(rep.Failures); err != nil {
		log.Fatal(err)
	}
}

type sample struct {
	Run  int                `json:"run"`
	Impl string             `json:"impl"`
	Res  load.ClusterResult `json:"result"`
}

// results are the raw numbers of every run, saved as JSON.
type results struct {
	Started  time.Time         `json:"started"`
	Tree     string            `json:"tree"` // duplex commit, "+dirty" when socketio/, engineio/, ws/ or adapter/ have local changes
	Versions map[string]string `json:"versions"`
	Samples  []sample          `json:"samples"`
	Busy     int               `json:"busy"` // runs started while the machine was still busy after -quiet-wait
	Failures []string          `json:"failures"`
}

func run(ctx context.Context, o options, rds *harness.Redis) *results {
	rep := &results{Started: time.Now(), Tree: harness.TreeVersion("socketio", "engineio", "ws", "adapter"),
		Versions: map[string]string{"go": runtime.Version(), "redis": redisVersion()}}
	if slices.Contains(o.impls, "node") {
		rep.Versions["node"] = o.node.Versions("socket.io", "@socket.io/redis-adapter", "redis")
	}
	for r := 0; r < o.runs; r++ {
		for _, impl := range harness.Rotate(o.impls, r) {
			if !harness.WaitQuiet(o.quietWait, 0.15) {
				rep.Busy++
				log.Printf("the machine is still busy after %v; measuring all the same", o.quietWait)
			}
			log.Printf("run %d/%d: %s, %d clients over 2 nodes", r+1, o.runs, impl, o.clients)
			res, err := runOne(ctx, o, impl, rds)
			if err != nil {
				rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s: %v", r+1, impl, err))
				continue
			}
			log.Printf("run %d/%d: %s: %.0f deliveries/s", r+1, o.runs, impl, res.PerSec)
			rep.Samples = append(rep.Samples, sample{Run: r, Impl: impl, Res: res})
		}
	}
	return rep
}

// redisVersion is redis-server's "v=..." version, or "?".
func redisVersion() string {
	out, err := exec.Command(harness.RedisBinary, "--version").Output()
	if err != nil {
		return "?"
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return "?"
}

// nodeProcs returns how node i (0 or 1) runs: pinned to its CPU when -pin.
func (o options) nodeProcs(i int) harness.Processes {
	return harness.Processes{Pin: o.pin, ServerCPU: o.nodeCPUs[i], BinDir: o.binDir}
}

func startNode(o options, impl string, i int, rds *harness.Redis) (*harness.Server, error) {
	p := o.nodeProcs(i)
	if impl == "node" {
		return o.node.StartWith(p, o.pingInterval, o.pingInterval, rds.Addr)
	}
	args := []string{"-addr", "127.0.0.1:0", "-ping-interval", o.pingInterval.String(), "-ping-timeout", o.pingInterval.String(), "-redis", rds.Addr}
	return harness.StartServer(fmt.Sprintf("duplex node %d", i+1), p.ServerCommand(p.Bin("sioserver"), args...))
}

// runOne starts the two nodes of impl, runs the load against them and stops
// them.
func runOne(ctx context.Context, o options, impl string, rds *harness.Redis) (load.ClusterResult, error) {
	var res load.ClusterResult
	var nodes []*harness.Server
	defer func() {
		for _, n := range nodes {
			n.Stop()
		}
	}()
	for i := 0; i < 2; i++ {
		n, err := startNode(o, impl, i, rds)
		if err != nil {
			return res, err
		}
		nodes = append(nodes, n)
	}
	args := []string{"-proto", "sio-cluster", "-addrs", nodes[0].Addr + "," + nodes[1].Addr,
		"-pids", fmt.Sprintf("%d,%d,%d", nodes[0].PID, nodes[1].PID, rds.PID),
		"-conns", strconv.Itoa(o.clients), "-size", strconv.Itoa(o.size),
		"-batch", strconv.Itoa(o.batch), "-inflight-batches", strconv.Itoa(o.inflightBatches),
		"-warmup", o.warmup.String(), "-duration", o.duration.String(),
		"-paced-messages", strconv.Itoa(o.pacedMessages), "-interval", o.pacedInterval.String()}
	lp := harness.Processes{Pin: o.pin && o.loadCPU != "", LoadCPU: o.loadCPU, BinDir: o.binDir}
	timeout := o.warmup + o.duration + o.pacedInterval*time.Duration(o.pacedMessages) + 5*time.Minute
	err := lp.RunLoad(ctx, timeout, args, &res)
	if err == nil && res.Errors > 0 {
		err = fmt.Errorf("%d clients failed, first: %s", res.Errors, res.FirstError)
	}
	if err == nil && (len(res.Groups) != 2 || len(res.CPUSeconds) != 3) {
		err = fmt.Errorf("load result without 2 groups and 3 CPU samples")
	}
	return res, err
}

// perRun holds one table row's values, one per run.
type perRun struct {
	dps, ratio, perCPU, cpuRatio, bps                    []float64
	cpu1, cpu2, redis, load                              []float64
	same50, same99, other50, other99, hop50, hop99       []float64
	pSame50, pSame99, pOther50, pOther99, pHop50, pHop99 []float64
}

func (rep *results) collect(impl string) (perRun, int) {
	byRun := map[string]map[int]load.ClusterResult{}
	for _, s := range rep.Samples {
		if byRun[s.Impl] == nil {
			byRun[s.Impl] = map[int]load.ClusterResult{}
		}
		byRun[s.Impl][s.Run] = s.Res
	}
	var v perRun
	// perCore is deliveries per CPU-second of the two servers together.
	perCore := func(res load.ClusterResult) (float64, bool) {
		c := res.CPUSeconds[0] + res.CPUSeconds[1]
		if res.CPUSeconds[0] < 0 || res.CPUSeconds[1] < 0 || c <= 0 {
			return 0, false
		}
		return float64(res.Deliveries) / c, true
	}
	pct := func(dst *[]float64, cpu, secs float64) {
		if cpu >= 0 && secs > 0 {
			*dst = append(*dst, 100*cpu/secs)
		}
	}
	ms := func(us float64) float64 { return us / 1e3 }
	for r, res := range byRun[impl] {
		v.dps = append(v.dps, res.PerSec)
		v.bps = append(v.bps, res.PerSec/float64(max(res.Clients, 1)))
		pc, ok := perCore(res)
		if ok {
			v.perCPU = append(v.perCPU, pc)
		}
		if base, bok := byRun["node"][r]; bok && base.PerSec > 0 {
			v.ratio = append(v.ratio, res.PerSec/base.PerSec)
			if bpc, bok := perCore(base); ok && bok {
				v.cpuRatio = append(v.cpuRatio, pc/bpc)
			}
		}
		pct(&v.cpu1, res.CPUSeconds[0], res.Seconds)
		pct(&v.cpu2, res.CPUSeconds[1], res.Seconds)
		pct(&v.redis, res.CPUSeconds[2], res.Seconds)
		pct(&v.load, res.LoadCPUSeconds, res.Seconds)
		s, t := res.Groups[0], res.Groups[1]
		v.same50, v.same99 = append(v.same50, ms(s.P50us)), append(v.same99, ms(s.P99us))
		v.other50, v.other99 = append(v.other50, ms(t.P50us)), append(v.other99, ms(t.P99us))
		v.hop50, v.hop99 = append(v.hop50, ms(t.P50us-s.P50us)), append(v.hop99, ms(t.P99us-s.P99us))
		if s.PacedDeliveries > 0 && t.PacedDeliveries > 0 {
			v.pSame50, v.pSame99 = append(v.pSame50, ms(s.PacedP50us)), append(v.pSame99, ms(s.PacedP99us))
			v.pOther50, v.pOther99 = append(v.pOther50, ms(t.PacedP50us)), append(v.pOther99, ms(t.PacedP99us))
			v.pHop50, v.pHop99 = append(v.pHop50, ms(t.PacedP50us-s.PacedP50us)), append(v.pHop99, ms(t.PacedP99us-s.PacedP99us))
		}
	}
	return v, len(byRun[impl])
}

func (rep *results) print(w io.Writer, o options) {
	report.PrintVersions(w, rep.Tree, rep.Versions)
	pinning := "unpinned (-pin=false)"
	if o.pin {
		or := func(cpu string) string {
			if cpu == "" {
				return "unpinned"
			}
			return "CPU " + cpu
		}
		pinning = fmt.Sprintf("node 1 (the sender's) on CPU %s, node 2 on CPU %s, load %s, redis-server %s", o.nodeCPUs[0], o.nodeCPUs[1], or(o.loadCPU), or(o.redisCPU))
	}
	fmt.Fprintf(w, "redis-server %s, one for every run and impl; %s; %d of %d runs started while the machine was busy\n",
		rep.Versions["redis"], pinning, rep.Busy, o.runs*len(o.impls))

	fmt.Fprintf(w, "\n## Broadcast to a %d-client room over 2 nodes and Redis (%d characters a message, %d per trigger, %d triggers in flight; %v window after %v; median of %d runs)\n\n",
		o.clients, o.size, o.batch, o.inflightBatches, o.duration, o.warmup, o.runs)
	fmt.Fprintln(w, "| impl | deliveries/s | vs node | per server CPU-s | vs node | broadcasts/s | sender's node p50 ms | p99 ms | other node p50 ms | p99 ms | node 1 CPU % | node 2 CPU % | redis CPU % | load CPU % | runs |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var targets []report.Target
	for _, impl := range o.impls {
		v, n := rep.collect(impl)
		if n == 0 {
			fmt.Fprintf(w, "| %s | failed | | | | | | | | | | | | | 0 |\n", impl)
			continue
		}
		rs, crs := "–", "–"
		if impl != "node" {
			rs, crs = report.FormatMedian(v.ratio, "%.2f"), report.FormatMedian(v.cpuRatio, "%.2f")
			if len(v.cpuRatio) > 0 {
				targets = append(targets, report.AtLeast("broadcast deliveries per server CPU-second (2 nodes over Redis)", report.Median(v.cpuRatio), targetSpeedup))
			}
			if len(v.ratio) > 0 {
				targets = append(targets, report.AtLeast("broadcast deliveries/s (2 nodes over Redis)", report.Median(v.ratio), targetSpeedup))
			}
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s | %d |\n",
			impl, report.Median(v.dps), rs, report.FormatMedian(v.perCPU, "%.0f"), crs, report.Median(v.bps),
			report.Median(v.same50), report.Median(v.same99), report.Median(v.other50), report.Median(v.other99),
			report.FormatMedian(v.cpu1, "%.0f"), report.FormatMedian(v.cpu2, "%.0f"), report.FormatMedian(v.redis, "%.0f"), report.FormatMedian(v.load, "%.0f"), n)
	}

	fmt.Fprintf(w, "\n## Latency added by the Redis hop (other node − sender's node, medians of per-run differences)\n\n")
	fmt.Fprintln(w, "| impl | load | sender's node p50 ms | p99 ms | other node p50 ms | p99 ms | hop p50 ms | hop p99 ms | runs |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, impl := range o.impls {
		v, n := rep.collect(impl)
		if n == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s | full rate | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %d |\n", impl,
			report.Median(v.same50), report.Median(v.same99), report.Median(v.other50), report.Median(v.other99), report.Median(v.hop50), report.Median(v.hop99), n)
		if len(v.pHop50) > 0 {
			fmt.Fprintf(w, "| %s | paced: 1 every %v | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %d |\n", impl, o.pacedInterval,
				report.Median(v.pSame50), report.Median(v.pSame99), report.Median(v.pOther50), report.Median(v.pOther99), report.Median(v.pHop50), report.Median(v.pHop99), len(v.pHop50))
		}
	}
	report.PrintTargets(w, targets)
	report.PrintFailures(w, rep.Failures)
}
