// Command siocompare runs the Socket.IO side-by-side benchmark: duplex's
// socketio.Server (cmd/sioserver) against the official Node socket.io server
// (node/sioserver.js), each a fresh process pinned to CPU 0, driven by the
// library-neutral load generator (cmd/load -proto sio|sio-bcast) pinned to
// CPU 1. For each run and impl it measures event+ack round trips/s, then
// broadcasts to a room of 1,000 clients (deliveries/s, latency), then the
// memory per idle client, and prints markdown tables of medians with
// duplex/node ratios and the targets.
//
// Run it from the bench directory (Node's socket.io comes from
// ../test/interop/node_modules: cd ../test/interop && npm ci):
//
//	go run ./cmd/siocompare -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/duplexio/duplex/bench/internal/harness"
	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/report"
)

type options struct {
	runs             int
	impls            []string
	clients          []int
	inflight         []int
	size             int
	duration, warmup time.Duration
	bcastClients     int
	bcastMessages    int
	bcastWarmup      int
	pacedMessages    int
	pacedInterval    time.Duration
	idle             int
	settle           time.Duration
	pingInterval     time.Duration
	echoMode         string
	procs            harness.Processes
	outDir           string
	profileDir       string
	node             harness.NodeServer
}

// The target of the Socket.IO issue: duplex at least 3× Node's event+ack
// round trips/s and broadcast deliveries/s on one core.
const targetSpeedup = 3.0

func main() {
	var o options
	impls := flag.String("impls", "duplex,node", "servers: duplex (cmd/sioserver) and/or node (node/sioserver.js)")
	clients := flag.String("clients", "100", "concurrent clients of the event+ack test, each a closed emit-and-wait-for-the-ack loop")
	inflight := flag.String("inflight", "1,16", "events each client writes together (one write) before awaiting their acks; 1 is the issue's closed loop")
	flag.IntVar(&o.size, "size", 1024, "characters of the echo's string argument and of each broadcast message")
	flag.IntVar(&o.runs, "runs", 3, "runs; tables show medians")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "measured window per event+ack cell")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured traffic before each window")
	flag.IntVar(&o.bcastClients, "bcast-clients", 1000, "clients in the broadcast room (0 skips the broadcast test)")
	flag.IntVar(&o.bcastMessages, "bcast-messages", 200, "messages of the measured broadcast burst")
	flag.IntVar(&o.bcastWarmup, "bcast-warmup", 20, "messages of the unmeasured burst before it")
	flag.IntVar(&o.pacedMessages, "paced-messages", 50, "broadcast messages sent one every -paced-interval after the burst, for latency at a moderate rate (0 skips)")
	flag.DurationVar(&o.pacedInterval, "paced-interval", 20*time.Millisecond, "time between paced broadcast messages")
	flag.IntVar(&o.idle, "idle", 2000, "idle clients for the memory test (0 skips)")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait after the idle clients are connected before reading RSS")
	flag.DurationVar(&o.pingInterval, "ping-interval", 5*time.Minute, "pingInterval and pingTimeout of both servers (long, so heartbeats stay out of the numbers)")
	flag.StringVar(&o.echoMode, "echo", "raw", "how duplex's echo handler builds its ack: raw (Args.Raw) or values (Args.Values)")
	o.procs.AddFlags(flag.CommandLine, "sioserver")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	flag.StringVar(&o.profileDir, "profile", "", "write duplex server CPU profiles (one per run for event+ack, one for broadcast) to this directory")
	o.node = harness.NodeServer{Package: "socket.io"}
	o.node.AddFlags(flag.CommandLine, "node/sioserver.js", "the Node socket.io bench server")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("siocompare: ")

	var err error
	o.impls = harness.SplitList(*impls)
	for _, im := range o.impls {
		if im != "duplex" && im != "node" {
			log.Fatalf("unknown impl %q (have duplex, node)", im)
		}
	}
	if o.clients, err = harness.IntList(*clients); err != nil {
		log.Fatal(err)
	}
	if o.inflight, err = harness.IntList(*inflight); err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 || o.size < 1 || len(o.impls) == 0 || o.bcastMessages < 1 {
		log.Fatal("need -runs ≥ 1, -size ≥ 1, -bcast-messages ≥ 1 and an impl")
	}
	if o.echoMode != "raw" && o.echoMode != "values" {
		log.Fatal("-echo must be raw or values")
	}
	if slices.Contains(o.impls, "node") {
		if err := o.node.Check(); err != nil {
			log.Fatalf("%v (use -impls duplex to run without Node)", err)
		}
	}
	cleanup, err := o.procs.Prepare("siocompare", "./cmd/sioserver")
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()

	rep := run(context.Background(), o)
	report.Save(o.outDir, "sio-", rep.Started, rep)
	rep.print(os.Stdout, o)
	if err := report.FailuresError(rep.Failures); err != nil {
		log.Fatal(err)
	}
}

