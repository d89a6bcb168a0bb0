// Command sioclientcompare runs the Socket.IO client side-by-side benchmark:
// duplex's Go Socket.IO client (cmd/sioclientload) against Node's official
// socket.io-client (node/sioclient.js), both driving event+ack round trips
// at the same server, duplex's socketio.Server (cmd/sioserver). For each run
// and scenario (clients × events in flight per client), each client in turn
// (order rotated per run, so that the two measurements of a ratio are taken
// back to back) drives a fresh server pinned to CPU 0 from CPU 1; it prints markdown tables of medians with duplex ÷ node ratios and
// the target (≥ 2× Node's round trips/s), or, with -json, one JSON
// document.
//
// Run it from the bench directory (Node's socket.io-client comes from
// ../test/interop/node_modules: cd ../test/interop && npm ci):
//
//	go run ./cmd/sioclientcompare -runs 5
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/bench/internal/harness"
	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/report"
)

// The target of the client issue: duplex's client at least 2× Node's
// socket.io-client's event+ack round trips/s.
const targetSpeedup = 2.0

// scenario is one cell: clients, each with inflight events in flight.
type scenario struct{ clients, inflight int }

func (s scenario) String() string { return fmt.Sprintf("%dx%d", s.clients, s.inflight) }

type options struct {
	runs             int
	impls            []string
	scenarios        []scenario
	size             int
	duration, warmup time.Duration
	pingInterval     time.Duration
	procs            harness.Processes
	node             harness.NodeServer
	outDir           string
	profileDir       string
	jsonOut          bool
	quietWait        time.Duration
}

func main() {
	var o options
	impls := flag.String("impls", "duplex,node", "clients: duplex (cmd/sioclientload, the Go client) and/or node (node/sioclient.js, socket.io-client)")
	scenarios := flag.String("scenarios", "1x1,1x16,50x1", "CLIENTSxINFLIGHT cells, comma-separated (replaced by -clients/-inflight when either is set)")
	clients := flag.String("clients", "", "clients, comma-separated: with -inflight, run every clients × in-flight cell instead of -scenarios")
	inflight := flag.String("inflight", "", "events in flight per client, comma-separated (each a loop emit → wait for the ack → emit); default 1 with -clients")
	flag.IntVar(&o.size, "size", 1024, "characters of the echo's string argument")
	flag.IntVar(&o.runs, "runs", 5, "runs; tables show medians")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured window per cell")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured traffic before each window")
	flag.DurationVar(&o.pingInterval, "ping-interval", 5*time.Minute, "the server's pingInterval and pingTimeout (long, so heartbeats stay out of the numbers)")
	o.procs.AddFlags(flag.CommandLine, "sioserver, sioclientload")
	o.node = harness.NodeServer{Package: "socket.io-client"}
	o.node.AddFlags(flag.CommandLine, "node/sioclient.js", "the Node socket.io-client load script")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	flag.StringVar(&o.profileDir, "profile", "", "write CPU profiles of the Go client (one per run and cell) and of the server (one per run and client) to this directory")
	flag.DurationVar(&o.quietWait, "quiet-wait", 30*time.Second, "before each cell, wait at most this long for the machine to be nearly idle (all CPUs under 15% of one; 0: don't wait)")
	flag.BoolVar(&o.jsonOut, "json", false, "print one JSON document (medians, ratios, targets, raw samples) instead of the markdown tables")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sioclientcompare: ")

	var err error
	o.impls = harness.SplitList(*impls)
	for _, im := range o.impls {
		if im != "duplex" && im != "node" {
			log.Fatalf("unknown client %q (have duplex, node)", im)
		}
	}
	if o.scenarios, err = parseScenarios(*scenarios, *clients, *inflight); err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 || o.size < 1 || len(o.impls) == 0 || o.duration <= 0 || o.warmup < 0 {
		log.Fatal("need -runs ≥ 1, -size ≥ 1, -duration > 0, -warmup ≥ 0 and a client")
	}
	if slices.Contains(o.impls, "node") {
		if err := o.node.Check(); err != nil {
			log.Fatalf("%v (use -impls duplex to run without Node)", err)
		}
	}
	cleanup, err := o.procs.Prepare("sioclientcompare", "./cmd/sioserver", "./cmd/sioclientload")
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()

	rep := run(context.Background(), o)
	report.Save(o.outDir, "sioclient-", rep.Started, rep)
	if o.jsonOut {
		b, _ := json.MarshalIndent(rep.summarize(o), "", "  ")
		fmt.Println(string(b))
	} else {
		rep.print(os.Stdout, o)
	}
	if err := report.FailuresError(rep.Failures); err != nil {
		log.Fatal(err)
	}
}

