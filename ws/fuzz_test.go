package ws

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// scriptedConn is a net.Conn whose reads return a fixed byte string and then EOF, and whose
// writes are recorded.
type scriptedConn struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (s *scriptedConn) Read(p []byte) (int, error)       { return s.in.Read(p) }
func (s *scriptedConn) Write(p []byte) (int, error)      { return s.out.Write(p) }
func (s *scriptedConn) Close() error                     { return nil }
func (s *scriptedConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scriptedConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scriptedConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptedConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptedConn) SetWriteDeadline(time.Time) error { return nil }

// maskedFrame builds a client frame.
func maskedFrame(fin bool, op Opcode, payload string) []byte {
	h := Header{Fin: fin, Opcode: op, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}, Length: int64(len(payload))}
	p := []byte(payload)
	MaskBytes(h.Mask, 0, p)
	return append(AppendHeader(nil, h), p...)
}

func FuzzFrameReader(f *testing.F) {
	seeds := [][]byte{
		maskedFrame(true, OpText, "Hello"),
		append(maskedFrame(false, OpText, "Hel"), maskedFrame(true, OpContinuation, "lo")...),
		append(maskedFrame(false, OpBinary, "a"), append(maskedFrame(true, OpPing, "p"), maskedFrame(true, OpContinuation, "b")...)...),
		maskedFrame(true, OpClose, "\x03\xe8bye"),
		maskedFrame(true, OpText, "\xed\xa0\x80"),
		{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4},
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'}, // unmasked
		{0xc1, 0x80, 1, 2, 3, 4},              // RSV1
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := &scriptedConn{in: bytes.NewReader(nil)}
		c := newConn(sc, data, connConfig{isServer: true, readLimit: 1 << 16})
		for i := 0; i <= len(data); i++ {
			typ, msg, err := c.ReadMessage(context.Background())
			if err != nil {
				var ce *CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("read error %v is not a *CloseError", err)
				}
				return
			}
			if typ != MessageText && typ != MessageBinary || len(msg) > 1<<16 {
				t.Fatalf("message type %v, length %d", typ, len(msg))
			}
		}
		t.Fatal("more messages than input bytes")
	})
}

func FuzzHandshakeParser(f *testing.F) {
	f.Add([]byte(upgradeRequest(nil)))
	f.Add([]byte(upgradeRequest(map[string]string{"Connection": "keep-alive, Upgrade"})))
	f.Add([]byte(upgradeRequest(map[string]string{"Sec-WebSocket-Version": "8"})))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte(upgradeRequest(nil) + "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc := &scriptedConn{in: bytes.NewReader(data)}
		u := &Upgrader{MaxHeaderBytes: 2048}
		c, _, err := u.UpgradeConn(sc)
		resp := sc.out.String()
		if err == nil {
			if c == nil || !bytes.HasPrefix([]byte(resp), []byte("HTTP/1.1 101 ")) {
				t.Fatalf("accepted without a 101: %q", resp)
			}
			c.CloseNow()
			return
		}
		var he *HandshakeError
		if !errors.As(err, &he) {
			t.Fatalf("error %v is not a *HandshakeError", err)
		}
		if he.StatusCode != 0 && !bytes.HasPrefix([]byte(resp), []byte("HTTP/1.1 4")) && !bytes.HasPrefix([]byte(resp), []byte("HTTP/1.1 5")) {
			t.Fatalf("refused with %d but answered %q", he.StatusCode, resp)
		}
		if he.StatusCode == 0 && resp != "" {
			t.Fatalf("no status but answered %q", resp)
		}
	})
}
