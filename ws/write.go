package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"time"

	"github.com/klauspost/compress/flate"
)

// errCloseAlreadySent is returned by writeClose when a close frame went out before.
var errCloseAlreadySent = errors.New("ws: close frame already sent")

// WriteMessage sends data as one message of type typ, in a single frame. It is safe to call
// from several goroutines; messages are not interleaved. ctx bounds the write; a write that
// ctx or a deadline interrupts fails the connection. When permessage-deflate was negotiated,
// messages of at least CompressionOptions.Threshold bytes are compressed.
func (c *Conn) WriteMessage(ctx context.Context, typ MessageType, data []byte) error {
	d := c.cfg.deflate
	return c.writeMessage(ctx, typ, data, d != nil && len(data) >= d.threshold)
}

// WriteMessageCompressed is WriteMessage with the compression of this message chosen by
// the caller: compressed when compress is true and permessage-deflate was negotiated,
// whatever its size, and uncompressed otherwise.
func (c *Conn) WriteMessageCompressed(ctx context.Context, typ MessageType, data []byte, compress bool) error {
	return c.writeMessage(ctx, typ, data, compress && c.cfg.deflate != nil)
}

func (c *Conn) writeMessage(ctx context.Context, typ MessageType, data []byte, compress bool) error {
	if typ != MessageText && typ != MessageBinary {
		return errors.New("ws: WriteMessage with an invalid message type")
	}
	c.dataMu.Lock()
	defer c.dataMu.Unlock()
	if !compress {
		return c.writeFrame(ctx, true, Opcode(typ), 0, data)
	}
	// The dataMu order of messages is the order of the compression history.
	out := getBuffer(len(data)/2 + 64)
	err := c.cfg.deflate.compress(out, data)
	if err == nil {
		err = c.writeFrame(ctx, true, Opcode(typ), Rsv1, *out)
	}
	putBuffer(out)
	return err
}

// WriteMessageVolatile is WriteMessage for a message that may be lost: on a connection
// served by an EventLoop whose write queue is over EventLoopOptions.MaxQueuedBytes, the
// message is dropped and ErrDropped returned, and the connection stays open (a later
// ordinary write that overflows closes it). Elsewhere it is WriteMessage. It is never
// compressed.
func (c *Conn) WriteMessageVolatile(ctx context.Context, typ MessageType, data []byte) error {
	if c.ev == nil {
		return c.WriteMessageCompressed(ctx, typ, data, false)
	}
	if typ != MessageText && typ != MessageBinary {
		return errors.New("ws: WriteMessageVolatile with an invalid message type")
	}
	c.dataMu.Lock()
	defer c.dataMu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent && c.writeErr == nil {
		return ErrClosed
	}
	return c.ev.queueLocked(Header{Fin: true, Opcode: Opcode(typ), Length: int64(len(data))}, data, true)
}

// NextWriter starts a message of type typ whose payload is given in pieces: each Write sends
// one frame and Close sends the final one (empty, or when the message is compressed, what the
// compressor still held). Until Close, other data messages wait (control frames still go
// out), so always Close the writer.
func (c *Conn) NextWriter(ctx context.Context, typ MessageType) (io.WriteCloser, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, errors.New("ws: NextWriter with an invalid message type")
	}
	c.dataMu.Lock()
	c.wmu.Lock()
	err := c.writeErr
	if err == nil && c.closeSent {
		err = ErrClosed
	}
	c.wmu.Unlock()
	if err != nil {
		c.dataMu.Unlock()
		return nil, err
	}
	if c.writer == nil {
		c.writer = new(messageWriter) // on first use: most connections never call NextWriter
	}
	w := c.writer
	*w = messageWriter{c: c, ctx: ctx, op: Opcode(typ)}
	if d := c.cfg.deflate; d != nil {
		w.out = getBuffer(c.cfg.writeBufferSize)
		w.fw = d.startCompress(w.out, 0)
		w.rsv = Rsv1
	}
	return w, nil
}

// messageWriter sends a fragmented message for NextWriter. When permessage-deflate was
// negotiated the message is compressed: each Write sends the compressed bytes produced so
// far, and Close flushes the compressor into the final frame.
type messageWriter struct {
	c      *Conn
	ctx    context.Context
	op     Opcode // opcode of the next frame: the message type first, then continuation
	rsv    uint8  // reserved bits of the next frame: RSV1 on the first of a compressed message
	closed bool
	fw     *flate.Writer // compressor, nil for an uncompressed message
	out    *[]byte       // compressed bytes not yet sent
}