// parseScenarios returns the cells: the matrix of clients × inflight when
// either list is set, else the CLIENTSxINFLIGHT list.
func parseScenarios(list, clients, inflight string) ([]scenario, error) {
	var out []scenario
	if clients != "" || inflight != "" {
		cs, ks := []int{1}, []int{1}
		var err error
		if clients != "" {
			if cs, err = harness.IntList(clients); err != nil {
				return nil, err
			}
		}
		if inflight != "" {
			if ks, err = harness.IntList(inflight); err != nil {
				return nil, err
			}
		}
		for _, c := range cs {
			for _, k := range ks {
				out = append(out, scenario{c, k})
			}
		}
	} else {
		for _, f := range harness.SplitList(list) {
			c, k, ok := strings.Cut(f, "x")
			n, err1 := strconv.Atoi(c)
			m, err2 := strconv.Atoi(k)
			if !ok || err1 != nil || err2 != nil || n < 1 || m < 1 {
				return nil, fmt.Errorf("bad scenario %q in %q (want CLIENTSxINFLIGHT, such as 50x1)", f, list)
			}
			out = append(out, scenario{n, m})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scenario")
	}
	return out, nil
}

// sample is one measured cell of one run.
type sample struct {
	Run      int         `json:"run"`
	Impl     string      `json:"impl"` // the client: duplex or node
	Clients  int         `json:"clients"`
	InFlight int         `json:"inflight"`
	Res      load.Result `json:"result"`
}

// results are the raw numbers of every run, saved as JSON.
type results struct {
	Started  time.Time         `json:"started"`
	Tree     string            `json:"tree"` // duplex commit, "+dirty" when socketio/, engineio/ or ws/ have local changes
	Versions map[string]string `json:"versions"`
	Size     int               `json:"size"`
	Busy     int               `json:"busy_starts"` // cells that started while the machine was still busy after -quiet-wait
	Samples  []sample          `json:"samples"`
	Failures []string          `json:"failures"`
}

func run(ctx context.Context, o options) *results {
	rep := &results{Started: time.Now(), Tree: harness.TreeVersion("socketio", "engineio", "ws"),
		Versions: map[string]string{"go": runtime.Version()}, Size: o.size}
	if slices.Contains(o.impls, "node") {
		rep.Versions["node"] = o.node.Versions("socket.io-client", "engine.io-client", "ws")
	}
	for r := 0; r < o.runs; r++ {
		for _, sc := range o.scenarios {
			for _, impl := range harness.Rotate(o.impls, r) {
				if !harness.WaitQuiet(o.quietWait, 0.15) {
					rep.Busy++
					log.Printf("the machine is still busy after %v; measuring all the same", o.quietWait)
				}
				log.Printf("run %d/%d: %s client, %d clients × %d in flight", r+1, o.runs, impl, sc.clients, sc.inflight)
				s, err := runCell(ctx, o, r, impl, sc)
				if err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s client, %d clients × %d in flight: %v", r+1, impl, sc.clients, sc.inflight, err))
					continue
				}
				rep.Samples = append(rep.Samples, s)
			}
		}
	}
	return rep
}

// profile returns the path of a CPU profile named name in -profile's
// directory, or "" without -profile.
func (o options) profile(name string) string {
	if o.profileDir == "" {
		return ""
	}
	_ = os.MkdirAll(o.profileDir, 0o755)
	return filepath.Join(o.profileDir, name+".cpu.prof")
}

// runCell starts a fresh server and runs one scenario with the client impl.
func runCell(ctx context.Context, o options, r int, impl string, sc scenario) (sample, error) {
	s := sample{Run: r, Impl: impl, Clients: sc.clients, InFlight: sc.inflight}
	args := []string{"-addr", "127.0.0.1:0", "-ping-interval", o.pingInterval.String(), "-ping-timeout", o.pingInterval.String()}
	if p := o.profile(fmt.Sprintf("sioclient-server-%s-%s-run%d", impl, sc, r+1)); p != "" {
		args = append(args, "-cpuprofile", p)
	}
	srv, err := harness.StartServer("duplex server", o.procs.ServerCommand(o.procs.Bin("sioserver"), args...))
	if err != nil {
		return s, err
	}
	defer srv.Stop()
	s.Res, err = runLoad(ctx, o, r, impl, sc, srv)
	if err == nil && s.Res.Errors > 0 {
		err = fmt.Errorf("%d clients failed, first: %s", s.Res.Errors, s.Res.FirstError)
	}
	if err == nil && s.Res.Msgs == 0 {
		err = fmt.Errorf("no round trip in the window")
	}
	return s, err
}

