//go:build linux

package ws

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"
)

// What an idle connection served by an EventLoop holds on the heap is, besides the
// net.TCPConn, its Conn and its evConn: no buffer, no goroutine and no channel. These
// budgets keep both structs within the allocator's size classes that EVENTED.md's
// numbers (≤ 2 KiB RSS per idle connection) were measured with.
const (
	connBudget   = 448 // bytes: a size class of the Go allocator
	evConnBudget = 192
)

func TestIdleServedConnectionStructsFitTheirBudget(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > connBudget {
		t.Errorf("Conn is %d bytes, budget %d", n, connBudget)
	}
	if n := unsafe.Sizeof(evConn{}); n > evConnBudget {
		t.Errorf("evConn is %d bytes, budget %d", n, evConnBudget)
	}
}

// echoOpened echoes every message and hands each connection to opened on OnOpen.
type echoOpened struct{ opened chan *Conn }

func (h echoOpened) OnOpen(c *Conn) { h.opened <- c }
func (h echoOpened) OnMessage(c *Conn, typ MessageType, data []byte) {
	_ = c.WriteMessage(context.Background(), typ, data)
}
func (h echoOpened) OnClose(*Conn, error) {}

// An idle served connection that has exchanged messages and pings holds none of the
// channels and writer a blocking connection makes on demand; they are still made when
// asked for (Done).
func TestIdleServedConnectionMakesNoChannel(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	loop, err := NewEventLoop(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	h := echoOpened{opened: make(chan *Conn, 1)}
	u := &Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := u.Upgrade(w, r); err == nil {
			_ = loop.Serve(c, h)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	sc := <-h.opened
	go func() { _, _, _ = client.ReadMessage(ctx) }() // takes the echo and the pong
	for range 3 {
		if err := client.Ping(ctx, []byte("p")); err != nil {
			t.Fatal(err)
		}
		if err := client.WriteMessage(ctx, MessageText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
	}
	// The server has answered once its queue is empty and no worker holds the connection.
	for i := 0; ; i++ {
		sc.wmu.Lock()
		e := sc.ev
		e.mu.Lock()
		idle := sc.wb == nil && !e.running && sc.rb == nil
		e.mu.Unlock()
		sc.wmu.Unlock()
		if idle {
			break
		}
		if i == 1000 {
			t.Fatal("the served connection did not go idle in 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sc.sigMu.Lock()
	made := sc.closed.ch != nil || sc.closeRecv.ch != nil || sc.pongs.Load() != nil
	sc.sigMu.Unlock()
	if made || sc.writer != nil {
		t.Errorf("idle served connection holds channels (%v) or a writer (%v)", made, sc.writer != nil)
	}
	done := sc.Done()
	sc.CloseNow()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("Done not closed by CloseNow")
	}
}
