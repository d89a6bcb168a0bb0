package jsonstr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestAppendWritesWhatJSONStringifyWrites(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x1f\x1e\x7f", `"\u0000\u001f\u001e` + "\x7f" + `"`},
		{"<script>&</script>", `"<script>&</script>"`},
		{"<&> \u2028\u2029 é 世🎉", "\"<&> \u2028\u2029 é 世🎉\""},
		{"a\xffb\xc3", `"a\ufffdb\ufffd"`},
	} {
		got := string(Append(nil, tc.in))
		if got != tc.want {
			t.Errorf("Append(%q) = %s, want %s", tc.in, got, tc.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("Append(%q) = %s is not JSON: %v", tc.in, got, err)
		}
	}
}

func TestAppendAllocatesNothingWithRoom(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], "a \"quoted\"\n text") }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

func TestAppendEscapesAtEveryOffset(t *testing.T) {
	// The eight-byte fast path must find a byte to escape wherever it sits.
	for _, special := range []string{`"`, `\`, "\x00", "\x1f", "\n", "\x7f", "é", "\xff", " ", "~"} {
		for n := 0; n < 24; n++ {
			for pos := 0; pos <= n; pos++ {
				in := strings.Repeat("a", pos) + special + strings.Repeat("b", n-pos)
				got := Append(nil, in)
				want, _ := json.Marshal(in)
				// encoding/json escapes <, >, & and U+2028/9 and writes \ufffd for bad UTF-8,
				// none of which is in these inputs except \xff.
				if !bytes.Equal(got, want) {
					t.Fatalf("Append(%q) = %s, want %s", in, got, want)
				}
			}
		}
	}
}

func BenchmarkAppend1KB(b *testing.B) {
	s := strings.Repeat("0123456789abcdef:plain text ", 37)[:1024]
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = Append(buf[:0], s)
	}
}
