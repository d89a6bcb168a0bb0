package socketio

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// input is one Engine.IO message fed to a Decoder.
type input struct {
	data   string
	binary bool
}

func text(s string) input   { return input{s, false} }
func binary(s string) input { return input{s, true} }

// feed adds every input to d and returns the messages it completed. It fails the test on an
// error, or when Add returns a message before the last input.
func feed(t *testing.T, d *Decoder, inputs ...input) *Message {
	t.Helper()
	for i, in := range inputs {
		m, err := d.Add([]byte(in.data), in.binary)
		if err != nil {
			t.Fatalf("Add(%q, %v): %v", in.data, in.binary, err)
		}
		if (m != nil) != (i == len(inputs)-1) {
			t.Fatalf("Add(%q, %v) = %v at input %d of %d", in.data, in.binary, m, i+1, len(inputs))
		}
		if m != nil {
			return m
		}
	}
	return nil
}

func TestDecoderReturnsTextPacketsAtOnce(t *testing.T) {
	var d Decoder
	for _, s := range []string{`0`, `0/admin,{"token":"123"}`, `2["hello",1]`, `3/admin,456[]`, `4{"message":"x"}`, `1/admin,`} {
		m := feed(t, &d, text(s))
		want, _ := ParsePacket([]byte(s), 0)
		if !equalPacket(m.Packet, want) || m.Binary != nil {
			t.Errorf("Add(%q) = %+v, want %+v and no attachments", s, m, want)
		}
	}
}