// runLoad runs one scenario with the client impl, pinned to the load CPU.
func runLoad(ctx context.Context, o options, r int, impl string, sc scenario, srv *harness.Server) (load.Result, error) {
	var res load.Result
	timeout := o.warmup + o.duration + 2*time.Minute
	url := "http://" + srv.Addr
	if impl == "node" {
		args := []string{url, strconv.Itoa(sc.clients), strconv.Itoa(sc.inflight), strconv.Itoa(o.size),
			strconv.FormatInt(o.warmup.Milliseconds(), 10), strconv.FormatInt(o.duration.Milliseconds(), 10), strconv.Itoa(srv.PID)}
		err := o.node.RunLoad(ctx, o.procs, timeout, args, &res)
		return res, err
	}
	args := []string{"-url", url, "-clients", strconv.Itoa(sc.clients), "-inflight", strconv.Itoa(sc.inflight),
		"-size", strconv.Itoa(o.size), "-duration", o.duration.String(), "-warmup", o.warmup.String(), "-server-pid", strconv.Itoa(srv.PID)}
	if p := o.profile(fmt.Sprintf("sioclient-duplex-%s-run%d", sc, r+1)); p != "" {
		args = append(args, "-cpuprofile", p)
	}
	err := o.procs.RunLoadCommand(ctx, timeout, nil, o.procs.Bin("sioclientload"), args, &res)
	return res, err
}

// implSummary is one client's medians in one scenario.
type implSummary struct {
	Runs                   int     `json:"runs"`
	RoundTripsPerSec       float64 `json:"round_trips_per_sec"`
	RoundTripsPerClientCPU float64 `json:"round_trips_per_client_cpu_s"`
	P50us                  float64 `json:"p50_us"`
	P90us                  float64 `json:"p90_us"`
	P99us                  float64 `json:"p99_us"`
	ClientCPUPerRTus       float64 `json:"client_cpu_per_rt_us"`
	ClientSyscallsPerRT    float64 `json:"client_syscalls_per_rt"`
	ClientCPUPercent       float64 `json:"client_cpu_percent"`
	ServerCPUPerRTus       float64 `json:"server_cpu_per_rt_us"`
	ServerSyscallsPerRT    float64 `json:"server_syscalls_per_rt"`
	ServerCPUPercent       float64 `json:"server_cpu_percent"`
	// Medians of the per-run ratios to node (duplex only; 0 when not measured).
	Ratio          float64 `json:"ratio_vs_node,omitempty"`
	ClientCPURatio float64 `json:"client_cpu_ratio_vs_node,omitempty"`
}

type scenarioSummary struct {
	Clients  int                    `json:"clients"`
	InFlight int                    `json:"inflight"`
	Impls    map[string]implSummary `json:"impls"`
}

// summary is the -json output.
type summary struct {
	Started   time.Time         `json:"started"`
	Tree      string            `json:"tree"`
	Versions  map[string]string `json:"versions"`
	Size      int               `json:"size"`
	Busy      int               `json:"busy_starts"`
	Runs      int               `json:"runs"`
	Seconds   float64           `json:"window_seconds"`
	Scenarios []scenarioSummary `json:"scenarios"`
	Targets   []report.Target   `json:"targets"`
	Samples   []sample          `json:"samples"`
	Failures  []string          `json:"failures"`
}

// collect returns the columns of impl's row in scenario sc, with ratios to
// node's runs.
func (rep *results) collect(impl string, sc scenario) (report.EchoRuns, int) {
	by := func(impl string) map[int]load.Result {
		m := map[int]load.Result{}
		for _, s := range rep.Samples {
			if s.Impl == impl && s.Clients == sc.clients && s.InFlight == sc.inflight {
				m[s.Run] = s.Res
			}
		}
		return m
	}
	runs := by(impl)
	var base map[int]load.Result
	if impl != "node" {
		base = by("node")
	}
	return report.CollectEcho(runs, base), len(runs)
}

// targets are the targets, one pair per scenario that both clients
// measured.
func (rep *results) targets(o options) []report.Target {
	var ts []report.Target
	for _, sc := range o.scenarios {
		e, _ := rep.collect("duplex", sc)
		if len(e.Ratio) > 0 {
			ts = append(ts, report.AtLeast(fmt.Sprintf("client round trips/s, %d clients × %d in flight", sc.clients, sc.inflight), report.Median(e.Ratio), targetSpeedup))
		}
		if len(e.LoadCPURatio) > 0 {
			ts = append(ts, report.AtLeast(fmt.Sprintf("round trips per client CPU-second, %d clients × %d in flight", sc.clients, sc.inflight), report.Median(e.LoadCPURatio), targetSpeedup))
		}
	}
	return ts
}

