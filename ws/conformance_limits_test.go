package ws_test

// Category 9 (limits and large messages) and category 10 (fragmentation of
// large messages, by the peer and by NextWriter).

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

// largeTimeout bounds each wait in the large-message tests (-race is slow).
const largeTimeout = 30 * time.Second

// sendAndExpectEcho writes frames (from a goroutine, so that a peer writing
// while the endpoint echoes cannot deadlock) and checks the echo.
func (h *harness) sendAndExpectEcho(op byte, payload []byte, chop int, fs ...wstest.Frame) {
	h.t.Helper()
	var b []byte
	for _, f := range fs {
		b = h.peer.AppendEncode(b, f)
	}
	errc := make(chan error, 1)
	go func() { errc <- h.peer.WriteChunked(b, 0, chop) }()
	h.expectMessage(op, payload)
	if err := <-errc; err != nil {
		h.t.Fatalf("write: %v", err)
	}
}

// Autobahn 9.1-9.6: large text and binary messages in one frame, in
// fragments of 64 B to 4 MiB, and in one frame delivered in small TCP chunks.
// A representative selection keeps the run time modest under -race.
func TestLargeMessagesEchoed(t *testing.T) {
	t.Parallel()
	type tc struct {
		op       byte
		size     int
		fragSize int // 0: one frame
		chop     int // TCP write size; 0: one write
		roles    []role
	}
	cases := []tc{
		{wstest.OpText, 1 << 20, 0, 0, bothRoles},
		{wstest.OpBinary, 1 << 20, 0, 0, bothRoles},
		{wstest.OpText, 4 << 20, 0, 0, bothRoles},
		{wstest.OpBinary, 4 << 20, 0, 0, []role{roleServerRaw}},
		{wstest.OpText, 16 << 20, 0, 0, []role{roleServer}},
		{wstest.OpBinary, 16 << 20, 0, 0, []role{roleClient}},
		{wstest.OpText, 1 << 20, 64, 0, []role{roleServer}},
		{wstest.OpBinary, 1 << 20, 64, 0, []role{roleClient}},
		{wstest.OpText, 4 << 20, 4 << 10, 0, bothRoles},
		{wstest.OpBinary, 4 << 20, 256 << 10, 0, []role{roleServer}},
		{wstest.OpText, 4 << 20, 1 << 20, 0, []role{roleClient}},
		{wstest.OpBinary, 4 << 20, 4 << 20, 0, bothRoles},
		{wstest.OpText, 16 << 20, 4 << 20, 0, []role{roleServer}},
		{wstest.OpBinary, 16 << 20, 1 << 20, 0, []role{roleClient}},
		{wstest.OpText, 1 << 20, 0, 64 << 10, bothRoles},
		{wstest.OpBinary, 1 << 20, 0, 1 << 10, []role{roleServer}},
	}
	name := func(c tc) string {
		s := "text"
		if c.op == wstest.OpBinary {
			s = "binary"
		}
		s += "_" + kib(c.size)
		switch {
		case c.fragSize > 0:
			s += "_in_" + kib(c.fragSize) + "_fragments"
		case c.chop > 0:
			s += "_one_frame_in_" + kib(c.chop) + "_chunks"
		default:
			s += "_one_frame"
		}
		return s
	}
	forCasesInRoles(t, cases, func(c tc) []role { return withEvented(c.roles) }, name, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{peerTimeout: largeTimeout})
		payload := pattern(c.size)
		if c.op == wstest.OpBinary {
			payload = binaryPattern(c.size)
		}
		fs := []wstest.Frame{{Fin: true, Opcode: c.op, Payload: payload}}
		if c.fragSize > 0 {
			fs = fragments(c.op, payload, c.fragSize)
		}
		h.sendAndExpectEcho(c.op, payload, c.chop, fs...)
	})
}

// withEvented adds to rs the event-driven role of each server role in it: the limits
// (large messages, small fragments) are what the event-driven decoder must get right.
// The deflate cases do not need it: a compressed connection falls back to the goroutine
// mode, which the allRoles cases cover.
func withEvented(rs []role) []role {
	out := rs[:len(rs):len(rs)]
	for _, r := range rs {
		switch r {
		case roleServer:
			out = append(out, roleServerEvented)
		case roleServerRaw:
			out = append(out, roleServerRawEvented)
		}
	}
	return out
}

func containsRole(rs []role, r role) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// Autobahn 9.7/9.8: many small messages, written back to back while the
// echoes flow, come back complete and in order.
func TestManySmallMessagesEchoedInOrder(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		sizes := []int{0, 16, 64, 256, 1024, 4096}
		const n = 300
		var b []byte
		for i := range n {
			payload := pattern(sizes[i%len(sizes)])
			op := wstest.OpText
			if i%2 == 1 {
				op = wstest.OpBinary
			}
			b = h.peer.AppendEncode(b, wstest.Frame{Fin: true, Opcode: op, Payload: append(fmt.Appendf(nil, "%04d", i), payload...)})
		}
		errc := make(chan error, 1)
		go func() { errc <- h.peer.WriteChunked(b, 0, 8<<10) }()
		for i := range n {
			op := wstest.OpText
			if i%2 == 1 {
				op = wstest.OpBinary
			}
			h.expectMessage(op, append(fmt.Appendf(nil, "%04d", i), pattern(sizes[i%len(sizes)])...))
			if t.Failed() {
				t.FailNow()
			}
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
	})
}

