package ws_test

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

// fuzzConn is a net.Conn whose reads return a fixed byte string and then
// EOF, and whose writes are counted and discarded.
type fuzzConn struct {
	in      *bytes.Reader
	written int
}

func (c *fuzzConn) Read(p []byte) (int, error)       { return c.in.Read(p) }
func (c *fuzzConn) Write(p []byte) (int, error)      { c.written += len(p); return len(p), nil }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

const fuzzRequest = "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"

const fuzzReadLimit = 64 << 10

// fuzzInput turns fuzz data into the bytes a client sends after the
// handshake. data[0] selects the mode: bit 7 set means data[1:] is raw
// frame bytes; otherwise data[1:] is a compressed payload, sent as a text
// (bit 6) or binary message in frames of 1+data[0]&0x3f bytes (one frame
// when that is 64), RSV1 on the first, then sent again as a second message
// (the window carries over).
func fuzzInput(data []byte) []byte {
	if len(data) == 0 {
		return nil
	}
	mode, body := data[0], data[1:]
	if mode&0x80 != 0 {
		return body
	}
	op := wstest.OpBinary
	if mode&0x40 != 0 {
		op = wstest.OpText
	}
	size := 1 + int(mode&0x3f)
	if size == 64 {
		size = 0
	}
	p := &wstest.Peer{Role: wstest.RoleClient}
	var b []byte
	for range 2 {
		for _, f := range wstest.CompressedFrames(op, body, size) {
			b = p.AppendEncode(b, f, wstest.WithKey([4]byte{1, 2, 3, 4}))
		}
	}
	return b
}

func fuzzSeedCompressed(msg []byte, level int) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, level)
	for len(msg) > 0 {
		n := min(len(msg), 1<<20)
		w.Write(msg[:n])
		msg = msg[n:]
	}
	w.Flush()
	return bytes.TrimSuffix(buf.Bytes(), wstest.DeflateTail)
}

func FuzzInflate(f *testing.F) {
	hello := []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	seeds := [][]byte{
		append([]byte{0x3f}, hello...),
		append([]byte{0x7f}, hello...),
		append([]byte{0x41}, hello...), // text in 2-byte frames
		{0x3f, 0x00},                   // empty message
		append([]byte{0x3f}, fuzzSeedCompressed([]byte(strings.Repeat("compressible text ", 500)), flate.BestCompression)...),
		append([]byte{0x47}, fuzzSeedCompressed([]byte("text with invalid UTF-8 \xed\xa0\x80"), flate.DefaultCompression)...),
		append([]byte{0x3f}, zeroBomb(10<<20)...),          // 10 MiB of zeros
		append([]byte{0x1f}, zeroBomb(fuzzReadLimit+1)...), // just over the limit, fragmented
		append([]byte{0x3f}, zeroBomb(fuzzReadLimit)...),   // exactly the limit
		{0x3f, 0x07, 0x00},                        // reserved block type
		{0x3f, 0x00, 0x05, 0x00, 0x12, 0x34, 'a'}, // stored LEN/NLEN mismatch
		{0x3f, 0xfd, 0xff, 0xff, 0xff, 0xff},      // bad dynamic header
		append([]byte{0x3f}, fuzzSeedCompressed(make([]byte, 300), flate.HuffmanOnly)...),
	}
	// Raw frames: a masked compressed text frame, RSV1 on a ping, RSV1 on
	// a continuation.
	p := &wstest.Peer{Role: wstest.RoleClient}
	key := wstest.WithKey([4]byte{})
	raw := p.Encode(wstest.Frame{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpText, Payload: hello}, key)
	seeds = append(seeds, append([]byte{0x80}, raw...))
	seeds = append(seeds, append([]byte{0x80}, p.Encode(wstest.Frame{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpPing, Payload: []byte("p")}, key)...))
	two := p.Encode(wstest.Frame{Rsv: wstest.RSV1, Opcode: wstest.OpBinary, Payload: hello[:3]}, key)
	two = p.AppendEncode(two, wstest.Frame{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpContinuation, Payload: hello[3:]}, key)
	seeds = append(seeds, append([]byte{0x80}, two...))
	for _, s := range seeds {
		f.Add(s)
	}
	// The 1 GiB bomb is too large for the seed corpus as one input; its
	// first frames (3 MiB of zeros) are.
	var gib []byte
	for _, fr := range gibBombFrames(wstest.OpBinary)[:3] {
		gib = append(gib, fr.Payload...)
	}
	f.Add(append([]byte{0x3f}, bytes.TrimSuffix(gib, wstest.DeflateTail)...))

	f.Fuzz(inflateOne)
}

// inflateOne checks one fuzz input: no panic, no message over the read
// limit, every error a *ws.CloseError.
func inflateOne(t *testing.T, data []byte) {
	conn := &fuzzConn{in: bytes.NewReader(append([]byte(fuzzRequest), fuzzInput(data)...))}
	u := &ws.Upgrader{
		ReadLimit:   fuzzReadLimit,
		CheckOrigin: func(*http.Request) bool { return true },
		Compression: &ws.CompressionOptions{},
	}
	c, _, err := u.UpgradeConn(conn)
	if err != nil {
		t.Fatalf("UpgradeConn: %v", err)
	}
	defer c.CloseNow()
	if c.Compression() == "" {
		t.Fatalf("permessage-deflate not agreed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		typ, msg, err := c.ReadMessage(ctx)
		if err != nil {
			var ce *ws.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("read error %v (%T) is not a *ws.CloseError", err, err)
			}
			return
		}
		if typ != ws.MessageText && typ != ws.MessageBinary {
			t.Fatalf("message type %v", typ)
		}
		if len(msg) > fuzzReadLimit {
			t.Fatalf("message of %d bytes with a read limit of %d", len(msg), fuzzReadLimit)
		}
		if i > len(data)+2 {
			t.Fatalf("%d messages from %d input bytes", i+1, len(data))
		}
	}
}
