package engineio

import (
	"bytes"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/ws"
)

// CloseReason says why a session ended. The values are those the Node server reports, so
// that Socket.IO passes them on to applications unchanged.
type CloseReason string

// The reasons a session ends.
const (
	// ReasonTransportClose: the client closed the connection or sent a close packet.
	ReasonTransportClose CloseReason = "transport close"
	// ReasonTransportError: the connection failed, a poll was abandoned, the client sent
	// more than MaxHTTPBufferSize or two polls at once.
	ReasonTransportError CloseReason = "transport error"
	// ReasonPingTimeout: no pong arrived within PingTimeout after a ping.
	ReasonPingTimeout CloseReason = "ping timeout"
	// ReasonParseError: the client sent a malformed packet.
	ReasonParseError CloseReason = "parse error"
	// ReasonForcedClose: the application called Session.Close.
	ReasonForcedClose CloseReason = "forced close"
	// ReasonServerShutdown: Server.Shutdown closed the session.
	ReasonServerShutdown CloseReason = "server shutting down"
	// ReasonQueueFull: the session's outgoing queue went past MaxQueuedBytes or
	// MaxQueuedPackets, or on an EventLoop its WebSocket's write queue past the loop's
	// MaxQueuedBytes: the client is not reading fast enough. The Node server, which has no
	// bound, has no such reason.
	ReasonQueueFull CloseReason = "write queue full"
)

// ErrQueueFull is returned by Session.Send when the packet would take the session's queue
// past Server.MaxQueuedBytes or Server.MaxQueuedPackets; the session is then closed with
// ReasonQueueFull.
var ErrQueueFull = errors.New("engineio: session send queue full")

// ErrSessionClosed is returned by Session.Send once the session is closing or closed.
var ErrSessionClosed = errors.New("engineio: session closed")

// SendFlag qualifies a message given to Session.Send.
type SendFlag uint8

const (
	// Text sends a text message (the data must be UTF-8).
	Text SendFlag = 0
	// Binary sends a binary message.
	Binary SendFlag = 1 << iota
	// NoCompress keeps the message out of WebSocket compression, and a polling response
	// made only of such messages out of HTTP compression.
	NoCompress
	// Volatile lets the message be dropped when the client is not keeping up (Socket.IO's
	// volatile events): Send fails with ErrDropped, and the session stays, when messages
	// are still waiting to be written (see Writable); and on a Server's EventLoop, a message
	// queued meanwhile is dropped when the WebSocket's write queue is full
	// (ws.Conn.WriteMessageVolatile). A volatile message is never compressed.
	Volatile
)

// ErrDropped is returned by Session.Send for a Volatile message that was dropped.
var ErrDropped = errors.New("engineio: volatile message dropped")

// Session is one client's Engine.IO session, on whichever transport it currently uses.
//
// Concurrency: Send, Writable, Drain, Buffered, Close and the getters are safe to call from
// any goroutine. OnMessage and OnClose are called on one goroutine at a time, in order:
// OnMessage for each message as it arrives, then OnClose once, after the last OnMessage has
// returned. A slow OnMessage delays this session's reading, and over WebSocket the writing
// of what is sent to it meanwhile: the reader writes that when OnMessage returns, which
// spares a goroutine for each answer (hand long work to another goroutine).
type Session struct {
	// OnMessage receives each message the client sends. data is valid only until it
	// returns: copy what must be kept. Set it in Server.OnConnection; nil drops messages.
	OnMessage func(data []byte, binary bool)
	// OnClose is called once when the session has ended, with the reason and, when there
	// is one, the error behind it. Set it in Server.OnConnection.
	OnClose func(reason CloseReason, cause error)

	srv          *Server
	id           string
	req          keptRequest
	base64Binary bool // the client asked for binary messages as base64 text (b64=1)

	// deliverMu is held while OnMessage or OnClose runs.
	deliverMu sync.Mutex

	state atomic.Int32 // a sessionState; written under mu

	mu          sync.Mutex
	transport   string
	queue       []outPacket
	spare       []outPacket // the writer's last batch, reused as the next queue
	queuedBytes int         // data bytes queued or being written
	drain       chan struct{}
	done        chan struct{} // made by the first Done: an idle session has none
	reason      CloseReason
	cause       error

	// polling
	pollWake    chan struct{} // set while a poll waits for packets
	posting     bool          // a POST is being read
	noopPending bool          // the next poll is answered at once (an upgrade is in progress)

	// websocket
	conn      *ws.Conn // set when the transport is websocket
	writing   bool     // a writer is running
	receiving bool     // the reader is in OnMessage; it writes the queue when it returns
	upgrading bool     // a WebSocket is upgrading the session (from its handshake on)
	probe     *ws.Conn // that WebSocket, once its handshake is done

	// heartbeat
	timer        *time.Timer
	timerDue     time.Time
	awaitingPong bool
}

