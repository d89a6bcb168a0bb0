// Command eiocompare runs the Engine.IO side-by-side benchmark: duplex's
// engineio.Server (cmd/eioserver) against the official Node engine.io server
// (node/eioserver.js), each a fresh process pinned to CPU 0, driven by the
// library-neutral load generator (cmd/load -proto eio-websocket|eio-polling)
// pinned to CPU 1. For each run and impl it measures closed-loop echo
// messages/s over both transports, then the memory per idle session, and
// prints markdown tables of medians with duplex/node ratios.
//
// Run it from the bench directory (Node's engine.io comes from
// ../test/interop/node_modules: cd ../test/interop && npm ci):
//
//	go run ./cmd/eiocompare -runs 3
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
	transports       []string
	sessions         []int
	size             int
	duration, warmup time.Duration
	idleWS           int
	idlePolling      int
	settle           time.Duration
	pingInterval     time.Duration
	procs            harness.Processes
	outDir           string
	profileDir       string
	node             harness.NodeServer
}

// The targets of the Engine.IO issue: duplex at least 3× Node's messages/s
// on one core, and at most 1/4 of its memory per idle session.
const (
	targetSpeedup = 3.0
	targetMemory  = 0.25
)

func main() {
	var o options
	impls := flag.String("impls", "duplex,node", "servers: duplex (cmd/eioserver) and/or node (node/eioserver.js)")
	transports := flag.String("transports", "websocket,polling", "Engine.IO transports")
	sessions := flag.String("sessions", "1,100", "concurrent sessions, each a closed send-and-wait-for-the-echo loop")
	flag.IntVar(&o.size, "size", 32, "characters of text per message")
	flag.IntVar(&o.runs, "runs", 3, "runs; tables show medians")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "measured window per cell")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured traffic before each window")
	flag.IntVar(&o.idleWS, "idle-websocket", 2000, "idle WebSocket sessions for the memory test (0 skips)")
	flag.IntVar(&o.idlePolling, "idle-polling", 1000, "idle polling sessions, each holding a pending GET, for the memory test (0 skips)")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait after the idle sessions are open before reading RSS")
	flag.DurationVar(&o.pingInterval, "ping-interval", 5*time.Minute, "pingInterval and pingTimeout of both servers (long, so heartbeats stay out of the numbers)")
	o.procs.AddFlags(flag.CommandLine, "eioserver")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	flag.StringVar(&o.profileDir, "profile", "", "write a duplex server CPU profile per run to this directory")
	o.node = harness.NodeServer{Package: "engine.io"}
	o.node.AddFlags(flag.CommandLine, "node/eioserver.js", "the Node engine.io echo server")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("eiocompare: ")

	var err error
	o.impls = harness.SplitList(*impls)
	o.transports = harness.SplitList(*transports)
	for _, im := range o.impls {
		if im != "duplex" && im != "node" {
			log.Fatalf("unknown impl %q (have duplex, node)", im)
		}
	}
	for _, tr := range o.transports {
		if tr != load.EIOWebSocket && tr != load.EIOPolling {
			log.Fatalf("unknown transport %q (have websocket, polling)", tr)
		}
	}
	if o.sessions, err = harness.IntList(*sessions); err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 || o.size < 1 || len(o.impls) == 0 || len(o.transports) == 0 {
		log.Fatal("need -runs ≥ 1, -size ≥ 1, an impl and a transport")
	}
	if slices.Contains(o.impls, "node") {
		if err := o.node.Check(); err != nil {
			log.Fatalf("%v (use -impls duplex to run without Node)", err)
		}
	}
	cleanup, err := o.procs.Prepare("eiocompare", "./cmd/eioserver")
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()

	rep := run(context.Background(), o)
	report.Save(o.outDir, "eio-", rep.Started, rep)
	rep.print(os.Stdout, o)
	if err := report.FailuresError(rep.Failures); err != nil {
		log.Fatal(err)
	}
}

// cell is one point of the echo matrix.
type cell struct {
	Transport string
	Sessions  int
}

type sample struct {
	Run  int         `json:"run"`
	Impl string      `json:"impl"`
	Cell cell        `json:"cell"`
	Res  load.Result `json:"result"`
}

type idleSample struct {
	Run          int     `json:"run"`
	Impl         string  `json:"impl"`
	Transport    string  `json:"transport"`
	Sessions     int     `json:"sessions"`
	RSSBefore    int64   `json:"rss_before"`
	RSSAfter     int64   `json:"rss_after"`
	BytesPerSess float64 `json:"bytes_per_session"`
}

