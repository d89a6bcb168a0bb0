package socketio

import (
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// This file holds the small JSON routines the codec needs beyond encoding/json: checking
// that a payload is valid JSON, walking it to find binary placeholders, splitting an array
// into its elements, and writing strings and numbers. The walkers never panic and stop at the first thing they cannot
// read, so they are safe on any input; on text that json.Valid accepted they agree with
// encoding/json.

// maxDepth bounds the nesting the walkers and the encoder follow, as encoding/json bounds
// what it decodes.
const maxDepth = 10000

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipSpace returns the index of the first byte at or after i that is not JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at data[i] (a quote),
// or -1 when the string is not terminated. It checks nothing else: the byte after a
// backslash is skipped whatever it is.
func stringEnd(data []byte, i int) int {
	j := i + 1
	for {
		// Eight bytes at a time up to the next quote or backslash.
		for j+8 <= len(data) {
			w := load64(data[j:])
			if m := hasByte(w, '"') | hasByte(w, '\\'); m != 0 {
				j += bits.TrailingZeros64(m) >> 3
				break
			}
			j += 8
		}
		for ; j < len(data); j++ {
			if c := data[j]; c == '"' || c == '\\' {
				break
			}
		}
		switch {
		case j >= len(data):
			return -1
		case data[j] == '"':
			return j + 1
		}
		j += 2 // the backslash and the byte it escapes
	}
}

// Word-at-a-time byte tests. Each returns a word with the high bit of byte k set when byte
// k of w matches; a match may also set the high bit of some bytes above the first match
// (a borrow runs upwards), but never of a byte below it, so the lowest set bit always
// marks the first matching byte, and the result is zero exactly when no byte matches.
const (
	lsb = 0x0101010101010101 // the low bit of every byte
	msb = 0x8080808080808080 // the high bit of every byte
)

// load64 reads b[0:8] as a little-endian word (one load on the usual machines): byte k of
// b is byte k of the word.
func load64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// hasByte marks the bytes of w equal to c.
func hasByte(w uint64, c byte) uint64 {
	x := w ^ (lsb * uint64(c))
	return (x - lsb) &^ x & msb
}

// hasControl marks the bytes of w below 0x20, which a JSON string may not hold as they are.
func hasControl(w uint64) uint64 {
	return (w - lsb*0x20) &^ w & msb
}

// validJSON reports whether data is one JSON value, with optional whitespace around it,
// exactly as json.Valid does: the RFC 8259 grammar, nesting at most maxDepth (10000)
// arrays and objects deep, and, like encoding/json, no check of UTF-8 (any byte from 0x80
// up may appear in a string) nor of surrogate pairs in \u escapes. FuzzValidJSON holds it
// to json.Valid.
//
// It is iterative, with the kinds of the open arrays and objects in a bit stack, and reads
// strings eight bytes at a time. It makes one pass over data, or two for a value nested
// more than 128 levels deep: the first stops there, and the second has a stack for all
// maxDepth levels. It allocates nothing.
func validJSON(data []byte) bool {
	var small [2]uint64
	ok, deeper := validValue(data, small[:])
	if deeper {
		ok = validDeep(data)
	}
	return ok
}

// validDeep is validJSON for values nested more deeply than its first try allows, with a
// stack for maxDepth levels (about 1.2 KiB, zeroed only when needed; kept out of line so
// that validJSON's own frame stays small).
//
//go:noinline
func validDeep(data []byte) bool {
	var big [(maxDepth + 63) / 64]uint64
	ok, _ := validValue(data, big[:])
	return ok
}

// validValue does the work of validJSON with stack as the bit stack (a set bit: an object,
// a clear bit: an array). It reports deeper, and not ok, when the value nests more deeply
// than stack can hold but not more than maxDepth.
func validValue(data []byte, stack []uint64) (ok, deeper bool) {
	limit := min(len(stack)*64, maxDepth)
	depth := 0 // open arrays and objects
	i := 0
	for {
		// At the start of a value: an array element, an object member's value, or the
		// top-level value.
		i = skipSpace(data, i)
		if i >= len(data) {
			return false, false
		}
		switch c := data[i]; c {
		case '[', '{':
			if depth >= limit {
				return false, depth < maxDepth
			}
			end := byte(']')
			if c == '{' {
				end = '}'
			}
			i = skipSpace(data, i+1)
			if i < len(data) && data[i] == end {
				i++ // empty: a complete value
				break
			}
			word, bit := depth>>6, uint64(1)<<(depth&63)
			depth++
			if c == '[' {
				stack[word] &^= bit
				continue // to the first element
			}
			stack[word] |= bit
			if i = memberValue(data, i); i < 0 {
				return false, false
			}
			continue // to the first member's value
		case '"':
			if i = validString(data, i+1); i < 0 {
				return false, false
			}
		case 't':
			if i = literal(data, i, "true"); i < 0 {
				return false, false
			}
		case 'f':
			if i = literal(data, i, "false"); i < 0 {
				return false, false
			}
		case 'n':
			if i = literal(data, i, "null"); i < 0 {
				return false, false
			}
		default:
			if i = validNumber(data, i); i < 0 {
				return false, false
			}
		}
		// After a complete value: close the arrays and objects it ends, up to a ',' that
		// starts the next value, or to the end of the top-level value.
		for {
			if depth == 0 {
				return skipSpace(data, i) == len(data), false
			}
			if i = skipSpace(data, i); i >= len(data) {
				return false, false
			}
			d := depth - 1
			object := stack[d>>6]&(1<<(d&63)) != 0
			c := data[i]
			i++
			if c == ',' {
				if object {
					if i = memberValue(data, skipSpace(data, i)); i < 0 {
						return false, false
					}
				}
				break
			}
			if object && c != '}' || !object && c != ']' {
				return false, false
			}
			depth--
		}
	}
}

// memberValue reads an object member's name and colon, at data[i], and returns the index
// just past the colon, or -1.
func memberValue(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	if i = validString(data, i+1); i < 0 {
		return -1
	}
	if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
		return -1
	}
	return i + 1
}

