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
	transports       []string
	sessions         []int
	size             int
	duration, warmup time.Duration
	idleWS           int
	idlePolling      int
	settle           time.Duration
	pingInterval     time.Duration
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
	flag.BoolVar(&o.pin, "pin", true, "pin the server to -server-cpu and the load to -load-cpu with taskset")
	flag.StringVar(&o.serverCPU, "server-cpu", "0", "taskset CPU list for the server")
	flag.StringVar(&o.loadCPU, "load-cpu", "1", "taskset CPU list for the load generator")
	flag.StringVar(&o.binDir, "bin", "", "directory with prebuilt eioserver and load (default: go build them)")
	flag.StringVar(&o.outDir, "out", "results", "directory for the raw per-run JSON (\"\" to skip)")
	flag.StringVar(&o.profileDir, "profile", "", "write a duplex server CPU profile per run to this directory")
	flag.StringVar(&o.node, "node", "node", "node binary")
	flag.StringVar(&o.nodeScript, "node-script", "node/eioserver.js", "the Node engine.io echo server")
	flag.StringVar(&o.nodeModules, "node-modules", "../test/interop/node_modules", "node_modules holding engine.io (NODE_PATH)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("eiocompare: ")

	var err error
	o.impls = splitList(*impls)
	o.transports = splitList(*transports)
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
	if o.sessions, err = intList(*sessions); err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 || o.size < 1 || len(o.impls) == 0 || len(o.transports) == 0 {
		log.Fatal("need -runs ≥ 1, -size ≥ 1, an impl and a transport")
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
		dir, err := os.MkdirTemp("", "duplex-eiobench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/eioserver", "./cmd/load")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("go build (run eiocompare from the bench directory): %v", err)
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
	if _, err := os.Stat(filepath.Join(o.nodeModules, "engine.io", "package.json")); err != nil {
		return fmt.Errorf("engine.io not installed in %s (cd test/interop && npm ci): %v", o.nodeModules, err)
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

type report struct {
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

func run(ctx context.Context, o options) (*report, error) {
	rep := &report{Started: time.Now(), Tree: treeVersion(), Versions: map[string]string{"go": runtime.Version()}}
	if contains(o.impls, "node") {
		rep.Versions["node"] = nodeVersions(o)
	}
	for r := 0; r < o.runs; r++ {
		// Rotate the order each run so no impl always goes first.
		order := append(append([]string(nil), o.impls[r%len(o.impls):]...), o.impls[:r%len(o.impls)]...)
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
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("%d failures:\n  %s", len(rep.Failures), strings.Join(rep.Failures, "\n  "))
	}
	return rep, nil
}

// nodeVersions names node's and engine.io's versions.
func nodeVersions(o options) string {
	v := "node ?"
	if out, err := exec.Command(o.node, "--version").Output(); err == nil {
		v = "node " + strings.TrimSpace(string(out))
	}
	var pkg struct{ Version string }
	if b, err := os.ReadFile(filepath.Join(o.nodeModules, "engine.io", "package.json")); err == nil && json.Unmarshal(b, &pkg) == nil {
		v += ", engine.io " + pkg.Version
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
		args := []string{"-addr", "127.0.0.1:0", "-ping-interval", o.pingInterval.String(), "-ping-timeout", o.pingInterval.String()}
		if profile != "" {
			args = append(args, "-cpuprofile", profile)
		}
		cmd = o.pinned(context.Background(), o.serverCPU, filepath.Join(o.binDir, "eioserver"), args...)
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
	defer srv.stop()
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

func runLoad(ctx context.Context, o options, srv *server, c cell) (load.Result, error) {
	var res load.Result
	ctx, cancel := context.WithTimeout(ctx, o.warmup+o.duration+2*time.Minute)
	defer cancel()
	args := []string{"-addr", srv.addr, "-proto", "eio-" + c.Transport, "-conns", strconv.Itoa(c.Sessions),
		"-size", strconv.Itoa(o.size), "-duration", o.duration.String(), "-warmup", o.warmup.String(),
		"-server-pid", strconv.Itoa(srv.pid)}
	cmd := o.pinned(ctx, o.loadCPU, filepath.Join(o.binDir, "load"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output() // on timeout CommandContext kills the load by PID
	if err != nil {
		// The JSON line may still be there: load exits 1 on echo errors.
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &res); jerr != nil {
		if err == nil {
			err = fmt.Errorf("load output %q: %v", out, jerr)
		}
		return res, err
	}
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
	defer srv.stop()
	time.Sleep(500 * time.Millisecond)
	if s.RSSBefore, err = proc.RSS(srv.pid); err != nil {
		return s, err
	}
	cmd := o.pinned(ctx, o.loadCPU, filepath.Join(o.binDir, "load"),
		"-addr", srv.addr, "-proto", "eio-"+transport, "-idle", strconv.Itoa(n), "-hold", "5m")
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
		stdin.Close() // the load closes its sessions and exits
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
		if !strings.Contains(l, "idle_sessions") {
			return s, fmt.Errorf("load -idle failed (output %q)", l)
		}
	case <-time.After(2 * time.Minute):
		return s, fmt.Errorf("idle sessions not open within 2 minutes")
	}
	time.Sleep(o.settle)
	if s.RSSAfter, err = proc.RSS(srv.pid); err != nil {
		return s, err
	}
	s.BytesPerSess = float64(s.RSSAfter-s.RSSBefore) / float64(n)
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
	name := filepath.Join(dir, "eio-"+rep.Started.Format("20060102-150405")+".json")
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

func (rep *report) print(w io.Writer, o options) {
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
	vs := []string{"duplex " + rep.Tree, rep.Versions["go"]}
	if v, ok := rep.Versions["node"]; ok {
		vs = append(vs, v)
	}
	fmt.Fprintf(w, "\n%s; each process pinned to one CPU when -pin\n", strings.Join(vs, "; "))
	fmt.Fprintf(w, "\n## Engine.IO echo (%d-character text messages, closed loop per session; median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
		o.size, o.runs, o.duration, o.serverCPU, o.loadCPU)
	fmt.Fprintln(w, "| transport | sessions | impl | msgs/s | vs node | msgs per server CPU-s | vs node | p50 µs | p99 µs | server CPU µs/msg | server syscalls/msg | server CPU % | load CPU % | runs |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	type verdict struct {
		what   string
		ratio  float64
		target string
		ok     bool
	}
	var verdicts []verdict
	for _, c := range o.cells() {
		for _, impl := range o.impls {
			runs := by[key{impl, c}]
			if len(runs) == 0 {
				fmt.Fprintf(w, "| %s | %d | %s | failed | | | | | | | | | | 0 |\n", c.Transport, c.Sessions, impl)
				continue
			}
			var mps, ratio, perCPU, cpuRatio, p50, p99, cpu, sys, scpu, lcpu []float64
			for r, res := range runs {
				mps = append(mps, res.MsgsPerSec)
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
			rs, crs := "–", "–"
			if len(ratio) > 0 {
				rs = fmt.Sprintf("%.2f", median(ratio))
				if impl == "duplex" {
					m := median(ratio)
					verdicts = append(verdicts, verdict{fmt.Sprintf("msgs/s, %s, %d sessions", c.Transport, c.Sessions), m, fmt.Sprintf("≥ %.0f×", targetSpeedup), m >= targetSpeedup})
				}
			}
			if len(cpuRatio) > 0 {
				crs = fmt.Sprintf("%.2f", median(cpuRatio))
				if impl == "duplex" {
					m := median(cpuRatio)
					verdicts = append(verdicts, verdict{fmt.Sprintf("msgs per server CPU-second, %s, %d sessions", c.Transport, c.Sessions), m, fmt.Sprintf("≥ %.0f×", targetSpeedup), m >= targetSpeedup})
				}
			}
			fmt.Fprintf(w, "| %s | %d | %s | %.0f | %s | %.0f | %s | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %d |\n",
				c.Transport, c.Sessions, impl, median(mps), rs, median(perCPU), crs, median(p50), median(p99), median(cpu), median(sys), median(scpu), median(lcpu), len(runs))
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
				rs := "–"
				if len(ratio) > 0 {
					m := median(ratio)
					rs = fmt.Sprintf("%.2f", m)
					if impl == "duplex" {
						verdicts = append(verdicts, verdict{fmt.Sprintf("memory per idle session, %s", tr), m, fmt.Sprintf("≤ %.2f×", targetMemory), m <= targetMemory})
					}
				}
				fmt.Fprintf(w, "| %s | %d | %s | %.1f | %.1f | %.2f | %s | %d |\n", tr, o.idleCount(tr), impl, median(before), median(after), median(per), rs, len(per))
			}
		}
	}
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

// treeVersion names the duplex commit being measured, marked dirty when
// engineio/ or ws/ have uncommitted changes.
func treeVersion() string {
	out, err := exec.Command("git", "-C", "..", "log", "-1", "--format=%h").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--", "engineio", "ws").Output(); err == nil && len(st) > 0 {
		v += "+dirty"
	}
	return v
}
