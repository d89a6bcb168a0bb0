// Command compare runs the side-by-side benchmark: for each run and each
// implementation it starts a fresh echoserver pinned to CPU 0, drives every
// cell of the matrix with the load generator pinned to CPU 1, then measures
// idle memory per connection, and prints markdown tables of medians.
//
// Run it from the bench directory:
//
//	go run ./cmd/compare -runs 5
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
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/bench/internal/harness"
	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/report"
	"github.com/duplexio/duplex/bench/internal/servers"
)

type options struct {
	runs             int
	impls            []string
	conns            []int
	sizes            []int
	inflight         []int
	duration, warmup time.Duration
	idle             int
	settle           time.Duration
	procs            harness.Processes
	outDir           string
	profileDir       string
	deflate          string // permessage-deflate offer for the load; "" = plain
	base             string // the impl ratios are taken against
}

func main() {
	var o options
	impls := flag.String("impls", "", "implementations, comma-separated (default: every plain impl; with -deflate every deflate impl). Without -deflate tcp is always added")
	conns := flag.String("conns", "1,100", "connection counts")
	sizes := flag.String("sizes", "16,1024,65536", "payload sizes in bytes (with -deflate: default 1024,65536)")
	inflight := flag.String("inflight", "1,16", "messages in flight per connection (with -deflate: default 1)")
	flag.StringVar(&o.deflate, "deflate", "", `permessage-deflate offer for every connection, e.g. "permessage-deflate; client_max_window_bits": compressed JSON-like echo (see README)`)
	flag.StringVar(&o.base, "base", "", "impl that the ratio column divides by (default tcp; with -deflate gws-deflate)")
	flag.IntVar(&o.runs, "runs", 3, "runs per cell; tables show medians")
	flag.DurationVar(&o.duration, "duration", 2*time.Second, "measured window per cell")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured traffic before each window")
	flag.IntVar(&o.idle, "idle", 10000, "idle connections for the memory test (0 skips it; with -deflate default 0)")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait after the idle connections are up before reading RSS")
	o.procs.AddFlags(flag.CommandLine, "echoserver")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	flag.StringVar(&o.profileDir, "profile", "", "write a server CPU profile per run and impl to this directory")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("compare: ")

	var err error
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.deflate != "" {
		// A compressed echo matrix: JSON-like text, closed loop, no tcp row.
		if !set["sizes"] {
			*sizes = "1024,65536"
		}
		if !set["inflight"] {
			*inflight = "1"
		}
		if !set["idle"] {
			o.idle = 0
		}
	}
	if o.base == "" {
		o.base = "tcp"
		if o.deflate != "" {
			o.base = "gws-deflate"
		}
	}
	if *impls == "" {
		*impls = strings.Join(defaultImpls(o.deflate != ""), ",")
	}
	o.impls = harness.SplitList(*impls)
	if o.deflate == "" && !slices.Contains(o.impls, "tcp") {
		o.impls = append(o.impls, "tcp")
	}
	for _, im := range o.impls {
		if !slices.Contains(servers.Names(), im) {
			log.Fatalf("unknown impl %q (have %v)", im, servers.Names())
		}
	}
	if o.conns, err = harness.IntList(*conns); err != nil {
		log.Fatal(err)
	}
	if o.sizes, err = harness.IntList(*sizes); err != nil {
		log.Fatal(err)
	}
	if o.inflight, err = harness.IntList(*inflight); err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 {
		log.Fatal("-runs must be at least 1")
	}
	cleanup, err := o.procs.Prepare("compare", "./cmd/echoserver")
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()

	rep := run(context.Background(), o)
	report.Save(o.outDir, "", rep.Started, rep)
	rep.print(os.Stdout, o)
	if err := report.FailuresError(rep.Failures); err != nil {
		log.Fatal(err)
	}
}

// defaultImpls lists the plain WebSocket impls, or with deflate the
// permessage-deflate ones.
func defaultImpls(deflate bool) []string {
	var out []string
	for _, n := range servers.Names() {
		if n != "tcp" && servers.IsDeflate(n) == deflate {
			out = append(out, n)
		}
	}
	return out
}

// cell is one point of the matrix.
type cell struct{ Conns, Size, InFlight int }

// sample is one measurement of one impl in one cell.
type sample struct {
	Run  int         `json:"run"`
	Impl string      `json:"impl"`
	Cell cell        `json:"cell"`
	Res  load.Result `json:"result"`
}

type idleSample struct {
	Run         int    `json:"run"`
	Impl        string `json:"impl"`
	Conns       int    `json:"conns"`
	RSSBefore   int64  `json:"rss_before"`
	RSSAfter    int64  `json:"rss_after"`
	BytesPerCon float64
}

