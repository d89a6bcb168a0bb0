package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"
	"unicode/utf8"
)

// ReadMessage reads the next data message and returns its type and a newly allocated copy of
// its payload. Pings, pongs and close frames that arrive first are handled on the way. When
// the connection ends, the error is a *CloseError (see there), or ctx.Err() when ctx ended
// the read; either way the connection is then unusable for reads.
func (c *Conn) ReadMessage(ctx context.Context) (MessageType, []byte, error) {
	return c.AppendMessage(ctx, nil)
}

// AppendMessage is ReadMessage, appending the payload to dst and returning the extended
// slice. Reusing dst across calls makes reading allocation-free in steady state.
func (c *Conn) AppendMessage(ctx context.Context, dst []byte) (MessageType, []byte, error) {
	if c.ev != nil {
		return 0, dst, ErrEventDriven
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	stop := c.watchContext(ctx, true)
	typ, dst, err := c.appendMessage(dst)
	return typ, dst, c.endRead(ctx, stop, err)
}

// NextReader returns the type of the next data message and a reader for its payload, which
// returns io.EOF at the end of the message. The reader is valid until the next call of a
// read method; a message left unread is discarded by that call. ctx bounds only the wait for
// the message to start; set a read deadline to bound reading the payload.
func (c *Conn) NextReader(ctx context.Context) (MessageType, io.Reader, error) {
	if c.ev != nil {
		return 0, nil, ErrEventDriven
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	stop := c.watchContext(ctx, true)
	err := c.startMessage()
	if err = c.endRead(ctx, stop, err); err != nil {
		return 0, nil, err
	}
	return c.msgType, (*messageReader)(c), nil
}

// endRead finishes a read call: it turns a deadline forced by ctx into ctx's error, makes any
// error sticky, and lets buffered frames coalesce the writes that answer them.
func (c *Conn) endRead(ctx context.Context, stop func() bool, err error) error {
	if stop != nil && !stop() && err != nil {
		// ctx fired and moved the deadline: the read failed because of ctx.
		err = ctx.Err()
		c.readErr = err
		c.CloseNow()
	}
	if err != nil {
		if c.readErr == nil {
			c.readErr = err
			c.CloseNow()
		}
		return c.readErr
	}
	c.readBuffered.Store(c.buffered() > 0)
	return nil
}

func (c *Conn) appendMessage(dst []byte) (MessageType, []byte, error) {
	if err := c.startMessage(); err != nil {
		return 0, dst, err
	}
	// The message never makes dst hold more than the read limit (plus the one byte that
	// detects an inflated message going over it).
	maxCap := len(dst) + int(c.cfg.readLimit) + 1
	if c.compressed {
		for {
			dst = growWithin(dst, inflateChunk, maxCap)
			n, err := c.readInflated(dst[len(dst):cap(dst)])
			dst = dst[:len(dst)+n]
			if err == io.EOF {
				return c.msgType, dst, nil
			}
			if err != nil {
				return 0, dst, err
			}
		}
	}
	for {
		for c.frameLeft > 0 {
			dst = growWithin(dst, int(min(c.frameLeft, 1<<20)), maxCap)
			n, err := c.readPayload(dst[len(dst):cap(dst)])
			dst = dst[:len(dst)+n]
			if err != nil {
				return 0, dst, err
			}
		}
		if c.frame.Fin {
			return c.msgType, dst, c.finishMessage()
		}
		if err := c.nextContinuation(); err != nil {
			return 0, dst, err
		}
	}
}

// growWithin returns dst with room for n more bytes, growing its capacity geometrically but
// never past maxCap unless len(dst)+n needs more.
func growWithin(dst []byte, n, maxCap int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	newCap := max(min(2*cap(dst), maxCap), len(dst)+n)
	grown := make([]byte, len(dst), newCap)
	copy(grown, dst)
	return grown
}

// messageReader reads the payload of the current message for NextReader. It is the Conn
// itself under another type, so that no Conn carries a reader field.
type messageReader Conn

func (r *messageReader) Read(p []byte) (int, error) {
	c := (*Conn)(r)
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.readErr != nil {
		return 0, c.readErr
	}
	for {
		if !c.inMessage {
			return 0, io.EOF
		}
		if c.compressed {
			n, err := c.readInflated(p)
			if err == io.EOF {
				return n, nil // the next call reports io.EOF
			}
			return n, c.endRead(context.Background(), nil, err)
		}
		if c.frameLeft > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			n, err := c.readPayload(p)
			if err == nil && c.frameLeft == 0 && c.frame.Fin {
				err = c.finishMessage()
			}
			return n, c.endRead(context.Background(), nil, err)
		}
		var err error
		if c.frame.Fin {
			err = c.finishMessage()
		} else {
			err = c.nextContinuation()
		}
		if err = c.endRead(context.Background(), nil, err); err != nil {
			return 0, err
		}
	}
}

// startMessage discards what is left of the previous message, then reads frames up to the
// first frame of the next data message.
func (c *Conn) startMessage() error {
	if c.readErr != nil {
		return c.readErr
	}
	if c.inMessage {
		if err := c.discardMessage(); err != nil {
			return err
		}
	}
	h, err := c.nextDataFrame()
	if err != nil {
		return err
	}
	if h.Opcode == OpContinuation {
		return c.fail(StatusProtocolError, "continuation frame without a message to continue")
	}
	c.inMessage = true
	c.msgType = MessageType(h.Opcode)
	c.msgLen = 0
	c.utf8.reset()
	c.compressed = h.Rsv&Rsv1 != 0
	if err := c.beginFrame(h); err != nil {
		return err
	}
	if c.compressed {
		c.startInflate()
	}
	return nil
}

// nextContinuation reads up to the next frame of the current fragmented message.
func (c *Conn) nextContinuation() error {
	h, err := c.nextDataFrame()
	if err != nil {
		return err
	}
	if h.Opcode != OpContinuation {
		return c.fail(StatusProtocolError, "new data frame inside a fragmented message")
	}
	return c.beginFrame(h)
}

func (c *Conn) beginFrame(h Header) error {
	c.msgLen += h.Length
	if c.msgLen > c.cfg.readLimit {
		return c.fail(StatusMessageTooBig, "message exceeds the read limit")
	}
	c.frame = h
	c.frameLeft = h.Length
	c.maskPos = 0
	return nil
}

// finishMessage ends the current message once its final frame has been read.
func (c *Conn) finishMessage() error {
	c.inMessage = false
	if c.msgType == MessageText && !c.utf8.complete() {
		return c.fail(StatusInvalidPayload, "text message ends inside a UTF-8 sequence")
	}
	if c.buffered() == 0 {
		c.releaseReadBuffer()
	}
	return nil
}

// discardMessage reads and drops the rest of the current message.
func (c *Conn) discardMessage() error {
	var scratch [512]byte
	for c.inMessage && c.compressed {
		// The text is needed: context takeover may refer to it later.
		if _, err := c.readInflated(scratch[:]); err != nil && err != io.EOF {
			return err
		}
	}
	for c.inMessage {
		for c.frameLeft > 0 {
			if _, err := c.readPayload(scratch[:]); err != nil {
				return err
			}
		}
		var err error
		if c.frame.Fin {
			err = c.finishMessage()
		} else {
			err = c.nextContinuation()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// nextDataFrame reads frame headers, handling control frames, until a data frame header.
func (c *Conn) nextDataFrame() (Header, error) {
	for {
		h, err := c.readHeader()
		if err != nil {
			return h, err
		}
		if err := c.checkHeader(h); err != nil {
			return h, err
		}
		if !h.Opcode.IsControl() {
			return h, nil
		}
		if err := c.handleControl(h); err != nil {
			return h, err
		}
	}
}

// checkHeader applies the rules of RFC 6455 §5 that do not depend on message state.
func (c *Conn) checkHeader(h Header) error {
	switch {
	case h.Rsv != 0 && !(h.Rsv == Rsv1 && c.cfg.deflate != nil && (h.Opcode == OpText || h.Opcode == OpBinary)):
		if c.cfg.deflate != nil && h.Rsv == Rsv1 {
			return c.fail(StatusProtocolError, "RSV1 set on a "+h.Opcode.String()+" frame")
		}
		return c.fail(StatusProtocolError, "reserved bits set without a negotiated extension")
	case h.Opcode.IsReserved():
		return c.fail(StatusProtocolError, "reserved opcode "+h.Opcode.String())
	case h.Masked != c.cfg.isServer:
		if c.cfg.isServer {
			return c.fail(StatusProtocolError, "client frame is not masked")
		}
		return c.fail(StatusProtocolError, "server frame is masked")
	case h.Opcode.IsControl() && !h.Fin:
		return c.fail(StatusProtocolError, "fragmented control frame")
	case h.Opcode.IsControl() && h.Length > maxControlPayload:
		return c.fail(StatusProtocolError, "control frame payload over 125 bytes")
	case !h.Opcode.IsControl() && h.Opcode != OpContinuation && c.inMessage:
		return c.fail(StatusProtocolError, "new data frame inside a fragmented message")
	case h.Opcode == OpContinuation && !c.inMessage:
		return c.fail(StatusProtocolError, "continuation frame without a message to continue")
	}
	return nil
}

func (c *Conn) readHeader() (Header, error) {
	for {
		h, n, err := ParseHeader(c.unread())
		if err != nil {
			return h, c.fail(StatusProtocolError, err.Error())
		}
		if n > 0 {
			c.rpos += n
			return h, nil
		}
		if err := c.fill(); err != nil {
			return h, err
		}
	}
}

// readPayload reads up to len(p) bytes of the current frame's payload into p, unmasking it
// and checking text as it arrives.
func (c *Conn) readPayload(p []byte) (int, error) {
	if int64(len(p)) > c.frameLeft {
		p = p[:c.frameLeft]
	}
	var n int
	switch {
	case c.buffered() > 0:
		n = copy(p, c.unread())
		c.rpos += n
	case len(p) >= c.cfg.readBufferSize:
		// Large payloads go straight to the caller's memory, without a copy.
		c.flushPending()
		var err error
		n, err = c.nc.Read(p)
		if n == 0 {
			return 0, c.readFailed(err)
		}
	default:
		if err := c.fill(); err != nil {
			return 0, err
		}
		n = copy(p, c.unread())
		c.rpos += n
	}
	p = p[:n]
	if c.frame.Masked {
		c.maskPos = MaskBytes(c.frame.Mask, c.maskPos, p)
	}
	c.frameLeft -= int64(n)
	if c.msgType == MessageText && !c.compressed && !c.utf8.feed(p) {
		return n, c.fail(StatusInvalidPayload, "invalid UTF-8 in text message")
	}
	return n, nil
}

// handleControl reads the payload of a control frame and acts on it.
// The payload is used where it lies in the read buffer when it is all there (always, on an
// event-driven connection); otherwise it is gathered in a pooled buffer, so that no Conn
// carries a control-frame array of its own.
func (c *Conn) handleControl(h Header) error {
	n := int(h.Length)
	var payload []byte
	if c.buffered() >= n {
		payload = c.unread()[:n]
		c.rpos += n
	} else {
		pb := getBuffer(n)
		defer putBuffer(pb)
		payload = (*pb)[:n]
		for got := 0; got < n; {
			if c.buffered() == 0 {
				if err := c.fill(); err != nil {
					return err
				}
			}
			m := copy(payload[got:], c.unread())
			c.rpos += m
			got += m
		}
	}
	if h.Masked {
		MaskBytes(h.Mask, 0, payload)
	}
	switch h.Opcode {
	case OpPing:
		err := c.writeControl(OpPong, payload)
		if err != nil && err != errCloseAlreadySent {
			return c.readFailed(err)
		}
	case OpPong:
		if pongs := c.pongs.Load(); pongs != nil {
			select {
			case *pongs <- struct{}{}:
			default:
			}
		}
		if c.ev != nil {
			c.ev.pong()
		}
		if hp := c.pongHandler.Load(); hp != nil {
			(*hp)(payload)
		}
	case OpClose:
		return c.handleClose(payload)
	}
	return nil
}

// handleClose validates the peer's close frame, answers it and ends the connection.
func (c *Conn) handleClose(payload []byte) error {
	ce := &CloseError{Code: StatusNoStatusReceived, Remote: true}
	switch {
	case len(payload) == 1:
		return c.fail(StatusProtocolError, "close frame payload of 1 byte")
	case len(payload) >= 2:
		ce.Code = StatusCode(binary.BigEndian.Uint16(payload))
		if !ce.Code.validOnWire() {
			return c.fail(StatusProtocolError, "invalid close code")
		}
		if !utf8.Valid(payload[2:]) {
			return c.fail(StatusInvalidPayload, "close reason is not UTF-8")
		}
		ce.Reason = string(payload[2:])
	}
	c.readErr = ce
	c.closeRecv.fire(&c.sigMu)
	echo := ce.Code
	if echo == StatusNoStatusReceived {
		echo = 0 // answer an empty close with an empty close
	}
	_ = c.writeClose(echo, "")
	if !c.cfg.isServer {
		// The server closes TCP first (RFC 6455 §7.1.1); give it a moment to do so.
		c.awaitEOF(time.Second)
	}
	c.CloseNow()
	return ce
}

// awaitEOF reads and drops bytes until the peer closes the connection or timeout passes.
func (c *Conn) awaitEOF(timeout time.Duration) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	var scratch [64]byte
	for i := 0; i < 64; i++ {
		if _, err := c.nc.Read(scratch[:]); err != nil {
			return
		}
	}
}

// fail fails the connection (RFC 6455 §7.1.7): it sends a close frame with code and reason,
// closes the TCP connection and returns the *CloseError that reads report from then on.
func (c *Conn) fail(code StatusCode, reason string) error {
	if c.readErr != nil {
		return c.readErr
	}
	err := &CloseError{Code: code, Reason: reason}
	c.readErr = err
	// Do not wait behind a writer stuck on a peer that does not read.
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.writeClose(code, reason)
	c.closeAfterDrain()
	return err
}

// drainTimeout bounds how long a failed connection waits for the peer to close its side.
const drainTimeout = time.Second

// closeAfterDrain closes the connection once the peer has had the chance to read the close
// frame just sent: it shuts down the write side, then drops what the peer still sends until
// it closes or drainTimeout passes. Closing at once with unread bytes in the receive buffer
// would reset the connection, and some peers then report the reset instead of the close code.
func (c *Conn) closeAfterDrain() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		c.CloseNow()
		return
	}
	go func() {
		defer c.CloseNow()
		_ = c.nc.SetReadDeadline(time.Now().Add(drainTimeout))
		_, _ = io.Copy(io.Discard, io.LimitReader(c.nc, int64(c.cfg.readLimit)))
	}()
}

// readFailed converts an error from the underlying connection into the read error: the
// same error for a timeout, ErrClosed after a local close, otherwise a *CloseError with
// StatusAbnormalClosure (the connection ended without a close frame).
func (c *Conn) readFailed(err error) error {
	if c.readErr != nil {
		return c.readErr
	}
	var ne net.Error
	switch {
	case c.isClosed():
		err = ErrClosed
	case errors.As(err, &ne) && ne.Timeout():
	case err == nil || errors.Is(err, io.EOF):
		err = &CloseError{Code: StatusAbnormalClosure, Reason: "connection ended without a close frame"}
	default:
		err = &CloseError{Code: StatusAbnormalClosure, Reason: err.Error()}
	}
	c.readErr = err
	c.CloseNow()
	return err
}

func (c *Conn) isClosed() bool { return c.closed.done() }

// buffered returns the number of bytes read from the socket and not yet consumed.
func (c *Conn) buffered() int {
	if c.rb == nil {
		return 0
	}
	return len(*c.rb) - c.rpos
}

func (c *Conn) unread() []byte {
	if c.rb == nil {
		return nil
	}
	return (*c.rb)[c.rpos:]
}

func (c *Conn) releaseReadBuffer() {
	if c.rb != nil {
		putBuffer(c.rb)
		c.rb, c.rpos = nil, 0
	}
}

// fill reads more bytes from the socket into the read buffer, after flushing the writes that
// waited to be coalesced.
func (c *Conn) fill() error {
	c.readBuffered.Store(false)
	c.flushPending()
	if c.rb != nil {
		// Keep the unread bytes and make room after them.
		if c.rpos > 0 {
			n := copy(*c.rb, c.unread())
			*c.rb = (*c.rb)[:n]
			c.rpos = 0
		}
		if len(*c.rb) == cap(*c.rb) {
			c.growReadBuffer()
		}
	}
	if c.raw != nil {
		c.rawN, c.rawErr = 0, nil
		if err := c.raw.Read(c.rawRead); err != nil {
			return c.readFailed(err)
		}
		if c.rawN <= 0 {
			return c.readFailed(c.rawErr)
		}
		*c.rb = (*c.rb)[:len(*c.rb)+c.rawN]
		return nil
	}
	// Without raw reads the buffer is held while the read waits: wait with a small one, and
	// move to a full-sized one once data fills it.
	if c.rb == nil {
		c.rb = getBuffer(idleReadBufferSize)
	}
	b := *c.rb
	n, err := c.nc.Read(b[len(b):cap(b)])
	if n > 0 {
		*c.rb = b[:len(b)+n]
		if len(*c.rb) == cap(*c.rb) && cap(*c.rb) < c.cfg.readBufferSize {
			c.growReadBuffer()
		}
		return nil
	}
	return c.readFailed(err)
}

// idleReadBufferSize is the buffer a read waits with on connections without raw reads.
const idleReadBufferSize = 512

// growReadBuffer moves the buffered bytes to a larger pooled buffer.
func (c *Conn) growReadBuffer() {
	nb := getBuffer(max(c.cfg.readBufferSize, 2*cap(*c.rb)))
	*nb = append(*nb, c.unread()...)
	putBuffer(c.rb)
	c.rb, c.rpos = nb, 0
}
