package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// duplexProcess starts the command as a process of its own: the test binary running main
// (see TestMain), the same code as the built duplex binary. It returns the process and its
// stdout, line by line.
func duplexProcess(t *testing.T, stdin string, args ...string) (*exec.Cmd, <-chan string, *syncBuffer, <-chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait() // after the last read of stdout, as exec requires
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // an error when it has exited already
	})
	return cmd, lines, stderr, exited
}

// waitExit waits for a process started by duplexProcess and returns its output.
func waitExit(t *testing.T, what string, lines <-chan string, stderr *syncBuffer, exited <-chan error) string {
	t.Helper()
	var out strings.Builder
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				if err := <-exited; err != nil {
					t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", what, err, out.String(), stderr)
				}
				return out.String()
			}
			out.WriteString(l + "\n")
		case <-deadline:
			t.Fatalf("%s did not end; stdout:\n%s\nstderr:\n%s", what, out.String(), stderr)
		}
	}
}

// Each subcommand, run as a process against a "duplex serve" process: serve answers, dial
// and dial --sio talk in pipe mode, trace decodes what it relays, bench prints its table,
// and serve exits 0 on SIGTERM.
func TestEverySubcommandAsAProcess(t *testing.T) {
	serve, serveLines, serveErr, serveExited := duplexProcess(t, "", "serve", "--addr", "127.0.0.1:0")
	var echoURL string
	select {
	case line := <-serveLines:
		echoURL = echoURLPattern.FindString(line)
	case <-time.After(eiotest.WaitLimit):
	}
	if echoURL == "" {
		t.Fatalf("serve printed no echo URL; stderr:\n%s", serveErr)
	}
	go func() {
		for range serveLines {
		}
	}()
	addr := strings.TrimSuffix(strings.TrimPrefix(echoURL, "ws://"), "/echo")

	t.Run("dial", func(t *testing.T) {
		_, lines, stderr, exited := duplexProcess(t, "hello\n", "dial", "--timestamps=false", echoURL)
		if out := waitExit(t, "dial", lines, stderr, exited); !strings.Contains(out, "< text: hello\n") {
			t.Fatalf("dial printed %q", out)
		}
	})
	t.Run("dial --sio", func(t *testing.T) {
		_, lines, stderr, exited := duplexProcess(t, `emit echo "hi" 42`+"\n", "dial", "--sio", "--ack", "--timestamps=false", "http://"+addr)
		if out := waitExit(t, "dial --sio", lines, stderr, exited); !strings.Contains(out, `ack ["hi",42]`+"\n") {
			t.Fatalf("dial --sio printed %q; stderr %q", out, stderr)
		}
	})
	t.Run("bench", func(t *testing.T) {
		_, lines, stderr, exited := duplexProcess(t, "", "bench", "--mode", "sio-echo", "--connections", "2", "--duration", "300ms", "--json", "http://"+addr)
		out := waitExit(t, "bench", lines, stderr, exited)
		var res struct {
			Mode     string `json:"mode"`
			Messages int    `json:"messages"`
			Errors   int    `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Mode != "sio-echo" || res.Messages == 0 || res.Errors != 0 {
			t.Fatalf("bench printed %q (%v)", out, err)
		}
	})
	t.Run("trace", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listen := ln.Addr().String()
		ln.Close()
		trace, lines, stderr, exited := duplexProcess(t, "", "trace", "--timestamps=false", "--listen", listen, "--upstream", "ws://"+addr)
		var c *ws.Conn
		for deadline := time.Now().Add(eiotest.WaitLimit); ; {
			if c, _, err = ws.Dial(context.Background(), "ws://"+listen+"/echo", nil); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("dialing through trace: %v; stderr:\n%s", err, stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := c.WriteMessage(context.Background(), ws.MessageText, bytes.Repeat([]byte("x"), 200)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.ReadMessage(context.Background()); err != nil {
			t.Fatal(err)
		}
		_ = c.Close(ws.StatusNormalClosure, "")
		var out strings.Builder
		for want := "s→c  frame    text         fin=1 rsv=000 op=0x1 mask=0 len=200     (16-bit, 126)"; !strings.Contains(out.String(), want); {
			select {
			case l := <-lines:
				out.WriteString(l + "\n")
			case <-time.After(eiotest.WaitLimit):
				t.Fatalf("trace printed no %q:\n%s", want, out.String())
			}
		}
		if err := trace.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitExit(t, "trace", lines, stderr, exited)
	})

	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-serveExited:
		if err != nil {
			t.Fatalf("serve after SIGTERM: %v; stderr:\n%s", err, serveErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
}
