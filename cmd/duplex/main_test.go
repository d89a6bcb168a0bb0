package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// served is a "duplex serve" running in-process on a free loopback port.
type served struct {
	echoURL string      // ws://HOST:PORT/echo (wss:// over TLS)
	base    string      // http://HOST:PORT (https:// over TLS)
	stderr  *syncBuffer // its log
	stop    func() int  // shuts it down (as SIGINT would) and returns its exit status
}

// startServing runs "duplex serve --addr 127.0.0.1:0 extra..." in-process and reads the URLs
// it prints.
func startServing(t *testing.T, extra ...string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	status := make(chan int, 1)
	stderr := &syncBuffer{}
	go func() {
		status <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, extra...), strings.NewReader(""), w, stderr)
		w.Close()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		cancel()
		t.Fatalf("serve printed nothing; stderr: %s", stderr.String())
	}
	go io.Copy(io.Discard, out)
	line := lines.Text()
	echoURL := echoURLPattern.FindString(line)
	if echoURL == "" {
		cancel()
		t.Fatalf("no WebSocket echo URL in %q", line)
	}
	base := strings.Replace(strings.TrimSuffix(echoURL, "/echo"), "ws", "http", 1)
	if !strings.Contains(line, "open "+base+"/ in a browser") {
		t.Errorf("first line %q does not say to open %s/ in a browser", line, base)
	}
	return &served{echoURL: echoURL, base: base, stderr: stderr, stop: func() int {
		cancel()
		select {
		case s := <-status:
			return s
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop")
			return -1
		}
	}}
}

var echoURLPattern = regexp.MustCompile(`wss?://[^ )]+/echo`)

// startServe runs "duplex serve" on a free loopback port and returns the echo URL and a stop
// function that shuts it down and returns serve's exit status.
func startServe(t *testing.T, extra ...string) (echoURL string, stop func() int) {
	t.Helper()
	s := startServing(t, extra...)
	return s.echoURL, s.stop
}

// syncBuffer is a bytes.Buffer that many goroutines may write and read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServeEchoesWithTheSameOpcode(t *testing.T) {
	url, stop := startServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, m := range []struct {
		typ  ws.MessageType
		data string
	}{{ws.MessageText, "héllo"}, {ws.MessageBinary, "\x00\x01\xff"}, {ws.MessageText, ""}} {
		if err := c.WriteMessage(ctx, m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, got, err := c.ReadMessage(ctx)
		if err != nil || typ != m.typ || string(got) != m.data {
			t.Fatalf("echo of %v %q: %v %q %v", m.typ, m.data, typ, got, err)
		}
	}
	// Shutting the server down says "going away" to connected clients.
	done := make(chan error, 1)
	go func() { _, _, err := c.ReadMessage(ctx); done <- err }()
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
	if err := <-done; ws.CloseStatus(err) != ws.StatusGoingAway {
		t.Fatalf("client saw %v, want close 1001", err)
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if s := run(context.Background(), []string{"nope"}, strings.NewReader(""), &stdout, &stderr); s != 2 {
		t.Fatalf("status %d, want 2", s)
	}
	if !strings.Contains(stderr.String(), "usage") {
		t.Fatalf("stderr %q lacks usage", stderr.String())
	}
}