// results are the raw numbers of every run, saved as JSON.
type results struct {
	Started  time.Time    `json:"started"`
	Tree     string       `json:"tree"` // git commit of the duplex tree, "+dirty" when ws/ has local changes
	Samples  []sample     `json:"samples"`
	Idle     []idleSample `json:"idle"`
	Failures []string     `json:"failures"`
}

func (o options) cells() []cell {
	var cs []cell
	for _, c := range o.conns {
		for _, s := range o.sizes {
			for _, f := range o.inflight {
				cs = append(cs, cell{c, s, f})
			}
		}
	}
	return cs
}

func run(ctx context.Context, o options) *results {
	rep := &results{Started: time.Now(), Tree: harness.TreeVersion("ws")}
	cells := o.cells()
	for r := 0; r < o.runs; r++ {
		order := harness.Rotate(o.impls, r)
		for _, impl := range order {
			log.Printf("run %d/%d: %s", r+1, o.runs, impl)
			samples, fails := runImpl(ctx, o, r, impl, cells)
			rep.Samples = append(rep.Samples, samples...)
			rep.Failures = append(rep.Failures, fails...)
		}
		if o.idle > 0 {
			for _, impl := range order {
				s, err := idleRSS(ctx, o, r, impl)
				if err != nil {
					rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s idle: %v", r+1, impl, err))
					continue
				}
				log.Printf("run %d/%d: %s idle: %.1f KiB/conn", r+1, o.runs, impl, s.BytesPerCon/1024)
				rep.Idle = append(rep.Idle, s)
			}
		}
	}
	return rep
}

// startServer starts a fresh echoserver for impl, writing a CPU profile to
// profile unless it is "".
func startServer(o options, impl, profile string) (*harness.Server, error) {
	args := []string{"-impl", impl, "-addr", "127.0.0.1:0"}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	return harness.StartServer("echoserver "+impl, o.procs.ServerCommand(o.procs.Bin("echoserver"), args...))
}

func runImpl(ctx context.Context, o options, r int, impl string, cells []cell) ([]sample, []string) {
	profile := ""
	if o.profileDir != "" {
		_ = os.MkdirAll(o.profileDir, 0o755)
		profile = filepath.Join(o.profileDir, fmt.Sprintf("%s-run%d.cpu.prof", impl, r+1))
	}
	srv, err := startServer(o, impl, profile)
	if err != nil {
		return nil, []string{fmt.Sprintf("run %d %s: %v", r+1, impl, err)}
	}
	defer srv.Stop()
	proto := "ws"
	if !servers.IsWebSocket(impl) {
		proto = "tcp"
	}
	var samples []sample
	var fails []string
	for _, c := range cells {
		res, err := runLoad(ctx, o, srv, proto, c)
		if err == nil && res.Errors > 0 {
			err = fmt.Errorf("%d echo errors, first: %s", res.Errors, res.FirstError)
		}
		if err != nil {
			fails = append(fails, fmt.Sprintf("run %d %s %+v: %v", r+1, impl, c, err))
			continue
		}
		samples = append(samples, sample{Run: r, Impl: impl, Cell: c, Res: res})
	}
	return samples, fails
}

func runLoad(ctx context.Context, o options, srv *harness.Server, proto string, c cell) (load.Result, error) {
	var res load.Result
	args := []string{"-addr", srv.Addr, "-proto", proto,
		"-conns", strconv.Itoa(c.Conns), "-size", strconv.Itoa(c.Size), "-inflight", strconv.Itoa(c.InFlight),
		"-duration", o.duration.String(), "-warmup", o.warmup.String(), "-server-pid", strconv.Itoa(srv.PID)}
	if o.deflate != "" && proto == "ws" {
		args = append(args, "-deflate", o.deflate)
	}
	err := o.procs.RunLoad(ctx, o.warmup+o.duration+2*time.Minute, args, &res)
	return res, err
}

