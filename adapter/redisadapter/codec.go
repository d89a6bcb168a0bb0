package redisadapter

// The shapes of the messages the Node packages exchange over Redis, and their encodings.
//
// @socket.io/redis-adapter 8.3.0 (lib/index.ts), classic pub/sub:
//
//   - a broadcast is published to "<key>#<nsp>#" (or "<key>#<nsp>#<room>#" when it targets
//     exactly one room) as the msgpack array [uid, packet, opts], where packet is the
//     Socket.IO packet object {type: 2, data: [event, ...args], nsp} (binary arguments are
//     msgpack bin values) and opts is {rooms: [...], except: [...], flags: {...}};
//   - requests go to "<key>-request#<nsp>#" as JSON objects {uid, requestId, type, ...},
//     except BROADCAST (with acks), which is msgpack because its packet may hold binary;
//   - responses go to "<key>-response#<nsp>#", or to "<key>-response#<nsp>#<uid>#" (the
//     requester's) with publishOnSpecificResponseChannel; they are JSON, except
//     BROADCAST_ACK, which is msgpack. A receiver tells the two apart by the first byte:
//     '{' is JSON.
//
// @socket.io/redis-adapter's createShardedAdapter (lib/sharded-adapter.ts) and the streams
// adapter exchange socket.io-adapter's ClusterAdapter messages (lib/cluster-adapter.ts):
// {uid, nsp, type, data}, JSON unless the message may hold binary and does (then msgpack).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/duplexio/duplex/socketio"
)

// Request types of @socket.io/redis-adapter (RequestType in lib/index.ts); the emitter
// uses the first seven.
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

// Message types of socket.io-adapter's ClusterAdapter (MessageType in
// lib/cluster-adapter.ts), used by the sharded adapter and the streams adapter.
const (
	msgInitialHeartbeat       = 1
	msgHeartbeat              = 2
	msgBroadcast              = 3
	msgSocketsJoin            = 4
	msgSocketsLeave           = 5
	msgDisconnectSockets      = 6
	msgFetchSockets           = 7
	msgFetchSocketsResponse   = 8
	msgServerSideEmit         = 9
	msgServerSideEmitResponse = 10
	msgBroadcastClientCount   = 11
	msgBroadcastAck           = 12
	msgAdapterClose           = 13
)

// EmitterUID is the uid the emitters (@socket.io/redis-emitter, Emitter) put in their
// messages.
const EmitterUID = "emitter"

// packetTypeEvent is socket.io-parser's PacketType.EVENT.
const packetTypeEvent = 2

// decodeMessage decodes a message of the Node adapters: JSON when it starts with '{', msgpack
// otherwise. Maps decode as map[string]any, arrays as []any, msgpack bin as []byte,
// integers as int64 or uint64 (JSON numbers as float64); notepack.io writes
// undefined as nil and a Date as its JSON string, and so do they come.
func decodeMessage(b []byte) (any, error) {
	if len(b) > 0 && b[0] == '{' {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		return v, nil
	}
	d := msgpack.NewDecoder(bytes.NewReader(b))
	v, err := d.DecodeInterface() // the loose variant would turn bin into string
	if err != nil {
		return nil, err
	}
	if r, ok := d.Buffered().(*bytes.Reader); ok && r.Len() > 0 {
		return nil, errors.New("redisadapter: trailing bytes after the message")
	}
	if err != nil {
		return nil, err
	}
	return normalize(v, 0)
}

// normalize turns what msgpack decoded into the types Decode documents.
func normalize(v any, depth int) (any, error) {
	if depth > 1000 {
		return nil, errors.New("redisadapter: message nested too deeply")
	}
	switch x := v.(type) {
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return uint64(x), nil
	case uint16:
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case float32:
		return float64(x), nil
	case []any:
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	case map[string]any:
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			m[fmt.Sprint(k)] = n
		}
		return m, nil
	}
	return v, nil
}

// encodeMsgpack encodes v as notepack.io would: maps with string keys, []byte as bin,
// integral float64 values as integers.
func encodeMsgpack(v any) ([]byte, error) {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	e.SetSortMapKeys(true)
	if err := e.Encode(wire(v, 0)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// wire prepares a value for msgpack: float64s that hold integers become int64 (as
// JavaScript numbers are written by notepack.io).
func wire(v any, depth int) any {
	if depth > 1000 {
		return v
	}
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
			return int64(x)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = wire(e, depth+1)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = wire(e, depth+1)
		}
		return out
	}
	return v
}

