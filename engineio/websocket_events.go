package engineio

import (
	"context"
	"time"

	"github.com/duplexio/duplex/ws"
)

// The WebSocket transport on the Server's EventLoop: instead of a goroutine blocked in a read
// per session, the loop calls socketEvents when a message arrives. A session's packets are
// handled as readLoop and runUpgrade handle them; the upgrade's two steps (the probe, then
// the client's upgrade packet) are stages of the handler.

// socketEvents receives the events of one session's WebSocket served by an EventLoop.
type socketEvents struct {
	s     *Session
	stage upgradeStage
}

// upgradeStage is where an upgrading WebSocket is in the upgrade; a WebSocket that opened the
// session starts at upgraded.
type upgradeStage uint8

const (
	probeAwaited   upgradeStage = iota // the client's ping probe comes first
	upgradeAwaited                     // then, once answered, its upgrade packet
	upgraded                           // the session's transport: every message is a packet
	upgradeFailed                      // the upgrade failed; the connection is closing
)

// serveEvented makes conn, served by loop, the transport of a session opened directly over
// WebSocket. The open packet is already queued; OnOpen has it written.
func (s *Session) serveEvented(loop *ws.EventLoop, conn *ws.Conn) {
	if err := loop.Serve(conn, &socketEvents{s: s, stage: upgraded}); err != nil {
		conn.CloseNow()
		s.closeNow(ReasonTransportError, err)
	}
}

// upgradeEvented serves a WebSocket upgrading the polling session s on loop. The upgrade must
// complete within UpgradeTimeout: the loop enforces it as the connection's read deadline.
func (s *Session) upgradeEvented(loop *ws.EventLoop, conn *ws.Conn) {
	if err := loop.Serve(conn, &socketEvents{s: s, stage: probeAwaited}); err != nil {
		s.failUpgrade(conn, err)
	}
}

// OnOpen starts the upgrade's deadline, or makes conn the session's transport.
func (e *socketEvents) OnOpen(conn *ws.Conn) {
	s := e.s
	if e.stage != upgraded {
		_ = conn.SetReadDeadline(time.Now().Add(s.srv.cfg.upgradeTimeout))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sessionState(s.state.Load()) == stateClosed {
		conn.CloseNow()
		return
	}
	s.conn = conn
	s.timerToConnLocked()
	s.kickLocked()
}

// OnMessage takes the upgrade a step further, or hands the packet to the session.
func (e *socketEvents) OnMessage(conn *ws.Conn, typ ws.MessageType, data []byte) {
	s := e.s
	switch e.stage {
	case upgraded:
		s.receiveMessage(conn, typ, data)
		return
	case upgradeFailed:
		return
	}
	p, err := ParsePacket(data, typ == ws.MessageBinary)
	if err == nil && e.stage == probeAwaited {
		// Writes on an event-driven connection never wait: the context is not needed.
		if err = s.answerProbe(context.Background(), conn, p); err == nil {
			e.stage = upgradeAwaited
			return
		}
	}
	if err == nil {
		var switched bool
		if switched, err = s.completeUpgrade(conn, p); err == nil {
			if switched {
				e.stage = upgraded
				_ = conn.SetReadDeadline(time.Time{})
			} else {
				e.stage = upgradeFailed
			}
			return
		}
	}
	e.stage = upgradeFailed
	s.failUpgrade(conn, err)
}

// OnTimer runs the session's heartbeat, once the connection is its transport.
func (e *socketEvents) OnTimer(*ws.Conn) {
	if e.stage == upgraded {
		e.s.onTimer()
	}
}

// OnClose ends the session whose transport conn was, or the upgrade conn was making.
func (e *socketEvents) OnClose(conn *ws.Conn, err error) {
	switch e.stage {
	case upgraded:
		reason, cause := readFailure(err)
		e.s.closeNow(reason, cause)
	case probeAwaited, upgradeAwaited:
		e.s.failUpgrade(conn, err)
	}
}