// A message over the read limit fails with 1009 as soon as the limit is
// known to be exceeded: from the frame header, or when the fragments add up
// past it; the rest is never sent.
func TestFailsOnMessageOverReadLimit(t *testing.T) {
	t.Parallel()
	const limit = 1024
	type tc struct {
		name string
		send func(h *harness)
	}
	cases := []tc{
		{"one_frame_header_announces_1MiB_payload_never_sent", func(h *harness) {
			b := h.peer.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpBinary}, wstest.DeclaredLength(1<<20))
			h.sendRaw(b)
		}},
		{"one_text_frame_announces_1MiB_first_100_bytes_sent", func(h *harness) {
			payload := pattern(1 << 20)
			b := h.peer.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: payload})
			h.sendRaw(b[:len(b)-len(payload)+100])
		}},
		{"one_frame_of_limit_plus_1", func(h *harness) {
			h.send(binaryFrame(binaryPattern(limit + 1)))
		}},
		{"two_fragments_adding_up_past_limit_message_unfinished", func(h *harness) {
			h.send(wstest.Frame{Opcode: wstest.OpText, Payload: pattern(600)}, wstest.Frame{Opcode: wstest.OpContinuation, Payload: pattern(600)})
		}},
		{"64_byte_fragments_past_limit_message_unfinished", func(h *harness) {
			fs := fragments(wstest.OpBinary, binaryPattern(limit+64), 64)
			fs[len(fs)-1].Fin = false
			h.send(fs...)
		}},
		{"last_fragment_announces_too_much", func(h *harness) {
			b := h.peer.Encode(wstest.Frame{Opcode: wstest.OpBinary, Payload: binaryPattern(1000)})
			b = h.peer.AppendEncode(b, wstest.Frame{Fin: true, Opcode: wstest.OpContinuation}, wstest.DeclaredLength(1<<20))
			h.sendRaw(b)
		}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{readLimit: limit})
		// A message of exactly the limit is fine, in one frame and in fragments.
		h.send(binaryFrame(binaryPattern(limit)))
		h.expectMessage(wstest.OpBinary, binaryPattern(limit))
		h.send(fragments(wstest.OpText, pattern(limit), 100)...)
		h.expectMessage(wstest.OpText, pattern(limit))
		c.send(h)
		h.expectFailWithin(ws.StatusMessageTooBig, failFastTimeout)
	})
}

// Autobahn 10.1.1: a 64 KiB message sent by the peer in small fragments
// comes back whole.
func TestMessageInSmallFragmentsEchoed(t *testing.T) {
	t.Parallel()
	type tc struct {
		size  int
		roles []role
	}
	cases := []tc{
		{1, []role{roleServer}},
		{7, bothRoles},
		{127, allRoles},
		{1300, allRoles},
		{4096, bothRoles},
		{65535, bothRoles},
	}
	name := func(c tc) string { return fmt.Sprintf("text_64KiB_in_%d_byte_fragments", c.size) }
	forCasesInRoles(t, cases, func(c tc) []role { return withEvented(c.roles) }, name, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{peerTimeout: largeTimeout})
		payload := bytes.Repeat([]byte("64KiB \u20ac text! "), 65536/16) // 16 bytes each
		h.sendAndExpectEcho(wstest.OpText, payload, 0, fragments(wstest.OpText, payload, c.size)...)
	})
}

// NextWriter sends each Write as one frame: the peer must see a valid
// fragmented message (first frame with the opcode and no FIN, continuation
// frames, FIN only on the last), correctly masked per role.
func TestNextWriterMessageReceivedAsValidFragments(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		op    byte
		chunk int
		size  int
	}
	cases := []tc{
		{"text_10000_bytes_in_1000_byte_writes", wstest.OpText, 1000, 10000},
		{"binary_70000_bytes_in_65536_byte_writes", wstest.OpBinary, 65536, 70000},
		{"binary_300_bytes_in_1_byte_writes", wstest.OpBinary, 1, 300},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{app: nextWriterEcho(c.chunk)})
		payload := pattern(c.size)
		if c.op == wstest.OpBinary {
			payload = binaryPattern(c.size)
		}
		h.send(wstest.Frame{Fin: true, Opcode: c.op, Payload: payload})
		m := h.expectMessage(c.op, payload)
		writes := (c.size + c.chunk - 1) / c.chunk
		if len(m.Frames) < writes {
			t.Errorf("message came in %d frames, want at least %d (one per Write)", len(m.Frames), writes)
		}
		checkFragments(t, c.op, m.Frames)
		if r == roleClient {
			keys := map[[4]byte]bool{}
			for _, f := range m.Frames {
				keys[f.Key] = true
			}
			if len(keys) < len(m.Frames)*9/10 {
				t.Errorf("%d fragments used only %d distinct masking keys", len(m.Frames), len(keys))
			}
		}
	})
}
