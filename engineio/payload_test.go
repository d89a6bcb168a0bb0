package engineio

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// specPayload is the example payload of the Engine.IO v4 spec.
const specPayload = "4hello\x1ebAQIDBA==\x1e2"

var specPackets = []Packet{
	{Type: Message, Data: []byte("hello")},
	{Type: Message, Data: []byte{1, 2, 3, 4}, Binary: true},
	{Type: Ping},
}

func TestAppendPayloadEncodesSpecExample(t *testing.T) {
	if got := AppendPayload(nil, specPackets); string(got) != specPayload {
		t.Errorf("AppendPayload = %q, want %q", got, specPayload)
	}
}

func TestParsePayloadDecodesSpecExample(t *testing.T) {
	got, err := ParsePayload([]byte(specPayload), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !equalPackets(got, specPackets) {
		t.Errorf("ParsePayload = %+v, want %+v", got, specPackets)
	}
}

func TestAppendPayloadEncodesBodies(t *testing.T) {
	tests := []struct {
		name    string
		packets []Packet
		want    string
	}{
		{"no packets is an empty body", nil, ""},
		{"one noop", []Packet{{Type: Noop}}, "6"},
		{"open then message", []Packet{{Type: Open, Data: []byte(`{"sid":"a"}`)}, {Type: Message, Data: []byte("hi")}}, "0{\"sid\":\"a\"}\x1e4hi"},
		{"empty binary message", []Packet{{Type: Message, Binary: true}}, "b"},
		{"binary data with separator bytes", []Packet{{Type: Message, Data: []byte{0x1e, 0x1e, 0x1e}, Binary: true}}, "bHh4e"},
		{"close after messages", []Packet{{Type: Message, Data: []byte("a")}, {Type: Message, Data: []byte("b")}, {Type: Close}}, "4a\x1e4b\x1e1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AppendPayload([]byte("x"), tt.packets); string(got) != "x"+tt.want {
				t.Errorf("AppendPayload = %q, want %q", got, "x"+tt.want)
			}
		})
	}
}

func TestPayloadRoundTripsEveryType(t *testing.T) {
	var packets []Packet
	for _, typ := range allTypes {
		packets = append(packets, Packet{Type: typ}, Packet{Type: typ, Data: []byte("data of " + typ.String())})
	}
	packets = append(packets,
		Packet{Type: Message, Binary: true},
		Packet{Type: Message, Data: []byte{0, 0x1e, 0xff, '4'}, Binary: true},
		Packet{Type: Message, Data: bytes.Repeat([]byte{0xAB}, 1000), Binary: true},
	)
	for i := range packets {
		// Each packet alone, and all of them in one body.
		one := packets[i : i+1]
		body := AppendPayload(nil, one)
		got, err := ParsePayload(body, 1)
		if err != nil || !equalPackets(got, one) {
			t.Errorf("round trip of %+v via %q = %+v, %v", one, body, got, err)
		}
	}
	body := AppendPayload(nil, packets)
	got, err := ParsePayload(body, len(packets))
	if err != nil || !equalPackets(got, packets) {
		t.Errorf("round trip of all packets = %+v, %v", got, err)
	}
}

func TestParsePayloadRejectsMalformedBodies(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		maxPackets int
		index      int
		offset     int
		reason     string
		tooMany    bool
	}{
		{"empty body", "", 0, 0, 0, "empty packet", false},
		{"leading separator", "\x1e4a", 0, 0, 0, "empty packet", false},
		{"trailing separator", "4a\x1e", 0, 1, 3, "empty packet", false},
		{"two separators in a row", "4a\x1e\x1e4b", 0, 1, 3, "empty packet", false},
		{"unknown type digit", "4a\x1e7b", 0, 1, 3, "unknown packet type '7'", false},
		{"unknown type letter", "xyz", 0, 0, 0, "unknown packet type 'x'", false},
		{"bad base64", "4a\x1ebAQ*D", 0, 1, 3, "bad base64", false},
		{"truncated base64", "bAQIDBA=", 0, 0, 0, "bad base64", false},
		{"base64 with a line break", "2\x1ebAQID\r\nBA==", 0, 1, 2, "bad base64", false},
		{"binary with a type digit (v3)", "2\x1eb4AQIDBA==", 0, 1, 2, "type digit", false},
		{"too many packets", "2\x1e2\x1e2\x1e2", 3, 3, 6, "more than 3 packets", true},
		{"too many before a bad packet", "2\x1e2\x1ex", 2, 2, 4, "more than 2 packets", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePayload([]byte(tt.body), tt.maxPackets)
			if err == nil {
				t.Fatalf("ParsePayload(%q) = %+v, want an error", tt.body, got)
			}
			if got != nil {
				t.Errorf("ParsePayload returned packets with an error: %+v", got)
			}
			checkPayloadError(t, err, tt.index, tt.offset, tt.reason, tt.tooMany)

			// The scanner stops at the same packet with the same error.
			var s PayloadScanner
			s.Reset([]byte(tt.body), tt.maxPackets)
			n := 0
			for s.Scan() {
				n++
			}
			want := tt.index
			if tt.tooMany {
				want = 0 // refused by Reset, before any packet
			}
			if n != want {
				t.Errorf("scanner read %d packets before the error, want %d", n, want)
			}
			checkPayloadError(t, s.Err(), tt.index, tt.offset, tt.reason, tt.tooMany)
		})
	}
}

