package wstest

import (
	"bytes"
	"compress/flate"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

// sampleText returns n bytes of word-like text (compressible, with repeats
// at every distance).
func sampleText(seed uint64, n int) []byte {
	words := []string{"alpha", "beta", "gamma", "delta", "websocket", "deflate", "frame", "window", "context", "{\"k\": 1}", "\n"}
	r := rand.New(rand.NewPCG(seed, 7))
	var b []byte
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		b = append(b, ' ')
		if r.IntN(4) == 0 {
			b = fmt.Appendf(b, "%d ", r.IntN(100000))
		}
	}
	return b[:n]
}

func TestCompressorEmptyMessage(t *testing.T) {
	for _, bits := range []int{0, 9} {
		c := &Compressor{WindowBits: bits}
		if got := c.Compress(nil); !bytes.Equal(got, []byte{0}) {
			t.Errorf("bits=%d: empty message compressed to % x, want 00", bits, got)
		}
	}
	var d Decompressor
	out, err := d.Decompress([]byte{0})
	if err != nil || len(out) != 0 {
		t.Fatalf("Decompress(00) = %q, %v", out, err)
	}
}

func TestCompressorRoundTripAndInspect(t *testing.T) {
	type tc struct {
		bits  int
		noCtx bool
	}
	for _, c := range []tc{{0, false}, {0, true}, {8, false}, {9, true}, {12, false}, {15, false}} {
		t.Run(fmt.Sprintf("bits%d_noctx%v", c.bits, c.noCtx), func(t *testing.T) {
			comp := &Compressor{WindowBits: c.bits, NoContextTakeover: c.noCtx}
			dec := &Decompressor{WindowBits: c.bits, NoContextTakeover: c.noCtx}
			crossRefs := 0
			for i, n := range []int{0, 16, 300, 5000, 40000, 5000, 5000} {
				msg := sampleText(uint64(i%4), n)
				p := comp.Compress(msg)
				info, err := InspectDeflate(p)
				if err != nil {
					t.Fatalf("message %d: InspectDeflate: %v", i, err)
				}
				if info.OutLen != n {
					t.Errorf("message %d: InspectDeflate OutLen = %d, want %d", i, info.OutLen, n)
				}
				if c.bits > 0 && info.MaxDistance >= 1<<c.bits {
					t.Errorf("message %d: distance %d with a window of %d bits", i, info.MaxDistance, c.bits)
				}
				if c.noCtx && info.MaxReach > 0 {
					t.Errorf("message %d: reaches %d bytes before the message without context takeover", i, info.MaxReach)
				}
				if info.MaxReach > 0 {
					crossRefs++
				}
				out, err := dec.Decompress(p)
				if err != nil || !bytes.Equal(out, msg) {
					t.Fatalf("message %d: round trip failed: %v (%d bytes, want %d)", i, err, len(out), n)
				}
			}
			if !c.noCtx && crossRefs == 0 {
				t.Errorf("no message referred to an earlier one with context takeover")
			}
		})
	}
}

func TestDecompressorDetectsFarReferences(t *testing.T) {
	// A message that repeats the previous one refers back ~4000 bytes: a
	// decompressor with a 9-bit history or no context must fail on it.
	comp := &Compressor{}
	msg := sampleText(1, 4000)
	p1, p2 := comp.Compress(msg), comp.Compress(msg)
	for _, d := range []*Decompressor{{WindowBits: 9}, {NoContextTakeover: true}} {
		if _, err := d.Decompress(p1); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Decompress(p2); err == nil {
			t.Errorf("%+v: inflating a far reference succeeded", *d)
		}
	}
	d := &Decompressor{Limit: 1000}
	if _, err := d.Decompress(p1); err != ErrInflateLimit {
		t.Errorf("Limit: err = %v", err)
	}
	// InspectDeflate on known streams.
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	w.Write(make([]byte, 10000))
	w.Flush()
	info, err := InspectDeflate(bytes.TrimSuffix(buf.Bytes(), DeflateTail))
	if err != nil || info.OutLen != 10000 || info.MaxDistance != 1 || info.MaxReach != 0 {
		t.Errorf("zeros: %+v, %v", info, err)
	}
	if _, err := InspectDeflate([]byte{0x07}); err == nil {
		t.Errorf("reserved block type accepted")
	}
}

func TestCompressedFrames(t *testing.T) {
	fs := CompressedFrames(OpText, []byte("abcdefg"), 3)
	if len(fs) != 3 || fs[0].Rsv != RSV1 || fs[0].Opcode != OpText || fs[0].Fin || fs[1].Rsv != 0 || fs[1].Opcode != OpContinuation || !fs[2].Fin || string(fs[2].Payload) != "g" {
		t.Fatalf("frames = %v", fs)
	}
	fs = CompressedFrames(OpBinary, []byte{0}, 0)
	if len(fs) != 1 || !fs[0].Fin || fs[0].Rsv != RSV1 {
		t.Fatalf("frames = %v", fs)
	}
}

func TestParseExtensions(t *testing.T) {
	exts, err := ParseExtensions([]string{`permessage-deflate; client_max_window_bits="10" ; server_no_context_takeover, x-foo`, ` permessage-deflate;client_max_window_bits`})
	if err != nil {
		t.Fatal(err)
	}
	if len(exts) != 3 || exts[0].Name != "permessage-deflate" || len(exts[0].Params) != 2 || exts[1].Name != "x-foo" || len(exts[2].Params) != 1 {
		t.Fatalf("exts = %+v", exts)
	}
	if p, ok := exts[0].Param("client_max_window_bits"); !ok || p.Value != "10" || !p.HasValue {
		t.Errorf("param = %+v", p)
	}
	if p, ok := exts[2].Param("client_max_window_bits"); !ok || p.HasValue {
		t.Errorf("param = %+v", p)
	}
	for _, bad := range []string{`permessage-deflate; x="1`, `permessage-deflate; =1`, `permessage-deflate x`, `; a`} {
		if _, err := ParseExtensions([]string{bad}); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestAcceptWithHeader(t *testing.T) {
	ln, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		p   *Peer
		req *http.Request
		err error
	}
	ch := make(chan res, 1)
	go func() {
		p, req, err := ln.AcceptWith(2*time.Second, AcceptOptions{Header: func(req *http.Request) http.Header {
			return http.Header{"Sec-WebSocket-Extensions": {req.Header.Get("Sec-WebSocket-Extensions") + "; server_no_context_takeover"}}
		}})
		ch <- res{p, req, err}
	}()
	c, resp, err := Dial(ln.Addr(), &DialOptions{Header: http.Header{"Sec-WebSocket-Extensions": {"permessage-deflate"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.p.Close()
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != "permessage-deflate; server_no_context_takeover" {
		t.Errorf("response extensions = %q", got)
	}
}