// validString checks the rest of a JSON string whose opening quote is just before data[i]
// and returns the index just past its closing quote, or -1: no byte below 0x20, and only
// the escapes \" \\ \/ \b \f \n \r \t and \u with four hexadecimal digits.
func validString(data []byte, i int) int {
	for {
		// Eight bytes at a time up to the next quote, backslash or control byte.
		for i+8 <= len(data) {
			w := load64(data[i:])
			if m := hasByte(w, '"') | hasByte(w, '\\') | hasControl(w); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		for ; i < len(data); i++ {
			if c := data[i]; c == '"' || c == '\\' || c < 0x20 {
				break
			}
		}
		if i >= len(data) {
			return -1
		}
		switch data[i] {
		case '"':
			return i + 1
		case '\\':
			if i+1 >= len(data) {
				return -1
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(data) {
					return -1
				}
				if _, ok := hex4(data[i+2 : i+6]); !ok {
					return -1
				}
				i += 6
			default:
				return -1
			}
		default:
			return -1 // a control byte
		}
	}
}

// literal checks that data[i:] starts with the literal word (true, false or null) and
// returns the index just past it, or -1.
func literal(data []byte, i int, word string) int {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}

// validNumber checks the JSON number that starts at data[i] and returns the index just past
// it, or -1. The grammar: an optional '-', then 0 or a digit 1-9 followed by digits, then
// optionally '.' and digits, then optionally 'e' or 'E', an optional sign and digits.
// What follows the number is the caller's to check (json.Valid refuses 01 for the '1').
func validNumber(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data) || !isDigit(data[i]):
		return -1
	case data[i] == '0':
		i++
	default:
		i = skipDigits(data, i+1)
	}
	if i < len(data) && data[i] == '.' {
		if i++; i >= len(data) || !isDigit(data[i]) {
			return -1
		}
		i = skipDigits(data, i+1)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		if i++; i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return -1
		}
		i = skipDigits(data, i+1)
	}
	return i
}

// skipDigits returns the index of the first byte at or after i that is not a decimal digit.
func skipDigits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// scalarEnd returns the index just past the number or literal that starts at data[i].
func scalarEnd(data []byte, i int) int {
	for i < len(data) {
		switch c := data[i]; {
		case c == ',' || c == ']' || c == '}' || c == ':' || isSpace(c):
			return i
		}
		i++
	}
	return i
}

