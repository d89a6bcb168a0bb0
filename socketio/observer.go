package socketio

// Observer is told of a Server's broadcasts, for metrics. Set it in Options.Observer; with
// none, nothing is counted and nothing is called. The counts of the layer below (sessions,
// messages and bytes on each transport) come from the Engine.IO server's own Observer
// (engineio.Server.Observer, on Options.Engine).
//
// Its method is called on the goroutine that broadcasts, often from many at once: it must
// be safe for concurrent use, return quickly and not call back into the Server.
type Observer interface {
	// Broadcast is called once a broadcast (an Emit or EmitWithAck of a
	// BroadcastOperator, or of a Server or Namespace) has been queued for the sockets of
	// this server that it reaches in namespace, with their number: its fan-out, 0 when it
	// reached none. Sockets that a volatile broadcast skipped are not counted. A broadcast
	// to several namespaces (a parent of dynamic namespaces) is reported once per
	// namespace. With connection-state recovery on, Socket.Emit goes through the adapter
	// as a broadcast to the socket's own room and is reported as one, to a single
	// recipient.
	//
	// The in-memory adapter reports; a cluster adapter that delivers locally through
	// an InMemoryAdapter does too, and one that does not reports nothing.
	Broadcast(namespace string, recipients int)
}
