package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
)

// PacketType is the type of a Socket.IO packet, sent as one ASCII digit at the start of the
// packet's text.
type PacketType uint8

// The seven packet types of Socket.IO v5.
const (
	// Connect asks to join a namespace (client to server; data: an optional auth object) or
	// accepts the request (server to client; data: {"sid":"..."}, with "pid" under
	// connection-state recovery).
	Connect PacketType = 0
	// Disconnect leaves a namespace, from either side. No data.
	Disconnect PacketType = 1
	// Event carries an event: a JSON array whose first element is the event name. It may
	// carry an ack id that asks the receiver for an Ack.
	Event PacketType = 2
	// Ack answers an Event that carried an ack id, with the same id and a JSON array of
	// arguments.
	Ack PacketType = 3
	// ConnectErrorPacket refuses a Connect (server to client; data:
	// {"message":"...","data":...}). The name leaves ConnectError to the error a server's
	// middleware returns.
	ConnectErrorPacket PacketType = 4
	// BinaryEvent is an Event whose arguments hold binary values: each is replaced in the
	// JSON by a placeholder and sent after the packet as an Engine.IO binary message.
	BinaryEvent PacketType = 5
	// BinaryAck is an Ack whose arguments hold binary values, sent as for BinaryEvent.
	BinaryAck PacketType = 6
)

var packetTypeNames = [...]string{"CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"}

