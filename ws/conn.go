package ws

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults for the connection options.
const (
	DefaultReadLimit = 32 << 20 // largest message accepted, in bytes
	// The I/O buffers come from pools and are held only while bytes move, so they can be
	// large enough to take many pipelined frames in one system call.
	DefaultReadBufferSize  = 32 << 10
	DefaultWriteBufferSize = 32 << 10
	// DefaultCloseTimeout bounds how long Close waits for the peer's close frame.
	DefaultCloseTimeout = 5 * time.Second
	// coalesceDelay bounds how long a write may wait to be coalesced with the replies to
	// frames that were already read but not yet handed to the application.
	coalesceDelay = time.Millisecond
)

// MessageType is the type of a data message.
type MessageType uint8

// The two message types of RFC 6455.
const (
	MessageText   MessageType = MessageType(OpText)
	MessageBinary MessageType = MessageType(OpBinary)
)

// String returns "text" or "binary".
func (t MessageType) String() string { return Opcode(t).String() }

// connConfig holds what the handshake decided and the options that shape a Conn.
type connConfig struct {
	isServer        bool
	subprotocol     string
	readLimit       int64
	readBufferSize  int
	writeBufferSize int
	upgrader        *Upgrader     // the server side's, told when the TCP connection is closed (forget)
	extensions      string        // the agreed Sec-WebSocket-Extensions value
	deflate         *deflateState // permessage-deflate state, nil when not negotiated
}

// Conn is a WebSocket connection, on either side, after a successful opening handshake.
//
// Concurrency: one goroutine at a time may read (ReadMessage, AppendMessage, NextReader and
// the reader it returns). Writes (WriteMessage, NextWriter, Ping) and Close, CloseNow,
// SetPongHandler and the deadline setters are safe to call from any goroutine, concurrently
// with each other and with the reader. Pings are answered and close frames echoed by the
// reading goroutine, so an application must keep reading to keep the connection healthy.
//
// Memory: a Conn holds no read or write buffer while idle; buffers come from shared pools
// while bytes move.
type Conn struct {
	nc  net.Conn
	cfg connConfig

	// Read side, owned by the reading goroutine (rmu).
	rmu       sync.Mutex
	rb        *[]byte // pooled read buffer; nil while nothing is buffered
	rpos      int     // unread bytes are (*rb)[rpos:len(*rb)]
	raw       syscall.RawConn
	rawRead   func(fd uintptr) bool // c.readRaw, bound once
	rawN      int
	rawErr    error
	frame     Header // current data frame
	frameLeft int64  // its payload bytes not yet read
	maskPos   int
	inMessage bool // a message has started and its final frame has not been read
	msgType   MessageType
	msgLen    int64
	utf8      utf8Validator
	// Compressed messages (permessage-deflate): the frames' payload is read through src and
	// inflated; inflated counts the message's inflated bytes against the read limit.
	compressed bool
	src        deflateSource
	inflated   int64
	readErr    error // sticky
	// readBuffered is true while frames that were read from the socket wait in the read
	// buffer; writes made then are coalesced and flushed before the next socket read.
	readBuffered atomic.Bool
	// batching counts the Batch calls running: their messages wait in the write buffer.
	batching atomic.Int32

	// Write side, guarded by wmu. dataMu makes a data message (possibly fragmented) atomic
	// with respect to other data messages; control frames may go between its fragments.
	dataMu     sync.Mutex
	wmu        sync.Mutex
	wb         *[]byte // pooled write buffer holding frames not yet written
	pending    atomic.Bool
	closeSent  bool // next to pending: the two share a word
	flushTimer *time.Timer
	writeErr   error
	rng        *rand.ChaCha8  // masking keys (client role)
	writer     *messageWriter // NextWriter's, made on its first call (under dataMu)

	pongHandler atomic.Pointer[func([]byte)]
	// pongs is signalled (without blocking) on each pong; made by the first KeepAlive.
	pongs atomic.Pointer[chan struct{}]

	// ev is the event-driven state when an EventLoop polls the connection (set by Serve
	// before any other use), nil for the blocking mode.
	ev *evConn
	// fb is the state of the EventLoop's goroutine fallback when it serves the connection
	// (set by Serve before any other use), nil otherwise.
	fb *fallbackConn
	// loop is the EventLoop serving the connection (either mode), for Upgrader.Shutdown.
	loop atomic.Pointer[EventLoop]

	// The signals' channels are made only when someone waits (Done, Close, KeepAlive).
	sigMu     sync.Mutex
	closeRecv signal // the peer's close frame has been read
	closed    signal // the TCP connection is closed
	closeOnce sync.Once
}

func newConn(nc net.Conn, buffered []byte, cfg connConfig) *Conn {
	if cfg.readLimit <= 0 {
		cfg.readLimit = DefaultReadLimit
	}
	if cfg.readBufferSize <= 0 {
		cfg.readBufferSize = DefaultReadBufferSize
	}
	if cfg.writeBufferSize <= 0 {
		cfg.writeBufferSize = DefaultWriteBufferSize
	}
	c := &Conn{nc: nc, cfg: cfg}
	if !cfg.isServer {
		var seed [32]byte
		_, _ = crand.Read(seed[:]) // crypto/rand never fails on supported platforms
		c.rng = rand.NewChaCha8(seed)
	}
	if len(buffered) > 0 {
		c.rb = getBuffer(max(len(buffered), cfg.readBufferSize))
		*c.rb = append(*c.rb, buffered...)
	}
	c.setupRawRead()
	return c
}

