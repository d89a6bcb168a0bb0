// Package engineio implements Engine.IO v4, the transport protocol under Socket.IO: a
// server that keeps sessions with clients over HTTP long-polling and WebSocket, a client
// that connects to such servers, and the wire format beneath them (packets, polling payloads, the handshake JSON, the error JSON).
//
// # Server
//
// Server is an http.Handler (at "/engine.io/" by default). Each client that completes a
// handshake becomes a Session, handed to Server.OnConnection before the client can send
// anything:
//
//	srv := &engineio.Server{OnConnection: func(s *engineio.Session) {
//		s.OnMessage = func(data []byte, binary bool) { ... }
//		s.OnClose = func(reason engineio.CloseReason, err error) { ... }
//	}}
//	http.Handle(engineio.DefaultPath, srv)
//
// A session starts on polling or directly on WebSocket, and a polling session may upgrade to
// WebSocket (probe, noop, upgrade) without losing or reordering a packet in either
// direction. The server pings every PingInterval and ends a session whose pong is PingTimeout
// late. Session.Send queues a message and returns at once; the queue is bounded
// (MaxQueuedBytes, MaxQueuedPackets), and a client that stops reading is closed with
// ReasonQueueFull rather than let the server's memory grow. Session.Writable and
// Session.Drain let a sender hold back before that. Sessions end with the Node server's close
// reasons (CloseReason). Server.Shutdown closes every session and waits for them.
// Server.Observer, when set, is told of sessions opening, upgrading and closing, of the
// messages and bytes in and out on each transport and of refused requests, for metrics.
//
// Requests the protocol refuses get its error JSON with HTTP 400 (403 for AllowRequest's
// refusals): an unsupported EIO version, an unknown transport or sid, a handshake that is
// not a GET, a malformed payload (the session is then closed). A POST body or WebSocket
// message over MaxHTTPBufferSize is refused without reading past the limit, and the
// session closed.
//
// Cost of a session: an idle polling session holds its pending GET; an idle WebSocket
// session holds one goroutine (its reader) and no I/O buffer, or with Server.EventLoop set
// (a ws.EventLoop) no goroutine either: the loop reads the connection when bytes arrive, and
// the heartbeat is kept in the loop's timer wheel. Writes use a goroutine only while there
// is something to write.
//
// # Client
//
// Dial opens a connection to an Engine.IO server, as engine.io-client does: a polling
// handshake, then an upgrade to WebSocket (or ClientOptions.Transports in another order):
//
//	c, err := engineio.Dial(ctx, "http://127.0.0.1:3000", &engineio.ClientOptions{
//		OnMessage: func(data []byte, binary bool) { ... },
//		OnClose:   func(reason engineio.CloseReason, err error) { ... },
//	})
//	err = c.Send([]byte("hello"), engineio.Text)
//
// The Client answers pings, ends with ReasonPingTimeout when the server stays silent for
// its pingInterval plus pingTimeout, splits its POSTs at the server's maxPayload, and keeps
// the order of messages across the upgrade both ways. Client.Send queues and returns at
// once; Client.Close flushes the queue before closing. The Client does not reconnect: the
// Socket.IO client above it does.
//
// # Packets
//
// A Packet is a PacketType (Open, Close, Ping, Pong, Message, Upgrade, Noop) and its data;
// a Message may be binary. Over WebSocket each packet is one message: AppendPacket encodes
// it and Packet.WebSocketBinary says whether it goes in a binary frame (a binary message, raw
// bytes) or a text frame (the type digit and the text); ParsePacket decodes one received
// message. AppendPacketBase64 writes a binary message as text for peers that cannot take
// binary frames.
//
// # Payloads
//
// Over HTTP long-polling, a body holds packets joined by the record separator 0x1E, a
// binary message being 'b' and its data in standard base64:
//
//	4hello\x1ebAQIDBA==\x1e2
//
// is the message "hello", the binary message 01 02 03 04 and a ping. AppendPayload encodes a
// body; ParsePayload decodes one into a slice, and PayloadScanner reads one packet at a time
// without allocating. Both reject a malformed body as a whole or from the first bad packet,
// with a *PacketError (matching ErrInvalidPacket) that says which packet is wrong and why,
// and both bound the number of packets. The separator never occurs inside a multi-byte
// UTF-8 character, so text is kept byte for byte; the one text a payload cannot carry is
// one that contains U+001E itself (Packet.Validate finds it).
//
// # Handshake and errors
//
// Handshake is the JSON of the Open packet (sid, upgrades, pingInterval, pingTimeout,
// maxPayload), written in the Node server's field order by Handshake.AppendJSON.
// AppendErrorJSON writes the body of the HTTP error answers, {"code":N,"message":"..."},
// with the Node server's messages for the six ErrorCode values.
//
// # Allocation and safety
//
// The Append functions allocate only when dst must grow, so encoding into a reused buffer
// allocates nothing. The parsers never panic, do work linear in their input, and return
// text data that aliases their input. All functions are safe for concurrent use; a
// PayloadScanner belongs to one goroutine at a time.
package engineio