type sessionState int32

const (
	stateOpen    sessionState = iota
	stateClosing              // flushing the queue before closing; messages are no longer delivered
	stateClosed
)

// outPacket is a queued packet, whether it may be compressed, and whether it may be dropped.
type outPacket struct {
	Packet
	compress bool
	volatile bool
}

func newSession(srv *Server, id string, r *http.Request, transport string) *Session {
	return &Session{
		srv:          srv,
		id:           id,
		req:          keepRequest(r),
		base64Binary: r.URL.Query().Has("b64"),
		transport:    transport,
	}
}

// ID returns the session id (sid).
func (s *Session) ID() string { return s.id }

// Request returns the request that opened the session: its URL with the query, headers,
// cookies and RemoteAddr. Its body is empty.
//
// Each call returns a new copy, rebuilt from what the session keeps of the request (see
// keptRequest): keep the result rather than calling it again.
func (s *Session) Request() *http.Request { return s.req.request() }

// RemoteAddr returns the client's address, the RemoteAddr of the request that opened the
// session.
func (s *Session) RemoteAddr() string { return s.req.remoteAddr }

// Transport returns the transport the session uses now: TransportPolling or
// TransportWebSocket.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// Done returns a channel closed when the session has ended.
func (s *Session) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		if sessionState(s.state.Load()) == stateClosed {
			return closedChan
		}
		s.done = make(chan struct{})
	}
	return s.done
}

// Err returns why the session ended, or "" and nil while it is open.
func (s *Session) Err() (CloseReason, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sessionState(s.state.Load()) != stateClosed {
		return "", nil
	}
	return s.reason, s.cause
}

// Send queues a message for the client and returns at once; a writer sends it in order
// after the packets queued before it. The session keeps data until the message is written:
// the caller must not modify it afterwards (one slice may be sent to many sessions).
//
// Send fails with ErrSessionClosed once the session is closing, with ErrQueueFull (and
// closes the session) when the queue is full, and with ErrInvalidPacket when a polling
// session is asked to send a text containing U+001E, which the polling encoding cannot
// carry.
func (s *Session) Send(data []byte, flags SendFlag) error {
	one := [1]Outgoing{{Data: data, Binary: flags&Binary != 0}}
	return s.SendBatch(one[:], flags)
}

// Outgoing is one message of a batch given to Session.SendBatch.
type Outgoing struct {
	Data   []byte
	Binary bool
}

