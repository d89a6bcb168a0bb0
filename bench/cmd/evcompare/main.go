// Command evcompare is the event-driven mode's benchmark (issue 9), in one
// run on one machine:
//
//   - WebSocket: server RSS per idle connection at each -idle count, for
//     duplex's event mode (ws.EventLoop after the net/http upgrade, and after
//     UpgradeConn on a bare listener), duplex's goroutine mode (both
//     upgrades), gws and gorilla (cmd/echoserver's impls);
//   - Socket.IO: server RSS per idle client at each -idle count, duplex with
//     socketio.Options.EventLoop against duplex with a goroutine per
//     connection (cmd/sioserver -evented or not), and Node's socket.io with
//     -sio-impls ...,node;
//   - echo throughput (16-byte messages, closed loop) at each -conns count,
//     event mode against goroutine mode, server and load pinned to their own
//     CPU, median of -runs;
//
// then tables of medians and the targets (≤ 2 KiB per idle WebSocket, ≤ 4 KiB
// per idle Socket.IO client, event-mode throughput within 10% of the
// goroutine mode at 100 connections and above it at 10,000). The idle
// clients run in the load process (only the server's RSS is counted),
// spread over loopback source addresses (~28k ephemeral ports each). Before
// its RSS is read, a Go server collects its garbage and returns freed memory
// to the OS (SIGUSR1, internal/servermain), so the numbers are live memory;
// Node's is read as it is. Counts above what the open-file limit allows are
// reported as skipped.
//
// Run it from the bench directory:
//
//	go run ./cmd/evcompare -runs 3
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/bench/internal/harness"
	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/proc"
	"github.com/duplexio/duplex/bench/internal/report"
	"github.com/duplexio/duplex/bench/internal/servers"
)

// Targets of issue 9.
const (
	wsTargetBytes  = 2048
	sioTargetBytes = 4096
)

// portsPerSource is how many connections the load puts on one loopback
// source address (the ephemeral range is ~28k ports).
const portsPerSource = 20000

type options struct {
	runs             int
	idle             []int
	wsImpls          []string
	sioImpls         []string
	conns            []int
	size             int
	duration, warmup time.Duration
	settle           time.Duration
	pingInterval     time.Duration
	procs            harness.Processes
	node             harness.NodeServer
	outDir           string
	noFile           uint64 // this process's open-file limit, which the servers and the load get too
}

func main() {
	var o options
	idle := flag.String("idle", "10000,100000", "idle connection counts (empty: skip the memory tests)")
	wsImpls := flag.String("ws-impls", "duplex-evented,duplex-raw-evented,duplex,duplex-raw,gws,gorilla", "WebSocket servers (cmd/echoserver impls) for the idle test")
	sioImpls := flag.String("sio-impls", "duplex-evented,duplex", "Socket.IO servers for the idle test: duplex-evented, duplex, node")
	conns := flag.String("conns", "100,10000", "connection counts of the echo throughput test (empty: skip it)")
	flag.IntVar(&o.size, "size", 16, "payload bytes per echo message")
	flag.IntVar(&o.runs, "runs", 3, "runs; tables show medians")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "measured window per throughput cell")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured traffic before each window")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait after the idle connections are up before reading RSS")
	flag.DurationVar(&o.pingInterval, "ping-interval", 5*time.Minute, "Socket.IO servers' pingInterval and pingTimeout (long: no heartbeat while measuring)")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	o.procs.AddFlags(flag.CommandLine, "echoserver, sioserver")
	o.node = harness.NodeServer{Package: "socket.io"}
	o.node.AddFlags(flag.CommandLine, "node/sioserver.js", "the Node socket.io bench server")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("evcompare: ")

	var err error
	if *idle != "" {
		if o.idle, err = harness.IntList(*idle); err != nil {
			log.Fatal(err)
		}
	}
	if *conns != "" {
		if o.conns, err = harness.IntList(*conns); err != nil {
			log.Fatal(err)
		}
	}
	o.wsImpls, o.sioImpls = harness.SplitList(*wsImpls), harness.SplitList(*sioImpls)
	for _, im := range o.wsImpls {
		if !slices.Contains(servers.Names(), im) {
			log.Fatalf("unknown -ws-impls entry %q (have %v)", im, servers.Names())
		}
	}
	for _, im := range o.sioImpls {
		if im != "duplex" && im != "duplex-evented" && im != "node" {
			log.Fatalf("unknown -sio-impls entry %q (have duplex-evented, duplex, node)", im)
		}
	}
	if slices.Contains(o.sioImpls, "node") {
		if err := o.node.Check(); err != nil {
			log.Fatalf("%v (leave node out of -sio-impls to run without it)", err)
		}
	}
	if o.runs < 1 || o.size < 1 {
		log.Fatal("need -runs ≥ 1 and -size ≥ 1")
	}
	cleanup, err := o.procs.Prepare("evcompare", "./cmd/echoserver", "./cmd/sioserver")
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	if o.noFile, err = proc.RaiseNoFile(); err != nil {
		log.Fatal(err)
	}

	rep := run(context.Background(), o)
	report.Save(o.outDir, "ev", rep.Started, rep)
	rep.print(os.Stdout, o)
	if err := report.FailuresError(rep.Failures); err != nil {
		log.Fatal(err)
	}
}

