//go:build linux

package ws

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The event-driven mode on Linux. See EVENTED.md for the design.
//
// One poller goroutine waits in epoll_wait. Every connection is registered once,
// edge-triggered, for reads and writes; a per-connection "running" flag (evConn.mu) makes
// sure that at most one worker holds a connection at any time: events that arrive while it
// is held are recorded in pending and handled by the same worker before it lets go. An edge
// is reported once, so a worker lets go of a connection only when the socket is drained
// (EAGAIN, or a short read with no hang-up reported) or with evRead still pending; a write
// that the socket does not take ends in EAGAIN, and the next EPOLLOUT edge says when to go on.

// Event bits recorded in evConn.pending.
const (
	evRead  uint8 = 1 << iota // readable, or hung up / in error (the read tells which)
	evWrite                   // writable: flush the queue
	evClose                   // the connection was closed: call OnClose
	evTimer                   // one of its deadlines came due in the timer wheel
	evHup                     // the peer hung up or the socket is in error: read to the end
)

const (
	// pollEvents is a connection's registration, made once (EPOLL_CTL_ADD) and never
	// modified: edge-triggered, so no re-arm per turn.
	pollEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	// readsPerTurn bounds the socket reads one worker does for a connection before it
	// lets others have a turn (the connection goes to the back of the work queue).
	readsPerTurn = 8
)

type poller struct {
	l      *EventLoop
	epfd   int
	wakefd int // eventfd that wakes epoll_wait on close

	mu sync.Mutex
	// conns is indexed by fd (the kernel hands out the lowest free numbers, so it stays
	// dense: 8 bytes per fd, against a map entry's ~30); gen in the event tells a reused fd
	// apart.
	conns []*evConn
	gen   uint32

	wheel *timerWheel

	work    chan *evConn
	quit    chan struct{}
	stopped sync.WaitGroup
}

func newPoller(l *EventLoop) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, err
	}
	p := &poller{
		l:      l,
		epfd:   epfd,
		wakefd: wakefd,
		work:   make(chan *evConn, 1024),
		quit:   make(chan struct{}),
		wheel:  newTimerWheel(),
	}
	p.stopped.Add(1 + l.opts.Workers)
	go p.wait()
	for range l.opts.Workers {
		go p.worker()
	}
	return p, nil
}

// close stops the poller and the workers; every connection has ended before.
func (p *poller) close() error {
	close(p.quit)
	var one [8]byte
	one[7] = 1
	one[0] = 1 // 1 in either byte order: any non-zero value wakes the poller
	_, _ = unix.Write(p.wakefd, one[:])
	p.stopped.Wait()
	p.wheel.stop()
	unix.Close(p.wakefd)
	return unix.Close(p.epfd)
}

// wait is the poller goroutine.
func (p *poller) wait() {
	defer p.stopped.Done()
	events := make([]unix.EpollEvent, 256)
	timeout := -1
	for {
		n, err := unix.EpollWait(p.epfd, events, timeout)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return // EBADF after close, or a bug: nothing more can be polled
		}
		for i := range events[:n] {
			ev := &events[i]
			if ev.Fd == int32(p.wakefd) {
				select {
				case <-p.quit:
					return
				default:
					continue
				}
			}
			p.mu.Lock()
			e := p.lookup(ev.Fd)
			p.mu.Unlock()
			if e == nil || e.gen != uint32(ev.Pad) {
				continue // the connection is gone, its fd maybe reused
			}
			var bits uint8
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				bits |= evRead
			}
			if ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				bits |= evHup
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				bits |= evWrite
			}
			e.schedule(bits)
		}
		timeout = -1
		if n > 0 {
			// Let the workers just handed connections run before the next wait: a
			// blocking epoll_wait keeps its P until the runtime retakes it, so with few
			// Ps the turns dispatched would wait for that. The next wait only looks
			// (timeout 0); it blocks after a look that found nothing.
			runtime.Gosched()
			timeout = 0
		}
	}
}

