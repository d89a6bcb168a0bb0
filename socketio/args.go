package socketio

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/duplexio/duplex/internal/jsonstr"
)

// Args are the arguments of an event (the elements after its name) or of an ack (all the
// elements), read lazily from the packet's JSON: each argument is decoded only when asked
// for, into the Go type the caller chooses.
//
// In a binary packet (BinaryEvent, BinaryAck) the placeholders {"_placeholder":true,"num":N}
// stand for attachment N, and Decode, Values and Binary resolve them, wherever they sit in
// an argument. In the other types a placeholder is an ordinary object, as in the official
// parser.
//
// Args share memory with their Message: Raw returns views of its Data, and the binary
// values returned are its attachments, not copies. An Args is safe for concurrent reads.
type Args struct {
	elems   [][]byte // the array elements, views of the payload
	binary  [][]byte // the attachments
	resolve bool     // placeholders stand for attachments (a binary packet)
}

// EventArgs splits the payload of an Event or BinaryEvent into the event name and the
// arguments that follow it. An event name sent as a number (which the official parser
// accepts) is returned as JavaScript would write it ("1", "1.5").
//
// The error is a *PacketError when m is not an event or its payload is not an array
// that starts with a string or number. A Message from a Decoder has been checked already;
// one built by hand is checked only as far as finding its arguments needs, and Decode
// reports the rest.
func EventArgs(m *Message) (name string, args Args, err error) {
	if m.Type != Event && m.Type != BinaryEvent {
		return "", Args{}, &PacketError{Offset: -1, Reason: "EventArgs of a " + m.Type.String() + " packet"}
	}
	elems, ok := splitArray(m.Data, make([][]byte, 0, 4))
	if !ok || len(elems) == 0 {
		return "", Args{}, &PacketError{Offset: -1, Reason: "EVENT payload is not a non-empty JSON array"}
	}
	name, err = eventName(elems[0])
	if err != nil {
		return "", Args{}, err
	}
	return name, Args{elems: elems[1:], binary: m.Binary, resolve: m.Type == BinaryEvent}, nil
}

// AckArgs returns the arguments of an Ack or BinaryAck. The error is a *PacketError when m
// is not an ack or its payload is not a JSON array.
func AckArgs(m *Message) (Args, error) {
	if m.Type != Ack && m.Type != BinaryAck {
		return Args{}, &PacketError{Offset: -1, Reason: "AckArgs of a " + m.Type.String() + " packet"}
	}
	elems, ok := splitArray(m.Data, make([][]byte, 0, 4))
	if !ok {
		return Args{}, &PacketError{Offset: -1, Reason: "ACK payload is not a JSON array"}
	}
	return Args{elems: elems, binary: m.Binary, resolve: m.Type == BinaryAck}, nil
}

// eventName decodes the first element of an event's array: a string, or a number written
// as JavaScript's String(n) would.
func eventName(raw []byte) (string, error) {
	switch {
	case len(raw) >= 2 && raw[0] == '"':
		body := raw[1 : len(raw)-1]
		if !slices.Contains(body, '\\') && utf8.Valid(body) {
			return string(body), nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", &PacketError{Offset: -1, Reason: "bad event name", Err: err}
		}
		return s, nil
	case len(raw) > 0 && (raw[0] == '-' || isDigit(raw[0])):
		f, err := strconv.ParseFloat(string(raw), 64)
		switch {
		case math.IsInf(f, 1):
			return "Infinity", nil // JSON.parse reads 1e400 as Infinity
		case math.IsInf(f, -1):
			return "-Infinity", nil
		case err != nil:
			return "", &PacketError{Offset: -1, Reason: "bad event name " + string(raw)}
		}
		var buf [32]byte
		return string(appendFloat(buf[:0], f, 64)), nil
	}
	return "", &PacketError{Offset: -1, Reason: "event name is neither a string nor a number"}
}

// Len returns the number of arguments.
func (a Args) Len() int { return len(a.elems) }

// Raw returns argument i as JSON text, placeholders as they are, or nil when there is no
// argument i. The slice is a view of the Message's Data.
func (a Args) Raw(i int) json.RawMessage {
	if i < 0 || i >= len(a.elems) {
		return nil
	}
	return a.elems[i]
}

