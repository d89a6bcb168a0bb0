package socketio

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// nest returns value inside n arrays or objects: open repeated n times, value, then close
// repeated n times.
func nest(open, value, close string, n int) string {
	return strings.Repeat(open, n) + value + strings.Repeat(close, n)
}

// validJSONCases are inputs for TestValidJSON and seeds for FuzzValidJSON, with what
// json.Valid says of each.
var validJSONCases = []struct {
	in   string
	want bool
}{
	// Whole values and the whitespace around them.
	{``, false}, {` `, false}, {"\t\n\r ", false}, {`null`, true}, {` null `, true},
	{"\t\n\r null\r\n\t", true}, {"\fnull", false}, {"null\f", false}, {"\vnull", false},
	{"\u00a0null", false}, {"null\x00", false}, {`null null`, false}, {`1 2`, false},
	{`{}{}`, false}, {`[] `, true}, {`[]]`, false}, {`"a"x`, false}, {`"a""b"`, false},

	// Literals.
	{`true`, true}, {`false`, true}, {`tru`, false}, {`truee`, false}, {`True`, false},
	{`nul`, false}, {`nulll`, false}, {`fals`, false}, {`falsetrue`, false}, {`t`, false},
	{`[true,false,null]`, true}, {`[truefalse]`, false}, {`[true false]`, false},
	{`NaN`, false}, {`Infinity`, false}, {`undefined`, false},

	// Numbers.
	{`0`, true}, {`-0`, true}, {`-0.0`, true}, {`-0e0`, true}, {`01`, false}, {`-01`, false},
	{`00`, false}, {`1`, true}, {`-`, false}, {`--1`, false}, {`+1`, false}, {`-a`, false},
	{`1.`, false}, {`1.e5`, false}, {`.5`, false}, {`1.5`, true}, {`1.5.5`, false},
	{`1e`, false}, {`1e+`, false}, {`1e-`, false}, {`1e5`, true}, {`1E5`, true},
	{`1e+5`, true}, {`1e-5`, true}, {`1e05`, true}, {`1e+-5`, false}, {`1ee5`, false},
	{`1.5e5`, true}, {`0.0e-0`, true}, {`1e400`, true}, {`-1e-400`, true},
	{`1e99999999999999999999`, true}, {`123456789012345678901234567890`, true},
	{`1x`, false}, {`1 `, true}, {`[1]`, true}, {`[01]`, false}, {`[1,]`, false},
	{`[1 2]`, false}, {`[1.]`, false}, {`[-]`, false}, {`0x10`, false}, {`1_000`, false},
	{`{"a":1}`, true}, {`{"a":1.}`, false}, {`{"a":-}`, false}, {`{"a":1e}`, false},

	// Strings.
	{`""`, true}, {`"`, false}, {`"abc`, false}, {`"abc\"`, false}, {`"\\"`, true},
	{`"\"\\\/\b\f\n\r\t"`, true}, {`"\a"`, false}, {`"\x41"`, false}, {`"\'"`, false},
	{`"\0"`, false}, {`"\`, false}, {`"\u"`, false}, {`"\u0"`, false}, {`"\u00"`, false},
	{`"\u004"`, false}, {`"\u0041"`, true}, {`"\u00e9\u00E9"`, true}, {`"\uABCDEF"`, true},
	{`"\u00g1"`, false}, {`"\u 041"`, false}, {`"\U0041"`, false}, {`"\u004`, false},
	{`"\ud800"`, true}, {`"\udc00\ud800"`, true}, {`"\ud83d\ude00"`, true}, {`"\uDFFF"`, true},
	{"\"\x00\"", false}, {"\"\x01\"", false}, {"\"\x1f\"", false}, {"\"\t\"", false},
	{"\"\n\"", false}, {"\"\x7f\"", true}, {"\" \"", true},
	{"\"\xff\"", true}, {"\"\xc3\xa9\"", true}, {"\"\xc3\"", true}, {"\"\xed\xa0\x80\"", true},
	{"\"\xf4\x90\x80\x80\"", true}, {"\"\x80\x80\x80\x80\x80\x80\x80\x80\x80\"", true},
	{"\xff", false}, {"[\"a\"]\xff", false}, {"\xef\xbb\xbf\"a\"", false},
	{`"aaaaaaa"`, true}, {`"aaaaaaaa"`, true}, {`"aaaaaaaaa"`, true},
	{`"aaaaaaa\"aaaaaaaaaaa"`, true}, {`"aaaaaaaaaaaaaaa\\"`, true}, {`"aaaaaaaaaaaaaaa\\\"`, false},
	{"\"aaaaaaaaaaaa\x1faaaaaa\"", false}, {"\"aaaaaaaaaaaaaaaaa\x1f\"", false},
	{"\"aaaaaaaa\xffaaaaaaaa\"", true}, {`"aaaaaaaaaaaaaaaaaaaaaaaaaaaa\u12`, false},
	{`'a'`, false},

	// Arrays and objects.
	{`[`, false}, {`]`, false}, {`[]`, true}, {`[ ]`, true}, {`[,]`, false}, {`[,1]`, false},
	{`[1,,2]`, false}, {`[1,2]`, true}, {` [ 1 , [ 2 , [ ] ] ] `, true}, {`[}`, false},
	{`{]`, false}, {`[{]}`, false}, {`{[}]`, false}, {`{`, false}, {`}`, false}, {`{}`, true},
	{`{ }`, true}, {`{,}`, false}, {`{"a"}`, false}, {`{"a":}`, false}, {`{"a" 1}`, false},
	{`{"a"::1}`, false}, {`{"a":1,}`, false}, {`{"a":1,"b":2}`, true}, {`{"a":1 "b":2}`, false},
	{`{"a":1,,"b":2}`, false}, {`{a:1}`, false}, {`{1:1}`, false}, {`{null:1}`, false},
	{`{"a":1}}`, false}, {`{"a":[1,{"b":[]}]}`, true}, {`{"a":"a","a":"b"}`, true},
	{`{ "a" : 1 , "b" : [ ] }`, true}, {`{"\u0061":1}`, true}, {`{"\u00":1}`, false},
	{"{\"a\x01\":1}", false}, {`{"a":1`, false}, {`{"a":`, false}, {`{"a"`, false},
	{`["a",`, false}, {`[1`, false}, {`[1,`, false},
	{`2["chat","hello, world"]`, false}, {`["chat","hello, world"]`, true},
	{`["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}}]`, true},

	// Nesting: at most 10000 arrays and objects deep, including an empty one at the bottom;
	// a first try handles 128 levels.
	{nest("[", "", "]", 128), true}, {nest("[", "", "]", 129), true},
	{nest("[", "1", "]", 128), true}, {nest("[", "1", "]", 129), true},
	{nest(`{"a":`, "1", "}", 129), true}, {nest(`[{"a":`, "[]", "}]", 200), true},
	{nest(`[{"a":`, "[]", "]}", 200), false}, {nest("[", "", "}", 129), false},
	{nest("[", "", "]", 10000), true}, {nest("[", "", "]", 10001), false},
	{nest("[", "0", "]", 10000), true}, {nest("[", "0", "]", 10001), false},
	{nest("[", "[]", "]", 9999), true}, {nest("[", "[]", "]", 10000), false},
	{nest("[", "{}", "]", 9999), true}, {nest("[", "{}", "]", 10000), false},
	{nest(`{"":`, "0", "}", 10000), true}, {nest(`{"":`, "0", "}", 10001), false},
	{nest(`[{"":`, "0", "}]", 5000), true}, {nest(`[{"":`, "[]", "}]", 5000), false},
	{nest(" [ ", " ", " ] ", 10000), true}, {nest("[", "", "]", 10000)[1:], false},
	{strings.Repeat("[", 10001), false}, {strings.Repeat("[", 9999), false},
	{nest("[", "", "]", 10000) + "]", false}, {nest("[", "1,", "]", 300), false},
}

func TestValidJSON(t *testing.T) {
	for _, tt := range validJSONCases {
		name := tt.in
		if len(name) > 40 {
			name = name[:40] + "..."
		}
		if got := validJSON([]byte(tt.in)); got != tt.want {
			t.Errorf("validJSON(%q) = %v, want %v", name, got, tt.want)
		}
		if std := json.Valid([]byte(tt.in)); std != tt.want {
			t.Errorf("json.Valid(%q) = %v: the table is wrong", name, std)
		}
	}
}

// TestValidJSONEveryPrefix checks every prefix of valid values, and each with one byte
// changed to each of a few troublesome bytes, against json.Valid.
func TestValidJSONEveryPrefix(t *testing.T) {
	for _, s := range []string{
		`{"a":[1,-2.5e+3,true,false,null,"x\"\\\u00e9y"],"b":{"c":{}},"d":[[],[{}]]}`,
		`["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}},"` + strings.Repeat("0123456789", 5) + `"]`,
	} {
		b := []byte(s)
		for n := range len(b) + 1 {
			if got, want := validJSON(b[:n]), json.Valid(b[:n]); got != want {
				t.Errorf("validJSON(%q) = %v, json.Valid says %v", b[:n], got, want)
			}
		}
		for i := range b {
			for _, c := range []byte("\x00\x1f \"\\/,:[]{}0-+.eEtu\x7f\x80\xff") {
				m := bytes.Clone(b)
				m[i] = c
				if got, want := validJSON(m), json.Valid(m); got != want {
					t.Errorf("validJSON(%q) = %v, json.Valid says %v", m, got, want)
				}
			}
		}
	}
}

// stringEndBytewise is stringEnd as it was before it read eight bytes at a time.
func stringEndBytewise(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// FuzzValidJSON holds validJSON to json.Valid on any input, and stringEnd to the byte-wise
// scan it replaced.
func FuzzValidJSON(f *testing.F) {
	for _, tt := range validJSONCases {
		if len(tt.in) < 1000 {
			f.Add([]byte(tt.in))
		}
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add(bench1KiB[2:])
	f.Add([]byte(nest(`[{"":`, `"\ud83d\ude00"`, "}]", 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
		for i, seen := 0, 0; i < len(b) && seen < 4; i++ {
			if b[i] == '"' {
				seen++
				if got, want := stringEnd(b, i), stringEndBytewise(b, i); got != want {
					t.Fatalf("stringEnd(%q, %d) = %d, want %d", b, i, got, want)
				}
			}
		}
	})
}

func TestPlainStringAgreesWithUnmarshal(t *testing.T) {
	for _, raw := range []string{
		`""`, `"hello"`, `"héllo wörld, long enough for the word loop"`, `"a\"b"`, `"a\\b"`,
		`"\u0041"`, "\"tab\there\"", `"unterminated`, `"two" "strings"`, `"x"y"`, `42`,
		"\"bad utf-8 \xff\"", `"`, `"0123456789abcdef0123456789abcdef"`,
	} {
		got, plain := plainString([]byte(raw))
		var want string
		err := json.Unmarshal([]byte(raw), &want)
		if plain && (err != nil || got != want) {
			t.Errorf("plainString(%q) = %q; json.Unmarshal gives %q, %v", raw, got, want, err)
		}
		if !plain && err == nil && !strings.ContainsAny(raw, "\\\t") && utf8.ValidString(raw) {
			t.Errorf("plainString(%q) refused a plain string", raw)
		}
	}
}

func FuzzPlainString(f *testing.F) {
	f.Add([]byte(`"hello"`))
	f.Add([]byte(`"a\"b"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, plain := plainString(raw)
		if !plain {
			return
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil || got != want {
			t.Fatalf("plainString(%q) = %q; json.Unmarshal gives %q, %v", raw, got, want, err)
		}
	})
}