type echoSample struct {
	Run      int         `json:"run"`
	Impl     string      `json:"impl"`
	Clients  int         `json:"clients"`
	InFlight int         `json:"inflight"`
	Res      load.Result `json:"result"`
}

// echoCell is one point of the event+ack matrix.
type echoCell struct{ clients, inflight int }

func (o options) echoCells() []echoCell {
	var cs []echoCell
	for _, n := range o.clients {
		for _, k := range o.inflight {
			cs = append(cs, echoCell{n, k})
		}
	}
	return cs
}

type bcastSample struct {
	Run  int                  `json:"run"`
	Impl string               `json:"impl"`
	Res  load.BroadcastResult `json:"result"`
}

type idleSample struct {
	Run          int     `json:"run"`
	Impl         string  `json:"impl"`
	Clients      int     `json:"clients"`
	RSSBefore    int64   `json:"rss_before"`
	RSSAfter     int64   `json:"rss_after"`
	BytesPerConn float64 `json:"bytes_per_client"`
}

// results are the raw numbers of every run, saved as JSON.
type results struct {
	Started  time.Time         `json:"started"`
	Tree     string            `json:"tree"` // duplex commit, "+dirty" when socketio/, engineio/ or ws/ have local changes
	Versions map[string]string `json:"versions"`
	Echo     []echoSample      `json:"echo"`
	Bcast    []bcastSample     `json:"broadcast"`
	Idle     []idleSample      `json:"idle"`
	Failures []string          `json:"failures"`
}

func run(ctx context.Context, o options) *results {
	rep := &results{Started: time.Now(), Tree: harness.TreeVersion("socketio", "engineio", "ws"), Versions: map[string]string{"go": runtime.Version()}}
	if slices.Contains(o.impls, "node") {
		rep.Versions["node"] = o.node.Versions("socket.io", "engine.io", "ws")
	}
	for r := 0; r < o.runs; r++ {
		order := harness.Rotate(o.impls, r)
		for _, impl := range order {
			log.Printf("run %d/%d: %s event+ack", r+1, o.runs, impl)
			samples, fails := runEcho(ctx, o, r, impl)
			rep.Echo = append(rep.Echo, samples...)
			rep.Failures = append(rep.Failures, fails...)
		}
		if o.bcastClients > 0 {
			for _, impl := range order {
				log.Printf("run %d/%d: %s broadcast", r+1, o.runs, impl)
				s, err := runBroadcast(ctx, o, r, impl)
				if err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s broadcast: %v", r+1, impl, err))
					continue
				}
				rep.Bcast = append(rep.Bcast, s)
			}
		}
		if o.idle > 0 {
			for _, impl := range order {
				s, err := idleRSS(ctx, o, r, impl)
				if err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s idle: %v", r+1, impl, err))
					continue
				}
				log.Printf("run %d/%d: %s idle: %.1f KiB/client", r+1, o.runs, impl, s.BytesPerConn/1024)
				rep.Idle = append(rep.Idle, s)
			}
		}
	}
	return rep
}

// startServer starts a fresh server for impl, duplex's writing a CPU profile
// to profile unless it is "".
func startServer(o options, impl, profile string) (*harness.Server, error) {
	if impl == "node" {
		return o.node.Start(o.procs, o.pingInterval, o.pingInterval)
	}
	args := []string{"-addr", "127.0.0.1:0", "-ping-interval", o.pingInterval.String(), "-ping-timeout", o.pingInterval.String(), "-echo", o.echoMode}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	return harness.StartServer("duplex server", o.procs.ServerCommand(o.procs.Bin("sioserver"), args...))
}

func (o options) profile(impl, what string, r int) string {
	if o.profileDir == "" || impl != "duplex" {
		return ""
	}
	_ = os.MkdirAll(o.profileDir, 0o755)
	return filepath.Join(o.profileDir, fmt.Sprintf("sio-%s-%s-run%d.cpu.prof", impl, what, r+1))
}

