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
	pin              bool
	serverCPU        string
	loadCPU          string
	binDir           string
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
	flag.BoolVar(&o.pin, "pin", true, "pin the server to -server-cpu and the load to -load-cpu with taskset")
	flag.StringVar(&o.serverCPU, "server-cpu", "0", "taskset CPU list for the server")
	flag.StringVar(&o.loadCPU, "load-cpu", "1", "taskset CPU list for the load generator")
	flag.StringVar(&o.binDir, "bin", "", "directory with prebuilt echoserver and load (default: go build them)")
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
	o.impls = splitList(*impls)
	if o.deflate == "" && !contains(o.impls, "tcp") {
		o.impls = append(o.impls, "tcp")
	}
	for _, im := range o.impls {
		if !contains(servers.Names(), im) {
			log.Fatalf("unknown impl %q (have %v)", im, servers.Names())
		}
	}
	if o.conns, err = intList(*conns); err != nil {
		log.Fatal(err)
	}
	if o.sizes, err = intList(*sizes); err != nil {
		log.Fatal(err)
	}
	if o.inflight, err = intList(*inflight); err != nil {
		log.Fatal(err)
	}
	if o.runs < 1 {
		log.Fatal("-runs must be at least 1")
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
		dir, err := os.MkdirTemp("", "duplex-bench-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(dir)
		build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/echoserver", "./cmd/load")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			log.Fatalf("go build (run compare from the bench directory): %v", err)
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

type report struct {
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

func run(ctx context.Context, o options) (*report, error) {
	rep := &report{Started: time.Now(), Tree: treeVersion()}
	cells := o.cells()
	for r := 0; r < o.runs; r++ {
		// Rotate the order each run so no impl always goes first or last.
		order := append(append([]string(nil), o.impls[r%len(o.impls):]...), o.impls[:r%len(o.impls)]...)
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
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("%d failures:\n  %s", len(rep.Failures), strings.Join(rep.Failures, "\n  "))
	}
	return rep, nil
}

// server is a running echoserver process.
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
	args := []string{"-impl", impl, "-addr", "127.0.0.1:0"}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd := o.pinned(context.Background(), o.serverCPU, filepath.Join(o.binDir, "echoserver"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// taskset execs the server, so the PID is the server's.
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
			return nil, fmt.Errorf("echoserver %s: unexpected first line %q", impl, l)
		}
		s.addr = a
	case <-time.After(15 * time.Second):
		s.stop()
		return nil, fmt.Errorf("echoserver %s did not start listening in 15s", impl)
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
	defer srv.stop()
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

func runLoad(ctx context.Context, o options, srv *server, proto string, c cell) (load.Result, error) {
	var res load.Result
	limit := o.warmup + o.duration + 2*time.Minute
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	args := []string{"-addr", srv.addr, "-proto", proto,
		"-conns", strconv.Itoa(c.Conns), "-size", strconv.Itoa(c.Size), "-inflight", strconv.Itoa(c.InFlight),
		"-duration", o.duration.String(), "-warmup", o.warmup.String(), "-server-pid", strconv.Itoa(srv.pid)}
	if o.deflate != "" && proto == "ws" {
		args = append(args, "-deflate", o.deflate)
	}
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

func idleRSS(ctx context.Context, o options, r int, impl string) (idleSample, error) {
	s := idleSample{Run: r, Impl: impl, Conns: o.idle}
	srv, err := startServer(o, impl, "")
	if err != nil {
		return s, err
	}
	defer srv.stop()
	time.Sleep(500 * time.Millisecond)
	if s.RSSBefore, err = proc.RSS(srv.pid); err != nil {
		return s, err
	}
	proto := "ws"
	if !servers.IsWebSocket(impl) {
		proto = "tcp"
	}
	args := []string{"-addr", srv.addr, "-proto", proto, "-idle", strconv.Itoa(o.idle), "-hold", "5m"}
	if o.deflate != "" && proto == "ws" {
		args = append(args, "-deflate", o.deflate)
	}
	cmd := o.pinned(ctx, o.loadCPU, filepath.Join(o.binDir, "load"), args...)
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
		stdin.Close() // the load closes its connections and exits
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
		if !strings.Contains(l, "idle_conns") {
			return s, fmt.Errorf("load -idle failed (output %q)", l)
		}
	case <-time.After(2 * time.Minute):
		return s, fmt.Errorf("idle connections not up within 2 minutes")
	}
	time.Sleep(o.settle)
	if s.RSSAfter, err = proc.RSS(srv.pid); err != nil {
		return s, err
	}
	s.BytesPerCon = float64(s.RSSAfter-s.RSSBefore) / float64(o.idle)
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
	name := filepath.Join(dir, rep.Started.Format("20060102-150405")+".json")
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

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
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
	fmt.Fprintf(w, "\nduplex tree: %s; %s, GOMAXPROCS of each process = 1 CPU when pinned\n", rep.Tree, runtime.Version())
	if o.deflate != "" {
		fmt.Fprintf(w, "\n## Compressed echo (permessage-deflate, offer %q; JSON-like text payload; median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
			o.deflate, o.runs, o.duration, o.serverCPU, o.loadCPU)
	} else {
		fmt.Fprintf(w, "\n## Echo throughput and latency (median of %d runs, %v window, server on CPU %s, load on CPU %s)\n\n",
			o.runs, o.duration, o.serverCPU, o.loadCPU)
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
			var mps, ratio, p50, p99, cpu, sys, scpu, lcpu, wout, wback []float64
			for r, res := range runs {
				mps = append(mps, res.MsgsPerSec)
				if res.ServerCPUSeconds >= 0 && res.Seconds > 0 {
					scpu = append(scpu, 100*res.ServerCPUSeconds/res.Seconds)
				}
				if res.LoadCPUSeconds >= 0 && res.Seconds > 0 {
					lcpu = append(lcpu, 100*res.LoadCPUSeconds/res.Seconds)
				}
				if res.Verified > 0 && res.SentWireBytes > 0 {
					wout = append(wout, float64(res.SentWireBytes)/float64(res.Verified))
					wback = append(wback, float64(res.EchoWireBytes)/float64(res.Verified))
				}
				p50 = append(p50, res.P50us)
				p99 = append(p99, res.P99us)
				if res.ServerCPUPerMsgUs >= 0 {
					cpu = append(cpu, res.ServerCPUPerMsgUs)
				}
				if res.ServerSyscallsPerMsg >= 0 {
					sys = append(sys, res.ServerSyscallsPerMsg)
				}
				if base, ok := by[key{o.base, c}][r]; ok && base.MsgsPerSec > 0 {
					ratio = append(ratio, res.MsgsPerSec/base.MsgsPerSec)
				}
			}
			rs := "–"
			if len(ratio) > 0 {
				rs = fmt.Sprintf("%.2f", median(ratio))
			}
			ws := "–"
			if len(wout) > 0 {
				ws = fmt.Sprintf("%.0f / %.0f", median(wout), median(wback))
			}
			fmt.Fprintf(w, "| %d | %s | %d | %s | %.0f | %.1f | %s | %.1f | %.1f | %.2f | %.2f | %.0f | %.0f | %s | %d |\n",
				c.Conns, sizeName(c.Size), c.InFlight, impl, median(mps), median(mps)*float64(c.Size)/1e6, rs, median(p50), median(p99), median(cpu), median(sys), median(scpu), median(lcpu), ws, len(runs))
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
			fmt.Fprintf(w, "| %s | %.1f | %.1f | %.2f | %d |\n", impl, median(before), median(after), median(per), len(per))
		}
	}
	if len(rep.Failures) > 0 {
		fmt.Fprintf(w, "\n## Failures\n\n")
		for _, f := range rep.Failures {
			fmt.Fprintf(w, "- %s\n", f)
		}
	}
}

// treeVersion names the duplex commit being measured, marked dirty when ws/
// has uncommitted changes.
func treeVersion() string {
	out, err := exec.Command("git", "-C", "..", "log", "-1", "--format=%h").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", "..", "status", "--porcelain", "--", "ws").Output(); err == nil && len(st) > 0 {
		v += "+dirty"
	}
	return v
}
