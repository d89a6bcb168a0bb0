package socketio

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// Connection-state recovery: with Options.ConnectionStateRecovery set, every event sent to
// clients without an acknowledgement (and not volatile) carries an offset as its last
// argument, and the adapter keeps it for MaxDisconnectionDuration. A socket that
// disconnects for a reason a reconnection can mend (a transport failure, a ping timeout, a
// server shutdown) is remembered by its private id (pid). When its client reconnects
// within the window and sends {"pid","offset"} in its CONNECT auth, as socket.io-client 4.6+
// does, the socket gets back its id, rooms and data, is marked Recovered, and receives the
// events it missed after that offset, in order.

// DefaultMaxDisconnectionDuration is how long a disconnected socket can be recovered when
// RecoveryOptions.MaxDisconnectionDuration is 0 (the Node server's default).
const DefaultMaxDisconnectionDuration = 2 * time.Minute

// RecoveryOptions turns on connection-state recovery.
type RecoveryOptions struct {
	// MaxDisconnectionDuration is how long a disconnected socket's state and the events it
	// may miss are kept (0: DefaultMaxDisconnectionDuration).
	MaxDisconnectionDuration time.Duration
	// RunMiddlewares makes a recovered socket go through the namespace's middleware again;
	// by default it skips them, as in the Node server.
	RunMiddlewares bool
}

// PersistedSession is the state of a disconnected socket kept for its recovery.
type PersistedSession struct {
	// SID is the socket id, PID the private id the client presents to recover it.
	SID, PID string
	// Rooms are the rooms the socket was in (its own room included).
	Rooms []Room
	// Data is the socket's Data.
	Data any
}

// Recovery returns the server's connection-state recovery options (Options.
// ConnectionStateRecovery, with MaxDisconnectionDuration defaulted), nil when recovery is
// off. The result is a copy. Adapters that keep sessions and missed events elsewhere than
// in memory (adapter/redisadapter's streams adapter) read it.
func (nsp *Namespace) Recovery() *RecoveryOptions {
	if nsp.srv.recovery == nil {
		return nil
	}
	r := *nsp.srv.recovery
	return &r
}

// recoverable reports whether a socket that disconnected for reason may be recovered: not
// when either side asked for the disconnection.
func recoverable(reason string) bool {
	switch reason {
	case string(engineio.ReasonTransportError), string(engineio.ReasonTransportClose),
		string(engineio.ReasonPingTimeout), string(engineio.ReasonServerShutdown),
		string(engineio.ReasonForcedClose), string(engineio.ReasonQueueFull):
		return true
	}
	return false
}

// recoveryAuth reads the pid and offset a reconnecting client puts in its CONNECT auth.
func recoveryAuth(auth []byte) (pid, offset string, ok bool) {
	if len(auth) == 0 {
		return "", "", false
	}
	var a struct {
		PID    string `json:"pid"`
		Offset string `json:"offset"`
	}
	if json.Unmarshal(auth, &a) != nil || a.PID == "" || a.Offset == "" {
		return "", "", false
	}
	return a.PID, a.Offset, true
}

// nextOffset returns a new recovery offset: unique for the namespace on this server (a
// random prefix tells this run of the server from earlier ones).
func (nsp *Namespace) nextOffset() string {
	return nsp.offsetPrefix + strconv.FormatUint(nsp.offsets.Add(1), 36)
}

// keptPacket is an event kept for recovery.
type keptPacket struct {
	p    *EncodedPacket
	opts BroadcastOptions
	at   time.Time
}

// keptSession is a persisted session and when its socket disconnected.
type keptSession struct {
	PersistedSession
	at time.Time
}

// keep stores a packet that carries an offset, and drops those older than the window.
func (a *InMemoryAdapter) keep(p *EncodedPacket, opts BroadcastOptions) {
	now := time.Now()
	a.recMu.Lock()
	defer a.recMu.Unlock()
	a.packets = append(a.packets, keptPacket{p, opts, now})
	old := 0
	for old < len(a.packets) && now.Sub(a.packets[old].at) > a.window {
		old++
	}
	if old > 0 {
		a.packets = slices.Delete(a.packets, 0, old)
	}
}

// PersistSession implements Adapter.
func (a *InMemoryAdapter) PersistSession(s PersistedSession) {
	now := time.Now()
	a.recMu.Lock()
	defer a.recMu.Unlock()
	for pid, k := range a.sessions {
		if now.Sub(k.at) > a.window {
			delete(a.sessions, pid)
		}
	}
	a.sessions[s.PID] = keptSession{s, now}
}

// RestoreSession implements Adapter.
func (a *InMemoryAdapter) RestoreSession(pid, offset string) (PersistedSession, []*EncodedPacket, bool) {
	a.recMu.Lock()
	defer a.recMu.Unlock()
	k, ok := a.sessions[pid]
	if !ok {
		return PersistedSession{}, nil, false
	}
	delete(a.sessions, pid)
	if time.Since(k.at) > a.window {
		return PersistedSession{}, nil, false
	}
	from := slices.IndexFunc(a.packets, func(kp keptPacket) bool { return kp.p.Offset == offset })
	if from < 0 {
		return PersistedSession{}, nil, false
	}
	var missed []*EncodedPacket
	for _, kp := range a.packets[from+1:] {
		if reaches(kp.opts, k.Rooms) {
			missed = append(missed, kp.p)
		}
	}
	return k.PersistedSession, missed, true
}

// reaches reports whether a broadcast with opts reaches a socket in rooms.
func reaches(opts BroadcastOptions, rooms []Room) bool {
	for _, r := range opts.Except {
		if slices.Contains(rooms, r) {
			return false
		}
	}
	if len(opts.Rooms) == 0 {
		return true
	}
	for _, r := range opts.Rooms {
		if slices.Contains(rooms, r) {
			return true
		}
	}
	return false
}
