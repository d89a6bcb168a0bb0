// Package echotest holds the test helpers the example programs share: running a server on a
// loopback port, checking for leaked goroutines, and echo round trips with ws.Dial.
package echotest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// Log is a log destination safe for concurrent use.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the log.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Serve is the shape of an example server's entry point.
type Serve func(ctx context.Context, ln net.Listener, logger *log.Logger) error

// StartServer runs serve on a loopback port until the test ends and returns its address and
// its log. stop shuts it down and waits for serve to return.
func StartServer(t *testing.T, serve Serve) (addr string, logs *Log, stop func()) {
	t.Helper()
	CheckGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs = &Log{}
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

// CheckGoroutines fails the test if goroutines started during it are still running at its
// end (after the cleanups registered later, which run first).
func CheckGoroutines(t *testing.T) {
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

// Dial connects to the /echo endpoint at addr; the connection is closed when the test ends.
func Dial(t *testing.T, ctx context.Context, addr string) *ws.Conn {
	t.Helper()
	c, _, err := ws.Dial(ctx, "ws://"+addr+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// Echo sends msg and checks that the same type and payload come back.
func Echo(t *testing.T, ctx context.Context, c *ws.Conn, typ ws.MessageType, msg []byte) {
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

// Fragmented sends "frag" + "mented" as one text message in three frames (the last one empty)
// and checks that it comes back as one message.
func Fragmented(t *testing.T, ctx context.Context, c *ws.Conn) {
	t.Helper()
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
}

// PingPong sends a ping with payload and checks that its pong arrives before the echo of a
// message sent after it.
func PingPong(t *testing.T, ctx context.Context, c *ws.Conn, payload string) {
	t.Helper()
	pongs := make(chan string, 1)
	c.SetPongHandler(func(p []byte) { pongs <- string(p) })
	if err := c.Ping(ctx, []byte(payload)); err != nil {
		t.Fatal(err)
	}
	Echo(t, ctx, c, ws.MessageText, []byte("after the ping"))
	select {
	case p := <-pongs:
		if p != payload {
			t.Errorf("pong payload %q, want %q", p, payload)
		}
	default:
		t.Error("no pong before the next echo")
	}
}

// CloseWithCode closes with code and reason and checks that a read in progress sees the
// server's echo of the code.
func CloseWithCode(t *testing.T, ctx context.Context, c *ws.Conn, code ws.StatusCode, reason string) {
	t.Helper()
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage(ctx)
		readErr <- err
	}()
	if err := c.Close(code, reason); err != nil {
		t.Fatal(err)
	}
	var ce *ws.CloseError
	if err := <-readErr; !errors.As(err, &ce) || ce.Code != code || !ce.Remote {
		t.Fatalf("client read after close: %v, want the server's close %d", err, code)
	}
}

// ShutdownSendsGoingAway starts serve, opens a connection, stops the server and checks that
// the client sees close code 1001. It returns the server's log.
func ShutdownSendsGoingAway(t *testing.T, serve Serve) *Log {
	t.Helper()
	addr, logs, stop := StartServer(t, serve)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c := Dial(t, ctx, addr)
	Echo(t, ctx, c, ws.MessageText, []byte("hi"))
	readErr := make(chan error, 1)
	go func() {
		_, _, err := c.ReadMessage(ctx)
		readErr <- err
	}()
	stop()
	if code := ws.CloseStatus(<-readErr); code != ws.StatusGoingAway {
		t.Fatalf("close code %d, want 1001", code)
	}
	return logs
}
