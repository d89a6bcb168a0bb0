//go:build linux

package ws

import (
	"net"
	"os"
	"sync"
	"time"
)

// The loop's timer wheel: one goroutine, ticks of wheelTick, no timer per connection.
// Each evConn has at most one entry in the wheel, due at the earliest of its deadlines
// (close timeout, read deadline, keepalive ping or pong, the handler's timer). When an entry comes due the
// wheel only schedules evTimer on the connection; the worker that then holds it checks
// which deadline passed and acts (timerFired), so the read state stays the worker's.
//
// Slots hold intrusive doubly-linked lists (O(1) add and remove). An entry due beyond one
// revolution stays in its slot until its tick comes round.

const (
	wheelTick  = 100 * time.Millisecond
	wheelSlots = 1024 // 102.4 s per revolution
)

type timerWheel struct {
	start time.Time // deadlines are nanoseconds since start (monotonic); 0 means none

	mu    sync.Mutex // a leaf lock: nothing else is locked while it is held
	now   int64      // the last tick processed
	slots [wheelSlots]*evConn

	quit chan struct{}
	done chan struct{}
}

// evTimers is the timer state of one connection, guarded by timerWheel.mu.
type evTimers struct {
	next, prev *evConn
	linked     bool
	gone       bool  // the connection has ended: no more deadlines
	due        int64 // the tick the entry is in the wheel for

	closeAt int64 // close handshake timeout
	readAt  int64 // read deadline (SetReadDeadline)
	pingAt  int64 // next keepalive ping
	pongAt  int64 // the pong of the last ping is late after this; 0: none awaited
	userAt  int64 // the handler's timer (Conn.SetTimer)
}