// Binary returns the attachment that argument i stands for, when argument i is exactly a
// placeholder of a binary packet. It reports false otherwise, including when there is no
// argument i or the binary value is nested inside the argument (use Decode then).
func (a Args) Binary(i int) ([]byte, bool) {
	if !a.resolve || i < 0 || i >= len(a.elems) {
		return nil, false
	}
	raw := a.elems[i]
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	w := walker{data: raw, n: len(a.binary), collect: true}
	if !w.walk() || len(w.spans) != 1 || w.spans[0].start != 0 || w.spans[0].end != len(raw) {
		return nil, false
	}
	return a.binary[w.spans[0].num], true
}

// Decode decodes argument i into v, a non-nil pointer, with the rules of json.Unmarshal.
// It returns an error when there is no argument i (v is then left alone), or the error of
// json.Unmarshal.
//
// In a binary packet the attachments take the place of their placeholders, wherever they
// are nested:
//
//   - into *any, *[]any and *map[string]any, a binary value becomes a []byte (the
//     attachment itself, not a copy), and the rest decodes as json.Unmarshal decodes it
//     into an interface (numbers as float64);
//   - into any other type, each placeholder is replaced by the attachment written as a
//     base64 JSON string before json.Unmarshal runs: a field or element of type []byte
//     receives the bytes (a copy). A field of interface type nested inside such a type
//     receives the base64 string instead; decode into *any to get []byte values there.
func (a Args) Decode(i int, v any) error {
	if i < 0 || i >= len(a.elems) {
		return errors.New("socketio: no argument " + strconv.Itoa(i) + " (the packet has " + strconv.Itoa(len(a.elems)) + ")")
	}
	raw := a.elems[i]
	if p, ok := v.(*string); ok {
		if str, plain := plainString(raw); plain {
			*p = str
			return nil
		}
	}
	if !a.resolve {
		return json.Unmarshal(raw, v)
	}
	switch t := v.(type) {
	case *any:
		var x any
		if err := json.Unmarshal(raw, &x); err != nil {
			return err
		}
		x, err := a.resolveValue(x, 0)
		if err != nil {
			return err
		}
		*t = x
		return nil
	case *[]any:
		if err := json.Unmarshal(raw, t); err != nil {
			return err
		}
		_, err := a.resolveValue(*t, 0)
		return err
	case *map[string]any:
		if err := json.Unmarshal(raw, t); err != nil {
			return err
		}
		x, err := a.resolveValue(*t, 0)
		if _, isMap := x.(map[string]any); err == nil && !isMap {
			return errors.New("socketio: argument " + strconv.Itoa(i) + " is a binary value, which a map[string]any cannot hold")
		}
		return err
	}
	w := walker{data: raw, n: len(a.binary), collect: true}
	if !w.walk() {
		return &PacketError{Offset: -1, Reason: w.reason}
	}
	if len(w.spans) == 0 {
		return json.Unmarshal(raw, v)
	}
	return json.Unmarshal(a.substitute(raw, w.spans), v)
}

// substitute returns raw with each placeholder replaced by its attachment as a base64 JSON
// string.
func (a Args) substitute(raw []byte, spans []span) []byte {
	size := len(raw)
	for _, s := range spans {
		size += 2 + base64.StdEncoding.EncodedLen(len(a.binary[s.num])) - (s.end - s.start)
	}
	out := make([]byte, 0, size)
	prev := 0
	for _, s := range spans {
		out = append(out, raw[prev:s.start]...)
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, a.binary[s.num])
		out = append(out, '"')
		prev = s.end
	}
	return append(out, raw[prev:]...)
}

