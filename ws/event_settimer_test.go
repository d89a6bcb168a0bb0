package ws_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/ws"
)

// serveMode is a way for an EventLoop to serve the connections of a test server.
type serveMode struct {
	name string
	// start serves h on loop behind a new listener and returns the ws:// URL.
	start func(t *testing.T, loop *ws.EventLoop, h ws.EventHandler) string
}

// serveModes are the two paths of EventLoop.Serve: the poller, and the goroutine fallback
// (forced by a net.Conn that hides its file descriptor, as a TLS connection does).
var serveModes = []serveMode{
	{"evented", func(t *testing.T, loop *ws.EventLoop, h ws.EventHandler) string {
		srv := newEventServer(t, loop, h)
		t.Cleanup(srv.Close)
		return "ws" + strings.TrimPrefix(srv.URL, "http")
	}},
	{"fallback", serveFallback},
}

// opaqueConn hides the socket's SyscallConn: the poller cannot take the connection.
type opaqueConn struct{ net.Conn }

// serveFallback accepts connections on a new listener, upgrades them with UpgradeConn on an
// opaqueConn and serves them on loop, which must use its goroutine fallback for them.
func serveFallback(t *testing.T, loop *ws.EventLoop, h ws.EventHandler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &ws.Upgrader{}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, _, err := u.UpgradeConn(opaqueConn{nc})
				if err != nil {
					return
				}
				if err := loop.Serve(c, h); err != nil {
					c.CloseNow()
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return "ws://" + ln.Addr().String() + "/"
}

// forServeModes runs fn as a parallel subtest per serve mode, each with its own loop, and
// checks that no goroutine is left once they all have ended.
func forServeModes(t *testing.T, fn func(t *testing.T, m serveMode, loop *ws.EventLoop)) {
	leaks := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })
	for _, m := range serveModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			fn(t, m, newLoop(t, &ws.EventLoopOptions{Workers: 4}))
		})
	}
}

// timerHandler is a TimerHandler whose events run the given functions (nil: nothing) and
// checks the guarantees: no two calls at once for one connection, nothing after OnClose.
type timerHandler struct {
	t       *testing.T
	open    func(c *ws.Conn)
	message func(c *ws.Conn, typ ws.MessageType, data []byte)
	timer   func(c *ws.Conn)
	closed  chan error // receives each OnClose's error; buffered by the test

	mu    sync.Mutex
	conns map[*ws.Conn]*timerConnState
}

type timerConnState struct {
	busy   atomic.Bool
	ended  bool
	timers int // OnTimer calls: written without a lock, so -race sees concurrent calls
}

func newTimerHandler(t *testing.T, conns int) *timerHandler {
	return &timerHandler{t: t, closed: make(chan error, conns), conns: make(map[*ws.Conn]*timerConnState)}
}

func (h *timerHandler) enter(c *ws.Conn, event string) *timerConnState {
	h.mu.Lock()
	s := h.conns[c]
	if s == nil {
		s = &timerConnState{}
		h.conns[c] = s
	}
	h.mu.Unlock()
	if !s.busy.CompareAndSwap(false, true) {
		h.t.Errorf("%s while another call runs for the connection", event)
	}
	if s.ended {
		h.t.Errorf("%s after OnClose", event)
	}
	return s
}

func (h *timerHandler) OnOpen(c *ws.Conn) {
	s := h.enter(c, "OnOpen")
	defer s.busy.Store(false)
	if h.open != nil {
		h.open(c)
	}
}

func (h *timerHandler) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	s := h.enter(c, "OnMessage")
	defer s.busy.Store(false)
	if h.message != nil {
		h.message(c, typ, data)
	}
}

func (h *timerHandler) OnTimer(c *ws.Conn) {
	s := h.enter(c, "OnTimer")
	defer s.busy.Store(false)
	s.timers++
	if h.timer != nil {
		h.timer(c)
	}
}

func (h *timerHandler) OnClose(c *ws.Conn, err error) {
	s := h.enter(c, "OnClose")
	s.ended = true
	// After OnClose, SetTimer does nothing (and must not make OnTimer come).
	if err := c.SetTimer(time.Millisecond); err != nil {
		h.t.Errorf("SetTimer in OnClose: %v", err)
	}
	s.busy.Store(false)
	h.closed <- err
}

