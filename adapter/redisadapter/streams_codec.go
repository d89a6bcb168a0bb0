package redisadapter

// The encodings of the streams adapter, as @socket.io/redis-streams-adapter 0.3.1 writes
// them (dist/adapter.js, on socket.io-adapter's ClusterAdapter, dist/cluster-adapter.js):
//
//   - a stream entry has the fields uid, nsp, type (the message type in decimal) and, when
//     the message has data, data: the data as JSON text, or, when it holds binary values
//     (and the adapter is not plaintext-only), the data as msgpack in base64. A reader tells
//     them apart by the first character: '{' is JSON.
//   - a pub/sub message (the ephemeral requests and every response) is one msgpack map with
//     the keys uid, nsp, type (a number) and data.
//
// Data shapes: BROADCAST {packet: {type: 2, data: [event, ...args], nsp, id?}, opts: {rooms,
// except, flags}, requestId?}; SOCKETS_JOIN / SOCKETS_LEAVE {opts, rooms}; DISCONNECT_SOCKETS
// {opts, close}; FETCH_SOCKETS {opts, requestId}; FETCH_SOCKETS_RESPONSE {requestId,
// sockets: [{id, handshake, rooms, data}]}; SERVER_SIDE_EMIT {packet: [event, ...args],
// requestId?}; SERVER_SIDE_EMIT_RESPONSE and BROADCAST_ACK {requestId, packet};
// BROADCAST_CLIENT_COUNT {requestId, clientCount}.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/duplexio/duplex/socketio"
)

// The cluster message types of socket.io-adapter's ClusterAdapter.
const (
	streamsBroadcast               = 3
	streamsSocketsJoin             = 4
	streamsSocketsLeave            = 5
	streamsDisconnectSockets       = 6
	streamsFetchSockets            = 7
	streamsFetchSocketsResponse    = 8
	streamsServerSideEmit          = 9
	streamsServerSideEmitResponse  = 10
	streamsBroadcastClientCount    = 11
	streamsBroadcastAck            = 12
	streamsMaxPacketsInRestoreCall = 100 // RESTORE_SESSION_MAX_XRANGE_CALLS
)

// streamsMsg is a decoded cluster message; Data is the generic value of its data (maps as
// map[string]any, arrays as []any, binary as []byte, numbers as any Go number type).
type streamsMsg struct {
	UID  string
	NSP  string
	Type int
	Data map[string]any
}

// streamsEntryValues returns the fields of the stream entry of a message, in the Node
// adapter's order, with data already encoded ("" for none).
func streamsEntryValues(uid, nsp string, typ int, data string) []any {
	v := []any{"uid", uid, "nsp", nsp, "type", strconv.Itoa(typ)}
	if data != "" {
		v = append(v, "data", data)
	}
	return v
}

// streamsEncodeData encodes the data of a stream entry: JSON, or base64 msgpack when it
// holds binary values and plaintext is not forced (then binary values are written as
// Node's Buffer.toJSON writes them).
func streamsEncodeData(data object, onlyPlaintext bool) (string, error) {
	if hasBinary(data) {
		if !onlyPlaintext {
			b, err := streamsMsgpack(data)
			if err != nil {
				return "", err
			}
			return base64.StdEncoding.EncodeToString(b), nil
		}
		data = bufferJSON(data).(object)
	}
	b, err := jsonText(data)
	return string(b), err
}

// jsonText is JSON.stringify's text of v: no HTML escaping, no trailing newline.
func jsonText(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// object is a JSON object or msgpack map whose keys keep their order, as a JavaScript
// object's do: the cluster messages Go writes then have the bytes the Node adapter writes
// for the same message (Go maps would be written with sorted or random keys).
type object []field

type field struct {
	key string
	val any
}

// MarshalJSON implements json.Marshaler.
func (o object) MarshalJSON() ([]byte, error) {
	buf := []byte{'{'}
	for i, f := range o {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, f.key) // the keys are plain ASCII names
		buf = append(buf, ':')
		v, err := jsonText(f.val)
		if err != nil {
			return nil, err
		}
		buf = append(buf, v...)
	}
	return append(buf, '}'), nil
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (o object) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeMapLen(len(o)); err != nil {
		return err
	}
	for _, f := range o {
		if err := enc.EncodeString(f.key); err != nil {
			return err
		}
		if err := enc.Encode(f.val); err != nil {
			return err
		}
	}
	return nil
}

