package ws_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

// endHandler reports OnOpen and OnClose on channels; OnMessage runs fn when set.
type endHandler struct {
	open   func(c *ws.Conn)
	closed chan error
}

func (h *endHandler) OnOpen(c *ws.Conn) {
	if h.open != nil {
		h.open(c)
	}
}
func (h *endHandler) OnMessage(*ws.Conn, ws.MessageType, []byte) {}
func (h *endHandler) OnClose(_ *ws.Conn, err error)              { h.closed <- err }

func newLoop(t *testing.T, opts *ws.EventLoopOptions) *ws.EventLoop {
	t.Helper()
	loop, err := ws.NewEventLoop(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { loop.Close() })
	return loop
}

// rawPeer dials srv with the raw test peer, which answers nothing by itself.
func rawPeer(t *testing.T, srv *httptest.Server) *wstest.Peer {
	t.Helper()
	p, _, err := wstest.Dial(srv.Listener.Addr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func waitClose(t *testing.T, ch chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("OnClose not called within %v", d)
		return nil
	}
}

// isReadTimeout is what a blocking read returns once the read deadline has passed.
func isReadTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// TestEventLoopReadDeadline: a served connection that stays idle past its read deadline is
// failed with the timeout error a blocking read gets (checked against the goroutine mode)
// and closed without a close frame; a deadline cleared before it passes does nothing.
func TestEventLoopReadDeadline(t *testing.T) {
	t.Parallel()
	// The goroutine mode, for reference.
	u := &ws.Upgrader{}
	blockingErr := make(chan error, 1)
	bsrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		defer c.CloseNow()
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, _, err = c.ReadMessage(context.Background())
		blockingErr <- err
	}))
	defer bsrv.Close()
	rawPeer(t, bsrv)
	want := waitClose(t, blockingErr, 5*time.Second)
	if !isReadTimeout(want) {
		t.Fatalf("goroutine mode: %v (%T), not a read timeout", want, want)
	}

	loop := newLoop(t, &ws.EventLoopOptions{Workers: 2})
	const deadline = 300 * time.Millisecond
	clear := make(chan bool, 2)
	h := &endHandler{closed: make(chan error, 2), open: func(c *ws.Conn) {
		_ = c.SetReadDeadline(time.Now().Add(deadline))
		if <-clear {
			_ = c.SetReadDeadline(time.Time{})
		}
	}}
	srv := newEventServer(t, loop, h)
	defer srv.Close()

	clear <- true
	kept := rawPeer(t, srv)
	clear <- false
	start := time.Now()
	idle := rawPeer(t, srv)
	err := waitClose(t, h.closed, 5*time.Second)
	elapsed := time.Since(start)
	if !isReadTimeout(err) {
		t.Fatalf("OnClose(%v (%T)), want the read timeout %v", err, err, want)
	}
	if elapsed < deadline-50*time.Millisecond || elapsed > deadline+time.Second {
		t.Errorf("failed after %v, deadline %v", elapsed, deadline)
	}
	if extra, err := idle.WaitEOF(2 * time.Second); err != nil || extra != 0 {
		t.Errorf("peer after the deadline: %d bytes, %v; want EOF with no close frame", extra, err)
	}
	// The connection whose deadline was cleared is still served.
	select {
	case err := <-h.closed:
		t.Fatalf("connection with a cleared deadline ended: %v", err)
	case <-time.After(deadline):
	}
	if err := kept.WriteClose(1000, ""); err != nil {
		t.Fatal(err)
	}
	if f, err := kept.ReadFrame(); err != nil || f.Opcode != 8 {
		t.Fatalf("close answer: %v %v", f, err)
	}
	if err := waitClose(t, h.closed, 5*time.Second); ws.CloseStatus(err) != ws.StatusNormalClosure {
		t.Errorf("OnClose(%v), want the peer's 1000", err)
	}
}