// timers returns the OnTimer calls of c so far; call it when no event can run for c.
func (h *timerHandler) timers(c *ws.Conn) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[c].timers
}

func dialTimerTest(t *testing.T, url string) *ws.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// closeAndWait ends a test connection with a close handshake and waits for its OnClose.
func closeAndWait(t *testing.T, client *ws.Conn, h *timerHandler) {
	t.Helper()
	if err := client.Close(ws.StatusNormalClosure, ""); err != nil {
		t.Errorf("close: %v", err)
	}
	waitClose(t, h.closed, 5*time.Second)
}

// TestSetTimerFiresOnceAtItsTime: OnTimer comes once, not before the time set; a second
// SetTimer replaces the first; SetTimer(0) cancels.
func TestSetTimerFiresOnceAtItsTime(t *testing.T) {
	type tc struct {
		name  string
		arm   func(c *ws.Conn) error
		fires bool
		after time.Duration // the earliest OnTimer may come
	}
	cases := []tc{
		{"once", func(c *ws.Conn) error { return c.SetTimer(150 * time.Millisecond) }, true, 150 * time.Millisecond},
		{"replaced", func(c *ws.Conn) error {
			if err := c.SetTimer(100 * time.Millisecond); err != nil {
				return err
			}
			return c.SetTimer(450 * time.Millisecond)
		}, true, 450 * time.Millisecond},
		{"cancelled", func(c *ws.Conn) error {
			if err := c.SetTimer(100 * time.Millisecond); err != nil {
				return err
			}
			return c.SetTimer(0)
		}, false, 0},
	}
	forServeModes(t, func(t *testing.T, m serveMode, loop *ws.EventLoop) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				fired := make(chan time.Time, 2)
				var armed time.Time
				h := newTimerHandler(t, 1)
				h.open = func(conn *ws.Conn) {
					armed = time.Now()
					if err := c.arm(conn); err != nil {
						t.Errorf("SetTimer: %v", err)
					}
				}
				h.timer = func(*ws.Conn) { fired <- time.Now() }
				client := dialTimerTest(t, m.start(t, loop, h))
				// Long enough for any of the cases' timers, plus two ticks of the wheel.
				window := time.After(450*time.Millisecond + 500*time.Millisecond)
				n := 0
			wait:
				for {
					select {
					case at := <-fired:
						n++
						if at.Sub(armed) < c.after {
							t.Errorf("OnTimer %v after SetTimer, want at least %v", at.Sub(armed), c.after)
						}
					case <-window:
						break wait
					}
				}
				want := 0
				if c.fires {
					want = 1
				}
				if n != want {
					t.Errorf("OnTimer called %d times, want %d", n, want)
				}
				closeAndWait(t, client, h)
			})
		}
	})
}

// TestSetTimerFromHandlers: a timer set in OnMessage fires, and OnTimer may write and set
// the next timer (a heartbeat).
func TestSetTimerFromHandlers(t *testing.T) {
	const ticks = 3
	forServeModes(t, func(t *testing.T, m serveMode, loop *ws.EventLoop) {
		h := newTimerHandler(t, 1)
		var sent atomic.Int32
		h.message = func(c *ws.Conn, _ ws.MessageType, _ []byte) {
			if err := c.SetTimer(50 * time.Millisecond); err != nil {
				t.Errorf("SetTimer in OnMessage: %v", err)
			}
		}
		h.timer = func(c *ws.Conn) {
			n := sent.Add(1)
			if err := c.WriteMessage(context.Background(), ws.MessageText, []byte{'0' + byte(n)}); err != nil {
				t.Errorf("write in OnTimer: %v", err)
			}
			if n < ticks {
				if err := c.SetTimer(50 * time.Millisecond); err != nil {
					t.Errorf("SetTimer in OnTimer: %v", err)
				}
			}
		}
		client := dialTimerTest(t, m.start(t, loop, h))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.WriteMessage(ctx, ws.MessageText, []byte("start")); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= ticks; i++ {
			_, data, err := client.ReadMessage(ctx)
			if err != nil || string(data) != string(rune('0'+i)) {
				t.Fatalf("tick %d: %q %v", i, data, err)
			}
		}
		closeAndWait(t, client, h)
		if n := sent.Load(); n != ticks {
			t.Errorf("OnTimer called %d times, want %d", n, ticks)
		}
	})
}

