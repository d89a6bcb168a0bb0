// Package socketio implements Socket.IO v5, the protocol of the official socket.io and
// socket.io-client 4.x, on top of package engineio: a server that those clients use as
// they use the Node server, a client that behaves as socket.io-client does, and the wire
// format beneath them (packets, binary attachments, the arguments of events and acks).
//
// # Server
//
// NewServer returns an http.Handler (at "/socket.io/" by default) on an engineio.Server,
// which carries the transport options (ping interval, payload limit, CORS, ...):
//
//	srv := socketio.NewServer(nil)
//	srv.OnConnection(func(s *socketio.Socket) {
//		s.Join("lobby")
//		s.On("chat", func(args socketio.Args, ack socketio.AckFunc) {
//			var text string
//			if args.Decode(0, &text) != nil {
//				return
//			}
//			s.To("lobby").Emit("chat", s.ID(), text) // everyone in the lobby but s
//			if ack != nil {
//				ack("delivered")
//			}
//		})
//	})
//	http.Handle(socketio.DefaultPath, srv)
//
// A connection joins namespaces (Server.Of; dynamic ones with OfFunc and OfRegexp, whose
// middleware and handlers apply to every child); each join is a Socket, admitted by the
// namespace's Middleware, which may refuse it with a *ConnectError the client receives in
// connect_error. Sockets exchange events, with acknowledgements both ways (AckFunc,
// Socket.EmitWithAck with a context), and join rooms. Broadcasts (Namespace.To, Except,
// Volatile, Local, Compress, Timeout, then Emit or EmitWithAck) encode their packet once and
// queue the same bytes for every recipient; a slow client never delays the others, and one
// that does not keep up is disconnected once its connection's bounded queue is full.
// Rooms and server-side operations (FetchSockets, SocketsJoin, SocketsLeave,
// DisconnectSockets, ServerSideEmit) go through the namespace's Adapter: NewInMemoryAdapter
// by default, a cluster adapter across servers.
//
// With Options.ConnectionStateRecovery, a client that loses its connection and comes back
// within the window gets its socket back (id, rooms, data; Socket.Recovered reports it) and
// the events it missed, replayed in order; see RecoveryOptions.
//
// For metrics, Options.Observer is told of the fan-out of every broadcast, and the
// engineio.Server's Observer of the sessions and messages beneath; neither costs anything
// when nil.
//
// Event handlers of one socket run one at a time, in arrival order, on a goroutine of the
// socket's own, while its connection goes on reading: a handler may wait for an
// acknowledgement. Middleware and connection handlers run on the connection's goroutine
// before the socket's first event. Disconnect reasons are the Node server's ("client
// namespace disconnect", "server namespace disconnect", "transport close", "ping
// timeout", ...).
//
// Options.EventLoop serves the clients' WebSockets on a ws.EventLoop: an idle client then
// holds no goroutine and no read buffer (about 4 KB of server memory in all), and nothing
// else changes for handlers.
//
// # Client
//
// Dial connects to a namespace of a Socket.IO server (the URL's path names it) and waits
// until the server accepts or refuses:
//
//	s, err := socketio.Dial(ctx, "http://127.0.0.1:3000/chat", nil, &socketio.ClientSocketOptions{Auth: map[string]string{"token": "..."}})
//	s.On("news", func(args socketio.Args, ack socketio.AckFunc) { ... })
//	reply, err := s.EmitWithAck(ctx, "hello", "world")
//
// A Manager (NewManager) is one Engine.IO connection that carries several namespaces, one
// ClientSocket each (Manager.Socket, then ClientSocket.Connect or Open). When the connection
// is lost the Manager reconnects, with exponential backoff and jitter (ManagerOptions), and
// every socket that was connected joins its namespace again; when the server offers
// connection-state recovery, a socket that comes back in time gets the same id and the
// events it missed (ClientSocket.Recovered). While a socket is disconnected, Emit holds its
// packets (up to ClientSocketOptions.MaxBufferedPackets) and sends them in order once it is
// back; Volatile drops them. A server's DISCONNECT ("io server disconnect") and
// ClientSocket.Disconnect end a socket for good.
//
// The handlers of a ClientSocket run one at a time, in the order their packets arrived, on a
// goroutine of the socket (never on the connection's reader), with the connection events
// (OnConnect, OnConnectError, OnDisconnect) in the same order: a handler may call
// EmitWithAck and wait. Every method is safe for concurrent use.
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
