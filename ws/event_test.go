package ws_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/ws"
)

// seqHandler echoes every message and checks the EventHandler guarantees: OnOpen first,
// OnClose once and last, no two calls at once for one connection, messages in the order
// sent (each payload starts with a big-endian sequence number).
type seqHandler struct {
	t              *testing.T
	opened, closed atomic.Int64
	messages       atomic.Int64
	mu             sync.Mutex
	state          map[*ws.Conn]*connState
}

type connState struct {
	busy   atomic.Bool
	next   uint32
	closed bool
}

func (h *seqHandler) enter(c *ws.Conn) *connState {
	h.mu.Lock()
	s := h.state[c]
	if s == nil {
		s = &connState{}
		h.state[c] = s
	}
	h.mu.Unlock()
	if !s.busy.CompareAndSwap(false, true) {
		h.t.Errorf("two handler calls at once for one connection")
	}
	if s.closed {
		h.t.Errorf("handler called after OnClose")
	}
	return s
}

func (h *seqHandler) OnOpen(c *ws.Conn) {
	s := h.enter(c)
	h.opened.Add(1)
	s.busy.Store(false)
}

func (h *seqHandler) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	s := h.enter(c)
	defer s.busy.Store(false)
	h.messages.Add(1)
	if len(data) < 4 {
		h.t.Errorf("message of %d bytes", len(data))
		return
	}
	if seq := binary.BigEndian.Uint32(data); seq != s.next {
		h.t.Errorf("message %d arrived when %d was due", seq, s.next)
	}
	s.next++
	_ = c.WriteMessage(context.Background(), typ, data)
}

func (h *seqHandler) OnClose(c *ws.Conn, err error) {
	s := h.enter(c)
	s.closed = true
	h.closed.Add(1)
	s.busy.Store(false)
}

func newEventServer(t *testing.T, loop *ws.EventLoop, h ws.EventHandler) *httptest.Server {
	u := &ws.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		if err := loop.Serve(c, h); err != nil {
			c.CloseNow()
		}
	}))
	return srv
}

// TestEventLoopManyConnectionsSendAndClose opens 1,000 connections at once; each sends a
// burst of messages, reads the echoes and ends in one of three ways (close handshake,
// TCP vanishing, the server closing it). Under -race this checks the one-worker-per-
// connection and ordering guarantees, and that every connection gets exactly one OnClose.
func TestEventLoopManyConnectionsSendAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const conns, msgs = 1000, 5
	h := &seqHandler{t: t, state: make(map[*ws.Conn]*connState)}
	loop, err := ws.NewEventLoop(&ws.EventLoopOptions{Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	srv := newEventServer(t, loop, h)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- runClient(ctx, url, i, msgs)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed++; failed <= 5 {
				t.Error(err)
			}
		}
	}
	// Every connection ends on the server too.
	deadline := time.Now().Add(10 * time.Second)
	for h.closed.Load() < conns && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.opened.Load(); got != conns {
		t.Errorf("OnOpen called %d times, want %d", got, conns)
	}
	if got := h.closed.Load(); got != conns {
		t.Errorf("OnClose called %d times, want %d", got, conns)
	}
	if got := h.messages.Load(); got != conns*msgs {
		t.Errorf("OnMessage called %d times, want %d", got, conns*msgs)
	}
	if n := loop.Len(); n != 0 {
		t.Errorf("loop still serves %d connections", n)
	}
	if err := loop.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	srv.Close()
}

// runClient sends msgs messages in one burst, reads the echoes, then ends the connection
// in the way i picks.
func runClient(ctx context.Context, url string, i, msgs int) error {
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		return fmt.Errorf("client %d: dial: %w", i, err)
	}
	defer c.CloseNow()
	payload := make([]byte, 4+i%300)
	err = c.Batch(ctx, func() error {
		for seq := range msgs {
			binary.BigEndian.PutUint32(payload, uint32(seq))
			if err := c.WriteMessage(ctx, ws.MessageBinary, payload); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("client %d: write: %w", i, err)
	}
	for seq := range msgs {
		_, data, err := c.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("client %d: reading echo %d: %w", i, seq, err)
		}
		if got := binary.BigEndian.Uint32(data); got != uint32(seq) || len(data) != len(payload) {
			return fmt.Errorf("client %d: echo %d is message %d of %d bytes", i, seq, got, len(data))
		}
	}
	switch i % 3 {
	case 0:
		if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
			return fmt.Errorf("client %d: close: %w", i, err)
		}
	case 1:
		c.CloseNow()
	case 2:
		// The server ends it: invalid UTF-8 in a text message fails the connection (1007)
		// before any handler sees it.
		if err := c.WriteMessage(ctx, ws.MessageText, []byte{0xff, 0xfe, 0xfd, 0xfc}); err != nil {
			return fmt.Errorf("client %d: write invalid text: %w", i, err)
		}
		_, _, err := c.ReadMessage(ctx)
		if ws.CloseStatus(err) != ws.StatusInvalidPayload {
			return fmt.Errorf("client %d: after invalid UTF-8: %v, want close 1007", i, err)
		}
	}
	return nil
}

