// Package jsonstr writes JSON strings as JavaScript's JSON.stringify writes them, for the
// encoders of the protocol layers (the Engine.IO handshake and error JSON, Socket.IO
// arguments), whose bytes must match those of the Node servers.
package jsonstr

import (
	"encoding/binary"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Append appends s to dst as a JSON string: the quote, the backslash and control
// characters escaped (\b \f \n \r \t, others as \u00XX), everything else as is, including
// '<', '>', '&', U+2028 and U+2029 (which encoding/json would escape and JSON.stringify
// does not). Each byte of invalid UTF-8 becomes \ufffd, as encoding/json writes it. It
// allocates only when dst must grow.
func Append(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: no quote, backslash, control
		// character or non-ASCII byte.
		for i+8 <= len(s) && plain8(load64(s[i:])) {
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load64 reads the first eight bytes of s.
func load64(s string) uint64 { return binary.LittleEndian.Uint64([]byte(s[:8])) }

// plain8 reports whether the eight bytes of w are all printable ASCII other than '"' and
// '\\': bytes that go into a JSON string as they are.
func plain8(w uint64) bool {
	quote := w ^ (lsb * '"')
	backslash := w ^ (lsb * '\\')
	special := (quote-lsb)&^quote | (backslash-lsb)&^backslash | (w-lsb*0x20)&^w
	return (special|w)&msb == 0
}
