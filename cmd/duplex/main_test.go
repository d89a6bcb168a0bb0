package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// startServe runs "duplex serve" on a free loopback port and returns the echo URL and a stop
// function that shuts it down and returns serve's exit status.
func startServe(t *testing.T, extra ...string) (echoURL string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	status := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		status <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, extra...), strings.NewReader(""), w, &stderr)
		w.Close()
	}()
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		cancel()
		t.Fatalf("serve printed nothing; stderr: %s", stderr.String())
	}
	go io.Copy(io.Discard, out)
	line := lines.Text()
	i := strings.Index(line, "ws://")
	if i < 0 {
		cancel()
		t.Fatalf("no ws:// URL in %q", line)
	}
	echoURL = strings.TrimSuffix(strings.Fields(line[i:])[0], ")")
	return echoURL, func() int {
		cancel()
		select {
		case s := <-status:
			return s
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop")
			return -1
		}
	}
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
