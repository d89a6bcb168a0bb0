package engineio

import "time"

// The heartbeat: the server sends a ping every PingInterval and closes the session when the
// pong has not arrived PingTimeout later. As in the Node server, only a pong restarts the
// interval; other packets from the client do not count. One timer per session serves the
// ping, the pong deadline and the grace period of a polling session that is closing.

func (s *Session) startHeartbeat() {
	s.mu.Lock()
	if sessionState(s.state.Load()) == stateOpen {
		s.armLocked(s.srv.cfg.pingInterval)
	}
	s.mu.Unlock()
}

// armLocked makes the timer fire after d.
func (s *Session) armLocked(d time.Duration) {
	s.timerDue = time.Now().Add(d)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
	} else {
		s.timer.Reset(d)
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
		s.timer.Reset(left) // re-armed while this call was on its way
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