func runEcho(ctx context.Context, o options, r int, impl string) ([]echoSample, []string) {
	srv, err := startServer(o, impl, o.profile(impl, "echo", r))
	if err != nil {
		return nil, []string{fmt.Sprintf("run %d %s: %v", r+1, impl, err)}
	}
	defer srv.Stop()
	var samples []echoSample
	var fails []string
	for _, c := range o.echoCells() {
		args := []string{"-addr", srv.Addr, "-proto", "sio", "-conns", strconv.Itoa(c.clients), "-inflight", strconv.Itoa(c.inflight),
			"-size", strconv.Itoa(o.size), "-duration", o.duration.String(), "-warmup", o.warmup.String(),
			"-server-pid", strconv.Itoa(srv.PID)}
		var res load.Result
		err := o.procs.RunLoad(ctx, o.warmup+o.duration+2*time.Minute, args, &res)
		if err == nil && res.Errors > 0 {
			err = fmt.Errorf("%d clients failed, first: %s", res.Errors, res.FirstError)
		}
		if err != nil {
			fails = append(fails, fmt.Sprintf("run %d %s event+ack × %d, %d in flight: %v", r+1, impl, c.clients, c.inflight, err))
			continue
		}
		samples = append(samples, echoSample{Run: r, Impl: impl, Clients: c.clients, InFlight: c.inflight, Res: res})
	}
	return samples, fails
}

func runBroadcast(ctx context.Context, o options, r int, impl string) (bcastSample, error) {
	s := bcastSample{Run: r, Impl: impl}
	srv, err := startServer(o, impl, o.profile(impl, "bcast", r))
	if err != nil {
		return s, err
	}
	defer srv.Stop()
	args := []string{"-addr", srv.Addr, "-proto", "sio-bcast", "-conns", strconv.Itoa(o.bcastClients),
		"-size", strconv.Itoa(o.size), "-messages", strconv.Itoa(o.bcastMessages), "-warmup-messages", strconv.Itoa(o.bcastWarmup),
		"-paced-messages", strconv.Itoa(o.pacedMessages), "-interval", o.pacedInterval.String(),
		"-server-pid", strconv.Itoa(srv.PID)}
	err = o.procs.RunLoad(ctx, 8*time.Minute, args, &s.Res)
	if err == nil && s.Res.Errors > 0 {
		err = fmt.Errorf("%d clients failed, first: %s", s.Res.Errors, s.Res.FirstError)
	}
	if err == nil && len(s.Res.Phases) == 0 {
		err = fmt.Errorf("no phase measured")
	}
	return s, err
}

// idleRSS starts a fresh server, connects the idle clients and returns the
// server's RSS growth per client after the settle time.
func idleRSS(ctx context.Context, o options, r int, impl string) (idleSample, error) {
	s := idleSample{Run: r, Impl: impl, Clients: o.idle}
	srv, err := startServer(o, impl, "")
	if err != nil {
		return s, err
	}
	defer srv.Stop()
	args := []string{"-addr", srv.Addr, "-proto", "sio", "-idle", strconv.Itoa(o.idle), "-hold", "5m"}
	s.RSSBefore, s.RSSAfter, err = o.procs.IdleRSS(ctx, srv, harness.IdleLoad{Args: args,
		Ready: "idle_clients", NotReady: "idle clients not connected", Settle: o.settle})
	if err != nil {
		return s, err
	}
	s.BytesPerConn = float64(s.RSSAfter-s.RSSBefore) / float64(o.idle)
	return s, nil
}

func (rep *results) print(w io.Writer, o options) {
	report.PrintVersions(w, rep.Tree, rep.Versions)
	var targets []report.Target
	targets = rep.printEcho(w, o, targets)
	targets = rep.printBroadcast(w, o, targets)
	rep.printIdle(w, o)
	report.PrintTargets(w, targets)
	report.PrintFailures(w, rep.Failures)
}

