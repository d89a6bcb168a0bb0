package ws

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// inflateTail follows the payload of every compressed message given to the inflater: the
// 00 00 ff ff the sender removed, then an empty final block, so that the end of the message
// reads as io.EOF.
const inflateTail = "\x00\x00\xff\xff\x01\x00\x00\xff\xff"

// inflateChunk is how much AppendMessage makes room for at a time when inflating.
const inflateChunk = 4 << 10

// deflateSource reads the compressed payload of the current message across its frames
// (handling control frames between them), then inflateTail.
type deflateSource struct {
	c    *Conn
	tail int // bytes of inflateTail already read
}

func (s *deflateSource) Read(p []byte) (int, error) {
	c := s.c
	for c.frameLeft == 0 {
		if c.frame.Fin {
			if s.tail == len(inflateTail) {
				return 0, io.EOF
			}
			n := copy(p, inflateTail[s.tail:])
			s.tail += n
			return n, nil
		}
		if err := c.nextContinuation(); err != nil {
			return 0, err
		}
	}
	return c.readPayload(p)
}

// inflater is a pooled decompressor with the readers it reads through (the decompressor's
// fast paths; owning them lets a pooled inflater drop its source): br for a message read
// from the connection, mem for a whole message in memory (the event-driven mode).
type inflater struct {
	br  *bufio.Reader
	mem bytes.Reader
	fr  io.ReadCloser
}

var inflaterPool = sync.Pool{New: func() any {
	br := bufio.NewReader(nil)
	return &inflater{br: br, fr: flate.NewReader(br)}
}}

// startInflate borrows an inflater for the compressed message that has just started,
// primed with the receiving history when context takeover is on.
func (c *Conn) startInflate() {
	d := c.cfg.deflate
	c.src = deflateSource{c: c}
	c.inflated = 0
	var dict []byte
	if d.recvTakeover {
		dict = d.received.buf
	}
	in := inflaterPool.Get().(*inflater)
	in.br.Reset(&c.src)
	_ = in.fr.(flate.Resetter).Reset(in.br, dict)
	d.inflater = in
}

// readInflated reads inflated bytes of the current compressed message into p. At the end of
// the message it returns io.EOF (with the last bytes, possibly), having read every frame of
// the message and returned the inflater. The inflated size is bounded by the read limit: the
// message fails with StatusMessageTooBig as soon as it goes past it, so memory never does.
func (c *Conn) readInflated(p []byte) (int, error) {
	d := c.cfg.deflate
	if room := c.cfg.readLimit - c.inflated + 1; int64(len(p)) > room {
		p = p[:room] // one byte over the limit is enough to know
	}
	n, err := d.inflater.fr.Read(p)
	c.inflated += int64(n)
	if c.inflated > c.cfg.readLimit {
		return 0, c.fail(StatusMessageTooBig, "message inflates past the read limit")
	}
	if n > 0 {
		if c.msgType == MessageText && !c.utf8.feed(p[:n]) {
			return 0, c.fail(StatusInvalidPayload, "invalid UTF-8 in text message")
		}
		if d.recvTakeover {
			d.received.write(p[:n])
		}
	}
	switch {
	case err == io.EOF:
		return n, c.endInflate()
	case err != nil && c.readErr != nil:
		return n, c.readErr // the connection failed while reading the compressed payload
	case err != nil:
		return n, c.fail(StatusInvalidPayload, "invalid compressed data: "+err.Error())
	}
	return n, nil
}

// endInflate finishes a compressed message: it reads what the inflater left of the frames
// (a sender may end its data with a final block before the end of the message), returns the
// inflater to its pool and checks the text. It returns io.EOF when all is well.
func (c *Conn) endInflate() error {
	d := c.cfg.deflate
	d.inflater.br.Reset(nil)
	inflaterPool.Put(d.inflater)
	d.inflater = nil
	var scratch [256]byte
	for {
		_, err := c.src.Read(scratch[:])
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := c.finishMessage(); err != nil {
		return err
	}
	return io.EOF
}