func TestDecoderMessagesOwnTheirMemory(t *testing.T) {
	var d Decoder
	buf := []byte(`2/chat,["hello"]`)
	m, err := d.Add(buf, false)
	if err != nil {
		t.Fatal(err)
	}
	bin := []byte(`51-["a",{"_placeholder":true,"num":0}]`)
	if _, err := d.Add(bin, false); err != nil {
		t.Fatal(err)
	}
	att := []byte{1, 2, 3}
	mb, err := d.Add(att, true)
	if err != nil || mb == nil {
		t.Fatal(mb, err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	for i := range bin {
		bin[i] = 'X'
	}
	att[0] = 9
	if m.Namespace != "/chat" || string(m.Data) != `["hello"]` {
		t.Errorf("text message changed with the input: %+v", m)
	}
	if string(mb.Data) != `["a",{"_placeholder":true,"num":0}]` || !bytes.Equal(mb.Binary[0], []byte{1, 2, 3}) {
		t.Errorf("binary message changed with the input: %q %v", mb.Data, mb.Binary)
	}
}

func TestDecoderCollectsAttachments(t *testing.T) {
	var d Decoder
	// What the official protocol test suite sends.
	m := feed(t, &d,
		text(`52-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
		binary("\x01\x02\x03"),
		binary("\x04\x05\x06"),
	)
	if m.Type != BinaryEvent || m.Attachments != 2 || len(m.Binary) != 2 ||
		!bytes.Equal(m.Binary[0], []byte{1, 2, 3}) || !bytes.Equal(m.Binary[1], []byte{4, 5, 6}) {
		t.Errorf("got %+v", m)
	}
	m = feed(t, &d,
		text(`62-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`),
		binary(""), // an empty attachment is still one
		binary("x"),
	)
	if m.Type != BinaryAck || m.ID != 789 || !m.HasID || len(m.Binary) != 2 || len(m.Binary[0]) != 0 {
		t.Errorf("got %+v", m)
	}
	// Back to text packets afterwards.
	if m := feed(t, &d, text(`2["a"]`)); m.Type != Event {
		t.Errorf("got %+v", m)
	}
}

func TestDecoderReturnsBinaryPacketWithoutAttachmentsAtOnce(t *testing.T) {
	var d Decoder
	m := feed(t, &d, text(`50-["a"]`))
	if m.Type != BinaryEvent || len(m.Binary) != 0 {
		t.Errorf("got %+v", m)
	}
	// Unlike socket.io-parser before 4.2.7, nothing is left waiting: a binary message now is
	// an error.
	if _, err := d.Add([]byte("x"), true); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("binary message after a complete packet: %v", err)
	}
}

func TestDecoderRejectsMessagesOutOfOrder(t *testing.T) {
	tests := []struct {
		name   string
		inputs []input
		reason string
	}{
		{"binary with nothing awaited", []input{binary("x")}, "binary message when no attachment is awaited"},
		{"binary after a text event", []input{text(`2["a"]`), binary("x")}, "binary message when no attachment is awaited"},
		{"text while attachments are awaited (too few attachments)", []input{text(`52-["a",{"_placeholder":true,"num":1}]`), binary("x"), text(`2["a"]`)}, "text message after 1 of 2 attachments"},
		{"text right after a binary packet", []input{text(`51-["a",{"_placeholder":true,"num":0}]`), text(`2["a"]`)}, "text message after 0 of 1 attachments"},
		{"too many attachments for the packet", []input{text(`51-["a",{"_placeholder":true,"num":0}]`), binary("x"), binary("y")}, "binary message when no attachment is awaited"},
		{"malformed packet", []input{text(`2{}`)}, "EVENT payload is not an array"},
		{"placeholder past the count", []input{text(`51-["a",{"_placeholder":true,"num":1}]`)}, `placeholder "num"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			var err error
			for _, in := range tt.inputs {
				if _, err = d.Add([]byte(in.data), in.binary); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("error %v, want one saying %q", err, tt.reason)
			}
			// The decoder starts afresh.
			if m := feed(t, &d, text(`2["after"]`)); string(m.Data) != `["after"]` {
				t.Errorf("after the error: %+v", m)
			}
		})
	}
}

func TestDecoderLimitsAttachments(t *testing.T) {
	ph := `{"_placeholder":true,"num":0}`
	d := Decoder{}
	if _, err := d.Add([]byte(`511-["a",`+ph+`]`), false); !errors.Is(err, ErrAttachmentLimit) {
		t.Errorf("11 attachments with the default limit: %v", err)
	}
	if _, err := d.Add([]byte(`510-["a",`+ph+`]`), false); err != nil {
		t.Errorf("10 attachments with the default limit: %v", err)
	}
	d = Decoder{MaxAttachments: 2}
	if _, err := d.Add([]byte(`53-["a",`+ph+`]`), false); !errors.Is(err, ErrAttachmentLimit) {
		t.Errorf("3 attachments with a limit of 2: %v", err)
	}

	d = Decoder{MaxAttachmentBytes: 5}
	if _, err := d.Add([]byte(`53-["a",`+ph+`]`), false); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"ab", "cde"} {
		if _, err := d.Add([]byte(a), true); err != nil {
			t.Fatal(err)
		}
	}
	_, err := d.Add([]byte("f"), true)
	if !errors.Is(err, ErrAttachmentLimit) || !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), "exceed 5 bytes") {
		t.Errorf("6 bytes of attachments with a limit of 5: %v", err)
	}
	// Exactly at the limit is fine, and the count starts again for each packet.
	d = Decoder{MaxAttachmentBytes: 5}
	for range 2 {
		feed(t, &d, text(`52-["a",`+ph+`]`), binary("ab"), binary("cde"))
	}
}

func TestDecoderDoesNotAllocateForAnnouncedAttachments(t *testing.T) {
	// A peer announcing a huge count costs nothing until the data comes (the official
	// parser's GHSA-677m-j7p3-52f9).
	d := Decoder{MaxAttachments: math.MaxInt}
	var m *Message
	allocs := testing.AllocsPerRun(10, func() {
		d.Reset()
		var err error
		m, err = d.Add([]byte(`59223372036854775807-["a",{"_placeholder":true,"num":0}]`), false)
		if err != nil || m != nil {
			t.Fatal(m, err)
		}
	})
	if allocs > 4 && !raceEnabled {
		t.Errorf("%v allocations for a packet announcing 2^63-1 attachments", allocs)
	}
	if c := cap(d.pending.Binary); c > 16 {
		t.Errorf("room for %d attachments reserved in advance", c)
	}
}

func TestDecoderResetDropsAPartialPacket(t *testing.T) {
	var d Decoder
	if _, err := d.Add([]byte(`51-["a",{"_placeholder":true,"num":0}]`), false); err != nil {
		t.Fatal(err)
	}
	d.Reset()
	if m := feed(t, &d, text(`2["b"]`)); string(m.Data) != `["b"]` {
		t.Errorf("got %+v", m)
	}
}
