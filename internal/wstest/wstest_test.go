package wstest

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// pair returns a client peer and a server peer connected over loopback.
func pair(t *testing.T) (c, s *Peer) {
	t.Helper()
	ln, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type res struct {
		p   *Peer
		req *http.Request
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, req, err := ln.Accept(2 * time.Second)
		ch <- res{p, req, err}
	}()
	c, _, err = Dial(ln.Addr(), &DialOptions{Path: "/x?y=1", Header: http.Header{"Origin": {"http://a.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.p.Close() })
	if r.req.URL.RequestURI() != "/x?y=1" || r.req.Header.Get("Origin") != "http://a.example" {
		t.Errorf("request = %v %v", r.req.URL, r.req.Header)
	}
	return c, r.p
}

func TestAcceptKeyRFCExample(t *testing.T) {
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
}

func TestEncodeKnownBytes(t *testing.T) {
	p := &Peer{Role: RoleServer}
	// RFC 6455 §5.7 examples.
	if got, want := p.Encode(Frame{Fin: true, Opcode: OpText, Payload: []byte("Hello")}), []byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}; !bytes.Equal(got, want) {
		t.Errorf("unmasked Hello = % x, want % x", got, want)
	}
	got := p.Encode(Frame{Fin: true, Opcode: OpText, Payload: []byte("Hello")}, WithKey([4]byte{0x37, 0xfa, 0x21, 0x3d}))
	want := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	if !bytes.Equal(got, want) {
		t.Errorf("masked Hello = % x, want % x", got, want)
	}
	got = p.Encode(Frame{Fin: true, Opcode: OpBinary, Payload: make([]byte, 256)})
	if !bytes.Equal(got[:4], []byte{0x82, 0x7E, 0x01, 0x00}) {
		t.Errorf("256-byte header = % x", got[:4])
	}
	got = p.Encode(Frame{Fin: true, Opcode: OpBinary, Payload: make([]byte, 65536)})
	if !bytes.Equal(got[:10], []byte{0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}) {
		t.Errorf("64KiB header = % x", got[:10])
	}
	got = p.Encode(Frame{Fin: false, Rsv: RSV1 | RSV3, Opcode: 0x3, Payload: []byte{1}}, WithLenForm(Len64))
	if !bytes.Equal(got, []byte{0x53, 0x7F, 0, 0, 0, 0, 0, 0, 0, 1, 1}) {
		t.Errorf("rsv/len64 frame = % x", got)
	}
	got = p.Encode(Frame{Fin: true, Opcode: OpText}, DeclaredLength(1<<63|5))
	if !bytes.Equal(got, []byte{0x81, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 5}) {
		t.Errorf("MSB length frame = % x", got)
	}
}

func TestRoundTripAllLengthForms(t *testing.T) {
	c, s := pair(t)
	for _, n := range []int{0, 1, 125, 126, 127, 128, 65535, 65536, 1 << 20} {
		payload := bytes.Repeat([]byte{byte(n), 'x', 0xff}, n/3+1)[:n]
		for _, form := range []LenForm{LenMinimal, Len16, Len64} {
			errc := make(chan error, 1)
			go func() { errc <- c.WriteFrame(Frame{Fin: true, Opcode: OpBinary, Payload: payload}, WithLenForm(form)) }()
			f, err := s.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if !f.Masked || !f.Fin || f.Opcode != OpBinary || !bytes.Equal(f.Payload, payload) {
				t.Fatalf("n=%d form=%d: got %v", n, form, f)
			}
			// And the other way, unmasked.
			go func() { errc <- s.WriteFrame(Frame{Fin: true, Opcode: OpText, Payload: payload}, WithLenForm(form)) }()
			f, err = c.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if f.Masked || !bytes.Equal(f.Payload, payload) {
				t.Fatalf("n=%d form=%d: got %v", n, form, f)
			}
		}
	}
}

func TestFreshKeysAndChunks(t *testing.T) {
	c, s := pair(t)
	b := c.Encode(Frame{Fin: false, Opcode: OpText, Payload: []byte("frag1")})
	b = c.AppendEncode(b, Frame{Fin: true, Opcode: OpPing, Payload: []byte("p")})
	b = c.AppendEncode(b, Frame{Fin: true, Opcode: OpContinuation, Payload: []byte("frag2")})
	errc := make(chan error, 1)
	go func() { errc <- c.WriteChunked(b, time.Millisecond, 1) }()
	m, err := s.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if m.Opcode != OpText || string(m.Payload) != "frag1frag2" || len(m.Frames) != 2 || len(m.Controls) != 1 || string(m.Controls[0].Payload) != "p" {
		t.Fatalf("message = %+v", m)
	}
	keys := map[[4]byte]bool{m.Frames[0].Key: true, m.Frames[1].Key: true, m.Controls[0].Key: true}
	if len(keys) != 3 {
		t.Errorf("keys not fresh: %v", keys)
	}
}

func TestCloseAndEOF(t *testing.T) {
	c, s := pair(t)
	if err := c.WriteClose(1000, "bye"); err != nil {
		t.Fatal(err)
	}
	_, err := s.ReadMessage()
	var ce *CloseReceivedError
	if !errors.As(err, &ce) {
		t.Fatalf("ReadMessage err = %v", err)
	}
	if code, reason, ok := ParseClose(ce.Frame.Payload); !ok || code != 1000 || reason != "bye" {
		t.Fatalf("close = %v", ce.Frame)
	}
	s.WriteRaw([]byte("junk"))
	s.Close()
	extra, err := c.WaitEOF(time.Second)
	if err != nil || extra != 4 {
		t.Fatalf("WaitEOF = %d, %v", extra, err)
	}
}

func TestWaitEOFTimeout(t *testing.T) {
	c, _ := pair(t)
	start := time.Now()
	_, err := c.WaitEOF(100 * time.Millisecond)
	if !IsTimeout(err) {
		t.Fatalf("WaitEOF err = %v, want timeout", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("WaitEOF took %v", time.Since(start))
	}
	if _, err := c.ReadFrameTimeout(50 * time.Millisecond); !IsTimeout(err) {
		t.Fatalf("ReadFrameTimeout err = %v, want timeout", err)
	}
}

func TestServerHandshakeRejectsBadKey(t *testing.T) {
	ln, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	errc := make(chan error, 1)
	go func() {
		_, _, err := ln.Accept(2 * time.Second)
		errc <- err
	}()
	nc, err := net.Dial("tcp", ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	if err := <-errc; err == nil {
		t.Fatal("Accept succeeded on a bad key")
	}
}