// SendBatch queues several messages as one: all or none are queued, one after the other,
// with no message of another Send between them (a Socket.IO packet and its binary
// attachments, say). flags may hold NoCompress; Binary is taken from each Outgoing. It
// fails as Send does; the queue bounds count every message of the batch.
func (s *Session) SendBatch(batch []Outgoing, flags SendFlag) error {
	volatile := flags&Volatile != 0
	compress := flags&NoCompress == 0 && !volatile
	size := 0
	for _, m := range batch {
		size += len(m.Data)
	}
	cfg := &s.srv.cfg
	s.mu.Lock()
	if sessionState(s.state.Load()) != stateOpen {
		s.mu.Unlock()
		return ErrSessionClosed
	}
	if volatile && (s.queuedBytes > 0 || len(s.queue) > 0) {
		s.mu.Unlock()
		return ErrDropped
	}
	if s.transport == TransportPolling {
		for _, m := range batch {
			if !m.Binary && bytes.IndexByte(m.Data, separator) >= 0 {
				s.mu.Unlock()
				return Packet{Type: Message, Data: m.Data}.Validate(true)
			}
		}
	}
	// A batch larger than the byte bound is still accepted alone in an empty queue.
	if len(s.queue)+len(batch) > cfg.maxQueuedPackets || (s.queuedBytes > 0 && s.queuedBytes+size > cfg.maxQueuedBytes) {
		s.mu.Unlock()
		s.closeNow(ReasonQueueFull, ErrQueueFull)
		return ErrQueueFull
	}
	for _, m := range batch {
		s.queue = append(s.queue, outPacket{Packet: Packet{Type: Message, Data: m.Data, Binary: m.Binary}, compress: compress, volatile: volatile})
	}
	s.queuedBytes += size
	s.kickLocked()
	s.mu.Unlock()
	return nil
}

// Writable reports whether the session is open and has nothing queued: everything sent so
// far has been written to the transport. A sender that may drop messages (Socket.IO's
// volatile) sends only when it is true.
func (s *Session) Writable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sessionState(s.state.Load()) == stateOpen && s.queuedBytes == 0 && len(s.queue) == 0
}

// Buffered returns the number of message bytes queued and not yet written.
func (s *Session) Buffered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queuedBytes
}

// Drain returns a channel that is closed when the queue is next empty, or the session has
// ended; it is already closed when the queue is empty now.
func (s *Session) Drain() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.drained() {
		return closedChan
	}
	if s.drain == nil {
		s.drain = make(chan struct{})
	}
	return s.drain
}

var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func (s *Session) drained() bool {
	return sessionState(s.state.Load()) == stateClosed || (s.queuedBytes == 0 && len(s.queue) == 0)
}

// signalDrainLocked closes the drain channel when the queue is empty.
func (s *Session) signalDrainLocked() {
	if s.drain != nil && s.drained() {
		close(s.drain)
		s.drain = nil
	}
}

// Close closes the session with ReasonForcedClose once the packets already queued are
// written. It returns at once; Done tells when the session has ended.
func (s *Session) Close() error {
	s.closeGracefully(ReasonForcedClose)
	return nil
}

// enqueueControl queues a packet of the protocol itself, outside the queue's bounds.
func (s *Session) enqueueControl(p Packet) {
	s.mu.Lock()
	s.pushLocked(outPacket{Packet: p})
	s.mu.Unlock()
}

// pushLocked appends p to the queue and wakes whoever writes it.
func (s *Session) pushLocked(p outPacket) {
	s.queue = append(s.queue, p)
	s.queuedBytes += len(p.Data)
	s.kickLocked()
}

// kickLocked makes the current transport write the queue: it wakes a waiting poll, or
// starts the WebSocket writer.
func (s *Session) kickLocked() {
	if s.conn != nil {
		if !s.writing && !s.receiving {
			s.writing = true
			go s.writeLoop(s.conn)
		}
		return
	}
	if s.pollWake != nil {
		select {
		case s.pollWake <- struct{}{}:
		default:
		}
	}
}

// receive handles one packet from the client, which came over transport. It reports false
// when the session has ended and the transport must stop reading.
func (s *Session) receive(p Packet, transport string) bool {
	switch p.Type {
	case Message:
		if o := s.srv.Observer; o != nil {
			o.MessagesReceived(transport, 1, len(p.Data))
		}
		s.deliverMu.Lock()
		if s.OnMessage != nil && sessionState(s.state.Load()) == stateOpen {
			s.OnMessage(p.Data, p.IsBinary())
		}
		s.deliverMu.Unlock()
	case Pong:
		s.pong()
	case Close:
		s.closeNow(ReasonTransportClose, nil)
		return false
	}
	// Other packets from a client (ping, noop, a stray upgrade) mean nothing here and are
	// ignored, as the Node server ignores them.
	return sessionState(s.state.Load()) != stateClosed
}

