package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// allTypes lists the seven packet types, for tables that cover every one.
var allTypes = []PacketType{Open, Close, Ping, Pong, Message, Upgrade, Noop}

func TestPacketTypeStringNamesEveryType(t *testing.T) {
	want := map[PacketType]string{
		Open: "open", Close: "close", Ping: "ping", Pong: "pong", Message: "message",
		Upgrade: "upgrade", Noop: "noop", 7: "PacketType(7)", 255: "PacketType(255)",
	}
	for typ, name := range want {
		if got := typ.String(); got != name {
			t.Errorf("PacketType(%d).String() = %q, want %q", uint8(typ), got, name)
		}
		if typ.Valid() != (typ <= 6) {
			t.Errorf("PacketType(%d).Valid() = %v", uint8(typ), typ.Valid())
		}
	}
}

func TestAppendPacketEncodesWebSocketFrames(t *testing.T) {
	tests := []struct {
		name   string
		p      Packet
		want   string
		binary bool
	}{
		{"open with handshake", Packet{Type: Open, Data: []byte(`{"sid":"x"}`)}, `0{"sid":"x"}`, false},
		{"close", Packet{Type: Close}, "1", false},
		{"ping", Packet{Type: Ping}, "2", false},
		{"ping probe", Packet{Type: Ping, Data: []byte("probe")}, "2probe", false},
		{"pong probe", Packet{Type: Pong, Data: []byte("probe")}, "3probe", false},
		{"text message", Packet{Type: Message, Data: []byte("HelloWorld")}, "4HelloWorld", false},
		{"empty text message", Packet{Type: Message}, "4", false},
		{"upgrade", Packet{Type: Upgrade}, "5", false},
		{"noop", Packet{Type: Noop}, "6", false},
		{"binary message is raw bytes", Packet{Type: Message, Data: []byte{1, 2, 3, 4}, Binary: true}, "\x01\x02\x03\x04", true},
		{"binary message starting with a digit", Packet{Type: Message, Data: []byte("4abc"), Binary: true}, "4abc", true},
		{"empty binary message", Packet{Type: Message, Binary: true}, "", true},
		{"binary flag ignored on a ping", Packet{Type: Ping, Data: []byte("x"), Binary: true}, "2x", false},
		{"invalid type written in decimal", Packet{Type: 12, Data: []byte("x")}, "12x", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendPacket([]byte("prefix"), tt.p)
			if string(got) != "prefix"+tt.want {
				t.Errorf("AppendPacket = %q, want %q", got, "prefix"+tt.want)
			}
			if tt.p.WebSocketBinary() != tt.binary {
				t.Errorf("WebSocketBinary() = %v, want %v", tt.p.WebSocketBinary(), tt.binary)
			}
		})
	}
}

func TestParsePacketRoundTripsEveryType(t *testing.T) {
	datas := [][]byte{nil, []byte("probe"), []byte("héllo 世界 🎉"), []byte("4\x1e\x00\xff")}
	for _, typ := range allTypes {
		for _, data := range datas {
			for _, binary := range []bool{false, true} {
				if binary && typ != Message {
					continue
				}
				p := Packet{Type: typ, Data: data, Binary: binary}
				frame := AppendPacket(nil, p)
				got, err := ParsePacket(frame, p.WebSocketBinary())
				if err != nil {
					t.Fatalf("ParsePacket(%q, %v) of %v: %v", frame, p.WebSocketBinary(), p, err)
				}
				if !equalPacket(got, p) {
					t.Errorf("round trip of %+v gave %+v", p, got)
				}
			}
		}
	}
}

func TestParsePacketDecodesFrames(t *testing.T) {
	tests := []struct {
		name        string
		data        string
		binaryFrame bool
		want        Packet
	}{
		{"ping probe", "2probe", false, Packet{Type: Ping, Data: []byte("probe")}},
		{"upgrade", "5", false, Packet{Type: Upgrade}},
		{"text message", "4HelloWorld", false, Packet{Type: Message, Data: []byte("HelloWorld")}},
		{"binary frame is a message", "\x00\x01\x02", true, Packet{Type: Message, Data: []byte{0, 1, 2}, Binary: true}},
		{"binary frame starting with a digit is still raw", "2probe", true, Packet{Type: Message, Data: []byte("2probe"), Binary: true}},
		{"empty binary frame", "", true, Packet{Type: Message, Binary: true}},
		{"base64 text frame (forceBase64 client)", "bAQIDBA==", false, Packet{Type: Message, Data: []byte{1, 2, 3, 4}, Binary: true}},
		{"empty base64 text frame", "b", false, Packet{Type: Message, Binary: true}},
		{"data on close is kept", "1bye", false, Packet{Type: Close, Data: []byte("bye")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePacket([]byte(tt.data), tt.binaryFrame)
			if err != nil {
				t.Fatalf("ParsePacket(%q): %v", tt.data, err)
			}
			if !equalPacket(got, tt.want) || got.Binary != tt.want.Binary {
				t.Errorf("ParsePacket(%q) = %+v, want %+v", tt.data, got, tt.want)
			}
		})
	}
}

