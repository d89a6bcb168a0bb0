package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Opcode is the 4-bit frame type of RFC 6455 §5.2.
type Opcode uint8

// The opcodes defined by RFC 6455. 0x3–0x7 and 0xB–0xF are reserved.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a reserved 0xB–0xF).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// IsReserved reports whether op is one of the opcodes RFC 6455 leaves undefined.
func (op Opcode) IsReserved() bool {
	return (op > OpBinary && op < OpClose) || op > OpPong
}

// String returns the opcode's name, or reserved(0xN).
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("reserved(0x%X)", uint8(op))
}

// The reserved header bits, as stored in Header.Rsv.
const (
	Rsv1 uint8 = 0x4 // RSV1: "compressed" under permessage-deflate (RFC 7692)
	Rsv2 uint8 = 0x2
	Rsv3 uint8 = 0x1
)

// MaxHeaderSize is the size of the longest frame header: 2 bytes, a 64-bit length and a mask key.
const MaxHeaderSize = 14

// maxControlPayload is the largest payload a control frame may carry (RFC 6455 §5.5).
const maxControlPayload = 125

// Header is a decoded frame header (RFC 6455 §5.2). It holds no payload.
type Header struct {
	Fin    bool    // final fragment of a message
	Rsv    uint8   // RSV1..RSV3 as the bits Rsv1|Rsv2|Rsv3
	Opcode Opcode  // frame type
	Masked bool    // payload is masked with Mask (client-to-server frames)
	Mask   [4]byte // masking key, meaningful when Masked
	Length int64   // payload length in bytes
}

// ErrLengthOverflow is returned by ParseHeader when a 64-bit payload length has its most
// significant bit set, which RFC 6455 §5.2 forbids.
var ErrLengthOverflow = errors.New("ws: frame length has its most significant bit set")

// ParseHeader decodes the frame header at the start of b. It returns the header and the
// number of bytes it occupies. When b holds only part of a header, ParseHeader returns n == 0
// and a nil error: read more bytes and call it again. Non-minimal length encodings are
// accepted; semantic checks (reserved bits, opcodes, masking by role) are the caller's.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.Opcode = Opcode(b0 & 0x0F)
	h.Masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7F; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		l64 := binary.BigEndian.Uint64(b[2:10])
		if l64>>63 != 0 {
			return h, 0, ErrLengthOverflow
		}
		h.Length = int64(l64)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// Size returns the number of bytes AppendHeader writes for h.
func (h Header) Size() int {
	n := 2
	switch {
	case h.Length > 0xFFFF:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// AppendHeader appends the wire form of h to dst, with the minimal length encoding.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Opcode&0x0F) | (h.Rsv&0x7)<<4
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	switch {
	case h.Length > 0xFFFF:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	case h.Length > 125:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, b1|byte(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}