func (w *messageWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	payload := p
	if w.fw != nil {
		if err := w.c.cfg.deflate.write(w.fw, p); err != nil {
			return 0, err
		}
		if len(*w.out) == 0 {
			return len(p), nil // the compressor is still buffering
		}
		payload = *w.out
	}
	if err := w.c.writeFrame(w.ctx, false, w.op, w.rsv, payload); err != nil {
		return 0, err
	}
	if w.out != nil {
		*w.out = (*w.out)[:0]
	}
	w.op, w.rsv = OpContinuation, 0
	return len(p), nil
}

func (w *messageWriter) Close() error {
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	defer w.c.dataMu.Unlock()
	var payload []byte
	if w.fw != nil {
		defer putBuffer(w.out)
		if err := w.c.cfg.deflate.finishCompress(w.fw, w.out); err != nil {
			return err
		}
		payload = *w.out
	}
	return w.c.writeFrame(w.ctx, true, w.op, w.rsv, payload)
}

// Ping sends a ping frame with data (at most 125 bytes). The pong arrives on the reading
// goroutine; see SetPongHandler and KeepAlive.
func (c *Conn) Ping(ctx context.Context, data []byte) error {
	if len(data) > maxControlPayload {
		return errors.New("ws: ping payload over 125 bytes")
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent && c.writeErr == nil {
		return ErrClosed
	}
	return c.writeFrameLocked(ctx, true, OpPing, 0, data, false)
}

// writeControl sends a pong or other control frame at once.
func (c *Conn) writeControl(op Opcode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return errCloseAlreadySent
	}
	return c.writeFrameLocked(context.Background(), true, op, 0, payload, true)
}

// writeClose sends a close frame (code 0: no payload) unless one was sent already; after it,
// data writes fail with ErrClosed.
func (c *Conn) writeClose(code StatusCode, reason string) error {
	var payload [maxControlPayload]byte
	n := 0
	if code != 0 {
		binary.BigEndian.PutUint16(payload[:], uint16(code))
		n = 2 + copy(payload[2:], truncateUTF8(reason, maxCloseReason))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return errCloseAlreadySent
	}
	err := c.writeFrameLocked(context.Background(), true, OpClose, 0, payload[:n], false)
	c.closeSent = true
	return err
}

func (c *Conn) writeFrame(ctx context.Context, fin bool, op Opcode, rsv uint8, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent && c.writeErr == nil {
		return ErrClosed
	}
	return c.writeFrameLocked(ctx, fin, op, rsv, payload, true)
}

// writeFrameLocked encodes one frame into the write buffer and writes it out, or leaves it
// there to be coalesced with others when coalesce is set and the reader holds frames that
// were read but not yet handled. Large payloads are written without a copy where possible.
func (c *Conn) writeFrameLocked(ctx context.Context, fin bool, op Opcode, rsv uint8, payload []byte, coalesce bool) error {
	if c.writeErr != nil {
		return c.writeErr
	}
	h := Header{Fin: fin, Rsv: rsv, Opcode: op, Length: int64(len(payload))}
	if !c.cfg.isServer {
		h.Masked = true
		binary.LittleEndian.PutUint32(h.Mask[:], uint32(c.rng.Uint64()))
	}
	if c.ev != nil {
		return c.ev.queueLocked(h, payload, false)
	}
	if c.wb == nil {
		c.wb = getBuffer(c.cfg.writeBufferSize)
	}
	if len(*c.wb)+MaxHeaderSize+len(payload) <= cap(*c.wb) {
		*c.wb = AppendHeader(*c.wb, h)
		start := len(*c.wb)
		*c.wb = append(*c.wb, payload...)
		if h.Masked {
			MaskBytes(h.Mask, 0, (*c.wb)[start:])
		}
		if coalesce && c.holdFlush() {
			c.deferFlush()
			return nil
		}
		return c.flushLocked(ctx)
	}
	return c.writeLargeLocked(ctx, h, payload)
}

// writeEncodedLocked writes a frame that is already encoded (and never masked): through the
// write buffer when it fits, so that it coalesces like any other frame, else at once after
// what the buffer holds.
func (c *Conn) writeEncodedLocked(ctx context.Context, frame []byte) error {
	if c.writeErr != nil {
		return c.writeErr
	}
	if c.ev != nil {
		return c.ev.queueEncodedLocked(frame)
	}
	if c.wb == nil {
		c.wb = getBuffer(c.cfg.writeBufferSize)
	}
	if len(*c.wb)+len(frame) <= cap(*c.wb) {
		*c.wb = append(*c.wb, frame...)
		if c.holdFlush() {
			c.deferFlush()
			return nil
		}
		return c.flushLocked(ctx)
	}
	if err := c.flushLocked(ctx); err != nil {
		return err
	}
	stop := c.watchContext(ctx, false)
	_, err := c.nc.Write(frame)
	return c.writeDone(ctx, stop, err)
}

