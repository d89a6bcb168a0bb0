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
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/proc"
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
	pin              bool
	serverCPU        string
	loadCPU          string
	binDir           string
	outDir           string
	profileDir       string
	node             string
	nodeScript       string
	nodeModules      string
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
	flag.BoolVar(&o.pin, "pin", true, "pin the server to -server-cpu and the load to -load-cpu with taskset")
	flag.StringVar(&o.serverCPU, "server-cpu", "0", "taskset CPU list for the server")
	flag.StringVar(&o.loadCPU, "load-cpu", "1", "taskset CPU list for the load generator")
	flag.StringVar(&o.binDir, "bin", "", "directory with prebuilt sioserver and load (default: go build them)")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	flag.StringVar(&o.profileDir, "profile", "", "write duplex server CPU profiles (one per run for event+ack, one for broadcast) to this directory")
	flag.StringVar(&o.node, "node", "node", "node binary")
	flag.StringVar(&o.nodeScript, "node-script", "node/sioserver.js", "the Node socket.io bench server")
	flag.StringVar(&o.nodeModules, "node-modules", "../test/interop/node_modules", "node_modules holding socket.io (NODE_PATH)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("siocompare: ")

	var err error
	o.impls = splitList(*impls)
	for _, im := range o.impls {
		if im != "duplex" && im != "node" {
			log.Fatalf("unknown impl %q (have duplex, node)", im)
		}
	}
	if o.clients, err = intList(*clients); err != nil {
		log.Fatal(err)
	}
	if o.inflight, err = intList(*inflight); err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 || o.size < 1 || len(o.impls) == 0 || o.bcastMessages < 1 {
		log.Fatal("need -runs ≥ 1, -size ≥ 1, -bcast-messages ≥ 1 and an impl")
	}
	if o.echoMode != "raw" && o.echoMode != "values" {
		log.Fatal("-echo must be raw or values")
	}
	if contains(o.impls, "node") {
		if err := checkNode(o); err != nil {
			log.Fatalf("%v (use -impls duplex to run without Node)", err)
		}
	}
	if o.pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			log.Fatal("taskset not found (util-linux); use -pin=false to run unpinned")
		}
		if runtime.NumCPU() < 2 {
			log.Fatal("need 2 CPUs to pin server and load apart; use -pin=false")
		}
	}
	if _, err := proc.RaiseNoFile(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	if o.binDir == "" {
		dir, err := os.MkdirTemp("", "duplex-siobench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/sioserver", "./cmd/load")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("go build (run siocompare from the bench directory): %v", err)
		}
		o.binDir = dir
	}

	rep, err := run(context.Background(), o)
	if o.outDir != "" && rep != nil {
		if err := rep.save(o.outDir); err != nil {
			log.Printf("saving raw results: %v", err)
		}
	}
	if rep != nil {
		rep.print(os.Stdout, o)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// checkNode reports what is missing for the Node server.
func checkNode(o options) error {
	if _, err := exec.LookPath(o.node); err != nil {
		return fmt.Errorf("node not found: %v", err)
	}
	if _, err := os.Stat(o.nodeScript); err != nil {
		return fmt.Errorf("node script: %v (run from the bench directory)", err)
	}
	if _, err := os.Stat(filepath.Join(o.nodeModules, "socket.io", "package.json")); err != nil {
		return fmt.Errorf("socket.io not installed in %s (cd test/interop && npm ci): %v", o.nodeModules, err)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q in list %q", f, s)
		}
		out = append(out, n)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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

type report struct {
	Started  time.Time         `json:"started"`
	Tree     string            `json:"tree"` // duplex commit, "+dirty" when socketio/, engineio/ or ws/ have local changes
	Versions map[string]string `json:"versions"`
	Echo     []echoSample      `json:"echo"`
	Bcast    []bcastSample     `json:"broadcast"`
	Idle     []idleSample      `json:"idle"`
	Failures []string          `json:"failures"`
}

func run(ctx context.Context, o options) (*report, error) {
	rep := &report{Started: time.Now(), Tree: treeVersion(), Versions: map[string]string{"go": runtime.Version()}}
	if contains(o.impls, "node") {
		rep.Versions["node"] = nodeVersions(o)
	}
	for r := 0; r < o.runs; r++ {
		// Rotate the order each run so no impl always goes first.
		order := append(append([]string(nil), o.impls[r%len(o.impls):]...), o.impls[:r%len(o.impls)]...)
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
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("%d failures:\n  %s", len(rep.Failures), strings.Join(rep.Failures, "\n  "))
	}
	return rep, nil
}

// nodeVersions names node's and socket.io's versions.
func nodeVersions(o options) string {
	v := "node ?"
	if out, err := exec.Command(o.node, "--version").Output(); err == nil {
		v = "node " + strings.TrimSpace(string(out))
	}
	for _, pkg := range []string{"socket.io", "engine.io", "ws"} {
		var p struct{ Version string }
		if b, err := os.ReadFile(filepath.Join(o.nodeModules, pkg, "package.json")); err == nil && json.Unmarshal(b, &p) == nil {
			v += ", " + pkg + " " + p.Version
		}
	}
	return v
}

// server is a running server process.
type server struct {
	cmd  *exec.Cmd
	addr string
	pid  int
}

// pinned runs name with args, pinned to cpu with taskset when o.pin. taskset
// execs the program, so the command's PID is the program's own.
func (o options) pinned(ctx context.Context, cpu string, name string, args ...string) *exec.Cmd {
	if o.pin {
		return exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

func startServer(o options, impl, profile string) (*server, error) {
	var cmd *exec.Cmd
	ms := strconv.FormatInt(o.pingInterval.Milliseconds(), 10)
	switch impl {
	case "duplex":
		args := []string{"-addr", "127.0.0.1:0", "-ping-interval", o.pingInterval.String(), "-ping-timeout", o.pingInterval.String(), "-echo", o.echoMode}
		if profile != "" {
			args = append(args, "-cpuprofile", profile)
		}
		cmd = o.pinned(context.Background(), o.serverCPU, filepath.Join(o.binDir, "sioserver"), args...)
	case "node":
		cmd = o.pinned(context.Background(), o.serverCPU, o.node, o.nodeScript, "0", ms, ms)
		mods, err := filepath.Abs(o.nodeModules)
		if err != nil {
			return nil, err
		}
		cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		a, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			s.stop()
			return nil, fmt.Errorf("%s server: unexpected first line %q", impl, l)
		}
		s.addr = a
	case <-time.After(15 * time.Second):
		s.stop()
		return nil, fmt.Errorf("%s server did not start listening in 15s", impl)
	}
	return s, nil
}

// stop sends SIGTERM to the server's PID, then SIGKILL after 10 s.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
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
	defer srv.stop()
	var samples []echoSample
	var fails []string
	for _, c := range o.echoCells() {
		args := []string{"-addr", srv.addr, "-proto", "sio", "-conns", strconv.Itoa(c.clients), "-inflight", strconv.Itoa(c.inflight),
			"-size", strconv.Itoa(o.size), "-duration", o.duration.String(), "-warmup", o.warmup.String(),
			"-server-pid", strconv.Itoa(srv.pid)}
		var res load.Result
		err := runLoad(ctx, o, o.warmup+o.duration+2*time.Minute, args, &res)
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
	defer srv.stop()
	args := []string{"-addr", srv.addr, "-proto", "sio-bcast", "-conns", strconv.Itoa(o.bcastClients),
		"-size", strconv.Itoa(o.size), "-messages", strconv.Itoa(o.bcastMessages), "-warmup-messages", strconv.Itoa(o.bcastWarmup),
		"-paced-messages", strconv.Itoa(o.pacedMessages), "-interval", o.pacedInterval.String(),
		"-server-pid", strconv.Itoa(srv.pid)}
	err = runLoad(ctx, o, 8*time.Minute, args, &s.Res)
	if err == nil && s.Res.Errors > 0 {
		err = fmt.Errorf("%d clients failed, first: %s", s.Res.Errors, s.Res.FirstError)
	}
	if err == nil && len(s.Res.Phases) == 0 {
		err = fmt.Errorf("no phase measured")
	}
	return s, err
}

// runLoad runs the load with args, bounded by timeout, and decodes its last
// stdout line into res.
func runLoad(ctx context.Context, o options, timeout time.Duration, args []string, res any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := o.pinned(ctx, o.loadCPU, filepath.Join(o.binDir, "load"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output() // on timeout CommandContext kills the load by PID
	if err != nil {
		// The JSON line may still be there: load exits 1 on errors.
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), res); jerr != nil {
		if err == nil {
			err = fmt.Errorf("load output %q: %v", out, jerr)
		}
		return err
	}
	return err
}

// idleRSS starts a fresh server, connects the idle clients and returns the
// server's RSS growth per client after the settle time.
func idleRSS(ctx context.Context, o options, r int, impl string) (idleSample, error) {
	s := idleSample{Run: r, Impl: impl, Clients: o.idle}
	srv, err := startServer(o, impl, "")
	if err != nil {
		return s, err
	}
	defer srv.stop()
	time.Sleep(500 * time.Millisecond)
	if s.RSSBefore, err = proc.RSS(srv.pid); err != nil {
		return s, err
	}
	cmd := o.pinned(ctx, o.loadCPU, filepath.Join(o.binDir, "load"),
		"-addr", srv.addr, "-proto", "sio", "-idle", strconv.Itoa(o.idle), "-hold", "5m")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return s, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return s, err
	}
	if err := cmd.Start(); err != nil {
		return s, err
	}
	defer func() {
		stdin.Close() // the load closes its clients and exits
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	ready := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- l
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-ready:
		if !strings.Contains(l, "idle_clients") {
			return s, fmt.Errorf("load -idle failed (output %q)", l)
		}
	case <-time.After(2 * time.Minute):
		return s, fmt.Errorf("idle clients not connected within 2 minutes")
	}
	time.Sleep(o.settle)
	if s.RSSAfter, err = proc.RSS(srv.pid); err != nil {
		return s, err
	}
	s.BytesPerConn = float64(s.RSSAfter-s.RSSBefore) / float64(o.idle)
	return s, nil
}

func (rep *report) save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(dir, "sio-"+rep.Started.Format("20060102-150405")+".json")
	log.Printf("raw results: %s", name)
	return os.WriteFile(name, b, 0o644)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cell formats the median of v, or "–" when v is empty.
func cell(v []float64, format string) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf(format, median(v))
}

type verdict struct {
	what   string
	ratio  float64
	target string
	ok     bool
}

func (rep *report) print(w io.Writer, o options) {
	vs := []string{"duplex " + rep.Tree, rep.Versions["go"]}
	if v, ok := rep.Versions["node"]; ok {
		vs = append(vs, v)
	}
	fmt.Fprintf(w, "\n%s; each process pinned to one CPU when -pin\n", strings.Join(vs, "; "))
	var verdicts []verdict
	verdicts = rep.printEcho(w, o, verdicts)
	verdicts = rep.printBroadcast(w, o, verdicts)
	rep.printIdle(w, o)
	if len(verdicts) > 0 {
		fmt.Fprintf(w, "\n## Targets (duplex ÷ node, medians of per-run ratios)\n\n")
		fmt.Fprintln(w, "| what | duplex ÷ node | target | met |")
		fmt.Fprintln(w, "|---|---:|---:|---|")
		for _, v := range verdicts {
			met := "yes"
			if !v.ok {
				met = "**no**"
			}
			fmt.Fprintf(w, "| %s | %.2f | %s | %s |\n", v.what, v.ratio, v.target, met)
		}
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintf(w, "\n## Failures\n\n")
		for _, f := range rep.Failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
}

func (rep *report) printEcho(w io.Writer, o options, verdicts []verdict) []verdict {
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
		o.size, o.runs, o.duration, o.serverCPU, o.loadCPU)
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
			var rps, ratio, perCPU, cpuRatio, p50, p99, cpu, sys, scpu, lcpu []float64
			for r, res := range runs {
				rps = append(rps, res.MsgsPerSec)
				if res.ServerCPUSeconds > 0 {
					perCPU = append(perCPU, float64(res.Msgs)/res.ServerCPUSeconds)
				}
				p50 = append(p50, res.P50us)
				p99 = append(p99, res.P99us)
				if res.ServerCPUPerMsgUs >= 0 {
					cpu = append(cpu, res.ServerCPUPerMsgUs)
				}
				if res.ServerSyscallsPerMsg >= 0 {
					sys = append(sys, res.ServerSyscallsPerMsg)
				}
				if res.ServerCPUSeconds >= 0 && res.Seconds > 0 {
					scpu = append(scpu, 100*res.ServerCPUSeconds/res.Seconds)
				}
				if res.LoadCPUSeconds >= 0 && res.Seconds > 0 {
					lcpu = append(lcpu, 100*res.LoadCPUSeconds/res.Seconds)
				}
				if base, ok := by[key{"node", c}][r]; ok && base.MsgsPerSec > 0 {
					ratio = append(ratio, res.MsgsPerSec/base.MsgsPerSec)
					if res.ServerCPUSeconds > 0 && base.ServerCPUSeconds > 0 && base.Msgs > 0 {
						cpuRatio = append(cpuRatio, (float64(res.Msgs)/res.ServerCPUSeconds)/(float64(base.Msgs)/base.ServerCPUSeconds))
					}
				}
			}
			if impl == "duplex" && len(ratio) > 0 {
				m := median(ratio)
				verdicts = append(verdicts, verdict{fmt.Sprintf("event+ack round trips/s, %d clients, %d in flight", n, c.inflight), m, fmt.Sprintf("≥ %.0f×", targetSpeedup), m >= targetSpeedup})
			}
			if impl == "duplex" && len(cpuRatio) > 0 {
				m := median(cpuRatio)
				verdicts = append(verdicts, verdict{fmt.Sprintf("round trips per server CPU-second, %d clients, %d in flight", n, c.inflight), m, fmt.Sprintf("≥ %.0f×", targetSpeedup), m >= targetSpeedup})
			}
			rs, crs := "–", "–"
			if impl != "node" {
				rs, crs = cell(ratio, "%.2f"), cell(cpuRatio, "%.2f")
			}
			fmt.Fprintf(w, "| %d | %d | %s | %.0f | %s | %.0f | %s | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %d |\n",
				n, c.inflight, impl, median(rps), rs, median(perCPU), crs, median(p50), median(p99), median(cpu), median(sys), median(scpu), median(lcpu), len(runs))
		}
	}
	return verdicts
}

