package ws_test

// Category 6: UTF-8 handling of text messages.

import (
	"bytes"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

// kosme is "κόσμε", the Autobahn case 6 sample text.
var kosme = []byte{0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5}

type utf8Case struct {
	name string
	b    []byte
}

var validUTF8 = []utf8Case{
	{"ascii_and_latin1", []byte("Hello-µ@ßöäüàá-UTF-8!!")},
	{"kosme", kosme},
	{"nul", []byte{0x00}},
	{"first_2_byte_U+0080", []byte{0xC2, 0x80}},
	{"first_3_byte_U+0800", []byte{0xE0, 0xA0, 0x80}},
	{"first_4_byte_U+10000", []byte{0xF0, 0x90, 0x80, 0x80}},
	{"last_1_byte_U+007F", []byte{0x7F}},
	{"last_2_byte_U+07FF", []byte{0xDF, 0xBF}},
	{"last_3_byte_U+FFFF", []byte{0xEF, 0xBF, 0xBF}},
	{"last_4_byte_U+10FFFF", []byte{0xF4, 0x8F, 0xBF, 0xBF}},
	{"before_surrogates_U+D7FF", []byte{0xED, 0x9F, 0xBF}},
	{"after_surrogates_U+E000", []byte{0xEE, 0x80, 0x80}},
	{"replacement_char_U+FFFD", []byte{0xEF, 0xBF, 0xBD}},
	{"noncharacter_U+FFFE", []byte{0xEF, 0xBF, 0xBE}},
	{"noncharacter_U+1FFFE", []byte{0xF0, 0x9F, 0xBF, 0xBE}},
	{"mixed_1_2_3_4_byte", []byte("a\u00e9\u20ac\U0001F600z\u00ff\uFFFD\U0010FFFF")},
}

// TestValidUTF8TextEchoed sends each valid text as one frame, as one frame
// delivered in 1-byte TCP chunks, as 1-byte fragments, and split into two
// fragments at every byte position, all on one connection.
func TestValidUTF8TextEchoed(t *testing.T) {
	t.Parallel()
	forRoleCases(t, allRoles, validUTF8, func(c utf8Case) string { return c.name }, func(t *testing.T, r role, c utf8Case) {
		h := start(t, r, options{})
		b := c.b
		// One frame.
		h.send(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: b})
		h.expectMessage(wstest.OpText, b)
		// One frame, 1-byte TCP chunks.
		h.sendChunked(h.peer.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: b}), 0, 1)
		h.expectMessage(wstest.OpText, b)
		// 1-byte fragments.
		h.send(fragments(wstest.OpText, b, 1)...)
		h.expectMessage(wstest.OpText, b)
		// Two fragments, split at every position.
		for i := 0; i <= len(b); i++ {
			h.send(
				wstest.Frame{Opcode: wstest.OpText, Payload: b[:i]},
				wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: b[i:]},
			)
			h.expectMessage(wstest.OpText, b)
		}
	})
}

// fragments splits payload into frames of size bytes (at least one frame).
func fragments(op byte, payload []byte, size int) []wstest.Frame {
	var fs []wstest.Frame
	for first := true; first || len(payload) > 0; first = false {
		n := min(size, len(payload))
		f := wstest.Frame{Opcode: wstest.OpContinuation, Payload: payload[:n]}
		if first {
			f.Opcode = op
		}
		payload = payload[n:]
		f.Fin = len(payload) == 0
		fs = append(fs, f)
	}
	return fs
}