// results are the raw numbers of every run, saved as JSON.
type results struct {
	Started  time.Time         `json:"started"`
	Tree     string            `json:"tree"` // duplex commit, "+dirty" when engineio/ or ws/ have local changes
	Versions map[string]string `json:"versions"`
	Samples  []sample          `json:"samples"`
	Idle     []idleSample      `json:"idle"`
	Failures []string          `json:"failures"`
}

func (o options) cells() []cell {
	var cs []cell
	for _, tr := range o.transports {
		for _, n := range o.sessions {
			cs = append(cs, cell{tr, n})
		}
	}
	return cs
}

func (o options) idleCount(transport string) int {
	if transport == load.EIOWebSocket {
		return o.idleWS
	}
	return o.idlePolling
}

func run(ctx context.Context, o options) *results {
	rep := &results{Started: time.Now(), Tree: harness.TreeVersion("engineio", "ws"), Versions: map[string]string{"go": runtime.Version()}}
	if slices.Contains(o.impls, "node") {
		rep.Versions["node"] = o.node.Versions("engine.io")
	}
	for r := 0; r < o.runs; r++ {
		order := harness.Rotate(o.impls, r)
		for _, impl := range order {
			log.Printf("run %d/%d: %s", r+1, o.runs, impl)
			samples, fails := runImpl(ctx, o, r, impl)
			rep.Samples = append(rep.Samples, samples...)
			rep.Failures = append(rep.Failures, fails...)
		}
		for _, tr := range o.transports {
			if o.idleCount(tr) == 0 {
				continue
			}
			for _, impl := range order {
				s, err := idleRSS(ctx, o, r, impl, tr)
				if err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s idle %s: %v", r+1, impl, tr, err))
					continue
				}
				log.Printf("run %d/%d: %s idle %s: %.1f KiB/session", r+1, o.runs, impl, tr, s.BytesPerSess/1024)
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
	args := []string{"-addr", "127.0.0.1:0", "-ping-interval", o.pingInterval.String(), "-ping-timeout", o.pingInterval.String()}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	return harness.StartServer("duplex server", o.procs.ServerCommand(o.procs.Bin("eioserver"), args...))
}

func runImpl(ctx context.Context, o options, r int, impl string) ([]sample, []string) {
	profile := ""
	if o.profileDir != "" && impl == "duplex" {
		_ = os.MkdirAll(o.profileDir, 0o755)
		profile = filepath.Join(o.profileDir, fmt.Sprintf("eio-%s-run%d.cpu.prof", impl, r+1))
	}
	srv, err := startServer(o, impl, profile)
	if err != nil {
		return nil, []string{fmt.Sprintf("run %d %s: %v", r+1, impl, err)}
	}
	defer srv.Stop()
	var samples []sample
	var fails []string
	for _, c := range o.cells() {
		res, err := runLoad(ctx, o, srv, c)
		if err == nil && res.Errors > 0 {
			err = fmt.Errorf("%d sessions failed, first: %s", res.Errors, res.FirstError)
		}
		if err != nil {
			fails = append(fails, fmt.Sprintf("run %d %s %s × %d: %v", r+1, impl, c.Transport, c.Sessions, err))
			continue
		}
		samples = append(samples, sample{Run: r, Impl: impl, Cell: c, Res: res})
	}
	return samples, fails
}

func runLoad(ctx context.Context, o options, srv *harness.Server, c cell) (load.Result, error) {
	var res load.Result
	args := []string{"-addr", srv.Addr, "-proto", "eio-" + c.Transport, "-conns", strconv.Itoa(c.Sessions),
		"-size", strconv.Itoa(o.size), "-duration", o.duration.String(), "-warmup", o.warmup.String(),
		"-server-pid", strconv.Itoa(srv.PID)}
	err := o.procs.RunLoad(ctx, o.warmup+o.duration+2*time.Minute, args, &res)
	return res, err
}

// idleRSS starts a fresh server, opens the idle sessions and returns the
// server's RSS growth per session after the settle time.
func idleRSS(ctx context.Context, o options, r int, impl, transport string) (idleSample, error) {
	n := o.idleCount(transport)
	s := idleSample{Run: r, Impl: impl, Transport: transport, Sessions: n}
	srv, err := startServer(o, impl, "")
	if err != nil {
		return s, err
	}
	defer srv.Stop()
	args := []string{"-addr", srv.Addr, "-proto", "eio-" + transport, "-idle", strconv.Itoa(n), "-hold", "5m"}
	s.RSSBefore, s.RSSAfter, err = o.procs.IdleRSS(ctx, srv, harness.IdleLoad{Args: args,
		Ready: "idle_sessions", NotReady: "idle sessions not open", Settle: o.settle})
	if err != nil {
		return s, err
	}
	s.BytesPerSess = float64(s.RSSAfter-s.RSSBefore) / float64(n)
	return s, nil
}

func (rep *results) print(w io.Writer, o options) {
	type key struct {
		impl string
		c    cell
	}
	by := map[key]map[int]load.Result{}
	for _, s := range rep.Samples {
		k := key{s.Impl, s.Cell}
		if by[k] == nil {
			by[k] = map[int]load.Result{}
		}
		by[k][s.Run] = s.Res
	}
	report.PrintVersions(w, rep.Tree, rep.Versions)
	fmt.Fprintf(w, "\n## Engine.IO echo (%d-character text messages, closed loop per session; median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
		o.size, o.runs, o.duration, o.procs.ServerCPU, o.procs.LoadCPU)
	fmt.Fprintln(w, "| transport | sessions | impl | msgs/s | vs node | msgs per server CPU-s | vs node | p50 µs | p99 µs | server CPU µs/msg | server syscalls/msg | server CPU % | load CPU % | runs |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var targets []report.Target
	for _, c := range o.cells() {
		for _, impl := range o.impls {
			runs := by[key{impl, c}]
			if len(runs) == 0 {
				fmt.Fprintf(w, "| %s | %d | %s | failed | | | | | | | | | | 0 |\n", c.Transport, c.Sessions, impl)
				continue
			}
			e := report.CollectEcho(runs, by[key{"node", c}])
			if impl == "duplex" && len(e.Ratio) > 0 {
				targets = append(targets, report.AtLeast(fmt.Sprintf("msgs/s, %s, %d sessions", c.Transport, c.Sessions), report.Median(e.Ratio), targetSpeedup))
			}
			if impl == "duplex" && len(e.CPURatio) > 0 {
				targets = append(targets, report.AtLeast(fmt.Sprintf("msgs per server CPU-second, %s, %d sessions", c.Transport, c.Sessions), report.Median(e.CPURatio), targetSpeedup))
			}
			fmt.Fprintf(w, "| %s | %d | %s | %.0f | %s | %.0f | %s | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %d |\n",
				c.Transport, c.Sessions, impl, report.Median(e.MsgsPerSec), report.FormatMedian(e.Ratio, "%.2f"),
				report.Median(e.MsgsPerServerCPUSec), report.FormatMedian(e.CPURatio, "%.2f"), report.Median(e.P50us), report.Median(e.P99us),
				report.Median(e.ServerCPUPerMsgUs), report.Median(e.ServerSyscallsPerMsg), report.Median(e.ServerCPUPercent), report.Median(e.LoadCPUPercent), len(runs))
		}
	}
	if len(rep.Idle) > 0 {
		fmt.Fprintf(w, "\n## Memory per idle session (server VmRSS growth / sessions, %v settle; polling sessions each hold a pending GET; median of runs)\n\n", o.settle)
		fmt.Fprintln(w, "| transport | sessions | impl | RSS before MiB | RSS with sessions MiB | KiB per session | vs node | runs |")
		fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|")
		for _, tr := range o.transports {
			if o.idleCount(tr) == 0 {
				continue
			}
			nodePer := map[int]float64{}
			for _, s := range rep.Idle {
				if s.Impl == "node" && s.Transport == tr {
					nodePer[s.Run] = s.BytesPerSess
				}
			}
			for _, impl := range o.impls {
				var before, after, per, ratio []float64
				for _, s := range rep.Idle {
					if s.Impl != impl || s.Transport != tr {
						continue
					}
					before = append(before, float64(s.RSSBefore)/(1<<20))
					after = append(after, float64(s.RSSAfter)/(1<<20))
					per = append(per, s.BytesPerSess/1024)
					if np, ok := nodePer[s.Run]; ok && np > 0 {
						ratio = append(ratio, s.BytesPerSess/np)
					}
				}
				if len(per) == 0 {
					fmt.Fprintf(w, "| %s | %d | %s | failed | | | | 0 |\n", tr, o.idleCount(tr), impl)
					continue
				}
				if impl == "duplex" && len(ratio) > 0 {
					targets = append(targets, report.AtMost(fmt.Sprintf("memory per idle session, %s", tr), report.Median(ratio), targetMemory))
				}
				fmt.Fprintf(w, "| %s | %d | %s | %.1f | %.1f | %.2f | %s | %d |\n", tr, o.idleCount(tr), impl,
					report.Median(before), report.Median(after), report.Median(per), report.FormatMedian(ratio, "%.2f"), len(per))
			}
		}
	}
	report.PrintTargets(w, targets)
	report.PrintFailures(w, rep.Failures)
}