// TestEventLoopKeepAlive: with PingInterval set, the loop pings every connection; one
// whose peer never answers is closed (no close frame) after PongTimeout and OnClose gets
// ErrKeepAliveTimeout, while one that answers stays open.
func TestEventLoopKeepAlive(t *testing.T) {
	t.Parallel()
	const interval, timeout = 100 * time.Millisecond, 200 * time.Millisecond
	loop := newLoop(t, &ws.EventLoopOptions{Workers: 2, PingInterval: interval, PongTimeout: timeout})
	opened := make(chan *ws.Conn, 2)
	h := &endHandler{closed: make(chan error, 2), open: func(c *ws.Conn) { opened <- c }}
	srv := newEventServer(t, loop, h)
	defer srv.Close()

	// The answering peer: a pong for every ping, until the end of the test.
	answering := rawPeer(t, srv)
	<-opened
	var pings atomic.Int64
	answerErr := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		for {
			f, err := answering.ReadFrameTimeout(time.Second)
			select {
			case <-done:
				answerErr <- nil
				return
			default:
			}
			if err == nil && f.Opcode != 9 {
				err = errors.New("answering peer got a frame that is not a ping")
			}
			if err == nil {
				pings.Add(1)
				err = answering.WritePong(f.Payload)
			}
			if err != nil {
				answerErr <- err
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond)

	// The silent peer: reads the ping, answers nothing.
	silent := rawPeer(t, srv)
	<-opened
	f, err := silent.ReadFrameTimeout(2 * time.Second)
	if err != nil || f.Opcode != 9 {
		t.Fatalf("silent peer: %v %v, want a ping", f, err)
	}
	pinged := time.Now()
	if err := waitClose(t, h.closed, 5*time.Second); !errors.Is(err, ws.ErrKeepAliveTimeout) {
		t.Fatalf("OnClose(%v), want ErrKeepAliveTimeout", err)
	}
	if d := time.Since(pinged); d < timeout-50*time.Millisecond || d > timeout+time.Second {
		t.Errorf("closed %v after the ping, timeout %v", d, timeout)
	}
	if extra, err := silent.WaitEOF(2 * time.Second); err != nil || extra != 0 {
		t.Errorf("silent peer: %d bytes then %v; want EOF with no close frame", extra, err)
	}
	// The answering peer was kept all along.
	before := pings.Load()
	time.Sleep(3 * interval)
	close(done)
	if err := <-answerErr; err != nil {
		t.Fatalf("answering peer: %v", err)
	}
	if n := pings.Load(); n < 5 || n == before {
		t.Errorf("answering peer got %d pings (%d before the silent one closed), interval %v", n, before, interval)
	}
	select {
	case err := <-h.closed:
		t.Errorf("the answering peer's connection ended: %v", err)
	default:
	}
}

// TestEventLoopCloseTimeout: a served connection closing with a peer that never answers
// the close frame is closed after CloseTimeout by the timer wheel (keepalive does not
// close it first).
func TestEventLoopCloseTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	// Keepalive on, with a shorter pong timeout: it stops once the close frame is out, so
	// the close timeout is what ends the connection.
	loop := newLoop(t, &ws.EventLoopOptions{Workers: 2, CloseTimeout: timeout,
		PingInterval: 50 * time.Millisecond, PongTimeout: 50 * time.Millisecond})
	h := &endHandler{closed: make(chan error, 1), open: func(c *ws.Conn) {
		_ = c.Close(ws.StatusGoingAway, "bye")
	}}
	srv := newEventServer(t, loop, h)
	defer srv.Close()
	start := time.Now()
	p := rawPeer(t, srv)
	f, err := p.ReadFrame()
	if err != nil || f.Opcode != 8 {
		t.Fatalf("%v %v, want the close frame", f, err)
	}
	if code, _, _ := wstest.ParseClose(f.Payload); code != 1001 {
		t.Errorf("close code %d, want 1001", code)
	}
	if err := waitClose(t, h.closed, 5*time.Second); !errors.Is(err, ws.ErrClosed) {
		t.Errorf("OnClose(%v), want ErrClosed", err)
	}
	if d := time.Since(start); d < timeout-50*time.Millisecond || d > timeout+time.Second {
		t.Errorf("closed after %v, timeout %v", d, timeout)
	}
	if _, err := p.WaitEOF(2 * time.Second); err != nil {
		t.Errorf("peer: %v, want EOF", err)
	}
}