func (rep *results) summarize(o options) summary {
	s := summary{Started: rep.Started, Tree: rep.Tree, Versions: rep.Versions, Size: rep.Size, Busy: rep.Busy, Runs: o.runs,
		Seconds: o.duration.Seconds(), Targets: rep.targets(o), Samples: rep.Samples, Failures: rep.Failures}
	for _, sc := range o.scenarios {
		ss := scenarioSummary{Clients: sc.clients, InFlight: sc.inflight, Impls: map[string]implSummary{}}
		for _, impl := range o.impls {
			e, n := rep.collect(impl, sc)
			if n == 0 {
				continue
			}
			ss.Impls[impl] = implSummary{Runs: n, RoundTripsPerSec: report.Median(e.MsgsPerSec), RoundTripsPerClientCPU: report.Median(e.MsgsPerLoadCPUSec),
				P50us: report.Median(e.P50us), P90us: report.Median(e.P90us), P99us: report.Median(e.P99us),
				ClientCPUPerRTus: report.Median(e.LoadCPUPerMsgUs), ClientSyscallsPerRT: report.Median(e.LoadSyscallsPerMsg), ClientCPUPercent: report.Median(e.LoadCPUPercent),
				ServerCPUPerRTus: report.Median(e.ServerCPUPerMsgUs), ServerSyscallsPerRT: report.Median(e.ServerSyscallsPerMsg),
				ServerCPUPercent: report.Median(e.ServerCPUPercent), Ratio: report.Median(e.Ratio), ClientCPURatio: report.Median(e.LoadCPURatio)}
		}
		s.Scenarios = append(s.Scenarios, ss)
	}
	return s
}

func (rep *results) print(w io.Writer, o options) {
	report.PrintVersions(w, rep.Tree, rep.Versions)
	fmt.Fprintf(w, "\n## Client event + ack round trips (emit(\"echo\", <%d characters>, ack) → ack with the same; per client, k in flight: k loops of emit → ack → emit; server: duplex's socketio.Server on CPU %s, client on CPU %s; median of %d runs, %v window)\n\n",
		o.size, o.procs.ServerCPU, o.procs.LoadCPU, o.runs, o.duration)
	fmt.Fprintln(w, "| clients | in flight | client | round trips/s | vs node | per client CPU-s | vs node | p50 µs | p90 µs | p99 µs | client CPU µs/rt | client syscalls/rt | client CPU % | server CPU µs/rt | server syscalls/rt | server CPU % | runs |")
	fmt.Fprintln(w, "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, sc := range o.scenarios {
		for _, impl := range o.impls {
			e, n := rep.collect(impl, sc)
			if n == 0 {
				fmt.Fprintf(w, "| %d | %d | %s | failed | | | | | | | | | | | | | 0 |\n", sc.clients, sc.inflight, impl)
				continue
			}
			rs, crs := "–", "–"
			if impl != "node" {
				rs, crs = report.FormatMedian(e.Ratio, "%.2f"), report.FormatMedian(e.LoadCPURatio, "%.2f")
			}
			fmt.Fprintf(w, "| %d | %d | %s | %.0f | %s | %s | %s | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %d |\n",
				sc.clients, sc.inflight, impl, report.Median(e.MsgsPerSec), rs, report.FormatMedian(e.MsgsPerLoadCPUSec, "%.0f"), crs,
				report.Median(e.P50us), report.Median(e.P90us), report.Median(e.P99us),
				report.FormatMedian(e.LoadCPUPerMsgUs, "%.2f"), report.FormatMedian(e.LoadSyscallsPerMsg, "%.2f"), report.FormatMedian(e.LoadCPUPercent, "%.0f"),
				report.FormatMedian(e.ServerCPUPerMsgUs, "%.2f"), report.FormatMedian(e.ServerSyscallsPerMsg, "%.2f"),
				report.FormatMedian(e.ServerCPUPercent, "%.0f"), n)
		}
	}
	if rep.Busy > 0 {
		fmt.Fprintf(w, "\n%d of %d cells started while the machine was still busy after waiting %v for it to be idle: other work shared the CPUs.\n", rep.Busy, len(rep.Samples)+len(rep.Failures), o.quietWait)
	}
	report.PrintTargets(w, rep.targets(o))
	report.PrintFailures(w, rep.Failures)
}
