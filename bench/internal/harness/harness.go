// Package harness runs the processes of the side-by-side comparisons
// (cmd/compare, cmd/eiocompare, cmd/siocompare, cmd/rediscompare): it builds the
// server and load binaries, starts a redis-server of its own (StartRedis),
// starts a server pinned to one CPU with taskset and waits for its
// "listening ADDR" line, runs the load generator pinned to another CPU and
// decodes its JSON result line, measures a server's RSS growth under idle
// connections, and stops the server by its PID.
//
// Nothing in it is safe for concurrent use unless its doc says so; the
// comparison commands call it from one goroutine.
package harness

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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/duplexio/duplex/bench/internal/proc"
)

// Processes says how a comparison runs its processes: pinned with taskset or
// not, on which CPUs, and from which directory of built binaries.
type Processes struct {
	Pin       bool   // pin the server to ServerCPU and the load to LoadCPU with taskset
	ServerCPU string // taskset CPU list for the server
	LoadCPU   string // taskset CPU list for the load generator
	BinDir    string // directory holding the server binary and "load"; "" = build them (Prepare)
}

// AddFlags registers -pin, -server-cpu, -load-cpu and -bin on fs, filling p.
// server names the server command that -bin must hold besides load.
func (p *Processes) AddFlags(fs *flag.FlagSet, server string) {
	fs.BoolVar(&p.Pin, "pin", true, "pin the server to -server-cpu and the load to -load-cpu with taskset")
	fs.StringVar(&p.ServerCPU, "server-cpu", "0", "taskset CPU list for the server")
	fs.StringVar(&p.LoadCPU, "load-cpu", "1", "taskset CPU list for the load generator")
	fs.StringVar(&p.BinDir, "bin", "", "directory with prebuilt "+server+" and load (default: go build them)")
}

// Prepare gets the machine and the binaries ready for a comparison named
// command (compare, eiocompare, ...): with Pin it checks for taskset and at
// least 2 CPUs; it raises this process's RLIMIT_NOFILE (logging a failure);
// and when BinDir is empty it builds serverPkg (such as "./cmd/echoserver"),
// ./cmd/load and the extra packages (such as "./cmd/sioclientload") into a
// new temporary directory, which it sets as BinDir and which cleanup removes.
// It must run in the bench directory.
func (p *Processes) Prepare(command, serverPkg string, extra ...string) (cleanup func(), err error) {
	if p.Pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			return nil, fmt.Errorf("taskset not found (util-linux); use -pin=false to run unpinned")
		}
		if runtime.NumCPU() < 2 {
			return nil, fmt.Errorf("need 2 CPUs to pin server and load apart; use -pin=false")
		}
	}
	if _, err := proc.RaiseNoFile(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	if p.BinDir != "" {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "duplex-"+command+"-")
	if err != nil {
		return nil, err
	}
	args := append([]string{"build", "-o", dir + string(os.PathSeparator), serverPkg, "./cmd/load"}, extra...)
	build := exec.Command("go", args...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build (run %s from the bench directory): %v", command, err)
	}
	p.BinDir = dir
	return func() { os.RemoveAll(dir) }, nil
}

// Bin is the path of the built binary name (such as "echoserver") in BinDir.
func (p Processes) Bin(name string) string { return filepath.Join(p.BinDir, name) }

// pinned returns the command that runs name with args, pinned to cpu with
// taskset when p.Pin. taskset execs the program, so the command's PID is the
// program's own.
func (p Processes) pinned(ctx context.Context, cpu, name string, args ...string) *exec.Cmd {
	if p.Pin {
		return exec.CommandContext(ctx, "taskset", append([]string{"-c", cpu, name}, args...)...)
	}
	return exec.CommandContext(ctx, name, args...)
}

// ServerCommand returns the (not yet started) command that runs the program
// name with args, pinned to the server CPU when p.Pin. Start it with
// StartServer.
func (p Processes) ServerCommand(name string, args ...string) *exec.Cmd {
	return p.pinned(context.Background(), p.ServerCPU, name, args...)
}

// Server is a running server process, started by StartServer.
type Server struct {
	Addr string // the address it printed: "listening ADDR"
	PID  int    // its process ID (the program's own, also when pinned)
	cmd  *exec.Cmd
}

// StartServer starts cmd, its stderr going to this process's, and waits at
// most 15 s for the first line of its stdout, which must be "listening ADDR";
// the rest of its stdout is read and dropped. name names the server in
// errors (such as "echoserver duplex" or "node server"). On error the process
// has been stopped.
func StartServer(name string, cmd *exec.Cmd) (*Server, error) {
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Server{cmd: cmd, PID: cmd.Process.Pid}
	select {
	case l := <-firstLine(out):
		a, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			s.Stop()
			return nil, fmt.Errorf("%s: unexpected first line %q", name, l)
		}
		s.Addr = a
	case <-time.After(15 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("%s did not start listening in 15s", name)
	}
	return s, nil
}

// Stop sends SIGTERM to the server's PID, then SIGKILL after 10 s, and waits
// for it to exit.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	waitOrKill(s.cmd, 10*time.Second)
}

// waitOrKill waits for cmd to exit, killing it after d.
func waitOrKill(cmd *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = cmd.Process.Kill()
		<-done
	}
}

// firstLine reads the first line of r in a goroutine, sends it (or what was
// read before an error) on the returned channel, then reads and drops the
// rest of r until it ends.
func firstLine(r io.Reader) <-chan string {
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(r).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, r)
	}()
	return line
}