var invalidUTF8 = []utf8Case{
	// Lone and unexpected continuation bytes.
	{"continuation_80", []byte{0x80}},
	{"continuation_BF", []byte{0xBF}},
	{"continuations_80_BF_80", []byte{0x80, 0xBF, 0x80}},
	{"all_64_continuation_bytes", func() []byte {
		var b []byte
		for c := 0x80; c <= 0xBF; c++ {
			b = append(b, byte(c))
		}
		return b
	}()},
	{"kosme_then_continuation", append(append([]byte{}, kosme...), 0x80)},
	// Start bytes followed by a space.
	{"start_C0_then_space", []byte{0xC0, 0x20}},
	{"start_DF_then_space", []byte{0xDF, 0x20}},
	{"start_E0_then_space", []byte{0xE0, 0x20}},
	{"start_EF_then_space", []byte{0xEF, 0x20}},
	{"start_F0_then_space", []byte{0xF0, 0x20}},
	{"start_F4_then_space", []byte{0xF4, 0x20}},
	{"3_byte_with_last_byte_missing_then_ascii", []byte{0xE1, 0x80, 0x41}},
	// Sequences truncated at the end of the message.
	{"truncated_2_byte_at_end", []byte{0x41, 0xC2}},
	{"truncated_3_byte_at_end", []byte{0x41, 0xE0, 0xA0}},
	{"truncated_4_byte_at_end", []byte{0x41, 0xF0, 0x90, 0x80}},
	{"kosme_truncated_at_end", kosme[:len(kosme)-1]},
	// Bytes that never appear.
	{"byte_FE", []byte{0xFE}},
	{"byte_FF", []byte{0xFF}},
	{"bytes_FE_FE_FF_FF", []byte{0xFE, 0xFE, 0xFF, 0xFF}},
	// Overlong forms.
	{"overlong_slash_C0_AF", []byte{0xC0, 0xAF}},
	{"overlong_slash_E0_80_AF", []byte{0xE0, 0x80, 0xAF}},
	{"overlong_slash_F0_80_80_AF", []byte{0xF0, 0x80, 0x80, 0xAF}},
	{"overlong_slash_F8_80_80_80_AF", []byte{0xF8, 0x80, 0x80, 0x80, 0xAF}},
	{"overlong_max_C1_BF", []byte{0xC1, 0xBF}},
	{"overlong_max_E0_9F_BF", []byte{0xE0, 0x9F, 0xBF}},
	{"overlong_max_F0_8F_BF_BF", []byte{0xF0, 0x8F, 0xBF, 0xBF}},
	{"overlong_nul_C0_80", []byte{0xC0, 0x80}},
	{"overlong_nul_E0_80_80", []byte{0xE0, 0x80, 0x80}},
	// Above U+10FFFF, and the old 5- and 6-byte forms.
	{"above_max_F4_90_80_80", []byte{0xF4, 0x90, 0x80, 0x80}},
	{"above_max_F5_80_80_80", []byte{0xF5, 0x80, 0x80, 0x80}},
	{"above_max_F7_BF_BF_BF", []byte{0xF7, 0xBF, 0xBF, 0xBF}},
	{"5_byte_F8_88_80_80_80", []byte{0xF8, 0x88, 0x80, 0x80, 0x80}},
	{"6_byte_FC_84_80_80_80_80", []byte{0xFC, 0x84, 0x80, 0x80, 0x80, 0x80}},
	// UTF-16 surrogates.
	{"surrogate_ED_A0_80", []byte{0xED, 0xA0, 0x80}},
	{"surrogate_ED_AD_BF", []byte{0xED, 0xAD, 0xBF}},
	{"surrogate_ED_AF_BF", []byte{0xED, 0xAF, 0xBF}},
	{"surrogate_ED_B0_80", []byte{0xED, 0xB0, 0x80}},
	{"surrogate_ED_BF_BF", []byte{0xED, 0xBF, 0xBF}},
	{"surrogate_pair_ED_A0_80_ED_B0_80", []byte{0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80}},
	{"kosme_surrogate_edited", append(append(append([]byte{}, kosme...), 0xED, 0xA0, 0x80), "edited"...)},
}

// TestFailsOnInvalidUTF8Text sends each invalid sequence as one text frame
// and as 1-byte fragments.
func TestFailsOnInvalidUTF8Text(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		fs   []wstest.Frame
	}
	var cases []tc
	for _, c := range invalidUTF8 {
		cases = append(cases,
			tc{c.name + "/one_frame", []wstest.Frame{{Fin: true, Opcode: wstest.OpText, Payload: c.b}}},
			tc{c.name + "/1_byte_fragments", fragments(wstest.OpText, c.b, 1)},
		)
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		h.send(c.fs...)
		h.expectFail(ws.StatusInvalidPayload)
	})
}