// jsonStringEquals reports whether the JSON string body raw (the text between the quotes,
// escapes not decoded) decodes to want, which must be ASCII. It allocates nothing.
func jsonStringEquals(raw []byte, want string) bool {
	j := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\\' {
			if i+1 >= len(raw) {
				return false
			}
			i++
			switch raw[i] {
			case '"', '\\', '/':
				c = raw[i]
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				if i+4 >= len(raw) {
					return false
				}
				r, ok := hex4(raw[i+1 : i+5])
				if !ok || r >= utf8.RuneSelf {
					return false // want is ASCII: a non-ASCII rune never matches
				}
				c = byte(r)
				i += 4
			default:
				return false
			}
		} else if c >= utf8.RuneSelf {
			return false
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// plainString returns the text of raw when raw is exactly one JSON string with no escape,
// no control character and valid UTF-8: what json.Unmarshal would give, without its
// validation pass and its byte-by-byte unquoting. Any other raw reports false.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || stringEnd(raw, 0) != len(raw) {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	i := 0
	for ; i+8 <= len(body); i += 8 {
		w := load64(body[i:])
		if hasByte(w, '\\')|hasControl(w) != 0 {
			return "", false
		}
	}
	for ; i < len(body); i++ {
		if c := body[i]; c == '\\' || c < 0x20 {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// hex4 reads four hexadecimal digits.
func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case isDigit(c):
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// span is a placeholder object found in a payload: data[start:end] stands for attachment
// num.
type span struct{ start, end, num int }

// walker finds the binary placeholders in a JSON value: objects whose "_placeholder" member
// is true (the last such member, as JSON.parse and encoding/json keep the last of duplicate
// keys). Each must have a "num" member that is an integer from 0 to n-1, or the walk fails.
// A placeholder stands for its attachment as a whole, so what it contains does not count,
// not even an invalid placeholder (the official parser never looks inside one either). The
// walk is linear in the input and recursive to at most maxDepth levels.
type walker struct {
	data    []byte
	n       int    // attachments available
	collect bool   // record spans
	spans   []span // outermost placeholders in order, when collect is set

	bad    bool // an invalid placeholder was seen, at badOff, outside any placeholder so far
	badOff int

	errOff int
	reason string
}

// walk walks w.data as one JSON value surrounded by optional whitespace. It reports
// whether the walk succeeded; if not, errOff and reason say why.
func (w *walker) walk() bool {
	i := skipSpace(w.data, 0)
	end, ok := w.value(i, 0)
	if !ok {
		return false
	}
	if end = skipSpace(w.data, end); end != len(w.data) {
		return w.fail(end, "malformed JSON")
	}
	if w.bad {
		if w.n == 0 {
			return w.fail(w.badOff, "placeholder in a packet that announces no attachment")
		}
		return w.fail(w.badOff, "placeholder \"num\" is not an integer from 0 to "+strconv.Itoa(w.n-1))
	}
	return true
}

func (w *walker) fail(off int, reason string) bool {
	w.errOff, w.reason = off, reason
	return false
}

func (w *walker) value(i, depth int) (int, bool) {
	if i >= len(w.data) {
		return i, w.fail(i, "malformed JSON")
	}
	switch w.data[i] {
	case '{':
		return w.object(i, depth+1)
	case '[':
		return w.array(i, depth+1)
	case '"':
		end := stringEnd(w.data, i)
		if end < 0 {
			return i, w.fail(i, "malformed JSON")
		}
		return end, true
	default:
		end := scalarEnd(w.data, i)
		if end == i {
			return i, w.fail(i, "malformed JSON")
		}
		return end, true
	}
}

func (w *walker) array(start, depth int) (int, bool) {
	if depth > maxDepth {
		return start, w.fail(start, "JSON nested too deeply")
	}
	i := skipSpace(w.data, start+1)
	if i < len(w.data) && w.data[i] == ']' {
		return i + 1, true
	}
	for {
		end, ok := w.value(i, depth)
		if !ok {
			return end, false
		}
		i = skipSpace(w.data, end)
		if i >= len(w.data) {
			return i, w.fail(i, "malformed JSON")
		}
		switch w.data[i] {
		case ',':
			i = skipSpace(w.data, i+1)
		case ']':
			return i + 1, true
		default:
			return i, w.fail(i, "malformed JSON")
		}
	}
}

func (w *walker) object(start, depth int) (int, bool) {
	if depth > maxDepth {
		return start, w.fail(start, "JSON nested too deeply")
	}
	mark := len(w.spans)
	placeholder, hasNum, num := false, false, 0
	i := skipSpace(w.data, start+1)
	end := -1
	if i < len(w.data) && w.data[i] == '}' {
		end = i + 1
	}
	for end < 0 {
		if i >= len(w.data) || w.data[i] != '"' {
			return i, w.fail(i, "malformed JSON")
		}
		keyEnd := stringEnd(w.data, i)
		if keyEnd < 0 {
			return i, w.fail(i, "malformed JSON")
		}
		key := w.data[i+1 : keyEnd-1]
		i = skipSpace(w.data, keyEnd)
		if i >= len(w.data) || w.data[i] != ':' {
			return i, w.fail(i, "malformed JSON")
		}
		i = skipSpace(w.data, i+1)
		valEnd, ok := w.value(i, depth)
		if !ok {
			return valEnd, false
		}
		val := w.data[i:valEnd]
		switch {
		case jsonStringEquals(key, "_placeholder"):
			placeholder = string(val) == "true"
		case jsonStringEquals(key, "num"):
			num, hasNum = parseIndex(val)
		}
		i = skipSpace(w.data, valEnd)
		if i >= len(w.data) {
			return i, w.fail(i, "malformed JSON")
		}
		switch w.data[i] {
		case ',':
			i = skipSpace(w.data, i+1)
		case '}':
			end = i + 1
		default:
			return i, w.fail(i, "malformed JSON")
		}
	}
	if placeholder {
		if w.bad && w.badOff > start {
			w.bad = false // inside this placeholder: it does not count
		}
		w.spans = w.spans[:mark]
		switch {
		case !hasNum || num >= w.n:
			if !w.bad {
				w.bad, w.badOff = true, start
			}
		case w.collect:
			w.spans = append(w.spans, span{start, end, num})
		}
	}
	return end, true
}

// parseIndex reads a JSON number token as a non-negative integer (1, 1.0, 1e0 and -0 are
// all integers, as in JavaScript). It reports false for anything else, or for values too
// large to be an index.
func parseIndex(tok []byte) (int, bool) {
	if len(tok) == 0 || !(isDigit(tok[0]) || tok[0] == '-') {
		return 0, false
	}
	n, digits := 0, true
	for _, c := range tok {
		if !isDigit(c) {
			digits = false
			break
		}
		if n > (math.MaxInt32-int(c-'0'))/10 {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if digits {
		return n, true
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

// splitArray appends the elements of the JSON array in data to elems. It checks only what
// it needs to find the elements' boundaries: encoding/json checks each element when it is
// decoded.
func splitArray(data []byte, elems [][]byte) ([][]byte, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return elems, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return elems, skipSpace(data, i+1) == len(data)
	}
	for {
		end := skipValue(data, i)
		if end < 0 {
			return elems, false
		}
		elems = append(elems, data[i:end:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return elems, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return elems, skipSpace(data, i+1) == len(data)
		default:
			return elems, false
		}
	}
}

// skipValue returns the index just past the JSON value that starts at data[i], or -1. It
// counts brackets without matching their kinds.
func skipValue(data []byte, i int) int {
	depth := 0
	for i < len(data) {
		switch c := data[i]; c {
		case '"':
			end := stringEnd(data, i)
			if end < 0 || depth == 0 {
				return end
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return -1
			}
			if depth == 0 {
				return i + 1
			}
		default:
			if depth == 0 {
				end := scalarEnd(data, i)
				if end == i {
					return -1
				}
				return end
			}
		}
		i++
	}
	return -1
}

// appendFloat appends f as JavaScript writes a number (and encoding/json a float): plain
// decimal from 1e-6 up to 1e21, exponent form outside, shortest digits that read back the
// same value. f must be finite. Negative zero is written as 0, as JavaScript does.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	abs := math.Abs(f)
	format := byte('f')
	if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// strconv writes e-07 where JavaScript writes e-7.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