// streamsDecodeEntry decodes the fields of a stream entry.
func streamsDecodeEntry(values map[string]any) (streamsMsg, error) {
	var m streamsMsg
	m.UID, _ = values["uid"].(string)
	m.NSP, _ = values["nsp"].(string)
	t, _ := values["type"].(string)
	typ, err := strconv.Atoi(t)
	if err != nil {
		return m, fmt.Errorf("redisadapter: stream entry type %q: %w", t, err)
	}
	m.Type = typ
	raw, _ := values["data"].(string)
	if raw == "" {
		return m, nil
	}
	var data any
	if strings.HasPrefix(raw, "{") {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			return m, fmt.Errorf("redisadapter: stream entry data: %w", err)
		}
	} else {
		b, err := base64.StdEncoding.DecodeString(raw)
		if err != nil {
			return m, fmt.Errorf("redisadapter: stream entry data: %w", err)
		}
		if err := msgpack.Unmarshal(b, &data); err != nil {
			return m, fmt.Errorf("redisadapter: stream entry data: %w", err)
		}
	}
	d, ok := data.(map[string]any)
	if !ok {
		return m, errors.New("redisadapter: stream entry data is not an object")
	}
	m.Data = d
	return m, nil
}

// streamsEncodePubSub encodes a message published on a channel, with the keys in the
// Node adapter's order (type, data, uid, nsp).
func streamsEncodePubSub(uid, nsp string, typ int, data object) ([]byte, error) {
	m := object{{"type", typ}}
	if data != nil {
		m = append(m, field{"data", data})
	}
	return streamsMsgpack(append(m, field{"uid", uid}, field{"nsp", nsp}))
}

// streamsDecodePubSub decodes a message received on a channel.
func streamsDecodePubSub(payload []byte) (streamsMsg, error) {
	var raw map[string]any
	if err := msgpack.Unmarshal(payload, &raw); err != nil {
		return streamsMsg{}, fmt.Errorf("redisadapter: pub/sub message: %w", err)
	}
	var m streamsMsg
	m.UID, _ = raw["uid"].(string)
	m.NSP, _ = raw["nsp"].(string)
	t, ok := asInt(raw["type"])
	if !ok {
		return m, errors.New("redisadapter: pub/sub message without a type")
	}
	m.Type = int(t)
	m.Data, _ = raw["data"].(map[string]any)
	return m, nil
}

// streamsMsgpack encodes a generic value with msgpack as @msgpack/msgpack does: maps with
// string keys, the smallest integer forms, []byte as bin.
func streamsMsgpack(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	enc.UseCompactFloats(true)
	enc.SetCustomStructTag("json")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// hasBinary reports whether a generic value holds a []byte, as util.hasBinary does.
func hasBinary(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if hasBinary(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasBinary(e) {
				return true
			}
		}
	case object:
		for _, f := range x {
			if hasBinary(f.val) {
				return true
			}
		}
	}
	return false
}

// bufferJSON replaces every []byte by what JSON.stringify writes for a Node Buffer.
func bufferJSON(v any) any {
	switch x := v.(type) {
	case []byte:
		data := make([]any, len(x))
		for i, b := range x {
			data[i] = int(b)
		}
		return map[string]any{"type": "Buffer", "data": data}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = bufferJSON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = bufferJSON(e)
		}
		return out
	case object:
		out := make(object, len(x))
		for i, f := range x {
			out[i] = field{f.key, bufferJSON(f.val)}
		}
		return out
	}
	return v
}

// asInt reads a number of a generic value (JSON or msgpack) as an integer.
func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		if x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	case float64:
		if x != math.Trunc(x) {
			return 0, false
		}
		return int64(x), true
	case float32:
		if float64(x) != math.Trunc(float64(x)) {
			return 0, false
		}
		return int64(x), true
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			f, ferr := x.Float64()
			if ferr != nil || f != math.Trunc(f) {
				return 0, false
			}
			return int64(f), true
		}
		return n, true
	}
	return 0, false
}

// asStrings reads an array of strings (rooms); other elements are skipped.
func asStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func asRooms(v any) []socketio.Room {
	ss := asStrings(v)
	rooms := make([]socketio.Room, len(ss))
	for i, s := range ss {
		rooms[i] = socketio.Room(s)
	}
	return rooms
}

func roomStrings(rooms []socketio.Room) []any {
	out := make([]any, len(rooms))
	for i, r := range rooms {
		out[i] = string(r)
	}
	return out
}

// encodeStreamsOpts writes broadcast options as encodeOptions does: rooms, except, flags
// (volatile and compress as the Node BroadcastOperator sets them).
func encodeStreamsOpts(opts socketio.BroadcastOptions) object {
	flags := object{}
	if opts.NoCompress {
		flags = append(flags, field{"compress", false})
	}
	if opts.Volatile {
		flags = append(flags, field{"volatile", true})
	}
	return object{{"rooms", roomStrings(opts.Rooms)}, {"except", roomStrings(opts.Except)}, {"flags", flags}}
}

// setField sets the value of key in o, appended when o has no such key.
func setField(o object, key string, val any) object {
	for i := range o {
		if o[i].key == key {
			o[i].val = val
			return o
		}
	}
	return append(o, field{key, val})
}

// eventPacket is the packet of a broadcast as the Node adapter writes it: {type: 2, data:
// [event, ...args]} (the receiver sets the namespace, and its own ack id).
func eventPacket(values []any) object {
	return object{{"type", 2}, {"data", values}}
}