// RunLoad runs the load binary with args, pinned to the load CPU when p.Pin,
// kills it (by its PID) if it runs longer than timeout, and decodes the last
// line of its stdout, a JSON result, into res. The load exits 1 when it saw
// errors yet still prints its line: the error then carries its stderr and res
// is filled all the same.
func (p Processes) RunLoad(ctx context.Context, timeout time.Duration, args []string, res any) error {
	return p.RunLoadCommand(ctx, timeout, nil, p.Bin("load"), args, res)
}

// RunLoadCommand is RunLoad for any load program that ends its stdout with a
// JSON result line: it runs name with args (and env, when not nil, as its
// whole environment), pinned to the load CPU when p.Pin.
func (p Processes) RunLoadCommand(ctx context.Context, timeout time.Duration, env []string, name string, args []string, res any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := p.pinned(ctx, p.LoadCPU, name, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output() // on timeout CommandContext kills the load by PID
	if err != nil {
		// The JSON line may still be there: load exits 1 on errors.
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), res); jerr != nil && err == nil {
		err = fmt.Errorf("load output %q: %v", out, jerr)
	}
	return err
}

// IdleLoad is the load of an idle-memory measurement (Processes.IdleRSS).
type IdleLoad struct {
	Args []string // the load's arguments, -idle N among them
	// Ready is what the load's first stdout line holds once all its
	// connections are open: the JSON key it prints, such as "idle_conns".
	Ready string
	// NotReady is the error when they are not open within 2 minutes, such
	// as "idle connections not up".
	NotReady string
	Settle   time.Duration // wait after they are open before reading RSS again
	// Collect sends SIGUSR1 to the server after the settle wait and reads its
	// RSS 500 ms later: the bench's Go servers then collect their garbage and
	// return freed memory to the OS (internal/servermain), so that the
	// number is live memory rather than what the garbage collector has not
	// reclaimed yet. Only for servers that handle SIGUSR1 so.
	Collect bool
}

// IdleRSS measures srv's resident memory without and with idle connections:
// it waits 500 ms after the server's start, reads its RSS (before), runs the
// load with l.Args pinned to the load CPU until it reports that every
// connection is open, waits l.Settle and reads the server's RSS again
// (after). Then it closes the load's stdin, on which the load closes its
// connections and exits, and waits for it (killing it after 30 s).
func (p Processes) IdleRSS(ctx context.Context, srv *Server, l IdleLoad) (before, after int64, err error) {
	time.Sleep(500 * time.Millisecond)
	if before, err = proc.RSS(srv.PID); err != nil {
		return 0, 0, err
	}
	cmd := p.pinned(ctx, p.LoadCPU, p.Bin("load"), l.Args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return before, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return before, 0, err
	}
	if err := cmd.Start(); err != nil {
		return before, 0, err
	}
	defer func() {
		stdin.Close() // the load closes its connections and exits
		waitOrKill(cmd, 30*time.Second)
	}()
	select {
	case line := <-firstLine(stdout):
		if !strings.Contains(line, l.Ready) {
			return before, 0, fmt.Errorf("load -idle failed (output %q)", line)
		}
	case <-time.After(2 * time.Minute):
		return before, 0, fmt.Errorf("%s within 2 minutes", l.NotReady)
	}
	time.Sleep(l.Settle)
	if l.Collect {
		if err := srv.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			return before, 0, err
		}
		time.Sleep(500 * time.Millisecond)
	}
	if after, err = proc.RSS(srv.PID); err != nil {
		return before, 0, err
	}
	return before, after, nil
}

// Rotate returns a copy of impls rotated left by run: the order of that run,
// so that no impl always goes first or last.
func Rotate(impls []string, run int) []string {
	k := run % len(impls)
	return append(append([]string(nil), impls[k:]...), impls[:k]...)
}

// SplitList splits a comma-separated flag value, trimming spaces and
// dropping empty entries.
func SplitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// IntList parses a comma-separated list of positive whole numbers.
func IntList(s string) ([]int, error) {
	var out []int
	for _, f := range SplitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad number %q in list %q", f, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// TreeVersion names the duplex commit being measured (the repository one
// level up), with "+dirty" when any of dirs (such as "ws") has uncommitted or
// untracked changes, or "unknown" without git.
func TreeVersion(dirs ...string) string {
	out, err := exec.Command("git", "-C", "..", "log", "-1", "--format=%h").Output()
	if err != nil {
		return "unknown"
	}
	v := strings.TrimSpace(string(out))
	args := append([]string{"-C", "..", "status", "--porcelain", "--"}, dirs...)
	if st, err := exec.Command("git", args...).Output(); err == nil && len(st) > 0 {
		v += "+dirty"
	}
	return v
}

// WaitQuiet waits, at most max, until the machine is nearly idle: until a
// 300 ms sample of /proc/stat shows all CPUs together busy less than
// threshold of one CPU (0.15: 15%). It reports whether the machine was
// quiet; on a shared machine a comparison calls it before each measurement
// so that other work weighs less on it. It returns true at once when max is
// 0 or /proc/stat cannot be read.
func WaitQuiet(max time.Duration, threshold float64) bool {
	if max <= 0 {
		return true
	}
	deadline := time.Now().Add(max)
	for {
		b0, _, err := proc.MachineCPU()
		if err != nil {
			return true
		}
		start := time.Now()
		time.Sleep(300 * time.Millisecond)
		b1, _, err := proc.MachineCPU()
		if err != nil {
			return true
		}
		if float64(b1-b0)/float64(time.Since(start)) < threshold {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
