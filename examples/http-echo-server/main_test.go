package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// syncBuffer is a log destination safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs serve on a loopback port until the test ends and returns its address
// and its log. stop shuts it down and waits for serve to return.
func startServer(t *testing.T) (addr string, logs *syncBuffer, stop func()) {
	t.Helper()
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, log.New(logs, "", 0)) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(3 * time.Second):
				t.Errorf("serve did not return after shutdown")
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	return ln.Addr().String(), logs, stop
}

// checkGoroutines fails the test if goroutines started during it are still running at its
// end (after the cleanups registered later, which run first).
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func dial(t *testing.T, ctx context.Context, addr string) *ws.Conn {
	t.Helper()
	c, _, err := ws.Dial(ctx, "ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func echo(t *testing.T, ctx context.Context, c *ws.Conn, typ ws.MessageType, msg []byte) {
	t.Helper()
	if err := c.WriteMessage(ctx, typ, msg); err != nil {
		t.Fatal(err)
	}
	gotType, got, err := c.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if gotType != typ || !bytes.Equal(got, msg) {
		t.Fatalf("echo of %v %d bytes: got %v %d bytes", typ, len(msg), gotType, len(got))
	}
}

func TestEcho(t *testing.T) {
	addr, logs, stop := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c := dial(t, ctx, addr)

	echo(t, ctx, c, ws.MessageText, []byte("hello"))
	echo(t, ctx, c, ws.MessageBinary, []byte{0, 1, 2, 0xFF})
	big := make([]byte, 70000) // sent with a 64-bit length
	rand.Read(big)
	echo(t, ctx, c, ws.MessageBinary, big)

	// A message in three frames arrives as one message.
	w, err := c.NextWriter(ctx, ws.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "frag")
	io.WriteString(w, "mented")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(ctx); err != nil || string(got) != "fragmented" {
		t.Fatalf("fragmented echo: %q, %v", got, err)
	}

	// The server's reader answers pings.
	pongs := make(chan string, 1)
	c.SetPongHandler(func(p []byte) { pongs <- string(p) })
	if err := c.Ping(ctx, []byte("ping?")); err != nil {
		t.Fatal(err)
	}
	echo(t, ctx, c, ws.MessageText, []byte("after the ping"))
	select {
	case p := <-pongs:
		if p != "ping?" {
			t.Errorf("pong payload %q", p)
		}
	default:
		t.Error("no pong before the next echo")
	}

	// The server echoes our close code.
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage(ctx)
		readErr <- err
	}()
	if err := c.Close(4001, "done"); err != nil {
		t.Fatal(err)
	}
	var ce *ws.CloseError
	if err := <-readErr; !errors.As(err, &ce) || ce.Code != 4001 || !ce.Remote {
		t.Fatalf("client read after close: %v, want the server's close 4001", err)
	}
	stop()

	out := logs.String()
	for _, want := range []string{
		"connected to /echo",
		"message: text, 5 bytes",
		"message: binary, 4 bytes",
		"message: binary, 70000 bytes",
		"message: text, 10 bytes",
		"message: text, 14 bytes",
		"closed: code 4001",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	addr, logs, stop := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c := dial(t, ctx, addr)
	echo(t, ctx, c, ws.MessageText, []byte("hi"))
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage(ctx)
		readErr <- err
	}()
	stop()
	if code := ws.CloseStatus(<-readErr); code != ws.StatusGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	if !strings.Contains(logs.String(), "closed: code 1001") {
		t.Errorf("log lacks the 1001 close:\n%s", logs)
	}
}

func TestPlainGETIsRefused(t *testing.T) {
	addr, logs, _ := startServer(t)
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "handshake refused") {
		t.Errorf("log lacks the refusal:\n%s", logs)
	}
}