func checkPayloadError(t *testing.T, err error, index, offset int, reason string, tooMany bool) {
	t.Helper()
	var pe *PacketError
	if !errors.As(err, &pe) {
		t.Fatalf("error %#v is not a *PacketError", err)
	}
	if !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("error %v does not match ErrInvalidPacket", err)
	}
	if errors.Is(err, ErrTooManyPackets) != tooMany {
		t.Errorf("errors.Is(%v, ErrTooManyPackets) = %v, want %v", err, !tooMany, tooMany)
	}
	if pe.Index != index || pe.Offset != offset {
		t.Errorf("error at packet %d byte %d, want packet %d byte %d", pe.Index, pe.Offset, index, offset)
	}
	want := fmt.Sprintf("engineio: invalid packet %d at byte %d of payload: ", index, offset)
	if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q, want %q...%q", err, want, reason)
	}
}

func TestParsePayloadLimitCountsPackets(t *testing.T) {
	body := []byte("2\x1e2\x1e2")
	if _, err := ParsePayload(body, 3); err != nil {
		t.Errorf("3 packets with a limit of 3: %v", err)
	}
	if _, err := ParsePayload(body, 0); err != nil {
		t.Errorf("no limit: %v", err)
	}
	if _, err := ParsePayload(body, 2); !errors.Is(err, ErrTooManyPackets) {
		t.Errorf("3 packets with a limit of 2: %v", err)
	}
}

func TestPayloadKeepsUTF8TextAsIs(t *testing.T) {
	texts := []string{
		"héllo",
		"世界",
		"🎉🚀 emoji outside the BMP",
		"\u2028\u2029 line and paragraph separators",
		"\u00de\u00ad\u00be\u00ef", // bytes C3 9E C2 AD C2 BE C3 AF
		"\u07be\u0f9e\u1e1e",       // 0x1E as the low bits of a code point, never as a byte
		"invalid \xff\xfe UTF-8 is kept too",
	}
	var packets []Packet
	for _, s := range texts {
		packets = append(packets, Packet{Type: Message, Data: []byte(s)})
	}
	body := AppendPayload(nil, packets)
	if n := bytes.Count(body, sep); n != len(texts)-1 {
		t.Fatalf("body has %d separators, want %d", n, len(texts)-1)
	}
	got, err := ParsePayload(body, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range got {
		if string(p.Data) != texts[i] {
			t.Errorf("packet %d = %q, want %q", i, p.Data, texts[i])
		}
	}
}

func TestSeparatorOccursInUTF8OnlyAsU001E(t *testing.T) {
	// Every byte of a multi-byte UTF-8 sequence is >= 0x80, so 0x1E inside UTF-8 text is
	// always the character U+001E itself, never part of another character.
	var buf [utf8.UTFMax]byte
	for r := rune(0); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		n := utf8.EncodeRune(buf[:], r)
		if bytes.IndexByte(buf[:n], separator) >= 0 && r != 0x1E {
			t.Fatalf("U+%04X encodes as % x, which holds the separator", r, buf[:n])
		}
	}
}

func TestPayloadCannotCarryTextWithU001E(t *testing.T) {
	p := Packet{Type: Message, Data: []byte("a\x1e4b")}
	if err := p.Validate(true); !errors.Is(err, ErrInvalidPacket) {
		t.Errorf("Validate(true) = %v, want ErrInvalidPacket", err)
	}
	// Over polling the text is split in two records ...
	got, err := ParsePayload(AppendPayload(nil, []Packet{p}), 0)
	if err != nil || len(got) != 2 {
		t.Errorf("ParsePayload of the split text = %+v, %v; want two packets", got, err)
	}
	// ... while a WebSocket text frame carries it whole.
	back, err := ParsePacket(AppendPacket(nil, p), false)
	if err != nil || !equalPacket(back, p) {
		t.Errorf("WebSocket round trip = %+v, %v", back, err)
	}
}

func TestParsePayloadDataAliasesBodyAndBinaryIsSeparate(t *testing.T) {
	body := []byte("4text\x1ebAQID\x1ebBAUG")
	got, err := ParsePayload(body, 0)
	if err != nil {
		t.Fatal(err)
	}
	if &got[0].Data[0] != &body[1] {
		t.Error("text Data does not alias the body")
	}
	got[1].Data = append(got[1].Data, 0xEE) // must not spill into packet 2
	if !bytes.Equal(got[2].Data, []byte{4, 5, 6}) {
		t.Errorf("appending to one binary packet changed the next: % x", got[2].Data)
	}
	if string(body) != "4text\x1ebAQID\x1ebBAUG" {
		t.Errorf("ParsePayload changed its input: %q", body)
	}
}

func TestPayloadScannerReadsLikeParsePayload(t *testing.T) {
	bodies := []string{specPayload, "6", "b", "4a\x1e4b\x1e4c", "0{}\x1ebAA==\x1ebAAE=\x1ebAAEC\x1e1"}
	var s PayloadScanner
	for _, body := range bodies {
		want, err := ParsePayload([]byte(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		s.Reset([]byte(body), 0)
		var got []Packet
		for s.Scan() {
			p := s.Packet()
			p.Data = bytes.Clone(p.Data) // binary data is only valid until the next Scan
			got = append(got, p)
		}
		if s.Err() != nil || !equalPackets(got, want) {
			t.Errorf("scanner on %q = %+v, %v; want %+v", body, got, s.Err(), want)
		}
		if s.Scan() {
			t.Error("Scan after the end returned true")
		}
	}
}

func TestPayloadScannerReturnsPacketsBeforeTheError(t *testing.T) {
	var s PayloadScanner
	s.Reset([]byte("4a\x1e2\x1e?"), 0)
	var types []PacketType
	for s.Scan() {
		types = append(types, s.Packet().Type)
	}
	if len(types) != 2 || types[0] != Message || types[1] != Ping {
		t.Errorf("read %v before the error", types)
	}
	if !errors.Is(s.Err(), ErrInvalidPacket) {
		t.Errorf("Err() = %v", s.Err())
	}
	if s.Scan() {
		t.Error("Scan after an error returned true")
	}
}
