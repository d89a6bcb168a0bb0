package socketio

import (
	"context"
	"sync"
	"time"
)

// Room names a group of sockets of one namespace. Every socket is in the room named by its
// own id.
type Room string

// BroadcastOptions selects the sockets of a namespace that a broadcast reaches and how.
type BroadcastOptions struct {
	// Rooms, when not empty, limits the broadcast to the sockets in at least one of them;
	// empty means every socket of the namespace.
	Rooms []Room
	// Except leaves out the sockets in any of these rooms.
	Except []Room
	// Volatile drops the packet for sockets whose connection is not ready to write it now
	// instead of queueing it.
	Volatile bool
	// NoCompress keeps the packet out of compression.
	NoCompress bool
	// Local keeps the broadcast on this server: a cluster adapter does not forward it.
	Local bool
}

// EncodedPacket is a packet encoded once for all its recipients: the text of the Socket.IO
// packet and its binary attachments, each sent as one Engine.IO message.
type EncodedPacket struct {
	Text        []byte
	Attachments [][]byte
	// Offset is the recovery offset the event carries as its last argument, "" when it is
	// not kept for connection-state recovery. An adapter keeps packets with an offset for
	// RestoreSession.
	Offset string
	// Event and Args are the event name and arguments the packet encodes, for the
	// socket's OnAnyOutgoing handlers; Event is "" for other packets.
	Event string
	Args  []any
}

// SocketInfo describes a socket matched by Adapter.FetchSockets. On a cluster it may live on
// another server.
type SocketInfo struct {
	ID        string
	Rooms     []Room
	Handshake Handshake
	Data      any
}

// Adapter keeps the rooms of one namespace and carries its broadcasts and server-side
// operations. NewInMemoryAdapter serves one process; a cluster adapter (Redis) implements
// the same interface and forwards what is not Local to the other servers, each of which
// applies it to its own sockets.
//
// Delivery to the sockets of this server goes through the LocalSockets the adapter was
// made with. Every method must be safe for concurrent use.
type Adapter interface {
	// AddAll puts the socket id in each of rooms.
	AddAll(id string, rooms []Room)
	// Del takes the socket id out of room.
	Del(id string, room Room)
	// DelAll takes the socket id out of every room (it is disconnecting).
	DelAll(id string)
	// SocketRooms returns the rooms of a local socket, nil for an unknown one.
	SocketRooms(id string) []Room
	// Sockets returns the ids of the local sockets matched by opts.
	Sockets(opts BroadcastOptions) []string

	// Broadcast sends p to every socket matched by opts.
	Broadcast(p *EncodedPacket, opts BroadcastOptions)
	// BroadcastWithAck sends p, which carries ackID, to every matched socket and calls onAck
	// once per socket reached: with its answer, or with an error when it disconnected
	// first. It returns the number of sockets reached, which is the number of calls to
	// expect.
	BroadcastWithAck(p *EncodedPacket, ackID uint64, opts BroadcastOptions, onAck func(args Args, err error)) int

	// FetchSockets describes the sockets matched by opts.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error)
	// AddSockets makes the matched sockets join rooms.
	AddSockets(opts BroadcastOptions, rooms []Room)
	// DelSockets makes the matched sockets leave rooms.
	DelSockets(opts BroadcastOptions, rooms []Room)
	// DisconnectSockets disconnects the matched sockets, closing their connections when
	// closeConn is set.
	DisconnectSockets(opts BroadcastOptions, closeConn bool)
	// ServerSideEmit sends an event to the other servers of the cluster; a single-process
	// adapter has no one to send it to.
	ServerSideEmit(event string, args []any) error

	// PersistSession keeps the state of a socket that disconnected for a recoverable
	// reason (connection-state recovery), for the recovery window.
	PersistSession(s PersistedSession)
	// RestoreSession returns, and forgets, the session persisted under pid, with the
	// packets broadcast after offset that would have reached it, in order. It reports
	// false when the session is unknown or expired, or the offset is no longer kept.
	RestoreSession(pid, offset string) (PersistedSession, []*EncodedPacket, bool)

	// Close releases the adapter's resources.
	Close() error
}

// LocalSockets is what an adapter needs of its namespace on this server: its sockets.
type LocalSockets interface {
	// Socket returns the local socket with this id, or nil.
	Socket(id string) *Socket
}

// NewAdapterFunc makes the adapter of a namespace.
type NewAdapterFunc func(nsp *Namespace) Adapter

// InMemoryAdapter is the default Adapter: the rooms of one namespace in this process.
type InMemoryAdapter struct {
	local    LocalSockets
	name     string   // the namespace's, for the observer
	observer Observer // the server's, nil for none

	mu    sync.RWMutex
	rooms map[Room]*smallSet[string]
	sids  map[string]*smallSet[Room]

	// connection-state recovery (recovery.go)
	window   time.Duration
	recMu    sync.Mutex
	packets  []keptPacket
	sessions map[string]keptSession
}

// NewInMemoryAdapter returns the in-memory adapter of a namespace; it is the default
// NewAdapterFunc.
func NewInMemoryAdapter(nsp *Namespace) Adapter {
	a := &InMemoryAdapter{
		local:    nsp,
		name:     nsp.name,
		observer: nsp.srv.observer,
		rooms:    make(map[Room]*smallSet[string]),
		sids:     make(map[string]*smallSet[Room]),
		sessions: make(map[string]keptSession),
	}
	if r := nsp.srv.recovery; r != nil {
		a.window = r.MaxDisconnectionDuration
	}
	return a
}

