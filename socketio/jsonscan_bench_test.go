package socketio

import (
	"encoding/json"
	"strings"
	"testing"
)

// bench1KiB is the echo benchmark's event: a 1 KiB string argument, with an ack id.
var bench1KiB = []byte(`21["echo","` + strings.Repeat("Lorem ipsum dolor sit amet, ", 37)[:1024] + `"]`)

// BenchmarkCodecRoundTrip is the codec's share of the echo benchmark: parse an event with a
// 1 KiB string, split its arguments, and encode an ack that sends them back as they came
// (Args.Raw, which AppendArgs checks).
func BenchmarkCodecRoundTrip(b *testing.B) {
	out := make([]byte, 0, 2048)
	data := make([]byte, 0, 2048)
	reply := make([]any, 0, 4)
	b.SetBytes(int64(len(bench1KiB)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParsePacket(bench1KiB, 0)
		if err != nil {
			b.Fatal(err)
		}
		_, args, err := EventArgs(&Message{Packet: p})
		if err != nil {
			b.Fatal(err)
		}
		reply = reply[:0]
		for i := range args.Len() {
			reply = append(reply, args.Raw(i))
		}
		if data, _, err = AppendArgs(data[:0], "", reply); err != nil {
			b.Fatal(err)
		}
		ack := Packet{Type: Ack, Namespace: p.Namespace, ID: p.ID, HasID: true, Data: data}
		out = AppendPacket(out[:0], &ack)
	}
	if len(out) != len(bench1KiB)-len(`"echo",`) {
		b.Fatalf("ack of %d bytes", len(out))
	}
}

// BenchmarkValidJSON compares validJSON with json.Valid on the payloads of the packet
// benchmarks.
func BenchmarkValidJSON(b *testing.B) {
	for _, bm := range []struct {
		name string
		data []byte
	}{
		{"event", benchEvent[1:]},
		{"event on namespace with ack", benchEventNsp[9:]},
		{"binary event", benchBinaryEvent[3:]},
		{"event with a 1 KiB string", bench1KiB[2:]},
	} {
		for _, v := range []struct {
			name  string
			valid func([]byte) bool
		}{{"validJSON", validJSON}, {"json.Valid", json.Valid}} {
			b.Run(bm.name+"/"+v.name, func(b *testing.B) {
				b.SetBytes(int64(len(bm.data)))
				b.ReportAllocs()
				for b.Loop() {
					if !v.valid(bm.data) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}