// slowHandler counts closes and records the error.
type slowHandler struct {
	opened chan *ws.Conn
	closed chan error
}

func (h *slowHandler) OnOpen(c *ws.Conn)                                { h.opened <- c }
func (h *slowHandler) OnMessage(c *ws.Conn, _ ws.MessageType, _ []byte) {}
func (h *slowHandler) OnClose(c *ws.Conn, err error)                    { h.closed <- err }

// TestEventLoopSlowReaderQueueBound writes to a client that does not read until the
// server's write queue is full: volatile messages are dropped first (the connection
// stays open), then an ordinary write fails with ErrWriteQueueFull and the server sends
// a close frame with the overflow code, which the client finds after the data once it
// reads again.
func TestEventLoopSlowReaderQueueBound(t *testing.T) {
	const queue = 256 << 10
	loop, err := ws.NewEventLoop(&ws.EventLoopOptions{Workers: 2, MaxQueuedBytes: queue, OverflowCode: ws.StatusTryAgainLater})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	h := &slowHandler{opened: make(chan *ws.Conn, 1), closed: make(chan error, 1)}
	srv := newEventServer(t, loop, h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	client, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	server := <-h.opened

	msg := make([]byte, 16<<10)
	sent := 0
	// Fill the socket buffers and the queue with volatile messages until one is dropped.
	for {
		err := server.WriteMessageVolatile(ctx, ws.MessageBinary, msg)
		if errors.Is(err, ws.ErrDropped) {
			break
		}
		if err != nil {
			t.Fatalf("volatile write %d: %v", sent, err)
		}
		if sent++; sent > 64<<20/len(msg) {
			t.Fatalf("%d volatile messages queued without a drop", sent)
		}
	}
	t.Logf("%d messages of %d bytes written or queued before the first drop", sent, len(msg))
	// The connection is still open; an ordinary write that overflows closes it.
	if err := server.WriteMessage(ctx, ws.MessageBinary, msg); !errors.Is(err, ws.ErrWriteQueueFull) {
		t.Fatalf("ordinary write over the bound: %v, want ErrWriteQueueFull", err)
	}
	if err := server.WriteMessage(ctx, ws.MessageBinary, msg); err == nil {
		t.Fatalf("write after the overflow succeeded")
	}
	// The client now reads: every queued message, then the close frame.
	got := 0
	for {
		_, _, err := client.ReadMessage(ctx)
		if err != nil {
			if ws.CloseStatus(err) != ws.StatusTryAgainLater {
				t.Fatalf("after %d messages: %v, want close %d", got, err, ws.StatusTryAgainLater)
			}
			break
		}
		got++
	}
	if got != sent {
		t.Errorf("client read %d messages, server had %d accepted", got, sent)
	}
	select {
	case err := <-h.closed:
		t.Logf("server OnClose: %v", err)
	case <-ctx.Done():
		t.Fatal("OnClose not called")
	}
}

// TestEventLoopCloseFromHandler checks that Close called in a handler sends the close
// frame after the handler's writes without blocking the only worker, that OnClose then
// reports the peer's answer, and that a served Conn's read methods say why they cannot
// be used.
func TestEventLoopCloseFromHandler(t *testing.T) {
	loop, err := ws.NewEventLoop(&ws.EventLoopOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	closed := make(chan error, 1)
	readErr := make(chan error, 1)
	h := handlerFuncs{
		onMessage: func(c *ws.Conn, typ ws.MessageType, data []byte) {
			_, _, err := c.ReadMessage(context.Background())
			readErr <- err
			_ = c.WriteMessage(context.Background(), typ, data)
			_ = c.Close(ws.StatusNormalClosure, "bye") // must not wait for the peer here
		},
		onClose: func(c *ws.Conn, err error) { closed <- err },
	}
	srv := newEventServer(t, loop, h)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	if err := client.WriteMessage(ctx, ws.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, data, err := client.ReadMessage(ctx); err != nil || string(data) != "hi" {
		t.Fatalf("echo: %q %v", data, err)
	}
	if _, _, err := client.ReadMessage(ctx); ws.CloseStatus(err) != ws.StatusNormalClosure {
		t.Fatalf("after the echo: %v, want the server's close 1000", err)
	}
	if err := <-readErr; !errors.Is(err, ws.ErrEventDriven) {
		t.Errorf("ReadMessage on a served Conn: %v, want ErrEventDriven", err)
	}
	select {
	case err := <-closed:
		var ce *ws.CloseError
		if !errors.As(err, &ce) || !ce.Remote || ce.Code != ws.StatusNormalClosure {
			t.Errorf("OnClose(%v), want the peer's close 1000", err)
		}
	case <-ctx.Done():
		t.Fatal("OnClose not called")
	}
}

type handlerFuncs struct {
	onMessage func(c *ws.Conn, typ ws.MessageType, data []byte)
	onClose   func(c *ws.Conn, err error)
}

func (h handlerFuncs) OnOpen(*ws.Conn) {}
func (h handlerFuncs) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	h.onMessage(c, typ, data)
}
func (h handlerFuncs) OnClose(c *ws.Conn, err error) { h.onClose(c, err) }