// String returns the protocol's name for t ("CONNECT", "BINARY_EVENT", ...), or
// "PacketType(N)" for a value outside the seven types.
func (t PacketType) String() string {
	if t.Valid() {
		return packetTypeNames[t]
	}
	return "PacketType(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is one of the seven packet types (Connect through BinaryAck).
func (t PacketType) Valid() bool { return t <= BinaryAck }

// binary reports whether t announces binary attachments.
func (t PacketType) binary() bool { return t == BinaryEvent || t == BinaryAck }

// DefaultMaxAttachments is the number of binary attachments a packet may announce when the
// caller sets no limit: 10, the default of the official socket.io-parser since 4.2.6.
const DefaultMaxAttachments = 10

// Packet is one Socket.IO packet: the text carried in one Engine.IO message. A binary packet
// (BinaryEvent, BinaryAck) announces Attachments binary values, which follow it as that many
// Engine.IO binary messages; Decoder puts them together.
//
// The text encoding is
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//
// for example 2/chat,12["message","hi"]: an Event on namespace /chat, ack id 12.
type Packet struct {
	// Type is the packet type.
	Type PacketType
	// Namespace is the namespace the packet belongs to: "/" for the main namespace (never
	// empty after parsing), otherwise a name that starts with '/' and holds no ','. The
	// encoders treat "" as "/".
	Namespace string
	// ID is the ack id; it is meaningful only when HasID is set (0 is a valid id). Only
	// events and acks carry one: an event asks for an ack with it, an ack answers it.
	ID    uint64
	HasID bool
	// Attachments is the number of binary attachments a BinaryEvent or BinaryAck announces;
	// 0 for the other types.
	Attachments int
	// Data is the JSON payload as sent, with binary placeholders in place, or nil when the
	// packet has none. A parsed packet's Data aliases the parser's input.
	Data []byte
}

// ErrInvalidPacket is matched (errors.Is) by every error this package returns for malformed
// input: a packet that does not parse, or binary messages that do not fit the packet they
// follow. The error itself is a *PacketError that says what is wrong and where. A server
// closes the whole connection on such an error (the reason "parse error" of the Node server).
var ErrInvalidPacket = errors.New("socketio: invalid packet")

// ErrAttachmentLimit is matched (errors.Is) by the error returned when a packet announces
// more attachments than the limit allows, or when its attachments together exceed
// Decoder.MaxAttachmentBytes. That error also matches ErrInvalidPacket.
var ErrAttachmentLimit = errors.New("socketio: attachment limit exceeded")

// PacketError describes a malformed packet, or binary messages that do not fit the packet
// they follow. It matches ErrInvalidPacket, and Err when Err is set (errors.Is and errors.As
// see both).
type PacketError struct {
	// Offset is the byte offset in the packet's text where the problem was found, or -1
	// when the problem is the order of messages rather than a place in the text.
	Offset int
	// Reason says what is wrong, for people.
	Reason string
	// Err is the underlying cause, if any: ErrAttachmentLimit, or the error encoding/json
	// gives for a payload that is not valid JSON (a *json.SyntaxError).
	Err error
}

// Error returns a message such as
// "socketio: invalid packet at byte 2: EVENT payload is not an array".
func (e *PacketError) Error() string {
	var b []byte
	b = append(b, "socketio: invalid packet"...)
	if e.Offset >= 0 {
		b = append(b, " at byte "...)
		b = strconv.AppendInt(b, int64(e.Offset), 10)
	}
	b = append(b, ": "...)
	b = append(b, e.Reason...)
	if e.Err != nil && e.Err != ErrAttachmentLimit {
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

// AppendPacket appends the text encoding of p to dst and returns the extended slice:
// the type digit, for a binary type the attachment count and '-', the namespace and ','
// unless it is "/" or "", the ack id when HasID is set, then Data as it is. It allocates only
// when dst must grow.
//
// AppendPacket does not check p: a packet that breaks the rules (a namespace without a
// leading '/' or with a ',', data of the wrong shape, ...) is written anyway and the peer
// will reject it. Check with Validate when p does not come from this package. To build the
// Data of an event or ack from Go values, see AppendArgs.
func AppendPacket(dst []byte, p *Packet) []byte {
	if p.Type.Valid() {
		dst = append(dst, '0'+byte(p.Type))
	} else {
		dst = strconv.AppendUint(dst, uint64(p.Type), 10)
	}
	if p.Type.binary() {
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

// Validate reports whether p is a packet the peer will accept, with the checks of
// ParsePacket (see there) and these on the fields themselves: Type is one of the seven
// types; Namespace is "", "/" or a name that starts with '/' and holds no ','; Attachments is
// 0 unless the type is binary, and not negative. It does not limit Attachments. The error is
// a *PacketError whose Offset refers to AppendPacket's encoding of p.
func (p *Packet) Validate() error {
	if !p.Type.Valid() {
		return &PacketError{Offset: 0, Reason: "unknown packet type " + strconv.Itoa(int(p.Type))}
	}
	off := 1
	if p.Type.binary() {
		if p.Attachments < 0 {
			return &PacketError{Offset: off, Reason: "negative attachment count"}
		}
		off += len(strconv.Itoa(p.Attachments)) + 1
	} else if p.Attachments != 0 {
		return &PacketError{Offset: off, Reason: "attachment count on a " + p.Type.String() + " packet"}
	}
	if p.Namespace != "" && p.Namespace != "/" {
		if p.Namespace[0] != '/' {
			return &PacketError{Offset: off, Reason: "namespace does not start with '/'"}
		}
		if i := strings.IndexByte(p.Namespace, ','); i >= 0 {
			return &PacketError{Offset: off + i, Reason: "namespace contains ','"}
		}
		off += len(p.Namespace) + 1
	}
	idOff := off
	if p.HasID {
		off += len(strconv.FormatUint(p.ID, 10))
	}
	return checkBody(p, idOff, off)
}

// ParsePacket parses the text of one Socket.IO packet: the data of an Engine.IO text
// message. It is strict, and rejects with a *PacketError (matching ErrInvalidPacket):
//
//   - an empty text, or a first byte that is not a type digit '0'-'6';
//   - for a binary type, a count that is missing, not decimal digits or not followed by '-';
//     a count over maxAttachments also matches ErrAttachmentLimit (maxAttachments <= 0
//     means DefaultMaxAttachments; pass math.MaxInt for no limit);
//   - an ack id (decimal digits after the namespace) that overflows a uint64, an ack id on a
//     packet other than an event or ack, and an ack without one;
//   - data that starts with whitespace (the official parser would take it for an ack id),
//     that is not valid JSON, or that is not of its type's shape: CONNECT, absent or an
//     object; DISCONNECT, absent; EVENT and BINARY_EVENT, an array whose first element is a
//     string that is not a reserved event name (IsReservedEvent) or a number (the official
//     parser accepts numbers as event names); ACK and BINARY_ACK, an array; CONNECT_ERROR,
//     an object or a string (which old servers send);
//   - in a binary packet, a placeholder object ({"_placeholder":true,...}) whose "num" is
//     not an integer from 0 to the announced count minus one.
//
// The namespace starts at a '/' right after the type (and count) and runs to the first ','
// or, with no ',', to the end of the text (so "0/admin" connects to /admin, as with the
// official parser); without a leading '/' the packet belongs to "/". A text whose namespace
// is written out as "/," parses like one without namespace.
//
// The parser does not check who may send which type, nor UTF-8. It does not require that
// every attachment be referenced. Data aliases text; the namespace is a new string unless
// it is "/". The work is linear in len(text), and parsing a packet of the main namespace
// allocates nothing.
func ParsePacket(text []byte, maxAttachments int) (Packet, error) {
	if maxAttachments <= 0 {
		maxAttachments = DefaultMaxAttachments
	}
	var p Packet
	if len(text) == 0 {
		return p, &PacketError{Offset: 0, Reason: "empty packet"}
	}
	if c := text[0]; c < '0' || c > '6' {
		return p, &PacketError{Offset: 0, Reason: "unknown packet type " + quoteByte(c)}
	}
	p.Type = PacketType(text[0] - '0')
	i := 1
	if p.Type.binary() {
		n, over := 0, false
		for ; i < len(text) && isDigit(text[i]); i++ {
			d := int(text[i] - '0')
			if over || maxAttachments-d < 0 || n > (maxAttachments-d)/10 {
				over = true
				continue
			}
			n = n*10 + d
		}
		switch {
		case i == 1:
			return Packet{}, &PacketError{Offset: 1, Reason: p.Type.String() + " without an attachment count"}
		case i == len(text) || text[i] != '-':
			return Packet{}, &PacketError{Offset: i, Reason: "attachment count not followed by '-'"}
		case over:
			return Packet{}, &PacketError{Offset: 1, Reason: "more than " + strconv.Itoa(maxAttachments) + " attachments", Err: ErrAttachmentLimit}
		}
		p.Attachments = n
		i++
	}
	p.Namespace = "/"
	if i < len(text) && text[i] == '/' {
		end := len(text)
		next := end
		if c := bytes.IndexByte(text[i:], ','); c >= 0 {
			end = i + c
			next = end + 1
		}
		if end-i > 1 {
			p.Namespace = string(text[i:end])
		}
		i = next
	}
	idOff := i
	if i < len(text) && isDigit(text[i]) {
		var id uint64
		for ; i < len(text) && isDigit(text[i]); i++ {
			d := uint64(text[i] - '0')
			if id > (math.MaxUint64-d)/10 {
				return Packet{}, &PacketError{Offset: idOff, Reason: "ack id overflows 64 bits"}
			}
			id = id*10 + d
		}
		p.ID, p.HasID = id, true
	}
	if i < len(text) {
		p.Data = text[i:]
	}
	if err := checkBody(&p, idOff, i); err != nil {
		return Packet{}, err
	}
	return p, nil
}

// checkBody checks the ack id and data of p against its type. idOff and dataOff are the
// offsets of the ack id and the data in the packet's encoding, for errors.
func checkBody(p *Packet, idOff, dataOff int) error {
	t := p.Type
	switch {
	case p.HasID && t != Event && t != Ack && t != BinaryEvent && t != BinaryAck:
		return &PacketError{Offset: idOff, Reason: "ack id on a " + t.String() + " packet"}
	case !p.HasID && (t == Ack || t == BinaryAck):
		return &PacketError{Offset: idOff, Reason: t.String() + " without an ack id"}
	}
	data := p.Data
	if len(data) == 0 {
		if t == Connect || t == Disconnect {
			return nil
		}
		return &PacketError{Offset: dataOff, Reason: t.String() + " without a payload"}
	}
	if t == Disconnect {
		return &PacketError{Offset: dataOff, Reason: "DISCONNECT with a payload"}
	}
	if isSpace(data[0]) {
		// The official parser would read the whitespace as an ack id (Number(" ") is 0).
		return &PacketError{Offset: dataOff, Reason: "payload starts with whitespace"}
	}
	if !validJSON(data) { // json.Valid's verdict, in one cheap pass
		var v any
		err := json.Unmarshal(data, &v)
		off := dataOff
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset > 0 {
			off += int(se.Offset) - 1 // the byte where encoding/json stopped
		}
		return &PacketError{Offset: off, Reason: "payload is not valid JSON", Err: err}
	}
	start := skipSpace(data, 0)
	first := data[start]
	switch t {
	case Connect:
		if first != '{' {
			return &PacketError{Offset: dataOff + start, Reason: "CONNECT payload is not an object"}
		}
	case ConnectErrorPacket:
		if first != '{' && first != '"' {
			return &PacketError{Offset: dataOff + start, Reason: "CONNECT_ERROR payload is neither an object nor a string"}
		}
	case Ack, BinaryAck:
		if first != '[' {
			return &PacketError{Offset: dataOff + start, Reason: t.String() + " payload is not an array"}
		}
	case Event, BinaryEvent:
		if first != '[' {
			return &PacketError{Offset: dataOff + start, Reason: t.String() + " payload is not an array"}
		}
		n := skipSpace(data, start+1)
		switch c := data[n]; {
		case c == ']':
			return &PacketError{Offset: dataOff + start, Reason: t.String() + " payload is an empty array"}
		case c == '"':
			end := stringEnd(data, n)
			if isReservedRaw(data[n+1 : end-1]) {
				return &PacketError{Offset: dataOff + n, Reason: "reserved event name " + string(data[n:end])}
			}
		case c == '-' || isDigit(c):
			// A number: the official parser accepts it as an event name.
		default:
			return &PacketError{Offset: dataOff + n, Reason: "event name is neither a string nor a number"}
		}
	}
	if t.binary() {
		w := walker{data: data, n: p.Attachments}
		if !w.walk() {
			return &PacketError{Offset: dataOff + w.errOff, Reason: w.reason}
		}
	}
	return nil
}

// reservedEvents are the event names the official parser refuses in an EVENT: the client
// and server libraries use them for their own events.
var reservedEvents = [...]string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// IsReservedEvent reports whether name is one of the event names Socket.IO keeps for
// itself ("connect", "connect_error", "disconnect", "disconnecting", "newListener",
// "removeListener"). An EVENT packet with such a name is malformed (ParsePacket rejects
// it, as the official parser does), so a server must not emit one.
func IsReservedEvent(name string) bool {
	for _, r := range reservedEvents {
		if name == r {
			return true
		}
	}
	return false
}

// isReservedRaw reports whether the JSON string body raw (between the quotes, escapes not
// decoded) is a reserved event name.
func isReservedRaw(raw []byte) bool {
	for _, r := range reservedEvents {
		if jsonStringEquals(raw, r) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	const hex = "0123456789abcdef"
	return "0x" + string([]byte{hex[c>>4], hex[c&0xf]})
}