// TestFailsFastOnInvalidUTF8 sends the start of a text message that becomes
// invalid, and never the rest: the implementation must fail with 1007 as
// soon as it sees the invalid byte, without waiting for the rest of the frame
// or the message (Autobahn 6.4.1-6.4.4).
func TestFailsFastOnInvalidUTF8(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		// send writes the partial message.
		send func(h *harness)
	}
	invalid := []byte{0xF4, 0x90, 0x80, 0x80}
	edited := []byte("edited")
	whole := append(append(append([]byte{}, kosme...), invalid...), edited...)
	// frameStart encodes a text frame header announcing n payload bytes
	// followed by the first len(prefix) of them.
	frameStart := func(h *harness, fin bool, n int, prefix []byte) []byte {
		// Encode the whole frame with a fixed key, then cut it: the header
		// announces n bytes and the masked prefix follows.
		payload := make([]byte, n)
		copy(payload, prefix)
		b := h.peer.Encode(wstest.Frame{Fin: fin, Opcode: wstest.OpText, Payload: payload})
		return b[:len(b)-n+len(prefix)]
	}
	cases := []tc{
		// 6.4.1: three fragments, the second invalid; the third never comes.
		{"invalid_second_fragment_third_never_sent", func(h *harness) {
			h.send(frag(wstest.OpText, false, string(kosme)))
			time.Sleep(50 * time.Millisecond)
			h.send(frag(wstest.OpContinuation, false, string(invalid)))
		}},
		// 6.4.2: the first fragment already holds the invalid sequence.
		{"invalid_first_fragment_rest_never_sent", func(h *harness) {
			h.send(frag(wstest.OpText, false, string(append(append([]byte{}, kosme...), invalid...))))
		}},
		// The invalid byte completes a sequence started in the previous fragment.
		{"sequence_split_across_fragments_invalid_in_second", func(h *harness) {
			h.send(frag(wstest.OpText, false, "ab\xF4"), frag(wstest.OpContinuation, false, "\x90"))
		}},
		// 6.4.3: one frame, sent in chunks: valid, invalid, rest never sent.
		{"invalid_second_chunk_of_one_frame", func(h *harness) {
			b := frameStart(h, true, len(whole), whole[:len(kosme)+len(invalid)])
			cut := len(b) - len(invalid)
			h.sendRaw(b[:cut])
			time.Sleep(100 * time.Millisecond)
			h.sendRaw(b[cut:])
		}},
		// 6.4.4: as 6.4.3, the invalid sequence byte by byte: F4 is still
		// fine, F4 90 is not.
		{"invalid_at_second_byte_of_sequence_in_one_frame", func(h *harness) {
			b := frameStart(h, true, len(whole), whole[:len(kosme)+2])
			h.sendRaw(b[:len(b)-2])
			time.Sleep(50 * time.Millisecond)
			h.sendRaw(b[len(b)-2 : len(b)-1])
			time.Sleep(50 * time.Millisecond)
			h.sendRaw(b[len(b)-1:])
		}},
		{"surrogate_prefix_in_one_frame", func(h *harness) {
			h.sendRaw(frameStart(h, true, 1000, []byte("abc\xED\xA0")))
		}},
		{"byte_FF_first_in_1MiB_frame", func(h *harness) {
			h.sendRaw(frameStart(h, true, 1<<20, []byte{0xFF}))
		}},
		{"overlong_prefix_in_fragment_without_fin", func(h *harness) {
			h.sendRaw(frameStart(h, false, 100, []byte("ok \xC0")))
		}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		c.send(h)
		h.expectFailWithin(ws.StatusInvalidPayload, failFastTimeout)
	})
}

// The rest of a valid text split across many small fragments of mixed sizes
// (a 4-byte sequence split 1+2+1) is still accepted.
func TestValidUTF8SplitAcrossManyFragments(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		msg := bytes.Repeat([]byte("x\U0001F600\u20ac\u00e9"), 50)
		for _, size := range []int{1, 2, 3, 5, 7} {
			h.send(fragments(wstest.OpText, msg, size)...)
			h.expectMessage(wstest.OpText, msg)
		}
	})
}
