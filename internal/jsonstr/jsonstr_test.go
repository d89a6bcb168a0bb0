package jsonstr

import (
	"encoding/json"
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