// TestUpgraderShutdownServedConnections: Shutdown sends 1001 to 100 served connections
// and returns only after each one's OnClose has returned.
func TestUpgraderShutdownServedConnections(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const conns = 100
	loop, err := ws.NewEventLoop(&ws.EventLoopOptions{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	var opened, closed atomic.Int64
	h := &countingHandler{opened: &opened, closed: &closed}
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
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	codes := make(chan ws.StatusCode, conns)
	for range conns {
		c, _, err := ws.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseNow()
			for {
				if _, _, err := c.ReadMessage(ctx); err != nil {
					codes <- ws.CloseStatus(err)
					return
				}
			}
		}()
	}
	for opened.Load() < conns && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	if err := u.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := closed.Load(); got != conns {
		t.Errorf("Shutdown returned with %d of %d OnClose calls done", got, conns)
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		if code != ws.StatusGoingAway {
			t.Errorf("client saw close %d, want 1001", code)
			break
		}
	}
	if n := loop.Len(); n != 0 {
		t.Errorf("loop still serves %d connections", n)
	}
	srv.Close()
	if err := loop.Close(); err != nil {
		t.Error(err)
	}
}

// countingHandler counts opens and closes; OnClose takes a little time, so that a
// Shutdown that did not wait for it would be seen returning early.
type countingHandler struct{ opened, closed *atomic.Int64 }

func (h *countingHandler) OnOpen(*ws.Conn)                            { h.opened.Add(1) }
func (h *countingHandler) OnMessage(*ws.Conn, ws.MessageType, []byte) {}
func (h *countingHandler) OnClose(*ws.Conn, error) {
	time.Sleep(20 * time.Millisecond)
	h.closed.Add(1)
}

// TestEventLoopKeepAliveFallback: a connection the poller does not take (permessage-deflate
// for now) gets the same keepalive from the goroutine fallback, and the same OnClose error.
func TestEventLoopKeepAliveFallback(t *testing.T) {
	t.Parallel()
	const interval, timeout = 100 * time.Millisecond, 200 * time.Millisecond
	loop := newLoop(t, &ws.EventLoopOptions{Workers: 2, PingInterval: interval, PongTimeout: timeout})
	h := &endHandler{closed: make(chan error, 1)}
	u := &ws.Upgrader{Compression: &ws.CompressionOptions{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		if c.Compression() == "" {
			t.Error("permessage-deflate not negotiated")
		}
		if err := loop.Serve(c, h); err != nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()
	p, _, err := wstest.Dial(srv.Listener.Addr().String(), &wstest.DialOptions{
		Header: http.Header{"Sec-Websocket-Extensions": {"permessage-deflate"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if f, err := p.ReadFrameTimeout(2 * time.Second); err != nil || f.Opcode != 9 {
		t.Fatalf("%v %v, want a ping", f, err)
	}
	if err := waitClose(t, h.closed, 5*time.Second); !errors.Is(err, ws.ErrKeepAliveTimeout) {
		t.Fatalf("OnClose(%v), want ErrKeepAliveTimeout", err)
	}
}

// TestEventLoopKeepAliveLateWorker: a pong that reached the socket in time counts even when
// the worker that would read it comes late. With one worker, blocked by another
// connection's handler from just after the pong was sent until past the pong timeout, the
// connection's turn finds its read and its pong deadline both due: it must read the pong
// before it judges the deadline, and keep the connection.
func TestEventLoopKeepAliveLateWorker(t *testing.T) {
	t.Parallel()
	const interval, timeout = 100 * time.Millisecond, 300 * time.Millisecond
	loop := newLoop(t, &ws.EventLoopOptions{Workers: 1, PingInterval: interval, PongTimeout: timeout})
	blocking := make(chan struct{})
	h := &blockingHandler{closed: make(chan error, 2), entered: blocking, block: timeout + 3*100*time.Millisecond}
	srv := newEventServer(t, loop, h)
	defer srv.Close()
	answering, blocker := rawPeer(t, srv), rawPeer(t, srv)

	f, err := answering.ReadFrameTimeout(2 * time.Second)
	if err != nil || f.Opcode != wstest.OpPing {
		t.Fatalf("%v %v, want a ping", f, err)
	}
	// Hold the only worker, then answer the ping while it is held.
	if err := blocker.WriteText("block"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-blocking:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
	}
	if err := answering.WritePong(f.Payload); err != nil {
		t.Fatal(err)
	}
	// After the worker is free: pings go on, and the connection stays.
	for range 3 {
		f, err := answering.ReadFrameTimeout(5 * time.Second)
		if err != nil || f.Opcode != wstest.OpPing {
			t.Fatalf("after the late turn: %v %v, want the next ping", f, err)
		}
		if err := answering.WritePong(f.Payload); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-h.closed:
		t.Fatalf("the answering peer's connection ended: %v", err)
	default:
	}
}

// blockingHandler blocks its worker in OnMessage for the block duration, after closing
// entered; closed reports the end of the connections that sent no message.
type blockingHandler struct {
	closed  chan error
	entered chan struct{}
	block   time.Duration
	blocker atomic.Pointer[ws.Conn]
}

func (h *blockingHandler) OnOpen(*ws.Conn) {}
func (h *blockingHandler) OnMessage(c *ws.Conn, _ ws.MessageType, _ []byte) {
	h.blocker.Store(c)
	close(h.entered)
	time.Sleep(h.block)
}
func (h *blockingHandler) OnClose(c *ws.Conn, err error) {
	if h.blocker.Load() != c {
		h.closed <- err
	}
}