// TestSetTimerNotAfterOnClose: a timer pending when the connection ends never fires, nor
// one set from OnClose (timerHandler checks both).
func TestSetTimerNotAfterOnClose(t *testing.T) {
	forServeModes(t, func(t *testing.T, m serveMode, loop *ws.EventLoop) {
		h := newTimerHandler(t, 2)
		h.open = func(c *ws.Conn) {
			if err := c.SetTimer(200 * time.Millisecond); err != nil {
				t.Errorf("SetTimer: %v", err)
			}
		}
		url := m.start(t, loop, h)
		// One ends with a close handshake, one with TCP vanishing.
		closeAndWait(t, dialTimerTest(t, url), h)
		dialTimerTest(t, url).CloseNow()
		waitClose(t, h.closed, 5*time.Second)
		time.Sleep(500 * time.Millisecond) // past the timers' time, and two ticks
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, s := range h.conns {
			if s.timers != 0 {
				t.Errorf("OnTimer called %d times on a connection that ended before its time", s.timers)
			}
		}
	})
}

// TestSetTimerNeverConcurrentWithOtherEvents runs many connections whose timers keep
// firing while messages arrive: OnTimer never runs beside OnMessage (timerHandler checks,
// and -race watches the unguarded counter), and every connection's timer keeps firing.
func TestSetTimerNeverConcurrentWithOtherEvents(t *testing.T) {
	const conns, timersWanted, maxMessages = 100, 3, 5000
	forServeModes(t, func(t *testing.T, m serveMode, loop *ws.EventLoop) {
		h := newTimerHandler(t, conns)
		h.open = func(c *ws.Conn) { _ = c.SetTimer(time.Millisecond) }
		h.timer = func(c *ws.Conn) { _ = c.SetTimer(time.Millisecond) }
		h.message = func(c *ws.Conn, typ ws.MessageType, _ []byte) {
			// Answer with the OnTimer count so far (read from OnMessage: it races with
			// OnTimer unless the two never run at once).
			h.mu.Lock()
			s := h.conns[c]
			h.mu.Unlock()
			_ = c.WriteMessage(context.Background(), typ, []byte{byte(min(s.timers, 255))})
		}
		url := m.start(t, loop, h)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- pingUntilTimers(ctx, url, timersWanted, maxMessages)
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
		for range conns {
			waitClose(t, h.closed, 10*time.Second)
		}
	})
}

// pingUntilTimers sends messages one after another until the server's answer says that
// OnTimer was called at least timers times (at most maxMessages messages), then closes.
func pingUntilTimers(ctx context.Context, url string, timers, maxMessages int) error {
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	for range maxMessages {
		if err := c.WriteMessage(ctx, ws.MessageBinary, []byte("ping")); err != nil {
			return err
		}
		_, data, err := c.ReadMessage(ctx)
		if err != nil {
			return err
		}
		if len(data) == 1 && int(data[0]) >= timers {
			return c.Close(ws.StatusNormalClosure, "")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("timers did not fire while messages arrived")
}

// TestSetTimerErrNotServed: SetTimer needs a connection served by an EventLoop with a
// TimerHandler.
func TestSetTimerErrNotServed(t *testing.T) {
	forServeModes(t, func(t *testing.T, m serveMode, loop *ws.EventLoop) {
		got := make(chan error, 1)
		closed := make(chan error, 1)
		h := &endHandler{closed: closed, open: func(c *ws.Conn) { got <- c.SetTimer(time.Second) }}
		client := dialTimerTest(t, m.start(t, loop, h))
		if err := <-got; !errors.Is(err, ws.ErrNotServed) {
			t.Errorf("SetTimer with an EventHandler that is not a TimerHandler: %v, want ErrNotServed", err)
		}
		if err := client.SetTimer(time.Second); !errors.Is(err, ws.ErrNotServed) {
			t.Errorf("SetTimer on a connection no loop serves: %v, want ErrNotServed", err)
		}
		if err := client.Close(ws.StatusNormalClosure, ""); err != nil {
			t.Errorf("close: %v", err)
		}
		waitClose(t, closed, 5*time.Second)
	})
}