// AddAll implements Adapter.
func (a *InMemoryAdapter) AddAll(id string, rooms []Room) {
	a.mu.Lock()
	defer a.mu.Unlock()
	mine := a.sids[id]
	if mine == nil {
		mine = &smallSet[Room]{list: make([]Room, 0, len(rooms))}
		a.sids[id] = mine
	}
	for _, r := range rooms {
		mine.add(r)
		members := a.rooms[r]
		if members == nil {
			members = &smallSet[string]{}
			a.rooms[r] = members
		}
		members.add(id)
	}
}

// Del implements Adapter.
func (a *InMemoryAdapter) Del(id string, room Room) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.delLocked(id, room)
}

func (a *InMemoryAdapter) delLocked(id string, room Room) {
	if mine := a.sids[id]; mine != nil {
		mine.remove(room)
	}
	if members := a.rooms[room]; members != nil {
		members.remove(id)
		if members.len() == 0 {
			delete(a.rooms, room)
		}
	}
}

// DelAll implements Adapter.
func (a *InMemoryAdapter) DelAll(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if mine := a.sids[id]; mine != nil {
		for _, r := range mine.slice() {
			a.delLocked(id, r)
		}
	}
	delete(a.sids, id)
}

// SocketRooms implements Adapter.
func (a *InMemoryAdapter) SocketRooms(id string) []Room {
	a.mu.RLock()
	defer a.mu.RUnlock()
	mine, ok := a.sids[id]
	if !ok {
		return nil
	}
	return mine.slice()
}

// Sockets implements Adapter.
func (a *InMemoryAdapter) Sockets(opts BroadcastOptions) []string {
	var ids []string
	a.each(opts, func(id string) { ids = append(ids, id) })
	return ids
}

// each calls f with the id of every socket matched by opts, under the read lock: f must not
// call back into the adapter.
func (a *InMemoryAdapter) each(opts BroadcastOptions, f func(id string)) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	excluded := func(id string) bool {
		for _, r := range opts.Except {
			if a.rooms[r].has(id) {
				return true
			}
		}
		return false
	}
	if len(opts.Rooms) == 0 {
		for id := range a.sids {
			if !excluded(id) {
				f(id)
			}
		}
		return
	}
	if len(opts.Rooms) == 1 {
		for id := range a.rooms[opts.Rooms[0]].all() {
			if !excluded(id) {
				f(id)
			}
		}
		return
	}
	seen := make(map[string]struct{})
	for _, r := range opts.Rooms {
		for id := range a.rooms[r].all() {
			if _, dup := seen[id]; dup || excluded(id) {
				continue
			}
			seen[id] = struct{}{}
			f(id)
		}
	}
}

// matched returns the local sockets matched by opts.
func (a *InMemoryAdapter) matched(opts BroadcastOptions) []*Socket {
	var sockets []*Socket
	a.each(opts, func(id string) {
		if s := a.local.Socket(id); s != nil {
			sockets = append(sockets, s)
		}
	})
	return sockets
}

// Broadcast implements Adapter. The packet is encoded once; every recipient's connection
// queues the same bytes, and a slow one never delays the others.
func (a *InMemoryAdapter) Broadcast(p *EncodedPacket, opts BroadcastOptions) {
	if p.Offset != "" {
		a.keep(p, opts)
	}
	n := 0
	for _, s := range a.matched(opts) {
		s.notifyOutgoing(p)
		if s.client.write(p, opts.Volatile, opts.NoCompress) == nil { // a failed write closes that connection alone
			n++
		}
	}
	if a.observer != nil {
		a.observer.Broadcast(a.name, n)
	}
}

// BroadcastWithAck implements Adapter.
func (a *InMemoryAdapter) BroadcastWithAck(p *EncodedPacket, ackID uint64, opts BroadcastOptions, onAck func(args Args, err error)) int {
	n := 0
	for _, s := range a.matched(opts) {
		if !s.expectAck(ackID, onAck) {
			continue
		}
		s.notifyOutgoing(p)
		if s.client.write(p, opts.Volatile, opts.NoCompress) == nil {
			n++
		} else {
			s.cancelAck(ackID)
		}
	}
	if a.observer != nil {
		a.observer.Broadcast(a.name, n)
	}
	return n
}

// FetchSockets implements Adapter.
func (a *InMemoryAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]SocketInfo, error) {
	sockets := a.matched(opts)
	infos := make([]SocketInfo, 0, len(sockets))
	for _, s := range sockets {
		infos = append(infos, SocketInfo{ID: s.ID(), Rooms: a.SocketRooms(s.ID()), Handshake: s.Handshake(), Data: s.Data()})
	}
	return infos, nil
}

// AddSockets implements Adapter.
func (a *InMemoryAdapter) AddSockets(opts BroadcastOptions, rooms []Room) {
	for _, s := range a.matched(opts) {
		s.Join(rooms...)
	}
}

// DelSockets implements Adapter.
func (a *InMemoryAdapter) DelSockets(opts BroadcastOptions, rooms []Room) {
	for _, s := range a.matched(opts) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
}

// DisconnectSockets implements Adapter.
func (a *InMemoryAdapter) DisconnectSockets(opts BroadcastOptions, closeConn bool) {
	for _, s := range a.matched(opts) {
		s.Disconnect(closeConn)
	}
}

// ServerSideEmit implements Adapter: with one process there is no other server, so it does
// nothing.
func (a *InMemoryAdapter) ServerSideEmit(string, []any) error { return nil }

// Close implements Adapter.
func (a *InMemoryAdapter) Close() error { return nil }