func (rep *results) printEcho(w io.Writer, o options, targets []report.Target) []report.Target {
	type key struct {
		impl string
		c    echoCell
	}
	by := map[key]map[int]load.Result{}
	for _, s := range rep.Echo {
		k := key{s.Impl, echoCell{s.Clients, s.InFlight}}
		if by[k] == nil {
			by[k] = map[int]load.Result{}
		}
		by[k][s.Run] = s.Res
	}
	fmt.Fprintf(w, "\n## Event + ack round trips (42<id>[\"echo\",<%d characters>] → 43<id>[...]; per client, in flight k: k events in one write, then their k acks; median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
		o.size, o.runs, o.duration, o.procs.ServerCPU, o.procs.LoadCPU)
	fmt.Fprintln(w, "| clients | in flight | impl | round trips/s | vs node | per server CPU-s | vs node | p50 µs | p99 µs | server CPU µs/rt | server syscalls/rt | server CPU % | load CPU % | runs |")
	fmt.Fprintln(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range o.echoCells() {
		n := c.clients
		for _, impl := range o.impls {
			runs := by[key{impl, c}]
			if len(runs) == 0 {
				fmt.Fprintf(w, "| %d | %d | %s | failed | | | | | | | | | | 0 |\n", n, c.inflight, impl)
				continue
			}
			e := report.CollectEcho(runs, by[key{"node", c}])
			if impl == "duplex" && len(e.Ratio) > 0 {
				targets = append(targets, report.AtLeast(fmt.Sprintf("event+ack round trips/s, %d clients, %d in flight", n, c.inflight), report.Median(e.Ratio), targetSpeedup))
			}
			if impl == "duplex" && len(e.CPURatio) > 0 {
				targets = append(targets, report.AtLeast(fmt.Sprintf("round trips per server CPU-second, %d clients, %d in flight", n, c.inflight), report.Median(e.CPURatio), targetSpeedup))
			}
			rs, crs := "–", "–"
			if impl != "node" {
				rs, crs = report.FormatMedian(e.Ratio, "%.2f"), report.FormatMedian(e.CPURatio, "%.2f")
			}
			fmt.Fprintf(w, "| %d | %d | %s | %.0f | %s | %.0f | %s | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %d |\n",
				n, c.inflight, impl, report.Median(e.MsgsPerSec), rs, report.Median(e.MsgsPerServerCPUSec), crs, report.Median(e.P50us), report.Median(e.P99us),
				report.Median(e.ServerCPUPerMsgUs), report.Median(e.ServerSyscallsPerMsg), report.Median(e.ServerCPUPercent), report.Median(e.LoadCPUPercent), len(runs))
		}
	}
	return targets
}

func (rep *results) printBroadcast(w io.Writer, o options, targets []report.Target) []report.Target {
	if len(rep.Bcast) == 0 {
		return targets
	}
	phase := func(res load.BroadcastResult, name string) (load.BroadcastPhase, bool) {
		for _, ph := range res.Phases {
			if ph.Name == name {
				return ph, true
			}
		}
		return load.BroadcastPhase{}, false
	}
	burst := map[string]map[int]load.BroadcastPhase{}
	paced := map[string]map[int]load.BroadcastPhase{}
	for _, s := range rep.Bcast {
		if burst[s.Impl] == nil {
			burst[s.Impl], paced[s.Impl] = map[int]load.BroadcastPhase{}, map[int]load.BroadcastPhase{}
		}
		if ph, ok := phase(s.Res, "burst"); ok {
			burst[s.Impl][s.Run] = ph
		}
		if ph, ok := phase(s.Res, "paced"); ok {
			paced[s.Impl][s.Run] = ph
		}
	}
	fmt.Fprintf(w, "\n## Broadcast to a %d-client room (%d messages of %d characters back to back after %d unmeasured; latency = arrival − the server's timestamp at emit; median of %d runs)\n\n",
		o.bcastClients, o.bcastMessages, o.size, o.bcastWarmup, o.runs)
	fmt.Fprintln(w, "| impl | deliveries/s | vs node | per server CPU-s | vs node | p50 ms | p99 ms | emit loop ms | server CPU µs/delivery | server syscalls/delivery | server alloc B/delivery | server allocs/delivery | server CPU % | load CPU % | runs |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, impl := range o.impls {
		runs := burst[impl]
		if len(runs) == 0 {
			fmt.Fprintf(w, "| %s | failed | | | | | | | | | | | | | 0 |\n", impl)
			continue
		}
		var dps, ratio, perCPU, cpuRatio, p50, p99, emit, cpu, sys, allocB, allocs, scpu, lcpu []float64
		for r, ph := range runs {
			dps = append(dps, ph.PerSec)
			p50 = append(p50, ph.P50us/1e3)
			p99 = append(p99, ph.P99us/1e3)
			emit = append(emit, ph.EmitSeconds*1e3)
			d := float64(ph.Deliveries)
			if ph.ServerCPUSeconds > 0 {
				perCPU = append(perCPU, d/ph.ServerCPUSeconds)
				cpu = append(cpu, ph.ServerCPUSeconds*1e6/d)
			}
			if ph.ServerSyscalls >= 0 {
				sys = append(sys, float64(ph.ServerSyscalls)/d)
			}
			if ph.ServerAllocBytes >= 0 {
				allocB = append(allocB, float64(ph.ServerAllocBytes)/d)
				allocs = append(allocs, float64(ph.ServerMallocs)/d)
			}
			if ph.Seconds > 0 {
				if ph.ServerCPUSeconds >= 0 {
					scpu = append(scpu, 100*ph.ServerCPUSeconds/ph.Seconds)
				}
				if ph.LoadCPUSeconds >= 0 {
					lcpu = append(lcpu, 100*ph.LoadCPUSeconds/ph.Seconds)
				}
			}
			if base, ok := burst["node"][r]; ok && base.PerSec > 0 {
				ratio = append(ratio, ph.PerSec/base.PerSec)
				if ph.ServerCPUSeconds > 0 && base.ServerCPUSeconds > 0 {
					cpuRatio = append(cpuRatio, (d/ph.ServerCPUSeconds)/(float64(base.Deliveries)/base.ServerCPUSeconds))
				}
			}
		}
		if impl == "duplex" && len(ratio) > 0 {
			targets = append(targets, report.AtLeast(fmt.Sprintf("broadcast deliveries/s, %d-client room", o.bcastClients), report.Median(ratio), targetSpeedup))
		}
		if impl == "duplex" && len(cpuRatio) > 0 {
			targets = append(targets, report.AtLeast("broadcast deliveries per server CPU-second", report.Median(cpuRatio), targetSpeedup))
		}
		rs, crs := "–", "–"
		if impl != "node" {
			rs, crs = report.FormatMedian(ratio, "%.2f"), report.FormatMedian(cpuRatio, "%.2f")
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %d |\n",
			impl, report.Median(dps), rs, report.FormatMedian(perCPU, "%.0f"), crs, report.Median(p50), report.Median(p99), report.Median(emit),
			report.FormatMedian(cpu, "%.2f"), report.FormatMedian(sys, "%.2f"), report.FormatMedian(allocB, "%.0f"), report.FormatMedian(allocs, "%.2f"),
			report.FormatMedian(scpu, "%.0f"), report.FormatMedian(lcpu, "%.0f"), len(runs))
	}
	if o.pacedMessages > 0 {
		fmt.Fprintf(w, "\n### Paced broadcast latency (%d messages, one every %v, to the same room: %.0f deliveries/s offered)\n\n",
			o.pacedMessages, o.pacedInterval, float64(o.bcastClients)/o.pacedInterval.Seconds())
		fmt.Fprintln(w, "| impl | p50 ms | p99 ms | max ms | server CPU % | runs |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
		for _, impl := range o.impls {
			runs := paced[impl]
			if len(runs) == 0 {
				fmt.Fprintf(w, "| %s | failed | | | | 0 |\n", impl)
				continue
			}
			var p50, p99, mx, scpu []float64
			for _, ph := range runs {
				p50 = append(p50, ph.P50us/1e3)
				p99 = append(p99, ph.P99us/1e3)
				mx = append(mx, ph.MaxUs/1e3)
				if ph.ServerCPUSeconds >= 0 && ph.Seconds > 0 {
					scpu = append(scpu, 100*ph.ServerCPUSeconds/ph.Seconds)
				}
			}
			fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f | %s | %d |\n", impl, report.Median(p50), report.Median(p99), report.Median(mx), report.FormatMedian(scpu, "%.0f"), len(runs))
		}
	}
	return targets
}

func (rep *results) printIdle(w io.Writer, o options) {
	if len(rep.Idle) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Memory per idle client (server VmRSS growth / clients connected to the main namespace over WebSocket, %v settle; median of runs)\n\n", o.settle)
	fmt.Fprintln(w, "| clients | impl | RSS before MiB | RSS with clients MiB | KiB per client | vs node | runs |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|")
	nodePer := map[int]float64{}
	for _, s := range rep.Idle {
		if s.Impl == "node" {
			nodePer[s.Run] = s.BytesPerConn
		}
	}
	for _, impl := range o.impls {
		var before, after, per, ratio []float64
		for _, s := range rep.Idle {
			if s.Impl != impl {
				continue
			}
			before = append(before, float64(s.RSSBefore)/(1<<20))
			after = append(after, float64(s.RSSAfter)/(1<<20))
			per = append(per, s.BytesPerConn/1024)
			if np, ok := nodePer[s.Run]; ok && np > 0 {
				ratio = append(ratio, s.BytesPerConn/np)
			}
		}
		if len(per) == 0 {
			fmt.Fprintf(w, "| %d | %s | failed | | | | 0 |\n", o.idle, impl)
			continue
		}
		rs := "–"
		if impl != "node" {
			rs = report.FormatMedian(ratio, "%.2f")
		}
		fmt.Fprintf(w, "| %d | %s | %.1f | %.1f | %.2f | %s | %d |\n", o.idle, impl, report.Median(before), report.Median(after), report.Median(per), rs, len(per))
	}
}
