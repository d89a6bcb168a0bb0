package engineio

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strconv"
)

// sep is the record separator as a slice, for bytes.Cut and bytes.Count.
var sep = []byte{separator}

// AppendPayload appends the polling encoding of packets to dst and returns the extended
// slice: the packets joined by the record separator 0x1E, each a type digit followed by its
// text, except a binary message, which is 'b' followed by its data in standard base64. This
// is the body of a polling GET response (and of a client's POST). It grows dst at most once
// and allocates nothing when dst has room.
//
// An empty list gives an empty body, which is not a valid payload: send at least one packet
// (Noop when there is nothing to say). A text packet whose data contains 0x1E cannot be
// carried (the receiver would split it); Validate(true) finds such packets.
func AppendPayload(dst []byte, packets []Packet) []byte {
	n := 0
	for i, p := range packets {
		if i > 0 {
			n++
		}
		n += payloadLen(p)
	}
	dst = slices.Grow(dst, n)
	for i, p := range packets {
		if i > 0 {
			dst = append(dst, separator)
		}
		dst = AppendPacketBase64(dst, p)
	}
	return dst
}

// payloadLen is the length of p's encoding in a polling payload.
func payloadLen(p Packet) int {
	if p.IsBinary() {
		return 1 + base64.StdEncoding.EncodedLen(len(p.Data))
	}
	if p.Type.Valid() {
		return 1 + len(p.Data)
	}
	return 3 + len(p.Data) // at most 3 digits for a uint8
}

// ParsePayload parses a polling payload (the body of a client's POST, or of a server's GET
// response) into its packets.
//
// Every record between separators must be a valid packet: a type digit '0'-'6' and its text,
// or 'b' and canonical padded standard base64 (no line breaks) of a binary message. An empty
// body, an empty record (two separators in a row, a leading or trailing separator), an
// unknown type, bad base64 and the Engine.IO v3 form "b4<base64>" are errors; so is a body
// of more than maxPackets packets (maxPackets <= 0: no limit), which is detected before any
// packet is decoded. The error is a *PacketError matching ErrInvalidPacket (and
// ErrTooManyPackets for the limit) that says which packet is wrong and where.
//
// The work is linear in len(body) and the caller bounds the body (maxHttpBufferSize). Text
// Data aliases body; the data of all binary packets shares one new buffer. It allocates the
// returned slice, plus that buffer when there are binary packets. The parser does not check
// UTF-8: text is kept byte for byte.
func ParsePayload(body []byte, maxPackets int) ([]Packet, error) {
	count := bytes.Count(body, sep) + 1
	if maxPackets > 0 && count > maxPackets {
		// Refused before any decoding.
		return nil, tooMany(body, maxPackets)
	}
	// Size the buffer for every binary record's decoded data.
	size := 0
	for rest := body; ; {
		seg, tail, more := bytes.Cut(rest, sep)
		if len(seg) > 0 && seg[0] == 'b' {
			size += base64.StdEncoding.DecodedLen(len(seg) - 1)
		}
		if !more {
			break
		}
		rest = tail
	}
	var buf []byte
	if size > 0 {
		buf = make([]byte, 0, size)
	}
	packets := make([]Packet, 0, count)
	off := 0
	for rest := body; ; {
		seg, tail, more := bytes.Cut(rest, sep)
		p, out, reason, cause := parseText(seg, buf)
		if reason != "" {
			return nil, &PacketError{Index: len(packets), Offset: off, Reason: reason, Err: cause}
		}
		buf = out
		packets = append(packets, p)
		if !more {
			return packets, nil
		}
		off += len(seg) + 1
		rest = tail
	}
}

// tooMany returns the error for a payload of more than max packets, pointing at the first
// packet past the limit.
func tooMany(body []byte, max int) error {
	off := 0
	for range max {
		off += bytes.IndexByte(body[off:], separator) + 1
	}
	return &PacketError{Index: max, Offset: off, Reason: "more than " + strconv.Itoa(max) + " packets", Err: ErrTooManyPackets}
}

// PayloadScanner reads the packets of a polling payload one at a time, with the checks of
// ParsePayload, and allocates nothing once its buffer has grown to the largest binary
// packet it has seen. Use it as a bufio.Scanner:
//
//	var s engineio.PayloadScanner // reusable: Reset it for each body
//	s.Reset(body, maxPackets)
//	for s.Scan() {
//		p := s.Packet()
//		...
//	}
//	if err := s.Err(); err != nil { ... }
//
// Packets before a malformed one are returned as they are read: a caller that must reject a
// malformed payload as a whole uses ParsePayload. A PayloadScanner is not safe for concurrent
// use.
type PayloadScanner struct {
	rest  []byte
	off   int // offset of rest in the body
	index int // packets returned so far
	done  bool
	p     Packet
	buf   []byte
	err   error
}

// Reset makes s read body, at most maxPackets packets (maxPackets <= 0: no limit). It keeps
// the buffer for binary data.
//
// A body of more than maxPackets packets is refused here, before any packet is read: the
// first Scan returns false and Err the ErrTooManyPackets error of ParsePayload.
func (s *PayloadScanner) Reset(body []byte, maxPackets int) {
	*s = PayloadScanner{rest: body, buf: s.buf[:0]}
	if maxPackets > 0 && bytes.Count(body, sep) >= maxPackets {
		s.done = true
		s.err = tooMany(body, maxPackets)
	}
}

// Scan advances to the next packet and reports whether there is one. It returns false at the
// end of the payload or at the first error (see Err).
func (s *PayloadScanner) Scan() bool {
	if s.done {
		return false
	}
	seg, tail, more := bytes.Cut(s.rest, sep)
	p, out, reason, cause := parseText(seg, s.buf[:0])
	if reason != "" {
		s.done = true
		s.p = Packet{}
		s.err = &PacketError{Index: s.index, Offset: s.off, Reason: reason, Err: cause}
		return false
	}
	s.buf = out
	s.p = p
	s.index++
	if more {
		s.off += len(seg) + 1
		s.rest = tail
	} else {
		s.done = true
		s.rest = nil
	}
	return true
}

// Packet returns the packet read by the last successful Scan. Text Data aliases the body;
// binary Data aliases the scanner's buffer and is valid only until the next Scan or Reset.
func (s *PayloadScanner) Packet() Packet { return s.p }

// Err returns the error that ended the scan, or nil at the end of a valid payload. The error
// is a *PacketError matching ErrInvalidPacket.
func (s *PayloadScanner) Err() error { return s.err }
