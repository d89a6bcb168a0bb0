package engineio

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/duplexio/duplex/internal/jsonstr"
)

// FuzzParsePacket checks that ParsePacket never panics, that every error matches
// ErrInvalidPacket, and that a parsed packet encodes back to a frame that parses to the same
// packet (and, for canonical input, to the same bytes).
func FuzzParsePacket(f *testing.F) {
	for _, s := range []string{
		"0{\"sid\":\"x\"}", "1", "2", "2probe", "3probe", "4", "4HelloWorld", "5", "6",
		"4héllo 世界", "bAQIDBA==", "b", "b4AQIDBA==", "bAR==", "", "7", "x", "\x1e", "\xff",
	} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte{1, 2, 3, 4}, true)
	f.Add([]byte{}, true)
	f.Add([]byte("4text"), true)
	f.Fuzz(func(t *testing.T, data []byte, binaryFrame bool) {
		p, err := ParsePacket(data, binaryFrame)
		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not match ErrInvalidPacket", err)
			}
			return
		}
		if err := p.Validate(false); err != nil {
			t.Fatalf("parsed packet %+v does not validate: %v", p, err)
		}
		frame := AppendPacket(nil, p)
		if p.WebSocketBinary() != (binaryFrame || data[0] == 'b') {
			t.Fatalf("WebSocketBinary() = %v for input %q (binary frame %v)", p.WebSocketBinary(), data, binaryFrame)
		}
		back, err := ParsePacket(frame, p.WebSocketBinary())
		if err != nil || !equalPacket(back, p) {
			t.Fatalf("round trip of %+v via %q = %+v, %v", p, frame, back, err)
		}
		canonical := frame
		if !binaryFrame && data[0] == 'b' {
			canonical = AppendPacketBase64(nil, p)
		}
		if !bytes.Equal(canonical, data) {
			t.Fatalf("%q re-encodes as %q", data, canonical)
		}
	})
}

// FuzzParsePayload checks that ParsePayload never panics, respects its packet limit,
// agrees with PayloadScanner, and that a valid body is canonical: encoding its packets
// gives the same bytes, and parsing those gives the same packets.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		specPayload, "6", "b", "4a\x1e4b\x1e1", "0{\"sid\":\"a\"}\x1e40", "4héllo\x1e4世界",
		"", "\x1e", "4a\x1e", "\x1e\x1e", "4a\x1e7", "bAQ*D", "b4AQIDBA==", "bAQID\nBA==",
		"2\x1e2\x1e2\x1e2", "4\xff\xfe",
	} {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, body []byte, maxPackets int) {
		maxPackets %= 64
		packets, err := ParsePayload(body, maxPackets)

		var s PayloadScanner
		s.Reset(body, maxPackets)
		var scanned []Packet
		for s.Scan() {
			p := s.Packet()
			p.Data = bytes.Clone(p.Data)
			scanned = append(scanned, p)
		}
		if (err == nil) != (s.Err() == nil) {
			t.Fatalf("ParsePayload error %v, scanner error %v", err, s.Err())
		}

		if err != nil {
			if !errors.Is(err, ErrInvalidPacket) {
				t.Fatalf("error %v does not match ErrInvalidPacket", err)
			}
			if err.Error() != s.Err().Error() {
				t.Fatalf("ParsePayload error %q, scanner error %q", err, s.Err())
			}
			return
		}
		if len(packets) == 0 || (maxPackets > 0 && len(packets) > maxPackets) {
			t.Fatalf("%d packets with a limit of %d", len(packets), maxPackets)
		}
		if !equalPackets(packets, scanned) {
			t.Fatalf("ParsePayload %+v, scanner %+v", packets, scanned)
		}
		for _, p := range packets {
			if err := p.Validate(true); err != nil {
				t.Fatalf("parsed packet %+v does not validate: %v", p, err)
			}
		}
		again := AppendPayload(nil, packets)
		if !bytes.Equal(again, body) {
			t.Fatalf("%q re-encodes as %q", body, again)
		}
		back, err := ParsePayload(again, maxPackets)
		if err != nil || !equalPackets(back, packets) {
			t.Fatalf("round trip of %+v = %+v, %v", packets, back, err)
		}
	})
}

