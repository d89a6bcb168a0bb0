package load

import (
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"testing"
)

// TestDeflateRoundTrip compresses a stream of messages as the load generator
// sends them and inflates them as it reads echoes, with and without context
// takeover, and cross-checks each message with a fresh compress/flate reader.
func TestDeflateRoundTrip(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		c, f := newCompressor(takeover), newInflater(takeover)
		for seq := int64(0); seq < 40; seq++ {
			n := []int{1, 100, 1024, 40000, 65536}[seq%5]
			msg := appendJSON(nil, 3, seq, n)
			comp, err := c.compress(nil, msg)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, len(comp), len(comp)+len(inflateTail))
			copy(buf, comp)
			got, err := f.inflate(make([]byte, 0, n+1), buf, n)
			if err != nil {
				t.Fatalf("takeover=%v seq=%d: %v", takeover, seq, err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("takeover=%v seq=%d: round trip differs", takeover, seq)
			}
			if !takeover { // each message decodes alone
				r := flate.NewReader(io.MultiReader(bytes.NewReader(comp), bytes.NewReader(inflateTail)))
				alone, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(alone, msg) {
					t.Fatalf("seq=%d: message does not inflate on its own: %v", seq, err)
				}
			}
		}
		if _, err := f.inflate(nil, []byte{0xff, 0xff, 0xff}, 10); err == nil {
			t.Errorf("takeover=%v: corrupt data inflated without error", takeover)
		}
	}
}

// TestInflateLimit checks that an echo inflating past the sent size fails.
func TestInflateLimit(t *testing.T) {
	msg := bytes.Repeat([]byte("a"), 5000)
	comp, err := newCompressor(false).compress(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newInflater(false).inflate(nil, comp, 4999); err == nil {
		t.Fatal("no error for an echo longer than sent")
	}
}

func TestAppendJSON(t *testing.T) {
	a, b := appendJSON(nil, 0, 1, 1024), appendJSON(nil, 0, 2, 1024)
	if len(a) != 1024 || len(b) != 1024 || bytes.Equal(a, b) {
		t.Fatalf("lengths %d %d, equal %v", len(a), len(b), bytes.Equal(a, b))
	}
	if !strings.HasPrefix(string(a), `[{"id":`) || appendJSON([]byte("x"), 0, 1, 5)[0] != 'x' {
		t.Fatalf("unexpected text %q", a[:20])
	}
}

func TestParseDeflateResponse(t *testing.T) {
	good := map[string]Deflate{
		"permessage-deflate": {},
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover": {ServerNoContextTakeover: true, ClientNoContextTakeover: true},
		"permessage-deflate; server_max_window_bits=12":                              {ServerMaxWindowBits: 12},
		"permessage-deflate; client_max_window_bits=15":                              {ClientMaxWindowBits: 15},
	}
	for resp, want := range good {
		d, err := parseDeflateResponse(resp, "permessage-deflate; client_max_window_bits")
		if err != nil {
			t.Fatalf("%q: %v", resp, err)
		}
		want.Response = resp
		if *d != want {
			t.Fatalf("%q: got %+v, want %+v", resp, *d, want)
		}
	}
	for _, resp := range []string{
		"x-webkit-deflate-frame",
		"permessage-deflate, permessage-deflate",
		"permessage-deflate; foo",
		"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
		"permessage-deflate; server_max_window_bits=7",
		"permessage-deflate; client_max_window_bits=12", // compress/flate cannot honour it
	} {
		if _, err := parseDeflateResponse(resp, "permessage-deflate; client_max_window_bits"); err == nil {
			t.Errorf("%q accepted", resp)
		}
	}
	if _, err := parseDeflateResponse("permessage-deflate; client_max_window_bits=15", "permessage-deflate"); err == nil {
		t.Error("client_max_window_bits accepted though not offered")
	}
}
