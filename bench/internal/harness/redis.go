package harness

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Redis is a redis-server process started by StartRedis, on a loopback port
// of its own, with no persistence.
type Redis struct {
	Addr string // 127.0.0.1:PORT
	PID  int
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped
	dir  string
}

// RedisBinary is the redis-server program StartRedis runs.
const RedisBinary = "redis-server"

// CheckRedis reports whether redis-server can be found.
func CheckRedis() error {
	if _, err := exec.LookPath(RedisBinary); err != nil {
		return fmt.Errorf("%s not found (Debian: apt-get install redis-server): %v", RedisBinary, err)
	}
	return nil
}

// StartRedis starts redis-server on a free loopback port (no RDB, no AOF,
// its working files in a new temporary directory), pinned with taskset to cpu
// unless cpu is "" , and waits at most 15 s for it to answer PING. Its
// output goes to this process's stderr. Stop ends it.
func StartRedis(cpu string) (*Redis, error) {
	if err := CheckRedis(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "duplex-bench-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 3 { // a free port may be taken between the probe and redis-server's bind
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}
		var cmd *exec.Cmd
		if cpu != "" {
			cmd = exec.Command("taskset", append([]string{"-c", cpu, RedisBinary}, args...)...)
		} else {
			cmd = exec.Command(RedisBinary, args...)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{}), dir: dir}
		go func() { _ = cmd.Wait(); close(r.done) }()
		if lastErr = r.waitPing(15 * time.Second); lastErr == nil {
			return r, nil
		}
		_ = cmd.Process.Kill()
		<-r.done
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server: %v", lastErr)
}

// Stop sends SIGTERM to the server's PID, then SIGKILL after 10 s, waits for
// it to exit and removes its directory.
func (r *Redis) Stop() {
	_ = r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	os.RemoveAll(r.dir)
}

func (r *Redis) waitPing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	err := errors.New("no answer")
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return errors.New("redis-server exited")
		default:
		}
		if err = ping(r.Addr); err == nil {
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