func (rep *report) printBroadcast(w io.Writer, o options, verdicts []verdict) []verdict {
	if len(rep.Bcast) == 0 {
		return verdicts
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
			m := median(ratio)
			verdicts = append(verdicts, verdict{fmt.Sprintf("broadcast deliveries/s, %d-client room", o.bcastClients), m, fmt.Sprintf("≥ %.0f×", targetSpeedup), m >= targetSpeedup})
		}
		if impl == "duplex" && len(cpuRatio) > 0 {
			m := median(cpuRatio)
			verdicts = append(verdicts, verdict{"broadcast deliveries per server CPU-second", m, fmt.Sprintf("≥ %.0f×", targetSpeedup), m >= targetSpeedup})
		}
		rs, crs := "–", "–"
		if impl != "node" {
			rs, crs = cell(ratio, "%.2f"), cell(cpuRatio, "%.2f")
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %d |\n",
			impl, median(dps), rs, cell(perCPU, "%.0f"), crs, median(p50), median(p99), median(emit),
			cell(cpu, "%.2f"), cell(sys, "%.2f"), cell(allocB, "%.0f"), cell(allocs, "%.2f"), cell(scpu, "%.0f"), cell(lcpu, "%.0f"), len(runs))
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
			fmt.Fprintf(w, "| %s | %.2f | %.2f | %.2f | %s | %d |\n", impl, median(p50), median(p99), median(mx), cell(scpu, "%.0f"), len(runs))
		}
	}
	return verdicts
}

func (rep *report) printIdle(w io.Writer, o options) {
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
			rs = cell(ratio, "%.2f")
		}
		fmt.Fprintf(w, "| %d | %s | %.1f | %.1f | %.2f | %s | %d |\n", o.idle, impl, median(before), median(after), median(per), rs, len(per))
	}
}

// treeVersion names the duplex commit being measured, marked dirty when
// socketio/, engineio/ or ws/ have uncommitted (or untracked) changes.
func treeVersion() string {
	out, err := exec.Command("git", "-C", "..", "log", "-1", "--format=%h").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--", "socketio", "engineio", "ws").Output(); err == nil && len(st) > 0 {
		v += "+dirty"
	}
	return v
}
