// Package ws implements the WebSocket protocol (RFC 6455) for servers and clients, from the
// TCP connection up.
//
// # Accepting connections
//
// An Upgrader accepts connections in two ways that share one validation path:
//
//   - Upgrader.Upgrade, from a net/http handler: it checks the request and hijacks the
//     connection;
//   - Upgrader.UpgradeConn, on any net.Conn with no HTTP server at all: it reads and parses
//     the HTTP request itself, bounded in size (MaxHeaderBytes, else 431) and time
//     (HandshakeTimeout).
//
// A bad request is answered with the status RFC 6455 asks for (400 with a reason, 405 for a
// method other than GET, 426 with Sec-WebSocket-Version: 13 for another version, 403 for a
// refused origin). The origin policy is same-origin by default, which protects cookie-
// authenticated servers from cross-site WebSocket hijacking; see Upgrader.
//
// # Dialing
//
// Dial connects to ws:// and wss:// URLs, through an HTTP CONNECT proxy when the environment
// names one (as net/http does), and checks the server's 101 response. A refusal is a
// *HandshakeError carrying the status, headers and the start of the body.
//
// # Reading and writing
//
// A Conn reads whole messages (ReadMessage, AppendMessage) or streams them (NextReader), and
// writes whole messages (WriteMessage) or fragmented ones (NextWriter). One goroutine reads at
// a time; any number of goroutines may write. The reading goroutine answers pings and echoes
// close frames, so keep reading for as long as the connection lives. Every frame is checked
// as RFC 6455 requires and a violation fails the connection with the matching close code:
// 1002 for framing errors, 1007 for invalid UTF-8 (detected as soon as the invalid byte
// arrives, even mid-frame), 1009 for a message over the read limit. Reads then return a
// *CloseError that says who closed, with which code and why.
//
// For a broadcast, NewPreparedMessage encodes a message once and WritePreparedMessage shares
// the encoded frame among every server connection that sends it the same way.
//
// Calls that block take a context.Context; a context that ends a call fails the connection,
// as a deadline (SetReadDeadline, SetWriteDeadline) does.
//
// # Compression
//
// permessage-deflate (RFC 7692) is opt-in: set Upgrader.Compression or
// DialOptions.Compression. The server accepts the first offer it can honour and declines the
// others; every parameter is supported, including window sizes below 15 bits. Messages of
// at least CompressionOptions.Threshold bytes are compressed; WriteMessageCompressed chooses
// per message. Inflated messages are bounded by the read limit (a decompression bomb fails
// with 1009 without allocating past the limit). With context takeover a connection keeps
// only the last window of data each way (32 KiB per direction at most) and borrows pooled
// compressors per message; without it, nothing between messages.
//
// # Performance
//
// Frames are parsed from a pooled buffer that a connection holds only while bytes are moving:
// on TCP connections a read waits for data through the runtime's poller without a buffer, so
// an idle connection costs little more than its goroutine (about 8 KiB of RSS in all,
// measured with 10,000 idle connections on UpgradeConn). Masking runs a machine word
// or a vector at a time. Replies written while read frames are still buffered are coalesced
// into one write, flushed before the next socket read (or within a millisecond). Reading into
// a reused buffer (AppendMessage) and writing messages that fit in the write buffer allocate
// nothing.
//
// # Event-driven mode
//
// For very many mostly idle connections, an EventLoop serves connections without a
// goroutine or a buffer each while they are idle: on Linux it waits for them with epoll,
// and a bounded pool of workers reads, decodes and calls an EventHandler (OnOpen, then
// OnMessage in order, then OnClose; never two calls at once for one connection). Hand it a
// connection from Upgrade or UpgradeConn with EventLoop.Serve; writes are the usual Conn
// methods, queued and coalesced, with a bounded queue per connection; compressed
// (permessage-deflate) connections too: a compressed message is inflated once its last
// frame is in. Not yet on the loop (they keep a goroutine each, with the same API): TLS,
// client connections and other platforms. Timers are the loop's too, on one timer wheel:
// SetReadDeadline on a served connection, keepalive (EventLoopOptions.PingInterval), the
// close handshake's timeout, and Conn.SetTimer, a one-shot timer per connection whose
// OnTimer (TimerHandler) runs like the other events; Upgrader.Shutdown waits for served
// connections' OnClose.
// EVENTED.md in this directory describes the design and what comes next.
//
// # Low level
//
// ParseHeader, AppendHeader and MaskBytes encode and decode frames on byte slices with no I/O,
// for tools that inspect or craft frames and for event-driven servers.
package ws
