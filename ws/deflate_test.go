package ws

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestParseExtensions(t *testing.T) {
	exts, err := parseExtensions([]string{`permessage-deflate; client_max_window_bits; server_max_window_bits="10", x-other , permessage-deflate`})
	if err != nil {
		t.Fatal(err)
	}
	if len(exts) != 3 || exts[0].name != "permessage-deflate" || exts[1].name != "x-other" || len(exts[2].params) != 0 {
		t.Fatalf("%+v", exts)
	}
	p := exts[0].params
	if len(p) != 2 || p[0] != (extensionParam{name: "client_max_window_bits"}) || p[1] != (extensionParam{"server_max_window_bits", "10", true}) {
		t.Fatalf("%+v", p)
	}
	for _, bad := range []string{`permessage-deflate;`, `permessage-deflate; a=`, `;x`, `a b`, `a; b="unterminated`, `a=b`, `a; b=c d`} {
		if _, err := parseExtensions([]string{bad}); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func TestServerNegotiatesDeflate(t *testing.T) {
	tests := []struct {
		offer string
		opts  CompressionOptions
		want  string // "" = declined
	}{
		{"permessage-deflate", CompressionOptions{}, "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits", CompressionOptions{}, "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits", CompressionOptions{ClientMaxWindowBits: 10}, "permessage-deflate; client_max_window_bits=10"},
		{"permessage-deflate", CompressionOptions{ClientMaxWindowBits: 10}, "permessage-deflate"},
		{"permessage-deflate; client_max_window_bits=12", CompressionOptions{}, "permessage-deflate; client_max_window_bits=12"},
		{"permessage-deflate; server_max_window_bits=10", CompressionOptions{}, "permessage-deflate; server_max_window_bits=10"},
		{"permessage-deflate; server_max_window_bits=15", CompressionOptions{ServerMaxWindowBits: 9}, "permessage-deflate; server_max_window_bits=9"},
		{"permessage-deflate", CompressionOptions{ServerMaxWindowBits: 12}, "permessage-deflate; server_max_window_bits=12"},
		{"permessage-deflate; server_no_context_takeover; client_no_context_takeover", CompressionOptions{}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"permessage-deflate", CompressionOptions{ServerNoContextTakeover: true, ClientNoContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{`permessage-deflate; client_max_window_bits="9"`, CompressionOptions{}, "permessage-deflate; client_max_window_bits=9"},
		{"permessage-deflate; server_max_window_bits=7, permessage-deflate", CompressionOptions{}, "permessage-deflate"},
		{"permessage-deflate; unknown", CompressionOptions{}, ""},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", CompressionOptions{}, ""},
		{"permessage-deflate; server_max_window_bits", CompressionOptions{}, ""},
		{"permessage-deflate; server_max_window_bits=16", CompressionOptions{}, ""},
		{"permessage-deflate; client_max_window_bits=08", CompressionOptions{}, ""},
		{"permessage-deflate; server_no_context_takeover=1", CompressionOptions{}, ""},
		{"x-webkit-deflate-frame", CompressionOptions{}, ""},
	}
	for _, tt := range tests {
		exts, err := parseExtensions([]string{tt.offer})
		if err != nil {
			t.Fatalf("%q: %v", tt.offer, err)
		}
		got, _, ok := negotiateDeflate(exts, &tt.opts)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("offer %q opts %+v: got %q, want %q", tt.offer, tt.opts, got, tt.want)
		}
	}
}

func TestClientChecksDeflateResponse(t *testing.T) {
	opts := &CompressionOptions{ClientMaxWindowBits: 12}
	good := []string{"", "permessage-deflate", "permessage-deflate; server_no_context_takeover", "permessage-deflate; client_max_window_bits=10", "permessage-deflate; server_max_window_bits=8"}
	bad := []string{"x-other", "permessage-deflate, permessage-deflate", "permessage-deflate; client_max_window_bits=13", "permessage-deflate; client_max_window_bits",
		"permessage-deflate; foo", "permessage-deflate; server_max_window_bits=16", "permessage-deflate; client_no_context_takeover; client_no_context_takeover"}
	for _, h := range good {
		exts, _ := parseExtensions([]string{h})
		if _, err := acceptDeflateResponse(exts, opts); err != nil {
			t.Errorf("%q refused: %v", h, err)
		}
	}
	for _, h := range bad {
		exts, _ := parseExtensions([]string{h})
		if _, err := acceptDeflateResponse(exts, opts); err == nil {
			t.Errorf("%q accepted", h)
		}
	}
}

// jsonLike returns n bytes of compressible, JSON-like text.
func jsonLike(n, seed int) []byte {
	var b bytes.Buffer
	for i := seed; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"user%d","event":"message","text":"hello %d"},`, i, i%37, i*7)
	}
	return b.Bytes()[:n]
}

func TestCompressedEchoUnderEveryTakeoverAndWindow(t *testing.T) {
	variants := []CompressionOptions{
		{},
		{Threshold: -1},
		{ServerNoContextTakeover: true, ClientNoContextTakeover: true},
		{ServerMaxWindowBits: 9, ClientMaxWindowBits: 10},
		{ServerMaxWindowBits: 8, ClientMaxWindowBits: 8, Level: 9},
	}
	for _, opts := range variants {
		t.Run(fmt.Sprintf("%+v", opts), func(t *testing.T) {
			srv := echoServer(t, &Upgrader{Compression: &opts})
			ctx := context.Background()
			c, _, err := Dial(ctx, wsURL(srv), &DialOptions{Compression: &opts})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if !strings.HasPrefix(c.Compression(), "permessage-deflate") {
				t.Fatalf("not negotiated: %q", c.Compression())
			}
			for i, size := range []int{0, 1, 100, 600, 5000, 40000, 200000, 40000, 600} {
				want := jsonLike(size, i)
				typ := MessageText
				if i%2 == 1 {
					typ = MessageBinary
				}
				if err := c.WriteMessageCompressed(ctx, typ, want, i%3 != 2); err != nil {
					t.Fatal(err)
				}
				gotTyp, got, err := c.ReadMessage(ctx)
				if err != nil || gotTyp != typ || !bytes.Equal(got, want) {
					t.Fatalf("message %d (%d bytes): %v, %d bytes, %v", i, size, gotTyp, len(got), err)
				}
			}
			// A fragmented compressed message from NextWriter.
			w, err := c.NextWriter(ctx, MessageText)
			if err != nil {
				t.Fatal(err)
			}
			want := jsonLike(100000, 99)
			for i := 0; i < len(want); i += 7000 {
				w.Write(want[i:min(i+7000, len(want))])
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, got, err := c.ReadMessage(ctx); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("NextWriter message: %d bytes, %v", len(got), err)
			}
		})
	}
}

func TestDecompressionBombClosesWith1009(t *testing.T) {
	client, server := pair(t, &Upgrader{Compression: &CompressionOptions{}, ReadLimit: 1 << 20})
	_ = client
	// The pair was dialled without compression; negotiate by hand on fresh state instead.
	server.cfg.deflate = newDeflateState(deflateParams{}, &CompressionOptions{}, true)
	client.cfg.deflate = newDeflateState(deflateParams{}, &CompressionOptions{}, false)
	// 64 MiB of zeros compress to about 64 KiB.
	var bomb []byte
	d := newDeflateState(deflateParams{}, &CompressionOptions{}, false)
	if err := d.compress(&bomb, make([]byte, 64<<20)); err != nil {
		t.Fatal(err)
	}
	client.cfg.deflate = nil // the bomb goes out as it is, with RSV1 set by hand
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	errc := make(chan error, 1)
	go func() { _, _, err := server.ReadMessage(context.Background()); errc <- err }()
	if err := client.writeFrame(context.Background(), true, OpBinary, Rsv1, bomb); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; CloseStatus(err) != StatusMessageTooBig {
		t.Fatalf("server read %v, want 1009", err)
	}
	runtime.ReadMemStats(&after)
	// The message buffer may reach the limit (1 MiB) and no further; its doublings sum to
	// about twice that, and a fresh inflater and the bomb's own frames add about 1.4 MiB
	// (3.4 MiB measured; 5.4 MiB when the buffer could double past the limit).
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("reading the bomb allocated %d KiB", alloc>>10)
	}
}

// BenchmarkDeflateMemoryPerConnection reports the heap each connection keeps between
// messages once compression has been used both ways (histories full), with and without
// context takeover. Both ends of each pair are in this process, so the figure is the heap
// per pair divided by two.
func BenchmarkDeflateMemoryPerConnection(b *testing.B) {
	for _, takeover := range []bool{true, false} {
		b.Run(fmt.Sprintf("takeover=%v", takeover), func(b *testing.B) {
			opts := &CompressionOptions{Threshold: -1, ServerNoContextTakeover: !takeover, ClientNoContextTakeover: !takeover}
			const pairs = 50
			msg := jsonLike(64<<10, 1)
			for i := 0; i < b.N; i++ {
				var conns []*Conn
				before := heapInUse()
				for p := 0; p < pairs; p++ {
					client, server := pair(b, &Upgrader{Compression: opts})
					client.cfg.deflate = newDeflateState(deflateParams{serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover}, opts, false)
					server.cfg.deflate = newDeflateState(deflateParams{serverNoContextTakeover: !takeover, clientNoContextTakeover: !takeover}, opts, true)
					go func() {
						typ, m, err := server.ReadMessage(context.Background())
						if err == nil {
							server.WriteMessage(context.Background(), typ, m)
						}
					}()
					client.WriteMessage(context.Background(), MessageText, msg)
					if _, _, err := client.ReadMessage(context.Background()); err != nil {
						b.Fatal(err)
					}
					conns = append(conns, client, server)
				}
				after := heapInUse()
				b.ReportMetric(float64(after-before)/float64(len(conns)), "B/conn")
				for _, c := range conns {
					c.CloseNow()
				}
			}
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func TestContextTakeoverShrinksRepeats(t *testing.T) {
	for _, takeover := range []bool{true, false} {
		d := newDeflateState(deflateParams{serverNoContextTakeover: !takeover}, &CompressionOptions{}, true)
		history := jsonLike(40000, 0) // more than the window
		msg := jsonLike(3000, 777)
		var first, second []byte
		if err := d.compress(&first, history); err != nil {
			t.Fatal(err)
		}
		first = first[:0]
		if err := d.compress(&first, msg); err != nil {
			t.Fatal(err)
		}
		if err := d.compress(&second, msg); err != nil {
			t.Fatal(err)
		}
		shrunk := len(second)*4 < len(first)
		if shrunk != takeover {
			t.Errorf("takeover=%v: a repeated %d-byte message took %d then %d bytes", takeover, len(msg), len(first), len(second))
		}
	}
}

// The history keeps exactly the last size bytes of the stream, and its buffer never grows
// past size (it is what an idle connection with context takeover holds).
func TestHistoryKeepsTheLastWindowAndNoMore(t *testing.T) {
	const size = 1 << 15
	h := history{size: size}
	var stream []byte
	for i, n := range []int{0, 1, 100, 20000, 20000, 5, size - 1, size, size + 1, 3000, 600, 600, 1, 0, 2 * size, 12345} {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i*31 + j)
		}
		h.write(p)
		stream = append(stream, p...)
		want := stream[max(0, len(stream)-size):]
		if !bytes.Equal(h.buf, want) {
			t.Fatalf("write %d (%d bytes): history holds %d bytes, not the last %d of the stream", i, n, len(h.buf), len(want))
		}
		if cap(h.buf) > size {
			t.Fatalf("write %d (%d bytes): history buffer of %d bytes for a %d-byte window", i, n, cap(h.buf), size)
		}
	}
}