// idleSample is one idle-memory measurement.
type idleSample struct {
	Run       int     `json:"run"`
	Proto     string  `json:"proto"` // "ws" or "sio"
	Impl      string  `json:"impl"`
	Conns     int     `json:"conns"`
	RSSBefore int64   `json:"rss_before"`
	RSSAfter  int64   `json:"rss_after"`
	PerConn   float64 `json:"bytes_per_conn"`
}

// echoSample is one throughput measurement.
type echoSample struct {
	Run   int         `json:"run"`
	Impl  string      `json:"impl"`
	Conns int         `json:"conns"`
	Res   load.Result `json:"result"`
}

// results are the raw numbers of every run, saved as JSON.
type results struct {
	Started  time.Time    `json:"started"`
	Tree     string       `json:"tree"`
	NoFile   uint64       `json:"nofile"`
	Idle     []idleSample `json:"idle"`
	Echo     []echoSample `json:"echo"`
	Skipped  []string     `json:"skipped"`
	Failures []string     `json:"failures"`
}

// throughputImpls are the two modes the throughput test compares.
var throughputImpls = []string{"duplex-evented", "duplex"}

func run(ctx context.Context, o options) *results {
	rep := &results{Started: time.Now(), Tree: harness.TreeVersion("ws", "engineio", "socketio"), NoFile: o.noFile}
	for _, n := range o.idle {
		// The server holds n sockets and the load n more, each in its own process.
		if uint64(n)+256 > o.noFile {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%d idle connections: the open-file limit is %d (raising the hard limit needs CAP_SYS_RESOURCE)", n, o.noFile))
			continue
		}
		for r := 0; r < o.runs; r++ {
			for _, impl := range rotate(o.wsImpls, r) {
				rep.addIdle(ctx, o, r, "ws", impl, n)
			}
			for _, impl := range rotate(o.sioImpls, r) {
				rep.addIdle(ctx, o, r, "sio", impl, n)
			}
		}
	}
	for r := 0; r < o.runs && len(o.conns) > 0; r++ {
		for _, impl := range harness.Rotate(throughputImpls, r) {
			log.Printf("run %d/%d: %s echo", r+1, o.runs, impl)
			rep.addEcho(ctx, o, r, impl)
		}
	}
	return rep
}

// rotate is harness.Rotate, for a list that may be empty (-ws-impls "" skips
// the WebSocket servers).
func rotate(impls []string, run int) []string {
	if len(impls) == 0 {
		return nil
	}
	return harness.Rotate(impls, run)
}

// startServer starts a fresh server: for proto "ws" cmd/echoserver with impl,
// for "sio" cmd/sioserver (-evented for duplex-evented) or Node's.
func startServer(o options, proto, impl string) (*harness.Server, error) {
	if proto == "ws" {
		return harness.StartServer("echoserver "+impl, o.procs.ServerCommand(o.procs.Bin("echoserver"), "-impl", impl, "-addr", "127.0.0.1:0"))
	}
	if impl == "node" {
		return o.node.Start(o.procs, o.pingInterval, o.pingInterval)
	}
	args := []string{"-addr", "127.0.0.1:0", "-ping-interval", o.pingInterval.String(), "-ping-timeout", o.pingInterval.String()}
	if impl == "duplex-evented" {
		args = append(args, "-evented")
	}
	return harness.StartServer("sioserver "+impl, o.procs.ServerCommand(o.procs.Bin("sioserver"), args...))
}