// Compression returns the permessage-deflate parameters agreed in the handshake, as the
// Sec-WebSocket-Extensions value of the server's response, or "" when messages are never
// compressed.
func (c *Conn) Compression() string { return c.cfg.extensions }

// Subprotocol returns the subprotocol chosen in the handshake, or "".
func (c *Conn) Subprotocol() string { return c.cfg.subprotocol }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetReadDeadline sets the deadline for reads on the underlying connection. A read that
// times out fails the connection: later reads return the same error.
//
// On a connection served by an EventLoop the deadline is kept by the loop's timer wheel
// (to within its tick, 100 ms): once it passes, the connection fails as a blocking read
// would, with the timeout error, and is closed; OnClose reports that error.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.ev != nil {
		c.ev.setReadDeadline(t)
		return nil
	}
	return c.nc.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline for writes on the underlying connection. A write that
// times out fails the connection.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// SetPongHandler sets the function called, on the reading goroutine, with the payload of each
// pong received. nil removes it. The handler must not block.
func (c *Conn) SetPongHandler(h func(data []byte)) {
	if h == nil {
		c.pongHandler.Store(nil)
		return
	}
	c.pongHandler.Store(&h)
}

// Done returns a channel that is closed when the underlying connection has been closed.
func (c *Conn) Done() <-chan struct{} { return c.closed.wait(&c.sigMu) }

// CloseNow closes the underlying connection at once, without a close handshake. It is safe to
// call more than once and from any goroutine.
func (c *Conn) CloseNow() error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.fire(&c.sigMu) // first, so that a read failing on the closed socket sees why
		if c.ev != nil {
			c.ev.beforeClose()
		}
		err = c.nc.Close()
		if c.cfg.upgrader != nil {
			c.cfg.upgrader.forget(c)
		}
		if c.ev != nil {
			c.ev.afterClose()
		}
	})
	return err
}

// Close performs the closing handshake: it sends a close frame with code and reason (a reason
// longer than 123 bytes is cut), waits up to DefaultCloseTimeout for the peer's close frame,
// then closes the underlying connection. If a read is in progress on another goroutine, that
// read receives the peer's close frame and returns its *CloseError; otherwise Close reads and
// discards data until the close frame arrives. Code must be valid on the wire (not 1005,
// 1006 or 1015); use StatusNormalClosure when in doubt.
//
// On a connection served by an EventLoop, Close does not wait: it is StartClose, and the
// EventHandler's OnClose reports the end.
func (c *Conn) Close(code StatusCode, reason string) error {
	if !code.validOnWire() {
		code = StatusNormalClosure
	}
	if c.ev != nil {
		return c.ev.startClose(code, reason)
	}
	// Bound the close frame's write too: the peer may have stopped reading.
	_ = c.nc.SetWriteDeadline(time.Now().Add(DefaultCloseTimeout))
	sendErr := c.writeClose(code, reason)
	if sendErr == nil || sendErr == errCloseAlreadySent {
		c.awaitPeerClose(DefaultCloseTimeout)
	}
	err := c.CloseNow()
	if sendErr != nil && sendErr != errCloseAlreadySent {
		return sendErr
	}
	return err
}

// StartClose starts the closing handshake without waiting for it: it sends a close frame with
// code and reason and returns. The reading goroutine goes on receiving the messages the peer
// sent before it saw the close, then the peer's close frame as a *CloseError, after which the
// connection is closed. The wait for the peer's close is bounded: reads fail after
// DefaultCloseTimeout. Use it when a read loop is running and must not miss the last messages;
// Close, by contrast, drops data that arrives while it waits and no read is in progress.
func (c *Conn) StartClose(code StatusCode, reason string) error {
	if !code.validOnWire() {
		code = StatusNormalClosure
	}
	if c.ev != nil {
		return c.ev.startClose(code, reason)
	}
	deadline := time.Now().Add(DefaultCloseTimeout)
	_ = c.nc.SetWriteDeadline(deadline)
	if err := c.writeClose(code, reason); err != nil && err != errCloseAlreadySent {
		return err
	}
	return c.nc.SetReadDeadline(deadline)
}

// awaitPeerClose waits for the peer's close frame, reading it itself when no other goroutine
// is reading.
func (c *Conn) awaitPeerClose(timeout time.Duration) {
	if c.rmu.TryLock() {
		defer c.rmu.Unlock()
		if c.readErr != nil {
			return
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
		// Data that arrives after our close frame is read and dropped (RFC 6455 §5.5.1),
		// until the peer's close frame or the deadline ends the reading.
		for {
			if err := c.startMessage(); err != nil {
				return
			}
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.closeRecv.wait(&c.sigMu):
	case <-c.closed.wait(&c.sigMu):
	case <-t.C:
	}
}

// watchContext arranges for a blocking read (or write) to be interrupted when ctx is done, by
// moving the connection's read (or write) deadline into the past. The returned stop reports
// whether ctx had not fired; it is nil when ctx can never fire.
func (c *Conn) watchContext(ctx context.Context, read bool) (stop func() bool) {
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, func() {
		if read {
			_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		} else {
			_ = c.nc.SetWriteDeadline(time.Unix(1, 0))
		}
	})
}