// containsBinary reports whether v holds a []byte anywhere.
func containsBinary(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if containsBinary(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if containsBinary(e) {
				return true
			}
		}
	}
	return false
}

// encodeMessage encodes a message as the Node adapters do when it may hold binary: msgpack
// when it does, JSON otherwise.
func encodeMessage(m map[string]any) ([]byte, error) {
	if containsBinary(m) {
		return encodeMsgpack(m)
	}
	return json.Marshal(m)
}

// eventValues returns the event name and arguments of an encoded EVENT packet, as the
// values a Node server would hold (binary arguments as []byte, numbers as float64). An
// offset the packet carries for connection-state recovery is left out.
func eventValues(p *socketio.EncodedPacket) (event string, args []any, err error) {
	pk, err := socketio.ParsePacket(p.Text, len(p.Attachments)+1)
	if err != nil {
		return "", nil, err
	}
	m := socketio.Message{Packet: pk, Binary: p.Attachments}
	event, a, err := socketio.EventArgs(&m)
	if err != nil {
		return "", nil, err
	}
	args, err = a.Values()
	if err != nil {
		return "", nil, err
	}
	if p.Offset != "" && len(args) > 0 {
		args = args[:len(args)-1]
	}
	return event, args, nil
}

// packetObject is the Socket.IO packet object of an event as the Node adapters publish it.
func packetObject(nsp, event string, args []any) map[string]any {
	data := make([]any, 0, len(args)+1)
	data = append(data, event)
	data = append(data, args...)
	return map[string]any{"type": packetTypeEvent, "data": data, "nsp": nsp}
}

// eventOf returns the event name and arguments of a packet object received from Node:
// {type: 2, data: [event, ...args], nsp}.
func eventOf(packet any) (nsp, event string, args []any, err error) {
	m, ok := packet.(map[string]any)
	if !ok {
		return "", "", nil, errors.New("redisadapter: packet is not an object")
	}
	nsp, _ = m["nsp"].(string)
	if nsp == "" {
		nsp = "/"
	}
	data, ok := m["data"].([]any)
	if !ok || len(data) == 0 {
		return "", "", nil, errors.New("redisadapter: packet data is not a non-empty array")
	}
	switch name := data[0].(type) {
	case string:
		event = name
	case float64, int64, uint64:
		event = fmt.Sprint(name)
	default:
		return "", "", nil, errors.New("redisadapter: event name is not a string")
	}
	return nsp, event, data[1:], nil
}

// encodeOpts returns the opts object of a broadcast; timeout (ms), when positive, goes
// into its flags, as socket.io's BroadcastOperator puts it there for acks.
func encodeOpts(o socketio.BroadcastOptions, timeoutMS int64) map[string]any {
	flags := map[string]any{}
	if o.Volatile {
		flags["volatile"] = true
	}
	if o.NoCompress {
		flags["compress"] = false
	}
	if timeoutMS > 0 {
		flags["timeout"] = timeoutMS
	}
	return map[string]any{"rooms": roomList(o.Rooms), "except": roomList(o.Except), "flags": flags}
}

func roomList(rs []socketio.Room) []any {
	out := make([]any, 0, len(rs))
	for _, r := range rs {
		out = append(out, string(r))
	}
	return out
}

// decodeOpts reads an opts object; rooms given as numbers are written as JavaScript would.
func decodeOpts(v any) socketio.BroadcastOptions {
	m, _ := v.(map[string]any)
	o := socketio.BroadcastOptions{Rooms: roomsOf(m["rooms"]), Except: roomsOf(m["except"])}
	if flags, ok := m["flags"].(map[string]any); ok {
		o.Volatile, _ = flags["volatile"].(bool)
		if c, ok := flags["compress"].(bool); ok && !c {
			o.NoCompress = true
		}
	}
	return o
}

// roomsOf reads a list of rooms (strings, or numbers written as JavaScript would).
func roomsOf(v any) []socketio.Room {
	list, _ := v.([]any)
	var out []socketio.Room
	for _, r := range list {
		if s, ok := roomName(r); ok {
			out = append(out, socketio.Room(s))
		}
	}
	return out
}

func roomName(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	}
	return "", false
}

// str returns m[k] as a string, "" when it is not one.
func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// intOf returns m[k] as an int, and whether it is a number.
func intOf(m map[string]any, k string) (int, bool) { return toInt(m[k]) }

// toInt returns a decoded number as an int, and whether v is a number.
func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		return int(x), true
	case int64:
		return int(x), true
	case uint64:
		return int(x), true
	}
	return 0, false
}
