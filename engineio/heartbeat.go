package engineio

import "time"

// The heartbeat: the server sends a ping every PingInterval and closes the session when the
// pong has not arrived PingTimeout later. As in the Node server, only a pong restarts the
// interval; other packets from the client do not count. One timer per session serves the
// ping, the pong deadline and the grace period of a polling session that is closing: a
// time.Timer, or on an event loop the WebSocket's timer (ws.Conn.SetTimer).

func (s *Session) startHeartbeat() {
	s.mu.Lock()
	if sessionState(s.state.Load()) == stateOpen {
		s.armLocked(s.srv.cfg.pingInterval)
	}
	s.mu.Unlock()
}

// armLocked makes the timer fire after d. A WebSocket session on an event loop keeps the time
// in its connection (ws.Conn.SetTimer: the loop's timer wheel, no timer of its own); until
// that connection is served, timerDue waits for it (see timerToConnLocked).
func (s *Session) armLocked(d time.Duration) {
	s.timerDue = time.Now().Add(d)
	if s.onEventLoopLocked() {
		if s.conn != nil {
			_ = s.conn.SetTimer(d)
		}
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
	} else {
		s.timer.Reset(d)
	}
}

// onEventLoopLocked reports whether the session's transport is a WebSocket served by the
// server's event loop.
func (s *Session) onEventLoopLocked() bool {
	return s.srv.EventLoop != nil && s.transport == TransportWebSocket
}

// timerToConnLocked hands the heartbeat's next time to the session's WebSocket, which the
// event loop now serves: the polling transport's timer, if any, is stopped.
func (s *Session) timerToConnLocked() {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if !s.timerDue.IsZero() {
		_ = s.conn.SetTimer(max(time.Until(s.timerDue), time.Nanosecond)) // 0 would cancel
	}
}

func (s *Session) onTimer() {
	s.mu.Lock()
	st := sessionState(s.state.Load())
	if st == stateClosed {
		s.mu.Unlock()
		return
	}
	if left := time.Until(s.timerDue); left > 0 {
		s.armLocked(left) // re-armed while this call was on its way
		s.mu.Unlock()
		return
	}
	switch {
	case st == stateClosing:
		s.mu.Unlock()
		s.closeNow(s.reason, nil) // the client did not come for its close packet
	case s.awaitingPong:
		s.mu.Unlock()
		s.closeNow(ReasonPingTimeout, nil)
	default:
		s.awaitingPong = true
		s.pushLocked(outPacket{Packet: Packet{Type: Ping}})
		s.armLocked(s.srv.cfg.pingTimeout)
		s.mu.Unlock()
	}
}

// pong records the client's answer to a ping.
func (s *Session) pong() {
	s.mu.Lock()
	if s.awaitingPong && sessionState(s.state.Load()) == stateOpen {
		s.awaitingPong = false
		s.armLocked(s.srv.cfg.pingInterval)
	}
	s.mu.Unlock()
}