// addIdle measures the server's RSS growth per idle connection (ws: each has
// echoed one message; sio: each client is connected to the main namespace).
func (rep *results) addIdle(ctx context.Context, o options, r int, proto, impl string, n int) {
	what := fmt.Sprintf("run %d %s %s × %d idle", r+1, proto, impl, n)
	srv, err := startServer(o, proto, impl)
	if err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", what, err))
		return
	}
	defer srv.Stop()
	sources := strconv.Itoa((n + portsPerSource - 1) / portsPerSource)
	l := harness.IdleLoad{Args: []string{"-addr", srv.Addr, "-proto", "ws", "-idle", strconv.Itoa(n), "-idle-message", "-sources", sources, "-hold", "10m"},
		Ready: "idle_conns", NotReady: "idle connections not up", Settle: o.settle}
	if proto == "sio" {
		l = harness.IdleLoad{Args: []string{"-addr", srv.Addr, "-proto", "sio", "-idle", strconv.Itoa(n), "-sources", sources, "-hold", "10m"},
			Ready: "idle_clients", NotReady: "idle clients not connected", Settle: o.settle}
	}
	l.Collect = impl != "node" // the Go servers collect garbage on SIGUSR1 before RSS is read
	s := idleSample{Run: r, Proto: proto, Impl: impl, Conns: n}
	if s.RSSBefore, s.RSSAfter, err = o.procs.IdleRSS(ctx, srv, l); err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", what, err))
		return
	}
	s.PerConn = float64(s.RSSAfter-s.RSSBefore) / float64(n)
	log.Printf("%s: %.0f B/conn", what, s.PerConn)
	rep.Idle = append(rep.Idle, s)
}

// addEcho runs every -conns cell against a fresh server of impl.
func (rep *results) addEcho(ctx context.Context, o options, r int, impl string) {
	srv, err := startServer(o, "ws", impl)
	if err != nil {
		rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s: %v", r+1, impl, err))
		return
	}
	defer srv.Stop()
	for _, n := range o.conns {
		if uint64(n)+256 > o.noFile {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("echo × %d: the open-file limit is %d", n, o.noFile))
			continue
		}
		args := []string{"-addr", srv.Addr, "-proto", "ws", "-conns", strconv.Itoa(n), "-size", strconv.Itoa(o.size),
			"-inflight", "1", "-duration", o.duration.String(), "-warmup", o.warmup.String(),
			"-server-pid", strconv.Itoa(srv.PID), "-sources", strconv.Itoa((n + portsPerSource - 1) / portsPerSource)}
		var res load.Result
		err := o.procs.RunLoad(ctx, o.warmup+o.duration+5*time.Minute, args, &res)
		if err == nil && res.Errors > 0 {
			err = fmt.Errorf("%d echo errors, first: %s", res.Errors, res.FirstError)
		}
		if err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("run %d %s echo × %d: %v", r+1, impl, n, err))
			continue
		}
		rep.Echo = append(rep.Echo, echoSample{Run: r, Impl: impl, Conns: n, Res: res})
	}
}