func newTimerWheel() *timerWheel {
	w := &timerWheel{start: time.Now(), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

func (w *timerWheel) stop() {
	close(w.quit)
	<-w.done
}

// clock returns the wheel's time for t (at least 1, so that 0 can mean "none").
func (w *timerWheel) clock(t time.Time) int64 { return max(1, int64(t.Sub(w.start))) }

func (w *timerWheel) run() {
	defer close(w.done)
	ticker := time.NewTicker(wheelTick)
	defer ticker.Stop()
	var fire []*evConn
	for {
		select {
		case <-w.quit:
			return
		case <-ticker.C:
		}
		target := int64(time.Since(w.start) / wheelTick)
		fire = fire[:0]
		w.mu.Lock()
		for w.now < target {
			w.now++
			for e := w.slots[w.now%wheelSlots]; e != nil; {
				next := e.t.next
				if e.t.due <= w.now {
					w.unlinkLocked(e)
					fire = append(fire, e)
				}
				e = next
			}
		}
		w.mu.Unlock()
		for i, e := range fire {
			e.schedule(evTimer)
			fire[i] = nil
		}
	}
}

// rescheduleLocked puts e in the slot of its earliest deadline (or out of the wheel, and
// for good once it has ended).
func (w *timerWheel) rescheduleLocked(e *evConn) {
	if e.t.gone {
		return
	}
	at := int64(0)
	for _, d := range [...]int64{e.t.closeAt, e.t.readAt, e.t.pingAt, e.t.pongAt, e.t.userAt} {
		if d != 0 && (at == 0 || d < at) {
			at = d
		}
	}
	if at == 0 {
		w.unlinkLocked(e)
		return
	}
	// The tick whose processing happens at or after at.
	due := (at + int64(wheelTick) - 1) / int64(wheelTick)
	if due <= w.now {
		due = w.now + 1
	}
	if e.t.linked {
		if e.t.due == due {
			return
		}
		w.unlinkLocked(e)
	}
	slot := &w.slots[due%wheelSlots]
	e.t.due, e.t.linked, e.t.prev, e.t.next = due, true, nil, *slot
	if *slot != nil {
		(*slot).t.prev = e
	}
	*slot = e
}

func (w *timerWheel) unlinkLocked(e *evConn) {
	if !e.t.linked {
		return
	}
	if e.t.prev != nil {
		e.t.prev.t.next = e.t.next
	} else {
		w.slots[e.t.due%wheelSlots] = e.t.next
	}
	if e.t.next != nil {
		e.t.next.t.prev = e.t.prev
	}
	e.t.next, e.t.prev, e.t.linked = nil, nil, false
}

// forget removes e and all its deadlines, and keeps it out of the wheel from then on (the
// connection has ended: a deadline set later, racing with the end, is ignored).
func (w *timerWheel) forget(e *evConn) {
	w.mu.Lock()
	w.unlinkLocked(e)
	e.t = evTimers{gone: true}
	w.mu.Unlock()
}

// setCloseTimeout arms the close timeout unless it is armed.
func (w *timerWheel) setCloseTimeout(e *evConn, d time.Duration) {
	w.mu.Lock()
	if e.t.closeAt == 0 {
		e.t.closeAt = w.clock(time.Now().Add(d))
		w.rescheduleLocked(e)
	}
	w.mu.Unlock()
}

// setReadDeadline sets (zero t: clears) the read deadline.
func (w *timerWheel) setReadDeadline(e *evConn, t time.Time) {
	w.mu.Lock()
	e.t.readAt = 0
	if !t.IsZero() {
		e.t.readAt = w.clock(t)
	}
	e.readAt.Store(e.t.readAt)
	w.rescheduleLocked(e)
	w.mu.Unlock()
}

// setUserTimer sets (d <= 0: clears) the handler's timer, d from now.
func (w *timerWheel) setUserTimer(e *evConn, d time.Duration) {
	w.mu.Lock()
	e.t.userAt = 0
	if d > 0 {
		e.t.userAt = w.clock(time.Now().Add(d))
	}
	w.rescheduleLocked(e)
	w.mu.Unlock()
}

// startKeepAlive schedules the first ping.
func (w *timerWheel) startKeepAlive(e *evConn, interval time.Duration) {
	w.mu.Lock()
	e.t.pingAt = w.clock(time.Now().Add(interval))
	w.rescheduleLocked(e)
	w.mu.Unlock()
}

// stopKeepAlive ends the keepalive of e (its close frame is out: no more pings).
func (w *timerWheel) stopKeepAlive(e *evConn) {
	w.mu.Lock()
	e.t.pingAt, e.t.pongAt = 0, 0
	w.rescheduleLocked(e)
	w.mu.Unlock()
}

// pong records that the peer answered: the pong timeout is off.
func (w *timerWheel) pong(e *evConn) {
	w.mu.Lock()
	if e.t.pongAt != 0 {
		e.t.pongAt = 0
		w.rescheduleLocked(e)
	}
	w.mu.Unlock()
}

// Timer events found due by timerFired.
const (
	firedClose uint8 = 1 << iota
	firedRead
	firedPong
	firedPing
	firedUser
)

// due reports which deadlines of e have passed and moves the keepalive on: a ping due is
// reported and the next one scheduled (with its pong awaited), unless the last ping's
// pong is still awaited, as Conn.KeepAlive skips ticks while it waits. The handler's timer,
// once reported, is cleared (it fires once).
func (w *timerWheel) due(e *evConn, interval, pongTimeout time.Duration) uint8 {
	now := w.clock(time.Now())
	var fired uint8
	w.mu.Lock()
	if e.t.closeAt != 0 && now >= e.t.closeAt {
		fired |= firedClose
	}
	if e.t.readAt != 0 && now >= e.t.readAt {
		fired |= firedRead
	}
	if e.t.pongAt != 0 && now >= e.t.pongAt {
		fired |= firedPong
	}
	if e.t.userAt != 0 && now >= e.t.userAt {
		fired |= firedUser
		e.t.userAt = 0
	}
	if e.t.pingAt != 0 && now >= e.t.pingAt {
		for e.t.pingAt <= now {
			e.t.pingAt += int64(interval)
		}
		if e.t.pongAt == 0 {
			fired |= firedPing
			e.t.pongAt = now + int64(pongTimeout)
		}
	}
	w.rescheduleLocked(e)
	w.mu.Unlock()
	return fired
}

// errReadTimeout is the read error of a served connection whose read deadline passed: the
// error a blocking read gets from the net.Conn.
func errReadTimeout(c *Conn) error {
	return &net.OpError{Op: "read", Net: c.nc.LocalAddr().Network(), Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.ErrDeadlineExceeded}
}
