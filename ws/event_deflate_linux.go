//go:build linux

package ws

import (
	"io"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"
)

// permessage-deflate in the event-driven mode. A compressed message is assembled
// compressed as its frames arrive (evConn.payload; its compressed size is bounded by the
// read limit), then inflated from memory in one go when its last frame is in: the
// decompressor cannot stop at the end of the bytes received so far and resume later, and
// holding one per connection between reads would cost its ~40 KiB window. So a connection
// holds an inflater only while it inflates a message; between messages, only the
// receiving history that context takeover needs (deflateState.received).

// deliverCompressed ends a compressed message: it inflates the assembled payload, checks
// the text and calls OnMessage with the inflated message.
func (e *evConn) deliverCompressed() error {
	c := e.c
	c.inMessage = false
	e.msg = appendPooled(e.msg, []byte(inflateTail), 0)
	out, err := c.inflateWhole(*e.msg)
	putBuffer(e.msg)
	e.msg = nil
	if err != nil {
		return err
	}
	if c.msgType == MessageText && !utf8.Valid(*out) {
		putBuffer(out)
		return c.fail(StatusInvalidPayload, "invalid UTF-8 in text message")
	}
	e.h.OnMessage(c, c.msgType, *out)
	putBuffer(out)
	return nil
}

// inflateWhole inflates a compressed message held in memory (the payloads of its frames
// put together, then inflateTail) into a pooled buffer. With context takeover the
// decompressor is primed with the receiving history, which the message then joins. The
// inflated size is bounded by the read limit: past it the connection fails with
// StatusMessageTooBig, having allocated no more than the limit; corrupt data fails it
// with StatusInvalidPayload.
func (c *Conn) inflateWhole(compressed []byte) (*[]byte, error) {
	d := c.cfg.deflate
	var dict []byte
	if d.recvTakeover {
		dict = d.received.buf
	}
	in := inflaterPool.Get().(*inflater)
	in.mem.Reset(compressed)
	_ = in.fr.(flate.Resetter).Reset(&in.mem, dict)
	defer func() {
		in.mem.Reset(nil)
		inflaterPool.Put(in)
	}()
	limit := c.cfg.readLimit + 1 // one byte over the read limit is enough to know
	out := getBuffer(int(min(limit, int64(max(inflateChunk, 4*len(compressed))))))
	for {
		if len(*out) == cap(*out) {
			out = growPooled(out, int(min(limit, 2*int64(cap(*out)))))
		}
		room := (*out)[len(*out):cap(*out)]
		if left := limit - int64(len(*out)); int64(len(room)) > left {
			room = room[:left]
		}
		n, err := in.fr.Read(room)
		*out = (*out)[:len(*out)+n]
		switch {
		case int64(len(*out)) >= limit:
			putBuffer(out)
			return nil, c.fail(StatusMessageTooBig, "message inflates past the read limit")
		case err == io.EOF:
			if d.recvTakeover {
				d.received.write(*out)
			}
			return out, nil
		case err != nil:
			putBuffer(out)
			return nil, c.fail(StatusInvalidPayload, "invalid compressed data: "+err.Error())
		}
	}
}