// maxWriteChunk bounds the buffer a large frame is copied (and masked) into, a piece at a
// time. Copying costs less than a vectored write of header and payload: measured on loopback,
// a 64 KiB echo took 93 µs of server CPU with writev and 68 µs with one copied write.
const maxWriteChunk = 256 << 10

// writeLargeLocked writes a frame whose payload does not fit in the write buffer, after
// whatever the buffer already holds, in pieces of at most maxWriteChunk bytes. The caller's
// payload is copied, never masked in place.
func (c *Conn) writeLargeLocked(ctx context.Context, h Header, payload []byte) error {
	stop := c.watchContext(ctx, false)
	*c.wb = AppendHeader(*c.wb, h)
	chunk := getBuffer(min(len(*c.wb)+len(payload), maxWriteChunk))
	*chunk = append(*chunk, *c.wb...)
	c.releaseWriteBuffer()
	var err error
	pos := 0
	for err == nil && len(payload) > 0 {
		start := len(*chunk)
		n := min(len(payload), cap(*chunk)-start)
		*chunk = append(*chunk, payload[:n]...)
		if h.Masked {
			pos = MaskBytes(h.Mask, pos, (*chunk)[start:])
		}
		payload = payload[n:]
		_, err = c.nc.Write(*chunk)
		*chunk = (*chunk)[:0]
	}
	putBuffer(chunk)
	return c.writeDone(ctx, stop, err)
}

// flushLocked writes out the write buffer.
func (c *Conn) flushLocked(ctx context.Context) error {
	if c.ev != nil {
		return c.ev.flushLocked()
	}
	if c.wb == nil || len(*c.wb) == 0 {
		return nil
	}
	stop := c.watchContext(ctx, false)
	_, err := c.nc.Write(*c.wb)
	c.releaseWriteBuffer()
	return c.writeDone(ctx, stop, err)
}

func (c *Conn) releaseWriteBuffer() {
	if c.pending.Load() {
		c.pending.Store(false)
		c.flushTimer.Stop()
	}
	if c.wb != nil {
		putBuffer(c.wb)
		c.wb = nil
	}
}

// writeDone makes a write error sticky; a write that fails leaves a partial frame on the
// wire, so the connection is closed.
func (c *Conn) writeDone(ctx context.Context, stop func() bool, err error) error {
	if stop != nil && !stop() && err != nil {
		err = ctx.Err()
	}
	if err != nil {
		c.writeErr = err
		c.CloseNow()
	}
	return err
}

// holdFlush reports whether frames should wait in the write buffer: the reader holds frames
// not yet handled (their answers will follow), or a Batch is running.
func (c *Conn) holdFlush() bool { return c.readBuffered.Load() || c.batching.Load() > 0 }

// Batch runs f and writes the messages f writes together: they wait in the write buffer
// (flushed whenever it fills) and go out in as few system calls as possible when f
// returns. It returns f's error, or the error of the final flush. A Batch costs nothing
// when f writes one message; many small messages to one peer (a queue being drained) are
// where it pays. Other goroutines may write meanwhile: their messages join the batch.
func (c *Conn) Batch(ctx context.Context, f func() error) error {
	c.batching.Add(1)
	err := f()
	if c.batching.Add(-1) == 0 {
		c.wmu.Lock()
		ferr := c.flushLocked(ctx)
		c.wmu.Unlock()
		if err == nil {
			err = ferr
		}
	}
	return err
}

// deferFlush leaves the buffered frames for the reader to flush before its next socket read,
// with a timer as the bound in case the reader does not come back soon.
func (c *Conn) deferFlush() {
	if c.pending.Load() {
		return
	}
	c.pending.Store(true)
	if c.flushTimer == nil {
		c.flushTimer = time.AfterFunc(coalesceDelay, func() { c.flushPending() })
	} else {
		c.flushTimer.Reset(coalesceDelay)
	}
}

// flushPending writes out frames left to be coalesced. While a Batch runs it leaves them:
// the Batch writes them when it ends (the timer firing mid-batch split one batch into two
// writes on a loaded machine).
func (c *Conn) flushPending() {
	if !c.pending.Load() || c.batching.Load() > 0 {
		return
	}
	c.wmu.Lock()
	_ = c.flushLocked(context.Background())
	c.wmu.Unlock()
}

// truncateUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