// idleRSS starts a fresh server, opens the idle connections and returns the
// server's RSS growth per connection after the settle time.
func idleRSS(ctx context.Context, o options, r int, impl string) (idleSample, error) {
	s := idleSample{Run: r, Impl: impl, Conns: o.idle}
	srv, err := startServer(o, impl, "")
	if err != nil {
		return s, err
	}
	defer srv.Stop()
	proto := "ws"
	if !servers.IsWebSocket(impl) {
		proto = "tcp"
	}
	args := []string{"-addr", srv.Addr, "-proto", proto, "-idle", strconv.Itoa(o.idle), "-hold", "5m"}
	if o.deflate != "" && proto == "ws" {
		args = append(args, "-deflate", o.deflate)
	}
	s.RSSBefore, s.RSSAfter, err = o.procs.IdleRSS(ctx, srv, harness.IdleLoad{Args: args,
		Ready: "idle_conns", NotReady: "idle connections not up", Settle: o.settle})
	if err != nil {
		return s, err
	}
	s.BytesPerCon = float64(s.RSSAfter-s.RSSBefore) / float64(o.idle)
	return s, nil
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
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
	fmt.Fprintf(w, "\nduplex tree: %s; %s, GOMAXPROCS of each process = 1 CPU when pinned\n", rep.Tree, runtime.Version())
	if o.deflate != "" {
		fmt.Fprintf(w, "\n## Compressed echo (permessage-deflate, offer %q; JSON-like text payload; median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
			o.deflate, o.runs, o.duration, o.procs.ServerCPU, o.procs.LoadCPU)
	} else {
		fmt.Fprintf(w, "\n## Echo throughput and latency (median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
			o.runs, o.duration, o.procs.ServerCPU, o.procs.LoadCPU)
	}
	fmt.Fprintf(w, "| conns | size | in flight | impl | msgs/s | payload MB/s | vs %s | p50 µs | p99 µs | server CPU µs/msg | server syscalls/msg | server CPU %% | load CPU %% | wire B/msg out/back | runs |\n", o.base)
	fmt.Fprintln(w, "|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, c := range o.cells() {
		for _, impl := range o.impls {
			runs := by[key{impl, c}]
			if len(runs) == 0 {
				fmt.Fprintf(w, "| %d | %s | %d | %s | failed | | | | | | 0 |\n", c.Conns, sizeName(c.Size), c.InFlight, impl)
				continue
			}
			e := report.CollectEcho(runs, by[key{o.base, c}])
			var wout, wback []float64
			for _, res := range runs {
				if res.Verified > 0 && res.SentWireBytes > 0 {
					wout = append(wout, float64(res.SentWireBytes)/float64(res.Verified))
					wback = append(wback, float64(res.EchoWireBytes)/float64(res.Verified))
				}
			}
			ws := "–"
			if len(wout) > 0 {
				ws = fmt.Sprintf("%.0f / %.0f", report.Median(wout), report.Median(wback))
			}
			mps := report.Median(e.MsgsPerSec)
			fmt.Fprintf(w, "| %d | %s | %d | %s | %.0f | %.1f | %s | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %s | %d |\n",
				c.Conns, sizeName(c.Size), c.InFlight, impl, mps, mps*float64(c.Size)/1e6, report.FormatMedian(e.Ratio, "%.2f"),
				report.Median(e.P50us), report.Median(e.P99us), report.Median(e.ServerCPUPerMsgUs), report.Median(e.ServerSyscallsPerMsg),
				report.Median(e.ServerCPUPercent), report.Median(e.LoadCPUPercent), ws, len(runs))
		}
	}
	if o.deflate != "" {
		fmt.Fprintf(w, "\nNegotiated (each server's Sec-WebSocket-Extensions response to the offer; echoes that came compressed):\n\n")
		for _, impl := range o.impls {
			resp := map[string]bool{}
			var comp, ver uint64
			for _, s := range rep.Samples {
				if s.Impl == impl {
					resp[s.Res.Negotiated] = true
					comp += s.Res.Compressed
					ver += s.Res.Verified
				}
			}
			var rs []string
			for r := range resp {
				rs = append(rs, fmt.Sprintf("%q", r))
			}
			sort.Strings(rs)
			fmt.Fprintf(w, "- %s: %s; %d of %d echoes compressed\n", impl, strings.Join(rs, ", "), comp, ver)
		}
	}
	if len(rep.Idle) > 0 {
		fmt.Fprintf(w, "\n## Idle memory (%d upgraded connections, %v settle, median of runs)\n\n", o.idle, o.settle)
		fmt.Fprintln(w, "| impl | RSS before MiB | RSS with conns MiB | KiB per conn | runs |")
		fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
		for _, impl := range o.impls {
			var before, after, per []float64
			for _, s := range rep.Idle {
				if s.Impl == impl {
					before = append(before, float64(s.RSSBefore)/(1<<20))
					after = append(after, float64(s.RSSAfter)/(1<<20))
					per = append(per, s.BytesPerCon/1024)
				}
			}
			if len(per) == 0 {
				fmt.Fprintf(w, "| %s | failed | | | 0 |\n", impl)
				continue
			}
			fmt.Fprintf(w, "| %s | %.1f | %.1f | %.2f | %d |\n", impl, report.Median(before), report.Median(after), report.Median(per), len(per))
		}
	}
	report.PrintFailures(w, rep.Failures)
}
