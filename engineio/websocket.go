package engineio

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/duplexio/duplex/ws"
)

// The WebSocket transport: one packet per message, a text frame for a type digit and its
// text, a binary frame for a binary message. A session either opens on it directly or
// upgrades to it from polling.

// attachWebSocket makes conn the transport of a session opened directly over WebSocket and
// starts reading it. The open packet is already queued.
func (s *Session) attachWebSocket(conn *ws.Conn) {
	if loop := s.srv.EventLoop; loop != nil {
		s.serveEvented(loop, conn)
		return
	}
	s.mu.Lock()
	if sessionState(s.state.Load()) == stateClosed {
		s.mu.Unlock()
		conn.CloseNow()
		return
	}
	s.conn = conn
	s.kickLocked()
	s.mu.Unlock()
	// The handler returns, so net/http releases its buffers; the session keeps one goroutine.
	go s.readLoop(conn)
}

// upgrade accepts a WebSocket that asks to upgrade the polling session s.
func (srv *Server) upgrade(w http.ResponseWriter, r *http.Request, s *Session) {
	if !srv.cfg.upgrades {
		srv.refuse(w, r, ErrorBadRequest, "")
		return
	}
	s.mu.Lock()
	if s.transport != TransportPolling || s.upgrading || sessionState(s.state.Load()) != stateOpen {
		s.mu.Unlock()
		srv.refuse(w, r, ErrorBadRequest, "")
		return
	}
	s.upgrading = true
	s.mu.Unlock()
	conn, err := srv.upgrader.Upgrade(w, r)
	if err != nil {
		srv.cfg.logger.Debug("engineio: websocket handshake failed", "sid", s.id, "remote", r.RemoteAddr, "error", err)
		if srv.Observer != nil {
			srv.Observer.RequestRefused(ErrorBadRequest)
		}
		s.mu.Lock()
		s.upgrading = false
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	if sessionState(s.state.Load()) != stateOpen {
		s.mu.Unlock()
		conn.CloseNow()
		return
	}
	s.probe = conn
	s.mu.Unlock()
	if loop := srv.EventLoop; loop != nil {
		s.upgradeEvented(loop, conn)
		return
	}
	go s.runUpgrade(conn)
}

// runUpgrade performs the upgrade on the probe connection (2probe, 3probe, then the
// client's upgrade packet), switches the session to it and goes on reading it. While the
// probe is answered, a waiting poll is released with a noop; packets queued meanwhile are
// written by the poll they were queued for, or after the switch by the WebSocket, in order.
// If the probe fails or times out, the session stays on polling.
func (s *Session) runUpgrade(conn *ws.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), s.srv.cfg.upgradeTimeout)
	defer cancel()
	p, err := readPacket(ctx, conn)
	if err == nil {
		err = s.answerProbe(ctx, conn, p)
	}
	if err == nil {
		p, err = readPacket(ctx, conn)
	}
	if err != nil {
		s.failUpgrade(conn, err)
		return
	}
	switched, err := s.completeUpgrade(conn, p)
	if err != nil {
		s.failUpgrade(conn, err)
		return
	}
	if switched {
		s.readLoop(conn)
	}
}

// answerProbe checks the first packet of an upgrading WebSocket, the ping probe, answers it
// with the pong probe and releases a waiting poll with a noop.
func (s *Session) answerProbe(ctx context.Context, conn *ws.Conn, p Packet) error {
	if p.Type != Ping || string(p.Data) != "probe" {
		return fmt.Errorf("engineio: upgrade: got %v packet %q, want the ping probe", p.Type, p.Data)
	}
	// The upgrade counts as answered before the answer leaves: a session closed once the
	// client has it must finish the upgrade (see closeGracefully).
	s.mu.Lock()
	s.noopPending = true
	s.kickLocked()
	s.mu.Unlock()
	return conn.WriteMessage(ctx, ws.MessageText, []byte("3probe"))
}

// completeUpgrade checks the second packet of an upgrading WebSocket, the client's upgrade
// packet, and switches the session to conn. It reports false, having closed conn, when the
// session ended meanwhile.
func (s *Session) completeUpgrade(conn *ws.Conn, p Packet) (bool, error) {
	if p.Type != Upgrade {
		return false, fmt.Errorf("engineio: upgrade: got %v packet, want upgrade", p.Type)
	}
	s.mu.Lock()
	if s.probe != conn || sessionState(s.state.Load()) == stateClosed {
		s.mu.Unlock()
		conn.CloseNow()
		return false, nil
	}
	// A session closing since its probe was answered switches too: its writer sends what
	// is queued, then closes (see closeGracefully).
	closing := sessionState(s.state.Load()) == stateClosing
	s.transport = TransportWebSocket
	s.conn = conn
	if s.srv.EventLoop != nil {
		s.timerToConnLocked()
	}
	s.probe = nil
	s.upgrading = false
	s.noopPending = false
	if s.pollWake != nil {
		select { // a poll still waiting is released with a noop
		case s.pollWake <- struct{}{}:
		default:
		}
	}
	if len(s.queue) > 0 || closing {
		s.kickLocked()
	}
	s.mu.Unlock()
	if o := s.srv.Observer; o != nil {
		o.SessionUpgraded()
	}
	return true, nil
}

// failUpgrade ends an upgrade that failed on conn; the session stays on polling.
func (s *Session) failUpgrade(conn *ws.Conn, err error) {
	conn.CloseNow()
	s.mu.Lock()
	if s.probe == conn {
		s.probe = nil
	}
	s.upgrading = false
	s.noopPending = false
	s.mu.Unlock()
	s.srv.cfg.logger.Debug("engineio: upgrade failed", "sid", s.id, "remote", s.req.remoteAddr, "error", err)
}