func (p *poller) worker() {
	defer p.stopped.Done()
	for {
		select {
		case e := <-p.work:
			e.run()
		case <-p.quit:
			return
		}
	}
}

// dispatch hands e to a worker. It never blocks the caller (the poller, or a worker
// closing another connection): when the queue is full, a goroutine waits to hand it over.
func (p *poller) dispatch(e *evConn) {
	select {
	case p.work <- e:
	default:
		go func() {
			select {
			case p.work <- e:
			case <-p.quit:
			}
		}()
	}
}

// serve registers c with epoll, or reports false when c cannot be event-driven.
func (p *poller) serve(c *Conn, h EventHandler) bool {
	if !c.cfg.isServer || c.raw == nil {
		return false
	}
	fd := -1
	if err := c.raw.Control(func(s uintptr) { fd = int(s) }); err != nil || fd < 0 {
		return false
	}
	e := &evConn{c: c, h: h, p: p, fd: int32(fd), running: true}
	c.rawRead = e.readRaw // replaces the blocking reader's callback: reads are the worker's now
	e.writeFn = e.writeRaw
	c.ev = e
	if d := p.l.opts.PingInterval; d > 0 {
		p.wheel.startKeepAlive(e, d)
	}
	h.OnOpen(c)
	p.mu.Lock()
	p.gen++
	e.gen = p.gen
	if int(e.fd) >= len(p.conns) {
		p.conns = append(p.conns, make([]*evConn, int(e.fd)+1-len(p.conns))...)
	}
	p.conns[e.fd] = e
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: pollEvents, Fd: e.fd, Pad: int32(e.gen)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		// Closed during OnOpen (or out of resources): end it; evClose comes below.
		c.CloseNow()
	}
	// Serve held the connection until now; let go of it the way a worker does.
	e.mu.Lock()
	if c.buffered() > 0 {
		e.pending |= evRead // frames sent with the handshake
	}
	e.releaseLocked()
	e.mu.Unlock()
	return true
}

// lookup returns the connection registered for fd, or nil (p.mu held).
func (p *poller) lookup(fd int32) *evConn {
	if fd < 0 || int(fd) >= len(p.conns) {
		return nil
	}
	return p.conns[fd]
}