func TestParsePacketRejectsMalformedTextFrames(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		reason string // substring of the error message
		cause  error  // matched with errors.As when not nil (only the type matters)
	}{
		{"empty text frame", "", "empty packet", nil},
		{"type 7", "7", "unknown packet type '7'", nil},
		{"type 9 with data", "9hello", "unknown packet type '9'", nil},
		{"letter", "xhello", "unknown packet type 'x'", nil},
		{"record separator", "\x1e4a", "unknown packet type 0x1e", nil},
		{"multi-byte first character", "é", "unknown packet type 0xc3", nil},
		{"bad base64 character", "bAQ!D", "bad base64", base64.CorruptInputError(0)},
		{"base64 without padding", "bAQIDBA", "bad base64", base64.CorruptInputError(0)},
		{"base64 with non-zero padding bits", "bAR==", "bad base64", base64.CorruptInputError(0)},
		{"base64 with a line break", "bAQID\nBA==", "bad base64", base64.CorruptInputError(0)},
		{"base64 url alphabet", "b-_8=", "bad base64", base64.CorruptInputError(0)},
		{"v3 binary with a type digit", "b4AQIDBA==", "type digit", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePacket([]byte(tt.data), false)
			if err == nil {
				t.Fatalf("ParsePacket(%q) = %+v, want an error", tt.data, p)
			}
			if !errors.Is(err, ErrInvalidPacket) {
				t.Errorf("error %v does not match ErrInvalidPacket", err)
			}
			var pe *PacketError
			if !errors.As(err, &pe) || pe.Index != -1 {
				t.Fatalf("error %#v is not a single-packet *PacketError", err)
			}
			if !strings.Contains(err.Error(), tt.reason) || !strings.HasPrefix(err.Error(), "engineio: invalid packet: ") {
				t.Errorf("error %q does not say %q", err, tt.reason)
			}
			if tt.cause != nil {
				var ce base64.CorruptInputError
				if !errors.As(err, &ce) {
					t.Errorf("error %v does not carry a base64.CorruptInputError", err)
				}
			}
		})
	}
}

func TestParsePacketAliasesItsInput(t *testing.T) {
	text := []byte("4hello")
	p, err := ParsePacket(text, false)
	if err != nil {
		t.Fatal(err)
	}
	if &p.Data[0] != &text[1] {
		t.Error("text Data does not alias the frame")
	}
	bin := []byte{9, 8, 7}
	p, err = ParsePacket(bin, true)
	if err != nil {
		t.Fatal(err)
	}
	if &p.Data[0] != &bin[0] {
		t.Error("binary Data does not alias the frame")
	}
}

func TestAppendPacketBase64WritesBinaryAsText(t *testing.T) {
	tests := []struct {
		p    Packet
		want string
	}{
		{Packet{Type: Message, Data: []byte{1, 2, 3, 4}, Binary: true}, "bAQIDBA=="},
		{Packet{Type: Message, Binary: true}, "b"},
		{Packet{Type: Message, Data: []byte("hi")}, "4hi"},
		{Packet{Type: Pong, Data: []byte("probe")}, "3probe"},
	}
	for _, tt := range tests {
		got := AppendPacketBase64(nil, tt.p)
		if string(got) != tt.want {
			t.Errorf("AppendPacketBase64(%+v) = %q, want %q", tt.p, got, tt.want)
		}
		back, err := ParsePacket(got, false)
		if err != nil || !equalPacket(back, tt.p) {
			t.Errorf("ParsePacket(%q) = %+v, %v; want %+v", got, back, err, tt.p)
		}
	}
}

func TestValidateReportsPacketsThatCannotBeEncoded(t *testing.T) {
	tests := []struct {
		name    string
		p       Packet
		polling bool
		reason  string // "" when valid
	}{
		{"text message", Packet{Type: Message, Data: []byte("hi")}, true, ""},
		{"binary message with the separator", Packet{Type: Message, Data: []byte{0x1e}, Binary: true}, true, ""},
		{"text with the separator over WebSocket", Packet{Type: Message, Data: []byte("a\x1eb")}, false, ""},
		{"text with the separator over polling", Packet{Type: Message, Data: []byte("a\x1eb")}, true, "record separator"},
		{"unknown type", Packet{Type: 7}, false, "unknown packet type 7"},
		{"binary ping", Packet{Type: Ping, Binary: true}, false, "only messages can be binary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate(tt.polling)
			if tt.reason == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidPacket) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Validate = %v, want an ErrInvalidPacket saying %q", err, tt.reason)
			}
		})
	}
}

func TestPacketErrorMessageNamesPacketAndOffset(t *testing.T) {
	err := &PacketError{Index: 2, Offset: 14, Reason: "unknown packet type 'x'"}
	if got, want := err.Error(), "engineio: invalid packet 2 at byte 14 of payload: unknown packet type 'x'"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err = &PacketError{Index: -1, Reason: "bad base64 in binary packet", Err: base64.CorruptInputError(3)}
	if got, want := err.Error(), "engineio: invalid packet: bad base64 in binary packet: illegal base64 data at input byte 3"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// equalPacket compares packets as the protocol sees them: nil and empty data are the same,
// and Binary counts only on a message.
func equalPacket(a, b Packet) bool {
	return a.Type == b.Type && a.IsBinary() == b.IsBinary() && bytes.Equal(a.Data, b.Data)
}

func equalPackets(a, b []Packet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !equalPacket(a[i], b[i]) {
			return false
		}
	}
	return true
}
