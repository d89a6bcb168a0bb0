package ws

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// EventHandler receives the events of a connection served by an EventLoop.
//
// Concurrency: for one connection the three methods are never called concurrently, and
// OnOpen comes first, then every OnMessage in the order the messages arrived, then OnClose
// exactly once. Calls for different connections run in parallel on the loop's workers, so a
// handler shared by many connections must be safe for concurrent use. A handler that blocks
// holds a worker: keep handlers short, or hand long work to a goroutine.
type EventHandler interface {
	// OnOpen is called on the goroutine that called Serve, before any other event.
	OnOpen(c *Conn)
	// OnMessage is called with each data message. data is valid only until OnMessage
	// returns (it may point into a pooled buffer): copy what must be kept.
	OnMessage(c *Conn, typ MessageType, data []byte)
	// OnClose is called once when the connection has ended, with the reason: a *CloseError
	// (the peer's close, a protocol failure, or StatusAbnormalClosure when TCP ended
	// without a close frame), ErrClosed after a local CloseNow, or the I/O error.
	OnClose(c *Conn, err error)
}

// TimerHandler is implemented by an EventHandler that uses Conn.SetTimer.
type TimerHandler interface {
	// OnTimer is called when the time set with SetTimer has come, with the same guarantees as
	// the other events: never concurrently with another call for the connection, never after
	// OnClose.
	OnTimer(c *Conn)
}

// SetTimer arranges for the connection's handler's OnTimer to be called once, d from now (on
// an event-driven connection, within one tick of the loop's timer wheel, 100 ms); a new call
// replaces the previous time; d <= 0 cancels. It returns ErrNotServed when c is not served
// by an EventLoop or its handler does not implement TimerHandler; on a connection that has
// ended it does nothing. Safe from any goroutine, handlers included.
//
// An event-driven connection keeps the time in the loop's timer wheel (no goroutine or
// time.Timer per connection); the goroutine fallback uses a time.AfterFunc.
func (c *Conn) SetTimer(d time.Duration) error {
	switch {
	case c.ev != nil:
		return c.ev.setTimer(d)
	case c.fb != nil:
		return c.fb.setTimer(c, d)
	}
	return ErrNotServed
}

// EventLoopOptions configures an EventLoop. The zero value is usable.
type EventLoopOptions struct {
	// Workers bounds the goroutines that read, decode and run handlers
	// (0: 4 × GOMAXPROCS, at least 4).
	Workers int
	// MaxQueuedBytes bounds the bytes waiting in one connection's write queue
	// (0: DefaultMaxQueuedBytes). A message that would go over it is dropped when it was
	// written with WriteMessageVolatile; any other such message makes the connection close
	// with OverflowCode. A single message larger than the bound is accepted into an empty
	// queue.
	MaxQueuedBytes int
	// OverflowCode is the close code sent to a peer whose write queue overflowed
	// (0: StatusPolicyViolation; StatusTryAgainLater is the other usual choice).
	OverflowCode StatusCode
	// PingInterval, when positive, turns on keepalive for every served connection, with the
	// semantics of Conn.KeepAlive but no goroutine per connection: a ping every
	// PingInterval, and a connection whose pong has not arrived PongTimeout after a ping
	// is closed without a close frame; its OnClose gets ErrKeepAliveTimeout. No new ping is
	// sent while a pong is awaited.
	PingInterval time.Duration
	// PongTimeout bounds the wait for the pong of a keepalive ping (0: PingInterval).
	PongTimeout time.Duration
	// CloseTimeout bounds the wait for the peer's close frame after a local Close,
	// StartClose or queue overflow on an event-driven connection (0: DefaultCloseTimeout);
	// the connection is then closed and OnClose gets ErrClosed.
	CloseTimeout time.Duration
}

// DefaultMaxQueuedBytes is the default bound of a connection's write queue in an EventLoop.
const DefaultMaxQueuedBytes = 4 << 20