// evConn is the event-driven state of one connection. The frame decoder's state (the
// current header, bytes left, mask position, UTF-8 state, message in progress) lives in
// Conn's read fields, as for blocking reads; evConn adds the message being assembled.
//
// Its size counts for every idle connection (EVENTED.md, "Numbers"): the raw reads use the
// Conn's fields (Conn.raw, rawRead, rawN, rawErr), which the blocking reader no longer uses
// once the connection is served.
type evConn struct {
	c   *Conn
	h   EventHandler
	p   *poller
	fd  int32
	gen uint32

	mu      sync.Mutex // guards running, pending, ended
	running bool       // a worker (or Serve) holds the connection
	pending uint8      // events that arrived while it was held
	ended   bool       // OnClose was called
	// inFrame, owned by the worker that holds the connection, is true when a data frame's
	// header was read and its payload is not complete.
	inFrame bool
	// hup, owned by the worker that holds the connection, is set once epoll reported a
	// hang-up or an error: the hang-up's edge has passed, so reads go on to EOF (or the
	// error) even after a short read.
	hup bool

	t      evTimers     // deadlines and wheel links, under p.wheel.mu
	readAt atomic.Int64 // t.readAt, for the read path's check without the wheel's lock

	// Write side, under Conn.wmu: the queue is (*c.wb)[wpos:].
	wpos      int
	inHandler atomic.Bool // a worker is handling reads: writes wait to be coalesced

	// Read side, owned by the worker that holds the connection.
	msg *[]byte // the message assembled so far (pooled), nil between messages

	// The raw write's result (under Conn.wmu); writeFn is e.writeRaw, bound once so that
	// writes allocate nothing.
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

// schedule records events and hands the connection to a worker unless one holds it.
func (e *evConn) schedule(bits uint8) {
	e.mu.Lock()
	e.pending |= bits
	if !e.running && !e.ended {
		e.running = true
		e.p.dispatch(e)
	}
	e.mu.Unlock()
}

// releaseLocked ends a turn (e.mu held): with events pending the connection goes back to
// a worker, otherwise no one holds it until the next event. Nothing is re-armed: the
// registration is edge-triggered and the turn left the socket drained.
func (e *evConn) releaseLocked() {
	if e.pending != 0 {
		e.p.dispatch(e)
		return
	}
	e.running = false
}

// yield ends a turn that stopped before the socket was drained: the connection keeps
// evRead pending and goes to the back of the work queue, still held (running), so no
// other worker can take it meanwhile; an edge would not come again for the bytes left.
func (e *evConn) yield() {
	e.mu.Lock()
	e.pending |= evRead
	e.p.dispatch(e)
	e.mu.Unlock()
}

// run is a worker's turn with the connection.
func (e *evConn) run() {
	c := e.c
	for {
		e.mu.Lock()
		bits := e.pending
		e.pending = 0
		if bits == 0 || e.ended {
			if !e.ended {
				e.releaseLocked()
			}
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		if bits&evClose != 0 || c.isClosed() || c.readErr != nil {
			e.end()
			continue
		}
		if bits&evTimer != 0 {
			// A deadline came due, but the worker may be what was late (the workers busy,
			// the process starved): what the socket holds arrived before this turn, so it
			// is read before the deadlines are judged. A pong or the peer's close frame
			// among it counts; the read deadline is checked first by handleRead anyway.
			bits |= evRead
		}
		if bits&evHup != 0 {
			e.hup = true
		}
		more := false
		if bits&evRead != 0 {
			more = e.handleRead()
		}
		if bits&(evRead|evWrite) != 0 {
			c.wmu.Lock()
			_ = e.flushLocked()
			c.wmu.Unlock()
		}
		if bits&evTimer != 0 && !c.isClosed() && c.readErr == nil {
			e.timerFired()
		}
		if c.isClosed() || c.readErr != nil {
			// Failed, timed out or closed: the connection has ended for the application,
			// even while closeAfterDrain still lets the peer read our close frame.
			e.end()
			continue
		}
		if more {
			e.yield()
			return
		}
	}
}

// end calls OnClose once, after the connection was closed or its reading failed, and frees
// what it held.
func (e *evConn) end() {
	c := e.c
	e.mu.Lock()
	if e.ended || !(c.isClosed() || c.readErr != nil) {
		e.mu.Unlock()
		return
	}
	e.ended = true
	e.mu.Unlock()
	e.p.wheel.forget(e)
	c.releaseReadBuffer()
	if e.msg != nil {
		putBuffer(e.msg)
		e.msg = nil
	}
	c.wmu.Lock()
	c.releaseWriteBuffer()
	e.wpos = 0
	c.wmu.Unlock()
	err := c.readErr
	if err == nil {
		err = ErrClosed
		if c.writeErr != nil {
			err = c.writeErr
		}
	}
	e.h.OnClose(c, err)
	e.p.l.ended(c)
}

// beforeClose runs in CloseNow before the socket is closed: it writes what it can of the
// queue (the close frame, often) and removes the socket from epoll while its fd is still
// its own. It must not wait for wmu: CloseNow may be called with it held.
func (e *evConn) beforeClose() {
	c := e.c
	if c.wmu.TryLock() {
		if c.wb != nil && len(*c.wb) > e.wpos {
			_ = c.raw.Write(e.writeFn)
		}
		c.wmu.Unlock()
	}
	p := e.p
	p.mu.Lock()
	if p.lookup(e.fd) == e {
		p.conns[e.fd] = nil
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(e.fd), nil)
	}
	p.mu.Unlock()
}

// afterClose runs in CloseNow after the socket is closed: OnClose is due.
func (e *evConn) afterClose() { e.schedule(evClose) }

// readRaw is the RawConn.Read callback: one non-blocking read into the free part of the
// read buffer, its result in Conn.rawN and rawErr. It never asks the runtime to wait: epoll
// says when to come back.
func (e *evConn) readRaw(fd uintptr) bool {
	c := e.c
	b := *c.rb
	for {
		n, err := syscall.Read(int(fd), b[len(b):cap(b)])
		if err == syscall.EINTR {
			continue
		}
		c.rawN, c.rawErr = n, err
		return true
	}
}

// writeRaw is the RawConn.Write callback (Conn.wmu held): one non-blocking write of the
// queue's unsent bytes.
func (e *evConn) writeRaw(fd uintptr) bool {
	for {
		n, err := syscall.Write(int(fd), (*e.c.wb)[e.wpos:])
		if err == syscall.EINTR {
			continue
		}
		e.wn, e.werr = n, err
		return true
	}
}

// handleRead reads what the socket holds, decodes it and runs the handler for each
// complete message. Writes made meanwhile wait and go out together afterwards. It reports
// true when it stopped after readsPerTurn reads with the socket maybe not drained: the
// caller must come back (yield), as no edge will say so.
func (e *evConn) handleRead() (more bool) {
	c := e.c
	e.inHandler.Store(true)
	defer e.inHandler.Store(false)
	if at := e.readAt.Load(); at != 0 && e.p.wheel.clock(time.Now()) >= at {
		// Past the read deadline: a blocking read would fail now, before any byte.
		c.readFailed(errReadTimeout(c))
		return false
	}
	for range readsPerTurn {
		if c.readErr != nil || c.isClosed() {
			return false
		}
		if c.buffered() > 0 {
			if e.consume() != nil {
				return false
			}
		}
		e.makeRoom()
		c.rawN, c.rawErr = 0, nil
		if err := c.raw.Read(c.rawRead); err != nil {
			c.readFailed(err)
			return false
		}
		if c.rawErr == syscall.EAGAIN {
			e.park()
			return false
		}
		if c.rawN <= 0 {
			c.readFailed(c.rawErr) // EOF: TCP ended without a close frame (1006)
			return false
		}
		*c.rb = (*c.rb)[:len(*c.rb)+c.rawN]
		full := len(*c.rb) == cap(*c.rb)
		if e.consume() != nil {
			return false
		}
		if !full && !e.hup {
			// A short read took all the socket held (a stream socket): drained. Bytes
			// that come later bring an edge. After a hang-up the EOF may be queued behind
			// the data with its edge gone: read on until it.
			e.park()
			return false
		}
	}
	e.park()
	return true
}

// makeRoom gives the read buffer free space after its unread bytes.
func (e *evConn) makeRoom() {
	c := e.c
	if c.rb == nil {
		c.rb = getBuffer(c.cfg.readBufferSize)
		return
	}
	if c.rpos > 0 {
		n := copy(*c.rb, c.unread())
		*c.rb = (*c.rb)[:n]
		c.rpos = 0
	}
	if len(*c.rb) == cap(*c.rb) || cap(*c.rb) < c.cfg.readBufferSize {
		c.growReadBuffer()
	}
}

// park lets go of the read buffer before the connection goes idle: back to the pool when
// empty; when it holds the start of a frame (a partial header or control frame, at most
// MaxHeaderSize+125 bytes: payloads never stay in it), moved to a buffer of the smallest
// pool class.
func (e *evConn) park() {
	c := e.c
	n := c.buffered()
	switch {
	case n == 0:
		c.releaseReadBuffer()
	case cap(*c.rb) > 1<<minPoolShift && n <= 1<<minPoolShift:
		small := getBuffer(n)
		*small = append(*small, c.unread()...)
		putBuffer(c.rb)
		c.rb, c.rpos = small, 0
	}
}

// consume decodes the buffered bytes: headers, control frames (answered at once), and
// payload bytes, which are unmasked, checked (UTF-8) and added to the message; each
// complete message goes to OnMessage. It stops when the buffer ends inside a header or a
// control frame, or when the connection ends (returning its error).
func (e *evConn) consume() error {
	c := e.c
	for {
		if c.readErr != nil {
			return c.readErr
		}
		if c.isClosed() {
			return ErrClosed
		}
		if !e.inFrame {
			h, n, err := ParseHeader(c.unread())
			if err != nil {
				return c.fail(StatusProtocolError, err.Error())
			}
			if n == 0 {
				return nil // a partial header: wait for more
			}
			if err := c.checkHeader(h); err != nil {
				return err
			}
			if h.Opcode.IsControl() {
				if c.buffered() < n+int(h.Length) {
					return nil // a control frame is handled whole: wait for the rest
				}
				c.rpos += n
				if err := c.handleControl(h); err != nil {
					return err
				}
				continue
			}
			c.rpos += n
			if h.Opcode != OpContinuation {
				c.inMessage = true
				c.msgType = MessageType(h.Opcode)
				c.msgLen = 0
				c.utf8.reset()
				c.compressed = h.Rsv&Rsv1 != 0
			}
			if err := c.beginFrame(h); err != nil {
				return err
			}
			e.inFrame = true
		}
		if err := e.payload(); err != nil {
			return err
		}
		if c.frameLeft > 0 {
			return nil // the buffer is used up: wait for more
		}
		e.inFrame = false
		if !c.frame.Fin {
			continue
		}
		if err := e.deliver(); err != nil {
			return err
		}
	}
}

// payload takes the buffered bytes of the current frame's payload. A single-frame message
// whose payload is entirely in the buffer is left there (delivered without a copy);
// otherwise the bytes are appended to the message being assembled. A compressed message
// is always assembled (compressed; it is inflated when complete) and its text is checked
// once inflated.
func (e *evConn) payload() error {
	c := e.c
	avail := min(int64(c.buffered()), c.frameLeft)
	whole := e.msg == nil && c.frame.Fin && c.frame.Opcode != OpContinuation && avail == c.frame.Length && !c.compressed
	p := c.unread()[:avail]
	if c.frame.Masked {
		c.maskPos = MaskBytes(c.frame.Mask, c.maskPos, p)
	}
	c.frameLeft -= avail
	if c.msgType == MessageText && !c.compressed && !c.utf8.feed(p) {
		return c.fail(StatusInvalidPayload, "invalid UTF-8 in text message")
	}
	if whole {
		return nil // deliver reads it from the buffer; rpos moves past it there
	}
	c.rpos += int(avail)
	if avail > 0 || e.msg == nil {
		e.msg = appendPooled(e.msg, p, c.msgLen)
	}
	return nil
}

// deliver ends the current message and calls OnMessage with it.
func (e *evConn) deliver() error {
	c := e.c
	if c.compressed {
		return e.deliverCompressed()
	}
	var data []byte
	if e.msg != nil {
		data = *e.msg
	} else {
		n := int(c.frame.Length)
		data = c.unread()[:n]
		c.rpos += n
	}
	c.inMessage = false
	if c.msgType == MessageText && !c.utf8.complete() {
		return c.fail(StatusInvalidPayload, "text message ends inside a UTF-8 sequence")
	}
	e.h.OnMessage(c, c.msgType, data)
	if e.msg != nil {
		putBuffer(e.msg)
		e.msg = nil
	}
	return nil
}

// appendPooled appends b to the pooled buffer p (nil: none yet), moving to a larger buffer
// when needed; total is the message's announced length so far, a hint for the first size.
func appendPooled(p *[]byte, b []byte, total int64) *[]byte {
	if p == nil {
		p = getBuffer(int(min(total, 1<<20)))
	}
	if len(*p)+len(b) > cap(*p) {
		p = growPooled(p, max(len(*p)+len(b), 2*cap(*p)))
	}
	*p = append(*p, b...)
	return p
}

// growPooled moves the bytes of the pooled buffer p to one of capacity at least size
// (pooled up to the largest class, allocated beyond) and gives p back to its pool.
func growPooled(p *[]byte, size int) *[]byte {
	var np *[]byte
	if size <= 1<<maxPoolShift {
		np = getBuffer(size)
	} else {
		nb := make([]byte, 0, size)
		np = &nb
	}
	*np = append(*np, *p...)
	putBuffer(p)
	return np
}

// queueLocked adds a frame to the write queue (with Conn.wmu held) and writes the queue
// out unless a worker is handling reads (it flushes when done) or a Batch runs. When the
// queue would go over its bound, a volatile message is dropped; any other closes the
// connection with the overflow code.
func (e *evConn) queueLocked(h Header, payload []byte, volatile bool) error {
	c := e.c
	if c.writeErr != nil {
		return c.writeErr
	}
	size := h.Size() + len(payload)
	queued := 0
	if c.wb != nil {
		queued = len(*c.wb) - e.wpos
	}
	if queued > 0 && queued+size > e.p.l.opts.MaxQueuedBytes && h.Opcode != OpClose && !h.Opcode.IsControl() {
		if volatile {
			return ErrDropped
		}
		e.overflowLocked()
		return ErrWriteQueueFull
	}
	e.reserveLocked(size)
	*c.wb = AppendHeader(*c.wb, h)
	start := len(*c.wb)
	*c.wb = append(*c.wb, payload...)
	if h.Masked {
		MaskBytes(h.Mask, 0, (*c.wb)[start:])
	}
	if h.Opcode == OpClose || !(e.inHandler.Load() || c.batching.Load() > 0) {
		return e.flushLocked()
	}
	return nil
}

// queueEncodedLocked adds an encoded frame (a PreparedMessage) to the write queue.
func (e *evConn) queueEncodedLocked(frame []byte) error {
	c := e.c
	if c.writeErr != nil {
		return c.writeErr
	}
	queued := 0
	if c.wb != nil {
		queued = len(*c.wb) - e.wpos
	}
	if queued > 0 && queued+len(frame) > e.p.l.opts.MaxQueuedBytes {
		e.overflowLocked()
		return ErrWriteQueueFull
	}
	e.reserveLocked(len(frame))
	*c.wb = append(*c.wb, frame...)
	if !(e.inHandler.Load() || c.batching.Load() > 0) {
		return e.flushLocked()
	}
	return nil
}

// reserveLocked makes room for n more bytes in the write queue.
func (e *evConn) reserveLocked(n int) {
	c := e.c
	if c.wb == nil {
		c.wb = getBuffer(max(c.cfg.writeBufferSize, n))
		if cap(*c.wb) < n {
			b := make([]byte, 0, n)
			c.wb = &b
		}
		return
	}
	if e.wpos > 0 && len(*c.wb)+n > cap(*c.wb) {
		m := copy(*c.wb, (*c.wb)[e.wpos:])
		*c.wb = (*c.wb)[:m]
		e.wpos = 0
	}
	if len(*c.wb)+n > cap(*c.wb) {
		c.wb = growPooled(c.wb, max(len(*c.wb)+n, 2*cap(*c.wb)))
	}
}

// overflowLocked ends a connection whose reader is too slow: the close frame with the
// overflow code goes after what is queued, and the connection is closed when the peer
// answers or after EventLoopOptions.CloseTimeout, whichever comes first.
func (e *evConn) overflowLocked() {
	c := e.c
	if !c.closeSent {
		var payload [maxControlPayload]byte
		code := e.p.l.opts.OverflowCode
		payload[0], payload[1] = byte(code>>8), byte(code)
		n := 2 + copy(payload[2:], "write queue full")
		h := Header{Fin: true, Opcode: OpClose, Length: int64(n)}
		e.reserveLocked(h.Size() + n)
		*c.wb = AppendHeader(*c.wb, h)
		*c.wb = append(*c.wb, payload[:n]...)
		c.closeSent = true
		_ = e.flushLocked()
	}
	e.armCloseTimer()
}

// flushLocked writes the queue without blocking (Conn.wmu held). What the socket does not
// take stays queued; the write that stopped ended in EAGAIN, so the socket's next EPOLLOUT
// edge (evWrite) brings a worker that flushes again.
func (e *evConn) flushLocked() error {
	c := e.c
	for c.wb != nil && len(*c.wb) > e.wpos {
		e.wn, e.werr = 0, nil
		if err := c.raw.Write(e.writeFn); err != nil {
			e.werr = err
		}
		if e.wn > 0 {
			e.wpos += e.wn
			continue
		}
		if e.werr == syscall.EAGAIN {
			return nil
		}
		if e.werr == nil {
			e.werr = errors.New("ws: write made no progress")
		}
		c.writeErr = e.werr
		c.CloseNow()
		return c.writeErr
	}
	e.wpos = 0
	if c.wb != nil {
		putBuffer(c.wb)
		c.wb = nil
	}
	return nil
}

// startClose sends the close frame and bounds the wait for the peer's answer: the
// event-driven Close and StartClose, which never block.
func (e *evConn) startClose(code StatusCode, reason string) error {
	err := e.c.writeClose(code, reason)
	if err == errCloseAlreadySent {
		err = nil
	}
	e.armCloseTimer()
	return err
}

// armCloseTimer bounds the wait for the peer's close frame: the connection is closed
// EventLoopOptions.CloseTimeout after the first call (the timer wheel's close timeout).
func (e *evConn) armCloseTimer() { e.p.wheel.setCloseTimeout(e, e.p.l.opts.CloseTimeout) }

// setReadDeadline is Conn.SetReadDeadline on a served connection: when t passes and the
// connection is still open, its reading fails with a timeout error (as a blocking read
// would) and the connection is closed without a close frame; OnClose reports the error.
func (e *evConn) setReadDeadline(t time.Time) { e.p.wheel.setReadDeadline(e, t) }

// setTimer is Conn.SetTimer on a served connection: the time goes into the wheel, and the
// worker that holds the connection when it comes calls OnTimer (timerFired).
func (e *evConn) setTimer(d time.Duration) error {
	if _, ok := e.h.(TimerHandler); !ok {
		return ErrNotServed
	}
	e.p.wheel.setUserTimer(e, d)
	return nil
}

// pong is called by the worker for each pong received.
func (e *evConn) pong() {
	if e.p.l.opts.PingInterval > 0 {
		e.p.wheel.pong(e)
	}
}

// timerFired runs on the worker holding the connection when the wheel found one of its
// deadlines due: the close timeout closes it; a passed read deadline fails its reading
// with a timeout error; a late pong closes it with ErrKeepAliveTimeout (no close frame,
// as Conn.KeepAlive); a keepalive ping due is queued. The handler's timer calls OnTimer
// while the connection is still open.
func (e *evConn) timerFired() {
	c := e.c
	o := &e.p.l.opts
	fired := e.p.wheel.due(e, o.PingInterval, o.PongTimeout)
	switch {
	case fired&firedRead != 0:
		c.readFailed(errReadTimeout(c))
	case fired&firedPong != 0:
		c.readErr = ErrKeepAliveTimeout
		c.CloseNow()
	case fired&firedClose != 0:
		c.CloseNow()
	case fired&firedPing != 0:
		switch err := c.writeControl(OpPing, nil); {
		case err == errCloseAlreadySent:
			// Closing: no more pings, as Conn.KeepAlive stops when its Ping fails; the
			// close timeout bounds the rest.
			e.p.wheel.stopKeepAlive(e)
		case err != nil:
			c.CloseNow()
		}
	}
	if fired&firedUser != 0 && !c.isClosed() && c.readErr == nil {
		e.h.(TimerHandler).OnTimer(c)
	}
}