// FuzzPacketRoundTrip builds packets from arbitrary data and checks that
// parse(append(p)) == p over WebSocket, in both frame encodings, and over polling whenever
// Validate says the packet fits a payload.
func FuzzPacketRoundTrip(f *testing.F) {
	f.Add(uint8(4), []byte("hello"), false, []byte("more"))
	f.Add(uint8(4), []byte{1, 2, 3, 4}, true, []byte{})
	f.Add(uint8(2), []byte("probe"), false, []byte("x\x1ey"))
	f.Add(uint8(0), []byte(`{"sid":"x"}`), false, []byte("é"))
	f.Add(uint8(6), []byte{}, false, []byte{0x1e})
	f.Fuzz(func(t *testing.T, typ uint8, data []byte, binary bool, data2 []byte) {
		p := Packet{Type: PacketType(typ % 7), Data: data, Binary: binary}
		if binary && p.Type != Message {
			p.Binary = false
		}
		frames := []struct {
			data   []byte
			binary bool
		}{
			{AppendPacket(nil, p), p.WebSocketBinary()},
			{AppendPacketBase64(nil, p), false}, // always a text frame
		}
		for _, frame := range frames {
			back, err := ParsePacket(frame.data, frame.binary)
			if err != nil || !equalPacket(back, p) {
				t.Fatalf("WebSocket round trip of %+v via %q = %+v, %v", p, frame.data, back, err)
			}
		}
		packets := []Packet{p, {Type: Message, Data: data2, Binary: !binary}}
		if packets[0].Validate(true) != nil || packets[1].Validate(true) != nil {
			return
		}
		body := AppendPayload(nil, packets)
		back, err := ParsePayload(body, 2)
		if err != nil || !equalPackets(back, packets) {
			t.Fatalf("payload round trip of %+v via %q = %+v, %v", packets, body, back, err)
		}
	})
}

// FuzzHandshakeJSON checks that AppendJSON writes valid JSON that encoding/json reads back
// to the same handshake (each invalid UTF-8 byte read back as U+FFFD, as encoding/json
// also writes it).
func FuzzHandshakeJSON(f *testing.F) {
	f.Add("lv_VI97HAXpY6yYWAAAC", "websocket", 25000, 20000, 1000000)
	f.Add("a\"b\\c\n\x00\u2028\xff", "", -1, 0, 1<<40)
	f.Fuzz(func(t *testing.T, sid, upgrade string, interval, timeout, maxPayload int) {
		h := Handshake{SID: sid, Upgrades: []string{upgrade}, PingInterval: interval, PingTimeout: timeout, MaxPayload: maxPayload}
		data := h.AppendJSON(nil)
		if !json.Valid(data) {
			t.Fatalf("invalid JSON: %s", data)
		}
		back, err := ParseHandshake(data)
		if err != nil {
			t.Fatal(err)
		}
		want := h
		want.SID = string([]rune(sid)) // []rune decodes each invalid byte as U+FFFD
		want.Upgrades = []string{string([]rune(upgrade))}
		if back.SID != want.SID || back.Upgrades[0] != want.Upgrades[0] || back.PingInterval != interval ||
			back.PingTimeout != timeout || back.MaxPayload != maxPayload {
			t.Fatalf("read back %+v, want %+v", back, want)
		}
		if utf8.ValidString(sid) {
			m, _ := json.Marshal(sid)
			// encoding/json escapes <, >, & and U+2028/9 where JSON.stringify does not;
			// both must decode to the same string.
			var a, b string
			if json.Unmarshal(m, &a) != nil || json.Unmarshal(jsonstr.Append(nil, sid), &b) != nil || a != b {
				t.Fatalf("escaping of %q differs from encoding/json", sid)
			}
		}
	})
}
