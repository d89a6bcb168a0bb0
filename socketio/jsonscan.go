package socketio

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// This file holds the small JSON routines the codec needs beyond encoding/json: walking a
// payload to find binary placeholders, splitting an array into its elements, and writing
// strings and numbers. The walkers never panic and stop at the first thing they cannot
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
// or -1 when the string is not terminated.
func stringEnd(data []byte, i int) int {
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
