// Package redistest gives tests a Redis server: the one named by $REDIS_URL
// when it is set, else a redis-server of their own on a free loopback port
// (no persistence), started per test and stopped at its cleanup. When the
// redis-server binary is missing it installs Debian's redis-server package
// with apt-get (through sudo when not root), as scripts/test does for
// chromium.
//
// Kill and Restart help fault tests: they act only on servers this package
// started (a test on $REDIS_URL that calls them is skipped).
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartTimeout bounds how long Start and Restart wait for the server to
// answer PING.
const StartTimeout = 15 * time.Second

// Server is a redis-server process started by this package.
type Server struct {
	// Addr is the server's host:port on the loopback interface.
	Addr string

	dir     string
	cluster bool // started in cluster mode, owning every slot
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has been reaped
	log     *os.File
}

var (
	mu      sync.Mutex
	servers = map[string]*Server{}

	installOnce sync.Once
	installErr  error
)

// Start returns the address (host:port) of a Redis server for t: $REDIS_URL's
// when set, else a fresh redis-server's that is stopped when t ends.
func Start(t testing.TB) (addr string) {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		a, err := addrFromURL(u)
		if err != nil {
			t.Fatalf("redistest: REDIS_URL: %v", err)
		}
		if err := waitPing(a, StartTimeout, nil); err != nil {
			t.Fatalf("redistest: REDIS_URL %s: %v", u, err)
		}
		return a
	}
	return StartServer(t).Addr
}

// StartCluster starts a redis-server of its own in cluster mode that owns every hash slot:
// a one-node Redis Cluster, for the code paths of cluster clients (go-redis ClusterClient,
// sharded pub/sub). It ignores $REDIS_URL. Kill and Restart work on it too (a restart
// makes a new cluster).
func StartCluster(t testing.TB) *Server {
	t.Helper()
	return startServer(t, true)
}

// StartServer starts a redis-server of its own for t (whatever $REDIS_URL
// says) and stops it, by its PID, when t ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return startServer(t, false)
}

func startServer(t testing.TB, cluster bool) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	s := &Server{dir: t.TempDir(), cluster: cluster}
	var lastErr error
	for range 3 { // a free port may be taken between probe and bind
		port, err := freePort()
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = s.start(bin); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("redistest: %v", lastErr)
	}
	mu.Lock()
	servers[s.Addr] = s
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		delete(servers, s.Addr)
		mu.Unlock()
		s.Kill()
		if s.log != nil {
			s.log.Close()
		}
	})
	return s
}

// Kill stops the server at addr at once (SIGKILL to its PID); it stays down
// until Restart. The test is skipped when addr is not a server this package
// started (e.g. $REDIS_URL's).
func Kill(t testing.TB, addr string) {
	t.Helper()
	lookup(t, addr).Kill()
}

// Restart kills the server at addr if it runs and starts it again on the same
// port (with no data: nothing is persisted), waiting until it answers PING.
func Restart(t testing.TB, addr string) {
	t.Helper()
	if err := lookup(t, addr).Restart(); err != nil {
		t.Fatalf("redistest: restart %s: %v", addr, err)
	}
}

func lookup(t testing.TB, addr string) *Server {
	t.Helper()
	mu.Lock()
	s := servers[addr]
	mu.Unlock()
	if s == nil {
		t.Skipf("redistest: %s is not a redis-server this test started (REDIS_URL?)", addr)
	}
	return s
}

// Kill sends SIGKILL to the server's process and reaps it. It does nothing
// when the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart kills the server if it runs and starts it again on the same port.
func (s *Server) Restart() error {
	s.Kill()
	bin, err := binary()
	if err != nil {
		return err
	}
	var lastErr error
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) { // the port may linger briefly
		if lastErr = s.start(bin); lastErr == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return lastErr
}

// PID returns the server's process id, 0 when it is not running.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) start(bin string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	_, port, _ := net.SplitHostPort(s.Addr)
	if s.log == nil {
		f, err := os.Create(s.dir + "/redis.log")
		if err != nil {
			return err
		}
		s.log = f
	}
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}
	if s.cluster {
		_ = os.Remove(s.dir + "/nodes.conf") // a restart starts a new cluster
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", s.dir+"/nodes.conf")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if err := waitPing(s.Addr, StartTimeout, done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("redis-server on %s: %v (log %s)", s.Addr, err, s.log.Name())
	}
	if s.cluster {
		if err := makeCluster(s.Addr); err != nil {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on %s: %v (log %s)", s.Addr, err, s.log.Name())
		}
	}
	s.done = done
	s.cmd = cmd
	return nil
}

func binary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	installOnce.Do(func() { installErr = install() })
	if installErr != nil {
		return "", installErr
	}
	return exec.LookPath("redis-server")
}

// install installs Debian's redis-server package.
func install() error {
	aptGet := []string{"apt-get"}
	if os.Geteuid() != 0 {
		aptGet = []string{"sudo", "apt-get"}
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.Command(aptGet[0], append(aptGet[1:], args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	_, _ = run("update", "-qq")
	if out, err := run("install", "-y", "-qq", "redis-server"); err != nil {
		return fmt.Errorf("installing redis-server: %v: %s", err, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitPing waits until the server at addr answers PING with +PONG.
// It gives up early when exited (if not nil) is closed.
func waitPing(addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited")
		default:
		}
		if err = ping(addr); err == nil {
			return nil
		}
		time.Sleep(30 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %v: %v", timeout, err)
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func addrFromURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Host == "" {
		return "", fmt.Errorf("%q has no host", raw)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "6379"), nil
	}
	return u.Host, nil
}

// makeCluster gives the node at addr every slot and waits until the cluster is ok.
func makeCluster(addr string) error {
	if _, err := command(addr, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		return err
	}
	deadline := time.Now().Add(StartTimeout)
	for time.Now().Before(deadline) {
		info, err := command(addr, "CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("cluster not ok in time")
}

// command sends one command and returns its reply when it is a simple or bulk string.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("reply %q", line)
}
