// Package engineio implements the wire format of Engine.IO v4, the transport protocol under
// Socket.IO: its packets, the polling payloads that carry several of them in one HTTP body,
// the handshake JSON of the Open packet and the JSON of HTTP error answers.
//
// This is the codec only. The Engine.IO server and client (HTTP long-polling, the WebSocket
// transport, sessions, heartbeats, the upgrade between transports) come in later work that
// builds on it; nothing here does I/O or keeps state between calls.
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
