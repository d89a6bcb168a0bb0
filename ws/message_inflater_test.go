package ws

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/duplexio/duplex/internal/wstest"
)

// randomBytes returns n incompressible bytes, the same for the same seed.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMessageInflaterInflatesAStreamWithContextTakeover(t *testing.T) {
	// An independent compressor (compress/flate) keeps its window from message to message.
	c := &wstest.Compressor{}
	in := NewMessageInflater(15, true)
	msgs := [][]byte{
		[]byte("hello, hello, hello"),
		[]byte("hello, hello, hello"), // refers to the first message only
		{},
		randomBytes(1, 3000),
		[]byte(strings.Repeat("abc", 10000)),
	}
	var dst []byte
	var sizes []int
	for i, msg := range msgs {
		payload := c.Compress(msg)
		sizes = append(sizes, len(payload))
		if i == 1 && sizes[1] >= sizes[0] {
			t.Fatalf("the repeat compressed to %d bytes, the original to %d: no reference to the history", sizes[1], sizes[0])
		}
		got, err := in.Inflate(dst[:0], payload, 0)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("message %d: inflated %d bytes %.40q, want %d bytes %.40q", i, len(got), got, len(msg), msg)
		}
		dst = got
	}
}

func TestMessageInflaterWithoutContextTakeoverForgetsEachMessage(t *testing.T) {
	takeover := &wstest.Compressor{}
	first, second := takeover.Compress([]byte("repeat me, repeat me")), takeover.Compress([]byte("repeat me, repeat me"))

	// The second message of a takeover stream refers to the first: an inflater that keeps no
	// history cannot read it.
	in := NewMessageInflater(15, false)
	if got, err := in.Inflate(nil, first, 0); err != nil || string(got) != "repeat me, repeat me" {
		t.Fatalf("first message: %q, %v", got, err)
	}
	if got, err := in.Inflate(nil, second, 0); err == nil && string(got) == "repeat me, repeat me" {
		t.Fatal("a message that refers to the previous one inflated without context takeover")
	}

	// A stream compressed without takeover inflates message by message.
	fresh := &wstest.Compressor{NoContextTakeover: true}
	in = NewMessageInflater(15, false)
	for i := range 3 {
		if got, err := in.Inflate(nil, fresh.Compress([]byte("repeat me, repeat me")), 0); err != nil || string(got) != "repeat me, repeat me" {
			t.Fatalf("message %d: %q, %v", i, got, err)
		}
	}
}

func TestMessageInflaterKeepsOnlyTheNegotiatedWindow(t *testing.T) {
	// A sender bound to 9 bits refers at most 512 bytes back; an inflater for 9 bits
	// follows it across messages.
	small := &wstest.Compressor{WindowBits: 9}
	in := NewMessageInflater(9, true)
	block := randomBytes(2, 200)
	for i := range 5 {
		msg := append(bytes.Repeat(block, 2), byte(i))
		if got, err := in.Inflate(nil, small.Compress(msg), 0); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("9-bit message %d: %d bytes, %v", i, len(got), err)
		}
	}
	if len(in.hist.buf) != 512 {
		t.Fatalf("history of %d bytes, want the 512 of a 9-bit window", len(in.hist.buf))
	}

	// A message that refers 4 KiB back needs a 15-bit window: the 9-bit inflater, which kept
	// only 512 bytes, cannot inflate it, while a 15-bit one can.
	wide := &wstest.Compressor{}
	history := randomBytes(3, 4096)
	h0 := wide.Compress(history)
	msg := history[:300]
	m1 := wide.Compress(msg)
	for _, tc := range []struct {
		bits int
		ok   bool
	}{{15, true}, {9, false}} {
		in := NewMessageInflater(tc.bits, true)
		if _, err := in.Inflate(nil, h0, 0); err != nil {
			t.Fatal(err)
		}
		got, err := in.Inflate(nil, m1, 0)
		if ok := err == nil && bytes.Equal(got, msg); ok != tc.ok {
			t.Errorf("%d-bit inflater: inflated %v (%v), want %v", tc.bits, ok, err, tc.ok)
		}
	}
}

func TestMessageInflaterStopsAtTheLimit(t *testing.T) {
	c := &wstest.Compressor{NoContextTakeover: true}
	in := NewMessageInflater(15, true)
	bomb := c.Compress(make([]byte, 1<<20))
	dst := make([]byte, 0, 16)
	got, err := in.Inflate(dst, bomb, 1000)
	if !errors.Is(err, ErrInflateLimit) || len(got) != 0 {
		t.Fatalf("1 MiB message under a 1000-byte limit: %d bytes, %v", len(got), err)
	}
	if cap(got) > 8<<10 {
		t.Errorf("grew the buffer to %d bytes for a limit of 1000", cap(got))
	}
	if len(in.hist.buf) != 0 {
		t.Errorf("a refused message went into the history (%d bytes)", len(in.hist.buf))
	}
	// Exactly at the limit is fine.
	if got, err := in.Inflate(nil, c.Compress(make([]byte, 1000)), 1000); err != nil || len(got) != 1000 {
		t.Fatalf("message at the limit: %d bytes, %v", len(got), err)
	}
}

func TestMessageInflaterAppendsAndRefusesCorruptData(t *testing.T) {
	c := &wstest.Compressor{}
	in := NewMessageInflater(15, true)
	got, err := in.Inflate([]byte("prefix:"), c.Compress([]byte("data")), 0)
	if err != nil || string(got) != "prefix:data" {
		t.Fatalf("%q, %v", got, err)
	}
	// An empty compressed message is the single byte 00.
	if got, err := in.Inflate(nil, []byte{0x00}, 0); err != nil || len(got) != 0 {
		t.Fatalf("empty message: %q, %v", got, err)
	}
	if got, err := in.Inflate([]byte("x"), []byte{0xff, 0xff, 0xff}, 0); err == nil || string(got) != "x" {
		t.Fatalf("corrupt data: %q, %v", got, err)
	}
	in.Reset()
	if len(in.hist.buf) != 0 {
		t.Fatal("Reset kept the history")
	}
}

func TestParseDeflateParams(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   DeflateParams
		ok     bool
		err    bool
	}{
		{values: nil},
		{values: []string{"x-webkit-other"}},
		{values: []string{"permessage-deflate"}, ok: true, want: DeflateParams{ServerMaxWindowBits: 15, ClientMaxWindowBits: 15}},
		{
			values: []string{"x-other; a=1, permessage-deflate; server_no_context_takeover", "; client_max_window_bits=9"},
			err:    true, // a list element cannot start with ';'
		},
		{
			values: []string{"x-other; a=1", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=\"9\""},
			ok:     true,
			want:   DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9},
		},
		{values: []string{"permessage-deflate; server_max_window_bits=16"}, err: true},
		{values: []string{"permessage-deflate; client_max_window_bits"}, err: true}, // a response must give the value
		{values: []string{"permessage-deflate; mystery"}, err: true},
		{values: []string{"permessage-deflate; server_no_context_takeover; server_no_context_takeover"}, err: true},
	} {
		got, ok, err := ParseDeflateParams(tc.values)
		if (err != nil) != tc.err || ok != tc.ok || got != tc.want {
			t.Errorf("%q: %+v, %v, %v; want %+v, %v, error %v", tc.values, got, ok, err, tc.want, tc.ok, tc.err)
		}
	}
}
