package engineio

import (
	"bytes"
	"testing"
)

// benchPackets is a typical polling response: text messages, a binary message, a ping.
var benchPackets = []Packet{
	{Type: Message, Data: []byte(`42["chat","hello, world"]`)},
	{Type: Message, Data: []byte(`42["chat","héllo, 世界 🎉"]`)},
	{Type: Message, Data: bytes.Repeat([]byte{0xAB}, 256), Binary: true},
	{Type: Ping},
}

func TestEncodersDoNotAllocateIntoAReusedBuffer(t *testing.T) {
	buf := make([]byte, 0, 4096)
	h := Handshake{SID: "lv_VI97HAXpY6yYWAAAC", Upgrades: []string{"websocket"}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1e6}
	tests := []struct {
		name string
		f    func()
	}{
		{"AppendPacket text", func() { buf = AppendPacket(buf[:0], benchPackets[0]) }},
		{"AppendPacket binary", func() { buf = AppendPacket(buf[:0], benchPackets[2]) }},
		{"AppendPacketBase64", func() { buf = AppendPacketBase64(buf[:0], benchPackets[2]) }},
		{"AppendPayload", func() { buf = AppendPayload(buf[:0], benchPackets) }},
		{"Handshake.AppendJSON", func() { buf = h.AppendJSON(buf[:0]) }},
		{"AppendErrorJSON", func() { buf = AppendErrorJSON(buf[:0], ErrorSessionIDUnknown, "") }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tt.name, n)
		}
	}
}

func TestParsersAllocateOnlyWhatTheyReturn(t *testing.T) {
	text := AppendPacket(nil, benchPackets[0])
	bin := AppendPacket(nil, benchPackets[2])
	body := AppendPayload(nil, benchPackets)
	textBody := AppendPayload(nil, []Packet{benchPackets[0], benchPackets[1], benchPackets[3]})
	var s PayloadScanner
	tests := []struct {
		name string
		want float64
		f    func()
	}{
		{"ParsePacket text frame", 0, func() { _, _ = ParsePacket(text, false) }},
		{"ParsePacket binary frame", 0, func() { _, _ = ParsePacket(bin, true) }},
		{"ParsePayload text only (the slice)", 1, func() { _, _ = ParsePayload(textBody, 0) }},
		{"ParsePayload with binary (slice + one buffer)", 2, func() { _, _ = ParsePayload(body, 0) }},
		{"PayloadScanner reused", 0, func() {
			s.Reset(body, 0)
			for s.Scan() {
			}
		}},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != tt.want {
			t.Errorf("%s: %v allocs per run, want %v", tt.name, n, tt.want)
		}
	}
}

func BenchmarkAppendPayload(b *testing.B) {
	buf := AppendPayload(nil, benchPackets)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPayload(buf[:0], benchPackets)
	}
}

func BenchmarkParsePayload(b *testing.B) {
	body := AppendPayload(nil, benchPackets)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePayload(body, 16); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPayloadScanner(b *testing.B) {
	body := AppendPayload(nil, benchPackets)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var s PayloadScanner
	for b.Loop() {
		s.Reset(body, 16)
		for s.Scan() {
		}
		if s.Err() != nil {
			b.Fatal(s.Err())
		}
	}
}

func BenchmarkParsePacket(b *testing.B) {
	frame := AppendPacket(nil, benchPackets[0])
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePacket(frame, false); err != nil {
			b.Fatal(err)
		}
	}
}