func (rep *results) print(w io.Writer, o options) {
	fmt.Fprintf(w, "\nduplex tree: %s; %s; open-file limit %d\n", rep.Tree, runtime.Version(), rep.NoFile)
	type key struct {
		proto, impl string
		n           int
	}
	idle := map[key][]float64{}
	for _, s := range rep.Idle {
		k := key{s.Proto, s.Impl, s.Conns}
		idle[k] = append(idle[k], s.PerConn)
	}
	best := map[string]float64{} // proto → the duplex-evented median at the largest count measured
	for _, proto := range []string{"ws", "sio"} {
		impls := o.wsImpls
		title := "WebSocket: server RSS per idle connection (each has echoed one message)"
		if proto == "sio" {
			impls, title = o.sioImpls, "Socket.IO: server RSS per idle client (connected to the main namespace)"
		}
		if len(impls) == 0 || len(o.idle) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n## %s, median of %d runs, %v settle\n\n| impl |", title, o.runs, o.settle)
		for _, n := range o.idle {
			fmt.Fprintf(w, " B/conn at %d |", n)
		}
		fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---:|", len(o.idle)))
		for _, impl := range impls {
			fmt.Fprintf(w, "| %s |", impl)
			for _, n := range o.idle {
				v := idle[key{proto, impl, n}]
				if len(v) == 0 {
					fmt.Fprint(w, " – |")
					continue
				}
				m := report.Median(v)
				fmt.Fprintf(w, " %.0f |", m)
				if impl == "duplex-evented" {
					best[proto] = m
				}
			}
			fmt.Fprintln(w)
		}
	}
	echo := map[string]map[int][]float64{} // impl → conns → msgs/s per run
	ratios := map[int][]float64{}          // conns → evented ÷ goroutine, per run
	byRun := map[key]float64{}
	for _, s := range rep.Echo {
		if echo[s.Impl] == nil {
			echo[s.Impl] = map[int][]float64{}
		}
		echo[s.Impl][s.Conns] = append(echo[s.Impl][s.Conns], s.Res.MsgsPerSec)
		byRun[key{strconv.Itoa(s.Run), s.Impl, s.Conns}] = s.Res.MsgsPerSec
	}
	for r := 0; r < o.runs; r++ {
		for _, n := range o.conns {
			ev, ok1 := byRun[key{strconv.Itoa(r), "duplex-evented", n}]
			gr, ok2 := byRun[key{strconv.Itoa(r), "duplex", n}]
			if ok1 && ok2 && gr > 0 {
				ratios[n] = append(ratios[n], ev/gr)
			}
		}
	}
	if len(o.conns) > 0 {
		fmt.Fprintf(w, "\n## Echo throughput, %d-byte messages, 1 in flight per connection (median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
			o.size, o.runs, o.duration, o.procs.ServerCPU, o.procs.LoadCPU)
		fmt.Fprintln(w, "| conns | duplex-evented msgs/s | duplex (goroutines) msgs/s | evented ÷ goroutines | runs |")
		fmt.Fprintln(w, "|---:|---:|---:|---:|---:|")
		for _, n := range o.conns {
			fmt.Fprintf(w, "| %d | %s | %s | %s | %d |\n", n, report.FormatMedian(echo["duplex-evented"][n], "%.0f"),
				report.FormatMedian(echo["duplex"][n], "%.0f"), report.FormatMedian(ratios[n], "%.2f"), len(ratios[n]))
		}
	}
	fmt.Fprintln(w, "\n## Targets\n\n| what | measured | target | met |\n|---|---:|---:|---|")
	if v, ok := best["ws"]; ok {
		fmt.Fprintf(w, "| RSS per idle WebSocket (event mode, largest count) | %.0f B | ≤ %d B | %s |\n", v, wsTargetBytes, yes(v <= wsTargetBytes))
	}
	if v, ok := best["sio"]; ok {
		fmt.Fprintf(w, "| RSS per idle Socket.IO client (event mode, largest count) | %.0f B | ≤ %d B | %s |\n", v, sioTargetBytes, yes(v <= sioTargetBytes))
	}
	for _, n := range o.conns {
		if len(ratios[n]) == 0 {
			continue
		}
		m := report.Median(ratios[n])
		if n <= 100 {
			fmt.Fprintf(w, "| echo msgs/s at %d conns, evented ÷ goroutines | %.2f | ≥ 0.90 | %s |\n", n, m, yes(m >= 0.9))
		} else {
			fmt.Fprintf(w, "| echo msgs/s at %d conns, evented ÷ goroutines | %.2f | > 1 | %s |\n", n, m, yes(m > 1))
		}
	}
	if len(rep.Skipped) > 0 {
		fmt.Fprintln(w, "\nSkipped:")
		for _, s := range rep.Skipped {
			fmt.Fprintf(w, "- %s\n", s)
		}
	}
	report.PrintFailures(w, rep.Failures)
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