// readPacket reads one packet from conn.
func readPacket(ctx context.Context, conn *ws.Conn) (Packet, error) {
	typ, data, err := conn.ReadMessage(ctx)
	if err != nil {
		return Packet{}, err
	}
	return ParsePacket(data, typ == ws.MessageBinary)
}

// maxKeptReadBuffer is the largest read buffer a session keeps between messages; a larger
// one, grown for a large message, is dropped so that idle sessions stay small.
const maxKeptReadBuffer = 1024

// readLoop reads packets from the session's WebSocket until it ends.
func (s *Session) readLoop(conn *ws.Conn) {
	var buf []byte
	for {
		typ, data, err := conn.AppendMessage(context.Background(), buf[:0])
		if err != nil {
			reason, cause := readFailure(err)
			s.closeNow(reason, cause)
			return
		}
		// Once the session has ended, reading goes on until the connection ends: the close
		// handshake the session started completes here.
		if !s.receiveMessage(conn, typ, data) {
			return
		}
		if cap(data) <= maxKeptReadBuffer {
			buf = data
		} else {
			buf = nil
		}
	}
}

// receiveMessage hands one message of the session's WebSocket conn to the session, then
// writes what was sent meanwhile (OnMessage's answers leave with no goroutine of their
// own). It reports false when the message was not a packet and the session was closed.
func (s *Session) receiveMessage(conn *ws.Conn, typ ws.MessageType, data []byte) bool {
	p, err := ParsePacket(data, typ == ws.MessageBinary)
	if err != nil {
		s.closeNow(ReasonParseError, err)
		return false
	}
	s.mu.Lock()
	s.receiving = true
	s.mu.Unlock()
	open := s.receive(p, TransportWebSocket)
	s.mu.Lock()
	s.receiving = false
	flush := open && len(s.queue) > 0 && !s.writing && s.conn == conn
	if flush {
		s.writing = true
	}
	s.mu.Unlock()
	if flush {
		s.writeLoop(conn)
	}
	return true
}

// readFailure maps the error that ended a WebSocket read to a close reason and its cause: a
// connection the peer closed (with a close frame or not) is a transport close, one this side
// failed (a message over the limit, a protocol violation) a transport error.
func readFailure(err error) (CloseReason, error) {
	var ce *ws.CloseError
	switch {
	case errors.As(err, &ce) && ce.Remote:
		if ce.Code == ws.StatusNormalClosure || ce.Code == ws.StatusGoingAway || ce.Code == ws.StatusNoStatusReceived {
			return ReasonTransportClose, nil
		}
		return ReasonTransportClose, err
	case errors.As(err, &ce) && ce.Code == ws.StatusAbnormalClosure, errors.Is(err, ws.ErrClosed):
		return ReasonTransportClose, nil
	}
	return ReasonTransportError, err
}

// writeLoop writes the queue to conn until it is empty, then returns; Send starts it again
// on a goroutine of its own, or the reader runs it after OnMessage. When the session is
// closing, it closes the session once the queue is written.
func (s *Session) writeLoop(conn *ws.Conn) {
	scratch := getPayloadBuffer()
	defer putPayloadBuffer(scratch)
	var batch []outPacket
	for {
		s.mu.Lock()
		if batch != nil {
			s.written(batch)
			clear(batch)
			s.spare = batch[:0]
		}
		st := sessionState(s.state.Load())
		if len(s.queue) == 0 || s.conn != conn || st == stateClosed {
			s.writing = false
			if s.srv.EventLoop != nil && len(s.queue) == 0 {
				// Writes on an event loop leave at once: an idle session keeps no arrays.
				s.queue, s.spare = nil, nil
			}
			s.mu.Unlock()
			if st == stateClosing {
				s.closeNow(ReasonForcedClose, nil) // keeps the reason given when closing began
			}
			return
		}
		batch, s.queue, s.spare = s.queue, s.spare, nil
		s.mu.Unlock()
		// One Batch: the packets go out together, in as few system calls as the write
		// buffer allows, not one each.
		err := conn.Batch(context.Background(), func() error {
			for _, p := range batch {
				if err := s.writePacket(conn, p, scratch); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.closeNow(writeFailure(err))
			return
		}
		if o := s.srv.Observer; o != nil {
			if n, size := countMessages(batch); n > 0 {
				o.MessagesSent(TransportWebSocket, n, size)
			}
		}
	}
}

// writeFailure maps the error that ended a WebSocket write to a close reason and its cause:
// on an event loop, a client that reads too slowly fills the connection's write queue
// (ws.ErrWriteQueueFull), as it fills the session's queue in the goroutine mode.
func writeFailure(err error) (CloseReason, error) {
	if errors.Is(err, ws.ErrWriteQueueFull) {
		return ReasonQueueFull, err
	}
	return ReasonTransportError, err
}

// writePacket writes one packet as one WebSocket message.
func (s *Session) writePacket(conn *ws.Conn, p outPacket, scratch *[]byte) error {
	typ, data := ws.MessageBinary, p.Data
	if !p.IsBinary() || s.base64Binary {
		*scratch = AppendPacketBase64((*scratch)[:0], p.Packet)
		typ, data = ws.MessageText, *scratch
	}
	ctx := context.Background() // a stuck write ends when the session closes the connection
	if p.volatile {
		if err := conn.WriteMessageVolatile(ctx, typ, data); !errors.Is(err, ws.ErrDropped) {
			return err
		}
		return nil
	}
	return conn.WriteMessageCompressed(ctx, typ, data, p.compress)
}
