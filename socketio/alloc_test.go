package socketio

import (
	"bytes"
	"strings"
	"testing"
)

// Typical packets for the allocation tests and benchmarks.
var (
	benchEvent       = []byte(`2["chat","hello, world"]`)
	benchEventNsp    = []byte(`2/chat,17["chat","hello, world",{"from":"ann","at":1700000000000}]`)
	benchBinaryEvent = []byte(`52-["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]`)
	benchArgs        = []any{"hello, world", 42, map[string]any{"from": "ann", "at": 1700000000000}}
	benchBinaryArgs  = []any{map[string]any{"name": "a.png", "data": bytes.Repeat([]byte{1}, 1024)}, []byte("thumb")}
)

func TestEncodersDoNotAllocateIntoAReusedBuffer(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	buf := make([]byte, 0, 4096)
	p := Packet{Type: BinaryEvent, Namespace: "/chat", ID: 17, HasID: true, Attachments: 2, Data: benchBinaryEvent[3:]}
	simple := []any{"hello, world", 42, 1.5, true, nil, []any{"nested", -1}}
	tests := []struct {
		name string
		want float64
		f    func()
	}{
		{"AppendPacket", 0, func() { buf = AppendPacket(buf[:0], &p) }},
		{"AppendArgs of strings, numbers, slices", 0, func() { buf, _, _ = AppendArgs(buf[:0], "chat", simple) }},
		{"AppendArgs with a small map", 0, func() { buf, _, _ = AppendArgs(buf[:0], "chat", benchArgs) }},
		{"AppendArgs with binary (the attachment list)", 1, func() { buf, _, _ = AppendArgs(buf[:0], "upload", benchBinaryArgs) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != tt.want {
			t.Errorf("%s: %v allocs per run, want %v", tt.name, n, tt.want)
		}
	}
}

func TestParsersAllocateOnlyWhatTheyReturn(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	var d Decoder
	m, _ := d.Add(benchEventNsp, false)
	tests := []struct {
		name string
		want float64
		f    func()
	}{
		{"ParsePacket, main namespace", 0, func() { _, _ = ParsePacket(benchEvent, 0) }},
		{"ParsePacket, binary event", 0, func() { _, _ = ParsePacket(benchBinaryEvent, 0) }},
		{"ParsePacket, other namespace (its string)", 1, func() { _, _ = ParsePacket(benchEventNsp, 0) }},
		{"Decoder.Add of a text packet (message, data, namespace)", 3, func() { _, _ = d.Add(benchEventNsp, false) }},
		{"EventArgs (argument list, name)", 2, func() { _, _, _ = EventArgs(m) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.f); n != tt.want {
			t.Errorf("%s: %v allocs per run, want %v", tt.name, n, tt.want)
		}
	}
}

// TestParsingHandlesHostileShapes parses inputs built to be slow or to make the parser
// allocate: each must parse (or fail) with a few allocations, not a number that grows with
// the input. (Speed is for the benchmarks; the parsers' loops are linear by construction.)
func TestParsingHandlesHostileShapes(t *testing.T) {
	const n = 1 << 16
	ph := `{"_placeholder":true,"num":0}`
	tests := []struct {
		name string
		text string
		ok   bool
	}{
		{"many placeholders", "61-1[" + strings.Repeat(ph+",", n) + ph + "]", true},
		{"many nested objects", "61-1[" + strings.Repeat(`{"a":`, maxDepth-2) + ph + strings.Repeat("}", maxDepth-2) + "]", true},
		{"placeholders inside placeholders", "61-1[" + strings.Repeat(`{"_placeholder":true,"num":0,"x":`, maxDepth-1) + "1" + strings.Repeat("}", maxDepth-1) + "]", true},
		{"long escaped keys", "61-1[{" + strings.Repeat(`"\u005f\u005f\u005f\u005f\u005f\u005f":1,`, n) + `"a":1}]`, true},
		{"long string name", `2["` + strings.Repeat(`\"`, n) + `"]`, true},
		{"huge num", "61-1[" + `{"_placeholder":true,"num":1` + strings.Repeat("0", n) + "}]", false},
		{"huge fractional num", "61-1[" + `{"_placeholder":true,"num":0.` + strings.Repeat("0", n) + "}]", true},
	}
	for _, tt := range tests {
		allocs := testing.AllocsPerRun(2, func() {
			_, err := ParsePacket([]byte(tt.text), 0)
			if (err == nil) != tt.ok {
				t.Errorf("%s: error %v, want ok %v", tt.name, err, tt.ok)
			}
		})
		if allocs > 4 && !raceEnabled {
			t.Errorf("%s: %v allocations", tt.name, allocs)
		}
	}
}

func BenchmarkParsePacket(b *testing.B) {
	for _, bm := range []struct {
		name string
		text []byte
	}{
		{"event", benchEvent},
		{"event on namespace with ack", benchEventNsp},
		{"binary event", benchBinaryEvent},
		{"event with a 1 KiB string", bench1KiB},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(bm.text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParsePacket(bm.text, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendPacket(b *testing.B) {
	p, _ := ParsePacket(benchEventNsp, 0)
	buf := AppendPacket(nil, &p)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPacket(buf[:0], &p)
	}
}

func BenchmarkAppendArgs(b *testing.B) {
	for _, bm := range []struct {
		name string
		args []any
	}{
		{"string", []any{"hello, world"}},
		{"string, number, map", benchArgs},
		{"binary", benchBinaryArgs},
	} {
		b.Run(bm.name, func(b *testing.B) {
			buf, _, _ := AppendArgs(nil, "chat", bm.args)
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if buf, _, err = AppendArgs(buf[:0], "chat", bm.args); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecoderAdd(b *testing.B) {
	var d Decoder
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Add(benchEvent, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventArgsDecode(b *testing.B) {
	var d Decoder
	d.Add(benchBinaryEvent, false)
	d.Add(bytes.Repeat([]byte{1}, 1024), true)
	m, _ := d.Add([]byte("thumb"), true)
	b.ReportAllocs()
	for b.Loop() {
		_, args, err := EventArgs(m)
		if err != nil {
			b.Fatal(err)
		}
		var file struct {
			Name string `json:"name"`
			Data []byte `json:"data"`
		}
		var thumb []byte
		if err := args.Decode(0, &file); err != nil {
			b.Fatal(err)
		}
		if err := args.Decode(1, &thumb); err != nil {
			b.Fatal(err)
		}
	}
}
