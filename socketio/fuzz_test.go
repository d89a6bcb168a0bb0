package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
)

var fuzzSeeds = []string{
	`0`, `0/admin,{"token":"123"}`, `0{"sid":"x"}`, `0/random`, `0/,{}`, `1`, `1/custom,`,
	`2["hello",1]`, `2/admin,456["project:delete",123]`, `2[1,"a",{}]`, `2 [ "a" ] `, `2[ "a" ] `, `2007["a"]`,
	`3/admin,456[]`, `3456[1,"2",{"3":[false]}]`, `4{"message":"Not authorized"}`, `4"Unauthorized"`,
	`51-["hello",{"_placeholder":true,"num":0}]`, `61-/admin,456[{"_placeholder":true,"num":0}]`,
	`52-["message",{"_placeholder":true,"num":0},{"x":[{"_placeholder":true,"num":1}]}]`,
	`50-["a"]`, `52-["a",{"_placeholder":true,"num":0,"x":{"_placeholder":true,"num":9}}]`,
	`51-["a",{"\u005fplaceholder":true,"n\u0075m":1.0e0}]`,
	``, `abc`, `7`, `5`, `5-["a"]`, `511-["a"]`, `2abc["a"]`, `218446744073709551616["a"]`, `012{}`,
	`3[]`, `2["some","data"`, `0[]`, `1/admin,{}`, `2/admin,{}`, `2[]`, `2[true]`, `2["connect"]`,
	`2["\u0063onnect"]`, `4[]`, `51-["a",{"_placeholder":true,"num":"splice"}]`,
	`51-["a",{"_placeholder":true,"num":1}]`, `2[1e400]`, `2[-0.0e-999]`, `31[1e400]`, `3` + "1[[[[[[[[[[{}]]]]]]]]]]", "2[\"\xff\"]",
}

// FuzzParsePacket checks that ParsePacket never panics, that its errors match
// ErrInvalidPacket and point inside the text, and that a packet it accepts validates,
// encodes to a text that parses to the same packet (a fixed point), and yields arguments
// that decode without error.
func FuzzParsePacket(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 1)
	}
	f.Fuzz(func(t *testing.T, text []byte, maxAttachments int) {
		maxAttachments %= 20
		limit := maxAttachments
		if limit <= 0 {
			limit = DefaultMaxAttachments
		}
		p, err := ParsePacket(text, maxAttachments)
		if err != nil {
			var pe *PacketError
			if !errors.Is(err, ErrInvalidPacket) || !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PacketError matching ErrInvalidPacket", err)
			}
			if pe.Offset < 0 || pe.Offset > len(text) {
				t.Fatalf("error %v at offset %d of a %d-byte text", err, pe.Offset, len(text))
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("parsed packet %+v does not validate: %v", p, err)
		}
		if p.Namespace == "" || p.Namespace[0] != '/' || !p.Type.binary() && p.Attachments != 0 || p.Attachments > limit {
			t.Fatalf("parsed packet %+v breaks a rule", p)
		}
		if len(p.Data) > 0 && !json.Valid(p.Data) {
			t.Fatalf("parsed packet %+v has invalid JSON", p)
		}
		enc := AppendPacket(nil, &p)
		back, err := ParsePacket(enc, maxAttachments)
		if err != nil || !equalPacket(back, p) {
			t.Fatalf("round trip of %q via %q = %+v, %v", text, enc, back, err)
		}
		if again := AppendPacket(nil, &back); !bytes.Equal(again, enc) {
			t.Fatalf("%q re-encodes as %q", enc, again)
		}
		checkArgs(t, &Message{Packet: p, Binary: fakeAttachments(p.Attachments)})
	})
}

// FuzzDecoder feeds a Decoder a sequence of messages (split at 0x1E; a message starting with
// 'b' is binary, without that byte) and checks that it never panics, that its errors match
// ErrInvalidPacket, and that every message it returns is complete and re-encodes to
// messages a fresh Decoder reads back the same.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte("52-[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]\x1eb\x01\x02\x1eb\x1e2[\"x\"]"))
	f.Add([]byte("51-[\"a\",{\"_placeholder\":true,\"num\":0}]\x1e2[\"a\"]\x1ebxx"))
	f.Add([]byte("50-[\"a\"]\x1ebx\x1e0/a,{}"))
	f.Add([]byte("61-1[{\"_placeholder\":true,\"num\":0}]\x1eb0123456789012345678901234567890123456789012345678901234567890123456789"))
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		d := Decoder{MaxAttachments: 3, MaxAttachmentBytes: 64}
		for _, msg := range bytes.Split(stream, []byte{0x1e}) {
			isBinary := len(msg) > 0 && msg[0] == 'b'
			if isBinary {
				msg = msg[1:]
			}
			m, err := d.Add(msg, isBinary)
			if err != nil {
				if !errors.Is(err, ErrInvalidPacket) {
					t.Fatalf("error %v does not match ErrInvalidPacket", err)
				}
				continue
			}
			if m == nil {
				continue
			}
			if len(m.Binary) != m.Attachments {
				t.Fatalf("message %+v with %d attachments", m.Packet, len(m.Binary))
			}
			var size int
			for _, b := range m.Binary {
				size += len(b)
			}
			if size > 64 {
				t.Fatalf("message with %d bytes of attachments, limit 64", size)
			}
			var d2 Decoder
			back, err := d2.Add(AppendPacket(nil, &m.Packet), false)
			for _, b := range m.Binary {
				if err != nil {
					break
				}
				back, err = d2.Add(b, true)
			}
			if err != nil || back == nil || !equalPacket(back.Packet, m.Packet) || !reflect.DeepEqual(back.Binary, m.Binary) {
				t.Fatalf("round trip of %+v = %+v, %v", m, back, err)
			}
			checkArgs(t, m)
		}
	})
}

