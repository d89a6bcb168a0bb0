package ws

import (
	"testing"
	"unicode/utf8"
)

var utf8Cases = []struct {
	name  string
	input string
}{
	{"empty", ""},
	{"ascii", "Hello-µ@ßöäüàá-UTF-8!!"},
	{"two byte", "\xc2\x80\xdf\xbf"},
	{"three byte", "\xe0\xa0\x80\xef\xbf\xbf\xe2\x82\xac"},
	{"four byte", "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\xf0\x9f\x98\x80"},
	{"greek", "κόσμε"},
	{"overlong slash 2", "\xc0\xaf"},
	{"overlong slash 3", "\xe0\x80\xaf"},
	{"overlong slash 4", "\xf0\x80\x80\xaf"},
	{"overlong max 3", "\xe0\x9f\xbf"},
	{"surrogate low", "\xed\xa0\x80"},
	{"surrogate high", "\xed\xbf\xbf"},
	{"above U+10FFFF", "\xf4\x90\x80\x80"},
	{"F5 lead", "\xf5\x80\x80\x80"},
	{"FE", "\xfe"},
	{"FF", "\xff"},
	{"lone continuation", "a\x80b"},
	{"truncated 3", "\xe2\x82"},
	{"truncated 4", "\xf0\x9f\x98"},
	{"truncated then ascii", "\xe2\x82a"},
	{"valid then invalid", "κόσμε\xed\xa0\x80edited"},
}

func TestUTF8ValidatorAgreesWithStdlibAtEverySplit(t *testing.T) {
	for _, tc := range utf8Cases {
		in := []byte(tc.input)
		want := utf8.Valid(in)
		for split := 0; split <= len(in); split++ {
			for split2 := split; split2 <= len(in); split2++ {
				var v utf8Validator
				ok := v.feed(in[:split]) && v.feed(in[split:split2]) && v.feed(in[split2:]) && v.complete()
				if ok != want {
					t.Fatalf("%s split at %d,%d: valid=%v, want %v", tc.name, split, split2, ok, want)
				}
			}
		}
	}
}

func TestUTF8ValidatorFailsFast(t *testing.T) {
	// Each input is invalid as soon as its prefix is seen, whatever follows.
	for _, prefix := range []string{"\xed\xa0", "\xf4\x90", "\xe0\x80", "\xf0\x80", "\xc0", "\xc1", "\xf5", "\x80", "ab\xff"} {
		var v utf8Validator
		if v.feed([]byte(prefix)) {
			t.Errorf("%q accepted as a valid prefix", prefix)
		}
	}
	// Valid prefixes of longer code points are kept open.
	for _, prefix := range []string{"\xe2\x82", "\xf0\x9f\x98", "\xf4\x8f", "\xc2"} {
		var v utf8Validator
		if !v.feed([]byte(prefix)) || v.complete() {
			t.Errorf("%q: want a valid, incomplete prefix", prefix)
		}
	}
}

func FuzzUTF8Validator(f *testing.F) {
	for _, tc := range utf8Cases {
		f.Add([]byte(tc.input), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		n := int(step%7) + 1
		var v utf8Validator
		ok := true
		for i := 0; i < len(in) && ok; i += n {
			ok = v.feed(in[i:min(i+n, len(in))])
		}
		if got, want := ok && v.complete(), utf8.Valid(in); got != want {
			t.Fatalf("%q in steps of %d: %v, want %v", in, n, got, want)
		}
	})
}
