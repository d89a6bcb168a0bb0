// Package socketio implements the wire format of Socket.IO v5, the protocol of the official
// socket.io and socket.io-client 4.x, on top of package engineio: packets, binary
// attachments, and the arguments of events and acks.
//
// For now the package is the codec alone. The server (namespaces, rooms, events and acks,
// middleware, broadcasting, connection-state recovery) comes next and builds on it: it feeds
// each Engine.IO message of a connection to a Decoder, reads events with EventArgs,
// and encodes what it sends with AppendArgs and AppendPacket, once per broadcast.
//
// # Packets
//
// Every Socket.IO packet travels as the text of one Engine.IO message:
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
//
// 0{"token":"abc"} connects to the main namespace with an auth object; 2/chat,7["msg","hi"]
// is the event "msg" on /chat asking for an ack with id 7; 3/chat,7["ok"] answers it. A
// Packet holds these fields; AppendPacket writes one and ParsePacket reads one, strictly:
// what the official parser refuses (an unknown type, a namespace without '/', data that is
// not JSON or not of its type's shape, a reserved event name, too many attachments) is a
// *PacketError matching ErrInvalidPacket, on which a server closes the connection.
//
// # Binary
//
// Binary values in an event's or ack's arguments are not sent inside the JSON. Each is
// replaced by a placeholder, {"_placeholder":true,"num":N} with N counting from 0
// depth-first, and sent after the packet as the N-th Engine.IO binary message; the packet's
// type becomes BinaryEvent or BinaryAck and announces the count:
//
//	51-["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}}]   + 1 binary message
//
// AppendArgs takes []byte values out of the arguments this way. A Decoder, fed every
// message of a connection in order, waits for a binary packet's attachments and returns the
// complete Message; its Args put the bytes back where the placeholders were. The number of
// attachments a packet may announce is limited (DefaultMaxAttachments, 10, as in the
// official parser since 4.2.6), and a Decoder can limit their total size.
//
// # Arguments
//
// EventArgs and AckArgs return Args, which decode each argument lazily into
// the type the caller picks: a struct, a []byte, or any.
//
//	name, args, err := socketio.EventArgs(msg)
//	var file struct {
//		Name string `json:"name"`
//		Data []byte `json:"data"` // the attachment
//	}
//	err = args.Decode(0, &file)
//
// # Allocation and safety
//
// The parsers never panic, do work linear in their input (nesting is bounded at 10000
// levels, as encoding/json bounds it), and refuse a packet that announces too many
// attachments before reading any of them. ParsePacket allocates nothing for a packet of the
// main namespace; AppendPacket and AppendArgs allocate only when dst must grow (and
// AppendArgs for the values it hands to encoding/json). All functions are safe for
// concurrent use; a Decoder belongs to one connection.
package socketio