// resolveValue replaces, in a value decoded by encoding/json into an interface, every
// placeholder object by its attachment. Maps and slices are changed in place.
func (a Args) resolveValue(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &PacketError{Offset: -1, Reason: "JSON nested too deeply"}
	}
	switch x := v.(type) {
	case map[string]any:
		if ph, _ := x["_placeholder"].(bool); ph {
			f, ok := x["num"].(float64)
			if !ok || f != math.Trunc(f) || f < 0 || f >= float64(len(a.binary)) {
				return nil, &PacketError{Offset: -1, Reason: "placeholder \"num\" is not an integer from 0 to " + strconv.Itoa(len(a.binary)-1)}
			}
			return a.binary[int(f)], nil
		}
		for k, e := range x {
			r, err := a.resolveValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	case []any:
		for k, e := range x {
			r, err := a.resolveValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
	}
	return v, nil
}

// Values decodes every argument into an interface value, as Decode into *any does: JSON
// numbers as float64, objects as map[string]any, arrays as []any, and in a binary packet
// each binary value as a []byte (the attachment itself, not a copy). Like json.Unmarshal it
// fails on a number beyond the range of float64 (JavaScript would read 1e400 as Infinity);
// decode such an argument into a json.Number instead.
func (a Args) Values() ([]any, error) {
	vals := make([]any, len(a.elems))
	for i := range a.elems {
		if err := a.Decode(i, &vals[i]); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// AppendArgs appends a JSON array to dst: head as a JSON string when it is not empty (the
// event name of an EVENT; leave it empty for an ACK), then each of args. It returns the
// extended slice and the binary attachments taken out of args, in order.
//
// Binary values are taken out the way socket.io-parser does it: a []byte argument, or a
// []byte inside a []any or map[string]any (to any depth), is written as the placeholder
// {"_placeholder":true,"num":N}, N counting from 0 depth-first (map keys in sorted order),
// and the slice itself (not a copy) becomes attachment N. Every []byte counts, nil and empty
// ones too. A json.RawMessage is written as it is, after a check that it is valid JSON;
// strings, booleans, nil and numbers are written directly; any other value goes through
// json.Marshal, so a []byte inside a struct, or of a named type, is written as a base64
// string and is not an attachment.
//
// When attachments are returned, the packet to send is a BinaryEvent or BinaryAck that
// announces len(attachments), followed by each attachment as an Engine.IO binary message.
// An event named "" (an empty head) is written by passing "" as the first of args instead.
//
// It allocates only when dst must grow, when it returns attachments, for map keys, and for
// the values it hands to json.Marshal. On error (json.Marshal's, a NaN or infinite number,
// invalid RawMessage, nesting deeper than 10000, which is what a []any that contains itself
// gives) it returns dst unchanged and no attachments.
func AppendArgs(dst []byte, head string, args []any) (out []byte, attachments [][]byte, err error) {
	e := argEncoder{buf: append(dst, '[')}
	if head != "" {
		e.buf = jsonstr.Append(e.buf, head)
	}
	for i, arg := range args {
		if i > 0 || head != "" {
			e.buf = append(e.buf, ',')
		}
		if err := e.value(arg, 0); err != nil {
			return dst, nil, err
		}
	}
	return append(e.buf, ']'), e.attachments, nil
}

// argEncoder writes argument values as JSON, taking binary values out.
type argEncoder struct {
	buf         []byte
	attachments [][]byte
}

func (e *argEncoder) value(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, "null"...)
	case []byte:
		e.buf = append(e.buf, `{"_placeholder":true,"num":`...)
		e.buf = strconv.AppendInt(e.buf, int64(len(e.attachments)), 10)
		e.buf = append(e.buf, '}')
		if e.attachments == nil {
			e.attachments = make([][]byte, 0, 4) // room for the usual few
		}
		e.attachments = append(e.attachments, x)
	case json.RawMessage:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			break
		}
		if !validJSON(x) { // json.Valid's verdict, in one cheap pass
			return errors.New("socketio: json.RawMessage argument is not valid JSON")
		}
		e.buf = append(e.buf, x...)
	case string:
		e.buf = jsonstr.Append(e.buf, x)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int8:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int16:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int32:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case uint:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint8:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint16:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint32:
		e.buf = strconv.AppendUint(e.buf, uint64(x), 10)
	case uint64:
		e.buf = strconv.AppendUint(e.buf, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return e.marshal(x) // json.Marshal's UnsupportedValueError
		}
		e.buf = appendFloat(e.buf, x, 64)
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return e.marshal(x)
		}
		e.buf = appendFloat(e.buf, float64(x), 32)
	case []any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			break
		}
		if depth >= maxDepth {
			return errTooDeep
		}
		e.buf = append(e.buf, '[')
		for i, elem := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.value(elem, depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		if x == nil {
			e.buf = append(e.buf, "null"...)
			break
		}
		if depth >= maxDepth {
			return errTooDeep
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		e.buf = append(e.buf, '{')
		for i, k := range keys {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = jsonstr.Append(e.buf, k)
			e.buf = append(e.buf, ':')
			if err := e.value(x[k], depth+1); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
	default:
		return e.marshal(x)
	}
	return nil
}

func (e *argEncoder) marshal(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e.buf = append(e.buf, b...)
	return nil
}

var errTooDeep = errors.New("socketio: arguments nested more than 10000 deep (a slice or map that contains itself?)")
