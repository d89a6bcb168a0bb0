package ws

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// writeCountingConn counts the writes made on a net.Conn.
type writeCountingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *writeCountingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func TestBatchWritesItsMessagesTogether(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *Conn, 1)
	counted := make(chan *writeCountingConn, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		cc := &writeCountingConn{Conn: nc}
		c, _, err := (&Upgrader{}).UpgradeConn(cc)
		if err != nil {
			return
		}
		counted <- cc
		accepted <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, _, err := Dial(ctx, "ws://"+ln.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	server, cc := <-accepted, <-counted
	defer server.CloseNow()

	const n = 100
	before := cc.writes.Load()
	err = server.Batch(ctx, func() error {
		for i := range n {
			if err := server.WriteMessage(ctx, MessageText, fmt.Appendf(nil, "message %d", i)); err != nil {
				return err
			}
			if i == n/2 {
				// A batch that runs past the coalescing delay (as on a loaded machine):
				// the delay's timer must leave the frames to the batch.
				time.Sleep(10 * coalesceDelay)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if w := cc.writes.Load() - before; w != 1 {
		t.Errorf("%d small messages took %d writes, want 1", n, w)
	}
	for i := range n {
		_, m, err := client.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("message %d", i); string(m) != want {
			t.Fatalf("got %q, want %q", m, want)
		}
	}
	// Past the write buffer, a batch flushes as it goes and loses nothing.
	big := make([]byte, 20<<10)
	err = server.Batch(ctx, func() error {
		for range 10 {
			if err := server.WriteMessage(ctx, MessageBinary, big); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, m, err := client.ReadMessage(ctx); err != nil || len(m) != len(big) {
			t.Fatalf("%d bytes, %v", len(m), err)
		}
	}
}