// closeGracefully starts closing the session: nothing more is delivered or accepted, the
// queue is written out, and the transport then closed. A polling client gets a close packet
// alone in the poll that finds the queue empty; if none comes within pollingCloseGrace (or PingTimeout if shorter), the
// session ends anyway: a live client polls again as soon as its previous poll is answered.
func (s *Session) closeGracefully(reason CloseReason) {
	s.mu.Lock()
	if sessionState(s.state.Load()) != stateOpen {
		s.mu.Unlock()
		return
	}
	s.state.Store(int32(stateClosing))
	s.reason = reason
	probe := s.probe
	if s.noopPending {
		// The probe was answered: the client may have stopped polling already, waiting to
		// send its upgrade packet. The upgrade goes on, and what is queued, then the close,
		// goes over the WebSocket (within the grace armed below; closeNow ends the probe).
		probe = nil
	} else {
		s.probe = nil
	}
	if s.conn == nil {
		// The poll that finds the queue empty takes the close packet.
		s.kickLocked()
		s.armLocked(min(s.srv.cfg.pingTimeout, pollingCloseGrace))
		s.mu.Unlock()
	} else {
		idle := !s.writing
		s.mu.Unlock()
		if idle {
			s.closeNow(reason, nil) // nothing to flush
		}
	}
	if probe != nil {
		probe.CloseNow()
	}
}

// pollingCloseGrace is how long a closing polling session waits for the poll that takes
// its close packet.
const pollingCloseGrace = 2 * time.Second

// closeNow ends the session at once: the transport is closed (with a WebSocket close frame
// when it can still be sent), a waiting poll is answered with a close packet, and OnClose is
// called on a goroutine of its own once any running OnMessage has returned.
func (s *Session) closeNow(reason CloseReason, cause error) {
	s.mu.Lock()
	st := sessionState(s.state.Load())
	if st == stateClosed {
		s.mu.Unlock()
		return
	}
	if st == stateClosing {
		reason = s.reason // the reason given when closing began
	}
	s.state.Store(int32(stateClosed))
	s.reason, s.cause = reason, cause
	transport := s.transport
	if s.timer != nil {
		s.timer.Stop()
	}
	conn, probe := s.conn, s.probe
	s.probe = nil
	if s.pollWake != nil {
		select {
		case s.pollWake <- struct{}{}:
		default:
		}
	}
	if s.done != nil {
		close(s.done)
	}
	s.signalDrainLocked()
	s.mu.Unlock()

	s.srv.forget(s)
	if o := s.srv.Observer; o != nil {
		o.SessionClosed(transport, reason)
	}
	if probe != nil {
		probe.CloseNow()
	}
	if conn != nil {
		switch reason {
		case ReasonTransportClose, ReasonTransportError, ReasonParseError:
			conn.CloseNow() // the connection is gone or broken: no handshake
		case ReasonQueueFull:
			// The client reads nothing: a close frame would wait behind all it has not
			// read, and a handshake would hold the sender (a broadcast, say) until the
			// close timeout, while the writer stays blocked in the full socket.
			conn.CloseNow()
		default:
			code := ws.StatusNormalClosure
			if reason == ReasonServerShutdown {
				code = ws.StatusGoingAway
			}
			// On its own goroutine: writing the close frame to a client that does not read
			// waits for the close timeout, and must not hold the caller (Shutdown closes
			// every session in turn; the heartbeat; a Send).
			go conn.StartClose(code, string(reason))
		}
	}
	if cause != nil {
		s.srv.cfg.logger.Info("engineio: session closed on an error", "sid", s.id, "remote", s.req.remoteAddr, "reason", string(reason), "error", cause)
	}
	go func() {
		defer s.srv.sessWG.Done()
		s.deliverMu.Lock()
		defer s.deliverMu.Unlock()
		if s.OnClose != nil {
			s.OnClose(reason, cause)
		}
	}()
}
