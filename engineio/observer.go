package engineio

// Observer is told of a Server's activity, for metrics: sessions opening, upgrading and
// closing, messages in and out, refused requests. Set it in Server.Observer; with none,
// nothing is counted and nothing is called.
//
// The methods are called on the goroutines that serve the sessions, often at the same time,
// and some on the path of every message: they must be safe for concurrent use, return
// quickly (an atomic add, say) and not call back into the Server or its sessions. They are
// called without any lock of the session held.
//
// transport is TransportPolling or TransportWebSocket. Messages are the Engine.IO message
// packets, what Session.Send queues and Session.OnMessage receives; the protocol's own
// packets (open, close, ping, pong, upgrade, noop) are not counted. bytes is the size of their
// data, before any encoding for the transport (base64, WebSocket framing, compression).
type Observer interface {
	// SessionOpened is called when a session is accepted, with the transport it opens
	// on, before Server.OnConnection.
	SessionOpened(transport string)
	// SessionUpgraded is called when a session moves from polling to WebSocket.
	SessionUpgraded()
	// SessionClosed is called once for each session that was opened, when it ends, with
	// the transport it was on and the reason.
	SessionClosed(transport string, reason CloseReason)
	// MessagesReceived is called with messages received from the client: n of them, of
	// bytes in all. Each message is reported before OnMessage receives it.
	MessagesReceived(transport string, n, bytes int)
	// MessagesSent is called with messages written to the transport: n of them, of bytes
	// in all (one call per polling response or per batch of WebSocket writes).
	MessagesSent(transport string, n, bytes int)
	// RequestRefused is called for each request refused with an Engine.IO error, with its
	// code, and for each WebSocket handshake that fails (a handshake or an upgrade; the ws
	// package answers it), with ErrorBadRequest. Requests refused with 503 during Shutdown
	// are not reported.
	RequestRefused(code ErrorCode)
}

// countMessages returns the number of message packets in batch and the size of their data.
func countMessages(batch []outPacket) (n, bytes int) {
	for i := range batch {
		if batch[i].Type == Message {
			n++
			bytes += len(batch[i].Data)
		}
	}
	return n, bytes
}