var (
	// ErrEventDriven is returned by the read methods of a Conn served by an EventLoop: its
	// messages go to the EventHandler.
	ErrEventDriven = errors.New("ws: reads on this connection are event-driven (EventLoop.Serve)")
	// ErrDropped is returned by WriteMessageVolatile when the message was dropped because
	// the connection's write queue was full. The connection stays open.
	ErrDropped = errors.New("ws: volatile message dropped: write queue full")
	// ErrWriteQueueFull is returned by a write that would overflow the connection's write
	// queue; the connection is then closed with EventLoopOptions.OverflowCode.
	ErrWriteQueueFull = errors.New("ws: write queue full: closing a slow reader")
	// ErrLoopClosed is returned by Serve after the EventLoop was closed.
	ErrLoopClosed = errors.New("ws: event loop closed")
	// ErrNotServed is returned by Conn.SetTimer on a connection that no EventLoop serves, or
	// whose EventHandler is not a TimerHandler.
	ErrNotServed = errors.New("ws: connection not served by an EventLoop with a TimerHandler")
)

// EventLoop serves many WebSocket connections with no goroutine and no buffer per idle
// connection: on Linux, connections are registered with epoll once their handshake is done,
// and when bytes arrive a bounded pool of workers reads them, decodes the frames and calls
// the connection's EventHandler. Elsewhere (and for connections it cannot poll: TLS, the
// client side) Serve falls back to one goroutine per connection
// reading with the blocking API, with the same EventHandler guarantees.
//
// Writes on a served Conn (WriteMessage, WriteMessageVolatile, NextWriter, Ping, Close)
// may be called from any goroutine, handlers included. On an event-driven connection they
// do not block: the frame is queued, written at once when the socket takes it, and what the
// socket does not take is written by a worker when it becomes writable; writes made while a
// handler runs are coalesced into one system call when it returns. Close sends the close
// frame and returns; the connection ends when the peer answers, or after
// EventLoopOptions.CloseTimeout (OnClose reports it). The read methods return ErrEventDriven.
//
// An EventLoop is safe for concurrent use. Close it to end every connection it serves and
// stop its goroutines.
type EventLoop struct {
	opts EventLoopOptions

	mu     sync.Mutex
	served map[*Conn]chan struct{} // every open connection, polled or not; the channel (made by waitEnded) is closed after its OnClose
	closed bool
	conns  sync.WaitGroup // one per served connection, Done after its OnClose

	p *poller // nil where there is no poller (other platforms)
}

// NewEventLoop starts an event loop: its poller (Linux) and its workers.
func NewEventLoop(opts *EventLoopOptions) (*EventLoop, error) {
	l := &EventLoop{served: make(map[*Conn]chan struct{})}
	if opts != nil {
		l.opts = *opts
	}
	if l.opts.Workers <= 0 {
		l.opts.Workers = max(4, 4*runtime.GOMAXPROCS(0))
	}
	if l.opts.MaxQueuedBytes <= 0 {
		l.opts.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if l.opts.CloseTimeout <= 0 {
		l.opts.CloseTimeout = DefaultCloseTimeout
	}
	if l.opts.PingInterval > 0 && l.opts.PongTimeout <= 0 {
		l.opts.PongTimeout = l.opts.PingInterval
	}
	if l.opts.OverflowCode == 0 || !l.opts.OverflowCode.validOnWire() {
		l.opts.OverflowCode = StatusPolicyViolation
	}
	p, err := newPoller(l)
	if err != nil {
		return nil, err
	}
	l.p = p
	return l, nil
}

// Serve takes over the reading of c and delivers its events to h: OnOpen at once, on the
// calling goroutine, then OnMessage for each message and OnClose at the end. Call it right
// after the handshake (Upgrader.Upgrade or UpgradeConn), before any other use of c; a
// net/http handler may return as soon as Serve does. Serve returns ErrLoopClosed (leaving
// c untouched) after Close.
func (l *EventLoop) Serve(c *Conn, h EventHandler) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrLoopClosed
	}
	l.served[c] = nil
	l.conns.Add(1)
	l.mu.Unlock()
	c.loop.Store(l)
	if l.p != nil && l.p.serve(c, h) {
		return nil
	}
	l.serveGoroutine(c, h)
	return nil
}

// Len returns the number of connections the loop serves.
func (l *EventLoop) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.served)
}