// FuzzArgsRoundTrip encodes arguments built from fuzz data with AppendArgs and checks that
// they come back equal through a Decoder and Args.Values.
func FuzzArgsRoundTrip(f *testing.F) {
	f.Add("hello", []byte{1, 2, 3}, 1.5, int64(-7), []byte(`{"a":[1,"x"]}`))
	f.Add("\xff\x00\"\\", []byte{}, math.Inf(1), int64(math.MaxInt64), []byte(`{`))
	f.Add("_placeholder", []byte(nil), -0.0, int64(0), []byte(`{"_placeholder":true,"num":0}`))
	f.Fuzz(func(t *testing.T, s string, b []byte, fl float64, i int64, raw []byte) {
		args := []any{s, b, map[string]any{s: []any{b, fl, i}, "x": nil}, json.RawMessage(raw)}
		data, atts, err := AppendArgs(nil, s, args)
		if math.IsNaN(fl) || math.IsInf(fl, 0) || !json.Valid(raw) {
			if err == nil {
				t.Fatalf("AppendArgs(%#v) = %s, no error", args, data)
			}
			return
		}
		if err != nil {
			t.Fatalf("AppendArgs(%#v): %v", args, err)
		}
		if !json.Valid(data) || len(atts) != 2 {
			t.Fatalf("AppendArgs(%#v) = %s, %d attachments", args, data, len(atts))
		}
		if w := (walker{data: raw}); !w.walk() {
			return // raw holds placeholder-like objects of its own
		}
		var want any
		if json.Unmarshal(raw, &want) != nil {
			return // valid JSON that encoding/json cannot hold in an any (1e400)
		}
		valid := string([]rune(s)) // what JSON carries: each invalid byte becomes U+FFFD
		wantArgs := []any{valid, nonNil(b), map[string]any{valid: []any{nonNil(b), fl, float64(i)}, "x": nil}, want}
		if s == "" {
			wantArgs = wantArgs[1:] // no head: the first argument, "", is the event name
		}

		p := Packet{Type: BinaryEvent, Namespace: "/f", Attachments: len(atts), Data: data}
		if IsReservedEvent(valid) {
			return // not a valid event; covered by ParsePacket's tests
		}
		var d Decoder
		m, err := d.Add(AppendPacket(nil, &p), false)
		for _, a := range atts {
			if err != nil {
				break
			}
			m, err = d.Add(a, true)
		}
		if err != nil || m == nil {
			t.Fatalf("decoding %s: %v", data, err)
		}
		name, a, err := EventArgs(m)
		if err != nil || name != valid {
			t.Fatalf("EventArgs = %q, %v; want %q", name, err, valid)
		}
		vals, err := a.Values()
		if err != nil || !reflect.DeepEqual(vals, wantArgs) {
			t.Fatalf("Values = %#v, %v; want %#v", vals, err, wantArgs)
		}
	})
}

// nonNil returns b, or an empty slice for nil: an attachment comes back as an empty message.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func fakeAttachments(n int) [][]byte {
	var atts [][]byte
	for i := range n {
		atts = append(atts, []byte{byte(i)})
	}
	return atts
}

// checkArgs checks that the arguments of a valid event or ack decode, and that decoding them
// into a struct does not panic.
func checkArgs(t *testing.T, m *Message) {
	t.Helper()
	var args Args
	var err error
	switch m.Type {
	case Event, BinaryEvent:
		_, args, err = EventArgs(m)
	case Ack, BinaryAck:
		args, err = AckArgs(m)
	default:
		return
	}
	if err != nil {
		t.Fatalf("arguments of %+v: %v", m.Packet, err)
	}
	// Valid JSON always decodes, except a number beyond float64 (1e400), which
	// encoding/json refuses where JavaScript reads Infinity.
	var te *json.UnmarshalTypeError
	if _, err := args.Values(); err != nil && !errors.As(err, &te) {
		t.Fatalf("Values of %q: %v", m.Data, err)
	}
	for i := range args.Len() {
		var s struct {
			A []byte
			B map[string][]byte
		}
		_ = args.Decode(i, &s)
		args.Binary(i)
	}
}