// decodeStreamsOpts reads options written by encodeOptions.
func decodeStreamsOpts(v any) socketio.BroadcastOptions {
	m, _ := v.(map[string]any)
	opts := socketio.BroadcastOptions{Rooms: asRooms(m["rooms"]), Except: asRooms(m["except"])}
	if flags, ok := m["flags"].(map[string]any); ok {
		if vol, present := flags["volatile"]; present && vol != nil && vol != false {
			opts.Volatile = true
		}
		if c, ok := flags["compress"].(bool); ok && !c {
			opts.NoCompress = true
		}
	}
	return opts
}

// packetValues returns the elements of an encoded event's JSON array (the event name
// first), binary values as []byte and numbers as float64, as the receiving client would
// read them.
func packetValues(p *socketio.EncodedPacket) ([]any, socketio.Packet, error) {
	pk, err := socketio.ParsePacket(p.Text, len(p.Attachments))
	if err != nil {
		return nil, pk, err
	}
	m := &socketio.Message{Packet: pk, Binary: p.Attachments}
	name, args, err := socketio.EventArgs(m)
	if err != nil {
		return nil, pk, err
	}
	vals, err := args.Values()
	if err != nil {
		return nil, pk, err
	}
	return append([]any{name}, vals...), pk, nil
}

// encodeValues encodes the JSON array of an event from generic values (the event name
// first), binary values taken out as attachments.
func encodeValues(nsp string, id uint64, hasID bool, values []any) (*socketio.EncodedPacket, error) {
	if len(values) == 0 {
		return nil, errors.New("redisadapter: event packet without a name")
	}
	name, ok := values[0].(string)
	if !ok {
		return nil, errors.New("redisadapter: event name is not a string")
	}
	data, att, err := socketio.AppendArgs(nil, "", values)
	if err != nil {
		return nil, err
	}
	pk := socketio.Packet{Type: socketio.Event, Namespace: nsp, ID: id, HasID: hasID, Data: data}
	if len(att) > 0 {
		pk.Type = socketio.BinaryEvent
		pk.Attachments = len(att)
	}
	return &socketio.EncodedPacket{Text: socketio.AppendPacket(nil, &pk), Attachments: att, Event: name, Args: values[1:]}, nil
}

// genericValue turns any Go value into the generic value JSON gives it (binary values kept
// as []byte), for msgpack.
func genericValue(v any) (any, error) {
	switch v.(type) {
	case nil, string, bool, []byte, float64, int, int64:
		return v, nil
	}
	args, err := socketio.NewArgs(v)
	if err != nil {
		return nil, err
	}
	vals, err := args.Values()
	if err != nil {
		return nil, err
	}
	return vals[0], nil
}

// handshakeValue writes a handshake as the Node server's socket.handshake: headers with
// lower-case names, query with the first value of each key, auth as an object.
func handshakeValue(h socketio.Handshake) map[string]any {
	headers := map[string]any{}
	for k, v := range h.Headers {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	query := map[string]any{}
	for k, v := range h.Query {
		if len(v) > 0 {
			query[k] = v[0]
		}
	}
	var auth any = map[string]any{}
	if len(h.Auth) > 0 {
		var a any
		if json.Unmarshal(h.Auth, &a) == nil && a != nil {
			auth, _ = genericValue(a)
		}
	}
	return map[string]any{
		"headers": headers,
		"time":    h.Time.Format("Mon Jan 02 2006 15:04:05 GMT-0700 (MST)"),
		"address": h.Address,
		"xdomain": h.Headers.Get("Origin") != "",
		"secure":  h.Secure,
		"issued":  h.Time.UnixMilli(),
		"url":     h.URL,
		"query":   query,
		"auth":    auth,
	}
}

// handshakeFrom reads a handshake written by another server.
func handshakeFrom(v any) socketio.Handshake {
	m, _ := v.(map[string]any)
	var h socketio.Handshake
	if hs, ok := m["headers"].(map[string]any); ok {
		h.Headers = make(http.Header, len(hs))
		for k, e := range hs {
			switch x := e.(type) {
			case string:
				h.Headers.Set(k, x)
			case []any:
				for _, s := range asStrings(x) {
					h.Headers.Add(k, s)
				}
			}
		}
	}
	if q, ok := m["query"].(map[string]any); ok {
		h.Query = make(url.Values, len(q))
		for k, e := range q {
			if s, ok := e.(string); ok {
				h.Query.Set(k, s)
			}
		}
	}
	h.Address, _ = m["address"].(string)
	h.Secure, _ = m["secure"].(bool)
	h.URL, _ = m["url"].(string)
	if ms, ok := asInt(m["issued"]); ok {
		h.Time = time.UnixMilli(ms)
	}
	if a, ok := m["auth"]; ok && a != nil {
		if b, err := json.Marshal(jsonSafe(a)); err == nil {
			h.Auth = b
		}
	}
	return h
}

// jsonSafe makes a msgpack-decoded value marshalable by encoding/json (maps with
// non-string keys are dropped to their string form).
func jsonSafe(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonSafe(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonSafe(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonSafe(e)
		}
		return out
	}
	return v
}