// Close ends every connection the loop serves at once (CloseNow, no close handshake: use
// Upgrader.Shutdown first for a graceful end), waits for their OnClose calls, then stops
// the loop's goroutines. Serve fails after Close.
func (l *EventLoop) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	open := make([]*Conn, 0, len(l.served))
	for c := range l.served {
		open = append(open, c)
	}
	l.mu.Unlock()
	for _, c := range open {
		c.CloseNow()
	}
	l.conns.Wait()
	if l.p != nil {
		return l.p.close()
	}
	return nil
}

// ended is called after a connection's OnClose.
func (l *EventLoop) ended(c *Conn) {
	l.mu.Lock()
	if ch := l.served[c]; ch != nil {
		close(ch)
	}
	delete(l.served, c)
	l.mu.Unlock()
	l.conns.Done()
}

// waitEnded waits until c's OnClose has returned, or ctx is done.
func (l *EventLoop) waitEnded(ctx context.Context, c *Conn) error {
	l.mu.Lock()
	ch, ok := l.served[c]
	if !ok {
		l.mu.Unlock()
		return nil
	}
	if ch == nil {
		ch = make(chan struct{})
		l.served[c] = ch
	}
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serveGoroutine is the fallback: one goroutine reads c with the blocking API and calls h.
func (l *EventLoop) serveGoroutine(c *Conn, h EventHandler) {
	f := &fallbackConn{h: h}
	c.fb = f
	f.calls.Lock()
	h.OnOpen(c)
	f.calls.Unlock()
	// Keepalive: Conn.KeepAlive on its own goroutine (it ends when the connection closes).
	var timedOut atomic.Bool
	var keepAliveDone chan struct{}
	if l.opts.PingInterval > 0 {
		keepAliveDone = make(chan struct{})
		go func() {
			defer close(keepAliveDone)
			err := c.KeepAlive(context.Background(), l.opts.PingInterval, l.opts.PongTimeout)
			timedOut.Store(err == ErrKeepAliveTimeout)
		}()
	}
	go func() {
		defer l.ended(c)
		for {
			typ, data, err := c.ReadMessage(context.Background())
			if err != nil {
				if keepAliveDone != nil && err == ErrClosed {
					// Closed: KeepAlive returns at once, and says whether it closed it.
					<-keepAliveDone
					if timedOut.Load() {
						err = ErrKeepAliveTimeout
					}
				}
				f.end(c, err)
				return
			}
			f.calls.Lock()
			h.OnMessage(c, typ, data)
			f.calls.Unlock()
		}
	}()
}

// fallbackConn is the state of a connection served by the goroutine fallback, for
// SetTimer: the timer's function runs on a goroutine of its own, so every handler call
// holds calls, and OnTimer is called only for the latest SetTimer and before OnClose.
type fallbackConn struct {
	h     EventHandler
	calls sync.Mutex // held around each handler call

	mu    sync.Mutex // guards the fields below
	timer *time.Timer
	gen   uint64 // counts SetTimer calls: a timer set by an earlier call does nothing
	ended bool   // OnClose is due or done: no more OnTimer
}

// setTimer is Conn.SetTimer on a connection served by the fallback.
func (f *fallbackConn) setTimer(c *Conn, d time.Duration) error {
	th, ok := f.h.(TimerHandler)
	if !ok {
		return ErrNotServed
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	if d > 0 && !f.ended {
		gen := f.gen
		f.timer = time.AfterFunc(d, func() { f.fire(c, th, gen) })
	}
	return nil
}

// fire calls OnTimer for the SetTimer call numbered gen unless another call replaced it
// or the connection ended.
func (f *fallbackConn) fire(c *Conn, th TimerHandler, gen uint64) {
	f.calls.Lock()
	defer f.calls.Unlock()
	f.mu.Lock()
	due := gen == f.gen && !f.ended
	f.mu.Unlock()
	if due {
		th.OnTimer(c)
	}
}

// end stops the timer and calls OnClose.
func (f *fallbackConn) end(c *Conn, err error) {
	f.calls.Lock()
	defer f.calls.Unlock()
	f.mu.Lock()
	f.ended = true
	if f.timer != nil {
		f.timer.Stop()
		f.timer = nil
	}
	f.mu.Unlock()
	f.h.OnClose(c, err)
}
