package engineio

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
)

// PacketType is the type of an Engine.IO packet, sent as one ASCII digit before the data.
type PacketType uint8

// The seven packet types of Engine.IO v4.
const (
	// Open starts a session; its data is the handshake JSON (see Handshake). Server to client.
	Open PacketType = 0
	// Close asks the other side to close the transport. No data.
	Close PacketType = 1
	// Ping is a heartbeat; its data is empty, or "probe" while a transport upgrade is tested.
	Ping PacketType = 2
	// Pong answers a Ping with the same data.
	Pong PacketType = 3
	// Message carries application data, text or binary.
	Message PacketType = 4
	// Upgrade tells the server that the client switches to the new transport. No data.
	Upgrade PacketType = 5
	// Noop does nothing; the server sends it to release a pending long poll.
	Noop PacketType = 6
)

var packetTypeNames = [...]string{"open", "close", "ping", "pong", "message", "upgrade", "noop"}

// String returns the protocol's name for t ("open", "message", ...), or "PacketType(N)" for
// a value outside the seven types.
func (t PacketType) String() string {
	if t.Valid() {
		return packetTypeNames[t]
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the seven packet types (Open through Noop).
func (t PacketType) Valid() bool { return t <= Noop }

// Packet is one Engine.IO packet.
//
// Data is the packet's payload: for a text packet, the bytes after the type digit (UTF-8
// text, kept byte for byte); for a binary message, the raw bytes. Binary marks a binary
// message and is only meaningful when Type is Message: the protocol has no binary form of
// the other types, so the encoders ignore Binary for them (Validate reports it).
//
// A Packet returned by a parser may share Data with the parser's input; see each parser.
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool
}

// IsBinary reports whether p is encoded as a binary message: Binary is set and Type is
// Message.
func (p Packet) IsBinary() bool { return p.Binary && p.Type == Message }

// WebSocketBinary reports whether AppendPacket's encoding of p must be sent in a WebSocket
// binary frame (true: a binary message, whose frame holds the raw data) or in a text frame
// (false: the type digit followed by the data).
func (p Packet) WebSocketBinary() bool { return p.IsBinary() }

// Validate reports whether p can be encoded faithfully. It returns a *PacketError (which
// matches ErrInvalidPacket) when Type is not one of the seven types, when Binary is set on
// a packet that is not a Message, or when a text packet's data contains the record separator
// 0x1E: such a text (U+001E is valid UTF-8) travels fine in a WebSocket text frame but cannot
// be carried in a polling payload, whose packets are separated by that byte. The last check
// applies to polling only; pass polling=false to skip it.
func (p Packet) Validate(polling bool) error {
	switch {
	case !p.Type.Valid():
		return &PacketError{Index: -1, Reason: "unknown packet type " + strconv.Itoa(int(p.Type))}
	case p.Binary && p.Type != Message:
		return &PacketError{Index: -1, Reason: "binary " + p.Type.String() + " packet: only messages can be binary"}
	case polling && !p.IsBinary() && bytes.IndexByte(p.Data, separator) >= 0:
		return &PacketError{Index: -1, Reason: "text contains the record separator 0x1E, which a polling payload cannot carry"}
	}
	return nil
}

// ErrInvalidPacket is matched (errors.Is) by every error the parsers return for malformed
// input. The error itself is a *PacketError that says what is wrong and where.
var ErrInvalidPacket = errors.New("engineio: invalid packet")

// ErrTooManyPackets is matched (errors.Is) by the error ParsePayload and PayloadScanner
// return when a payload holds more packets than the caller allows. That error also matches
// ErrInvalidPacket.
var ErrTooManyPackets = errors.New("engineio: too many packets in payload")

// PacketError describes a malformed packet or payload. It matches ErrInvalidPacket, and Err
// when Err is set (errors.Is and errors.As see both).
type PacketError struct {
	// Index is the position of the offending packet in a payload, from 0, or -1 for a single
	// packet (ParsePacket, Validate).
	Index int
	// Offset is the byte offset in the payload where the offending packet starts (0 for a
	// single packet).
	Offset int
	// Reason says what is wrong, for people.
	Reason string
	// Err is the underlying cause, if any: ErrTooManyPackets, or a base64.CorruptInputError
	// whose value is relative to the start of the base64 text.
	Err error
}

// Error returns a message such as
// "engineio: invalid packet 2 at byte 14 of payload: unknown packet type 'x'".
func (e *PacketError) Error() string {
	var b []byte
	b = append(b, "engineio: invalid packet"...)
	if e.Index >= 0 {
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(e.Index), 10)
		b = append(b, " at byte "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
		b = append(b, " of payload"...)
	}
	b = append(b, ": "...)
	b = append(b, e.Reason...)
	if e.Err != nil && !errors.Is(e.Err, ErrTooManyPackets) {
		b = append(b, ": "...)
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

// Unwrap returns ErrInvalidPacket and, when set, Err.
func (e *PacketError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidPacket}
	}
	return []error{ErrInvalidPacket, e.Err}
}

// AppendPacket appends the WebSocket encoding of p to dst and returns the extended slice:
// for a binary message (p.WebSocketBinary()), the raw data, to be sent in a binary frame;
// otherwise the type digit followed by the data, to be sent in a text frame. It allocates
// only when dst must grow. A p.Type outside the seven types is written as its decimal value,
// which the peer will reject; check with Validate first when the type is not a constant.
func AppendPacket(dst []byte, p Packet) []byte {
	if p.IsBinary() {
		return append(dst, p.Data...)
	}
	return append(appendType(dst, p.Type), p.Data...)
}

// AppendPacketBase64 appends the text-frame encoding of p to dst, with a binary message
// written as 'b' followed by its data in standard base64 (the form of a polling payload),
// for a WebSocket peer that cannot receive binary frames. Other packets are encoded as by
// AppendPacket. The result always goes in a text frame.
func AppendPacketBase64(dst []byte, p Packet) []byte {
	if p.IsBinary() {
		dst = append(dst, 'b')
		return base64.StdEncoding.AppendEncode(dst, p.Data)
	}
	return AppendPacket(dst, p)
}

// ParsePacket parses the data of one WebSocket message; binaryFrame tells whether it came
// in a binary frame.
//
// A binary frame is a binary message, whatever its bytes (an empty one too). A text frame
// is a type digit '0'-'6' followed by the data; a text frame "b<base64>" is a binary
// message sent as base64 (what engine.io-client sends with forceBase64), decoded into a new
// slice. Any other text frame, including an empty one, is an error matching
// ErrInvalidPacket. The parser does not check which side may send which type, nor UTF-8
// (the WebSocket layer checks text frames).
//
// Except for base64, the returned Data aliases data (nil when empty) and allocates nothing.
func ParsePacket(data []byte, binaryFrame bool) (Packet, error) {
	if binaryFrame {
		return Packet{Type: Message, Data: nilIfEmpty(data), Binary: true}, nil
	}
	p, _, reason, cause := parseText(data, nil)
	if reason != "" {
		return Packet{}, &PacketError{Index: -1, Reason: reason, Err: cause}
	}
	return p, nil
}

// separator is the record separator (ASCII RS) that joins the packets of a polling payload.
const separator = 0x1E

func appendType(dst []byte, t PacketType) []byte {
	if t.Valid() {
		return append(dst, '0'+byte(t))
	}
	return strconv.AppendUint(dst, uint64(t), 10)
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// parseText parses one text-encoded packet: a WebSocket text frame or one record of a
// polling payload. Base64 data is decoded by appending to buf (a nil buf allocates exactly
// once); the packet's Data then aliases the new tail of buf, and the extended buf is
// returned as out. On failure reason is non-empty and cause may say more.
func parseText(seg []byte, buf []byte) (p Packet, out []byte, reason string, cause error) {
	if len(seg) == 0 {
		return Packet{}, buf, "empty packet", nil
	}
	c := seg[0]
	switch {
	case c == 'b':
		b64 := seg[1:]
		if reason, cause := checkBase64(b64); reason != "" {
			return Packet{}, buf, reason, cause
		}
		n := len(buf)
		out, err := base64.StdEncoding.Strict().AppendDecode(buf, b64)
		if err != nil {
			return Packet{}, buf, "bad base64 in binary packet", err
		}
		return Packet{Type: Message, Data: nilIfEmpty(out[n:len(out):len(out)]), Binary: true}, out, "", nil
	case c >= '0' && c <= '6':
		return Packet{Type: PacketType(c - '0'), Data: nilIfEmpty(seg[1:])}, buf, "", nil
	default:
		return Packet{}, buf, "unknown packet type " + quoteByte(c), nil
	}
}

// checkBase64 rejects what base64.StdEncoding would otherwise accept or misreport: line
// breaks (which the decoder skips) and the Engine.IO v3 form "b<type digit><base64>".
func checkBase64(b64 []byte) (reason string, cause error) {
	for i, c := range b64 {
		if c == '\r' || c == '\n' {
			return "bad base64 in binary packet", base64.CorruptInputError(i)
		}
	}
	if len(b64)%4 == 1 && b64[0] >= '0' && b64[0] <= '6' {
		rest := b64[1:]
		if validBase64(rest) {
			return "binary packet starts with a type digit (the Engine.IO v3 form); v4 sends 'b' and the base64 data only", nil
		}
	}
	return "", nil
}

// validBase64 reports whether s is canonical padded standard base64, without allocating.
func validBase64(s []byte) bool {
	if len(s)%4 != 0 {
		return false
	}
	var tmp [48]byte
	enc := base64.StdEncoding.Strict()
	for len(s) > 0 {
		n := min(len(s), 64)
		if n < len(s) && s[n-1] == '=' {
			return false // padding before the end
		}
		if _, err := enc.Decode(tmp[:], s[:n]); err != nil {
			return false
		}
		s = s[n:]
	}
	return true
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return "0x" + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&0xf, 16)
}
