package ws

import "unicode/utf8"

// utf8Validator checks that a byte stream is UTF-8 as it arrives in pieces of any size.
// It fails on the first byte that cannot start or continue a valid sequence, so an invalid
// message is rejected before the rest of it arrives (RFC 6455 §8.1, "fail fast").
type utf8Validator struct {
	need   uint8 // continuation bytes still expected for the current code point
	lo, hi byte  // the range the next continuation byte must fall in
}

// feed reports whether b keeps the stream a valid UTF-8 prefix.
func (v *utf8Validator) feed(b []byte) bool {
	for v.need > 0 && len(b) > 0 {
		if !v.step(b[0]) {
			return false
		}
		b = b[1:]
	}
	if len(b) == 0 {
		return true
	}
	// Split off a trailing incomplete code point: the body goes to the fast library check,
	// the tail through the byte-wise state machine.
	tail := incompleteTail(b)
	if !utf8.Valid(b[:len(b)-tail]) {
		return false
	}
	for _, c := range b[len(b)-tail:] {
		if !v.step(c) {
			return false
		}
	}
	return true
}

// complete reports whether the stream ends on a code point boundary.
func (v *utf8Validator) complete() bool { return v.need == 0 }

func (v *utf8Validator) reset() { *v = utf8Validator{} }

// step advances the state machine by one byte (the ranges of RFC 3629 §4).
func (v *utf8Validator) step(c byte) bool {
	if v.need > 0 {
		if c < v.lo || c > v.hi {
			return false
		}
		v.need--
		v.lo, v.hi = 0x80, 0xBF
		return true
	}
	v.lo, v.hi = 0x80, 0xBF
	switch {
	case c < 0x80:
	case c >= 0xC2 && c <= 0xDF:
		v.need = 1
	case c == 0xE0:
		v.need, v.lo = 2, 0xA0
	case c == 0xED:
		v.need, v.hi = 2, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		v.need = 2
	case c == 0xF0:
		v.need, v.lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		v.need = 3
	case c == 0xF4:
		v.need, v.hi = 3, 0x8F
	default:
		return false
	}
	return true
}

// incompleteTail returns the length of a code point at the end of b whose lead byte is
// present but some of whose continuation bytes are not (0 when b ends on a boundary or
// the tail is invalid anyway, which utf8.Valid will then report).
func incompleteTail(b []byte) int {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c&0xC0 == 0x80 {
			continue // continuation byte: keep looking for the lead
		}
		var size int
		switch {
		case c >= 0xC0 && c < 0xE0:
			size = 2
		case c >= 0xE0 && c < 0xF0:
			size = 3
		case c >= 0xF0 && c < 0xF8:
			size = 4
		default:
			return 0
		}
		if i < size {
			return i
		}
		return 0
	}
	return 0
}
