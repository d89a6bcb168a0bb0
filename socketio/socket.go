package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// ErrDisconnected is returned by the emit methods of a socket that is no longer connected,
// and by EmitWithAck when the socket disconnects before answering.
var ErrDisconnected = errors.New("socketio: socket disconnected")

// The disconnect reasons, as the Node server names them. Engine.IO's close reasons
// (transport close, transport error, ping timeout, parse error, forced close, server
// shutting down) are passed on as they are.
const (
	ReasonClientNamespaceDisconnect = "client namespace disconnect"
	ReasonServerNamespaceDisconnect = "server namespace disconnect"
)

// Handshake is what the client sent to connect: the HTTP request that opened its
// connection and the auth payload of its CONNECT packet.
type Handshake struct {
	Headers http.Header
	Query   url.Values
	// Address is the client's address (the request's RemoteAddr).
	Address string
	Time    time.Time
	Secure  bool
	// URL is the request URI of the connection's first request.
	URL string
	// Auth is the JSON auth object of the CONNECT packet, nil when the client sent none;
	// decode it with json.Unmarshal. Emitted as an argument, it travels as JSON.
	Auth json.RawMessage
}

// AckFunc answers an event the client sent with an acknowledgement request; the args are
// encoded as for Emit. Only the first call sends anything.
type AckFunc func(args ...any) error

// EventHandler handles one event: its arguments and, when the client asked for an
// acknowledgement, the function that answers it (nil otherwise).
type EventHandler func(args Args, ack AckFunc)

// Socket is a client's connection to one namespace.
//
// Concurrency: every method is safe to call from any goroutine. The handlers of a socket
// (events, OnAny, OnDisconnecting, OnDisconnect) run one at a time, in the order the
// packets arrived, on a goroutine of the socket's own; the connection goes on reading
// meanwhile (acknowledgements, other namespaces), so a handler may call EmitWithAck. A
// handler that blocks holds up only its socket's later events; too many waiting events
// (1,024) make the connection stop reading until the handler catches up.
type Socket struct {
	id     string
	nsp    *Namespace
	client *connection
	auth   json.RawMessage // of the CONNECT packet, for Handshake

	connected atomic.Bool
	recovered bool // the socket was restored from a persisted session
	// dispatching: a goroutine runs the inbox (under mu). Here to share connected's word.
	dispatching bool
	data        atomic.Value // holds dataBox

	// connection-state recovery
	pid string // the private id a client presents to recover the socket; "" when off

	mu            sync.Mutex
	handlers      []eventHandlers // by event; few per socket, so a slice (a map costs several times more)
	packetMWs     []PacketMiddleware
	errHandlers   []func(err error)
	anyHandlers   []func(event string, args Args)
	anyOutgoing   []func(event string, args []any)
	disconnecting []func(reason string)
	disconnected  []func(reason string)
	acks          map[uint64]func(Args, error)
	inbox         []func()
	inboxSpace    *sync.Cond // made by the first post that waits for room
}

// dataBox lets Data hold any value, nil included, in an atomic.Value.
type dataBox struct{ v any }

// maxInbox is the number of events a socket keeps waiting for its handlers before its
// connection stops reading.
const maxInbox = 1024

// newSocket makes a socket for a CONNECT; restored, when not nil, is the persisted session
// it recovers.
func newSocket(nsp *Namespace, c *connection, auth []byte, restored *PersistedSession) *Socket {
	s := &Socket{
		id:     newID(),
		nsp:    nsp,
		client: c,
		auth:   auth,
	}
	s.connected.Store(true)
	if nsp.srv.recovery != nil {
		s.pid = newID()
	}
	if restored != nil {
		s.id, s.pid, s.recovered = restored.SID, restored.PID, true
		s.SetData(restored.Data)
	}
	return s
}

// Recovered reports whether the socket was restored by connection-state recovery: it has
// the id, rooms and data it had before its client lost the connection, and received the
// events it missed.
func (s *Socket) Recovered() bool { return s.recovered }

// ID returns the socket's id, which differs from the connection's Engine.IO id and from
// the ids of the client's sockets in other namespaces.
func (s *Socket) ID() string { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake returns what the client sent to connect. It is made on each call (an idle socket
// does not keep its parsed query): keep the result rather than calling it again.
func (s *Socket) Handshake() Handshake { return s.client.handshake(s.auth) }

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool { return s.connected.Load() }

// Data returns the value stored by SetData (nil when none).
func (s *Socket) Data() any {
	b, _ := s.data.Load().(dataBox)
	return b.v
}

// SetData stores a value with the socket (Node's socket.data), reported by FetchSockets.
func (s *Socket) SetData(v any) { s.data.Store(dataBox{v}) }

// On adds a handler for the event.
func (s *Socket) On(event string, h EventHandler) {
	s.mu.Lock()
	if i := s.handlersIndexLocked(event); i >= 0 {
		s.handlers[i].hs = append(s.handlers[i].hs, h)
	} else {
		s.handlers = append(s.handlers, eventHandlers{event: event, hs: []EventHandler{h}})
	}
	s.mu.Unlock()
}

// eventHandlers are the handlers of one event on a socket.
type eventHandlers struct {
	event string
	hs    []EventHandler
}

// handlersIndexLocked returns the index of the event's handlers in s.handlers, or -1.
func (s *Socket) handlersIndexLocked(event string) int {
	return slices.IndexFunc(s.handlers, func(e eventHandlers) bool { return e.event == event })
}

// PacketMiddleware runs for each incoming event of a socket, before its handlers; a
// non-nil error drops the event and is passed to the socket's OnError handlers (Node's
// socket.use).
type PacketMiddleware func(event string, args Args) error

// Use adds a packet middleware, run in the order added on the socket's goroutine.
func (s *Socket) Use(mw PacketMiddleware) {
	s.mu.Lock()
	s.packetMWs = append(s.packetMWs, mw)
	s.mu.Unlock()
}

// OnError adds a handler called with the error of a packet middleware that dropped an
// event.
func (s *Socket) OnError(h func(err error)) {
	s.mu.Lock()
	s.errHandlers = append(s.errHandlers, h)
	s.mu.Unlock()
}

// OnAnyOutgoing adds a handler called with every event sent to this socket, by Emit or by
// a broadcast that reaches it, on the goroutine that sends it, before it is queued. The
// args are the caller's: the handler must not modify them.
func (s *Socket) OnAnyOutgoing(h func(event string, args []any)) {
	s.mu.Lock()
	s.anyOutgoing = append(s.anyOutgoing, h)
	s.mu.Unlock()
}

// notifyOutgoing calls the OnAnyOutgoing handlers for an event packet.
func (s *Socket) notifyOutgoing(p *EncodedPacket) {
	if p.Event == "" {
		return
	}
	s.mu.Lock()
	hs := s.anyOutgoing
	s.mu.Unlock()
	for _, h := range hs {
		h(p.Event, p.Args)
	}
}

// OnAny adds a handler called with every incoming event, before the event's own handlers.
func (s *Socket) OnAny(h func(event string, args Args)) {
	s.mu.Lock()
	s.anyHandlers = append(s.anyHandlers, h)
	s.mu.Unlock()
}

// OnDisconnecting adds a handler called when the socket is about to disconnect, while it is
// still in its rooms.
func (s *Socket) OnDisconnecting(h func(reason string)) {
	s.mu.Lock()
	s.disconnecting = append(s.disconnecting, h)
	s.mu.Unlock()
}

// OnDisconnect adds a handler called once the socket has disconnected, with the reason.
func (s *Socket) OnDisconnect(h func(reason string)) {
	s.mu.Lock()
	s.disconnected = append(s.disconnected, h)
	s.mu.Unlock()
}

// Join puts the socket in rooms.
func (s *Socket) Join(rooms ...Room) {
	if s.connected.Load() {
		s.nsp.adapter.AddAll(s.id, rooms)
	}
}

// Leave takes the socket out of room.
func (s *Socket) Leave(room Room) { s.nsp.adapter.Del(s.id, room) }

// Rooms returns the rooms the socket is in, its own included.
func (s *Socket) Rooms() []Room { return s.nsp.adapter.SocketRooms(s.id) }

// Emit sends an event with args to this client. Arguments are encoded as AppendArgs does:
// []byte values travel as binary attachments. It returns ErrDisconnected after the socket
// disconnected and engineio.ErrQueueFull when the client does not keep up (its connection
// is then closed).
func (s *Socket) Emit(event string, args ...any) error { return s.emit(event, args, false, false) }

// Volatile sends an event that is dropped, reporting false, when the connection cannot take
// it at once.
func (s *Socket) Volatile(event string, args ...any) (sent bool, err error) {
	err = s.emit(event, args, true, false)
	if errors.Is(err, engineio.ErrDropped) {
		return false, nil
	}
	return err == nil, err
}

func (s *Socket) emit(event string, args []any, volatile, noCompress bool) error {
	if err := checkEvent(event); err != nil {
		return err
	}
	if !s.connected.Load() {
		return ErrDisconnected
	}
	p, err := s.nsp.encodeKept(event, args, volatile)
	if err != nil {
		return err
	}
	if p.Offset != "" {
		// Kept for recovery: the adapter records it, as a broadcast to the socket's room.
		s.nsp.adapter.Broadcast(p, BroadcastOptions{Rooms: []Room{Room(s.id)}, NoCompress: noCompress})
		return nil
	}
	s.notifyOutgoing(p)
	return s.client.write(p, volatile, noCompress)
}

// EmitWithAck sends an event and waits for the client's acknowledgement, returning its
// arguments. It fails with ErrAckTimeout when ctx ends first and ErrDisconnected when the
// socket disconnects first.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	if err := checkEvent(event); err != nil {
		return Args{}, err
	}
	if !s.connected.Load() {
		return Args{}, ErrDisconnected
	}
	id := s.nsp.nextAckID()
	p, err := encodeEvent(s.nsp.name, id, true, event, args)
	if err != nil {
		return Args{}, err
	}
	type answer struct {
		args Args
		err  error
	}
	answers := make(chan answer, 1)
	if !s.expectAck(id, func(a Args, err error) { answers <- answer{a, err} }) {
		return Args{}, ErrDisconnected
	}
	defer s.cancelAck(id)
	s.notifyOutgoing(p)
	if err := s.client.write(p, false, false); err != nil {
		return Args{}, err
	}
	select {
	case a := <-answers:
		return a.args, a.err
	case <-ctx.Done():
		return Args{}, fmt.Errorf("%w (%v)", ErrAckTimeout, ctx.Err())
	}
}

// To starts a broadcast to the sockets in rooms, this socket excluded.
func (s *Socket) To(rooms ...Room) *BroadcastOperator {
	return s.nsp.To(rooms...).Except(Room(s.id))
}

// Broadcast starts a broadcast to every socket of the namespace but this one.
func (s *Socket) Broadcast() *BroadcastOperator { return s.nsp.Except(Room(s.id)) }

// Disconnect disconnects the socket from its namespace (reason "server namespace
// disconnect"); closeConn also closes the client's connection, which disconnects its
// sockets in every namespace.
func (s *Socket) Disconnect(closeConn bool) {
	if closeConn {
		s.client.disconnectAll()
		return
	}
	// Closed first: once the client has the DISCONNECT it may close the connection, and
	// the socket must not then end as "transport close".
	if s.onClose(ReasonServerNamespaceDisconnect) {
		s.client.sendDisconnect(s.nsp.name)
	}
}

// expectAck registers the callback of an ack id: the answer calls it once, or the socket's
// disconnection does with ErrDisconnected. It reports false when the socket is already
// disconnected.
func (s *Socket) expectAck(id uint64, f func(Args, error)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected.Load() {
		return false
	}
	if s.acks == nil {
		s.acks = make(map[uint64]func(Args, error))
	}
	s.acks[id] = f
	return true
}

// cancelAck forgets an ack id.
func (s *Socket) cancelAck(id uint64) {
	s.mu.Lock()
	delete(s.acks, id)
	s.mu.Unlock()
}

// onAck handles an ACK from the client: it runs on the connection's goroutine.
func (s *Socket) onAck(id uint64, args Args) {
	s.mu.Lock()
	f := s.acks[id]
	delete(s.acks, id)
	s.mu.Unlock()
	if f != nil {
		f(args, nil)
	}
}

// onEvent queues an incoming event for the socket's handlers; it blocks while the inbox is
// full.
func (s *Socket) onEvent(event string, args Args, ackID uint64, hasAck bool) {
	var ack AckFunc
	if hasAck {
		var once atomic.Bool
		ack = func(a ...any) error {
			if !once.CompareAndSwap(false, true) {
				return nil
			}
			return s.client.sendAck(s.nsp.name, ackID, a)
		}
	}
	s.post(func() {
		s.mu.Lock()
		mws, errHandlers := s.packetMWs, s.errHandlers
		anys := s.anyHandlers
		var hs []EventHandler
		if i := s.handlersIndexLocked(event); i >= 0 {
			hs = s.handlers[i].hs
		}
		s.mu.Unlock()
		for _, mw := range mws {
			if err := mw(event, args); err != nil {
				for _, h := range errHandlers {
					h(err)
				}
				return
			}
		}
		for _, h := range anys {
			h(event, args)
		}
		for _, h := range hs {
			h(args, ack)
		}
	}, true)
}

// post adds f to the socket's inbox and makes sure a goroutine runs it. With wait set it
// waits while the inbox is full.
func (s *Socket) post(f func(), wait bool) {
	s.mu.Lock()
	for wait && len(s.inbox) >= maxInbox && s.connected.Load() {
		if s.inboxSpace == nil {
			s.inboxSpace = sync.NewCond(&s.mu)
		}
		s.inboxSpace.Wait()
	}
	s.inbox = append(s.inbox, f)
	if !s.dispatching {
		s.dispatching = true
		go s.dispatch()
	}
	s.mu.Unlock()
}

// dispatch runs the inbox until it is empty.
func (s *Socket) dispatch() {
	for {
		s.mu.Lock()
		if len(s.inbox) == 0 {
			s.dispatching = false
			s.inbox = nil
			s.mu.Unlock()
			return
		}
		f := s.inbox[0]
		s.inbox[0] = nil
		s.inbox = s.inbox[1:]
		if s.inboxSpace != nil {
			s.inboxSpace.Signal()
		}
		s.mu.Unlock()
		f()
	}
}

// onClose disconnects the socket: OnDisconnecting handlers run while it is in its rooms,
// then it leaves them, pending EmitWithAck calls fail, and OnDisconnect handlers run —
// after the events that arrived before, on the socket's goroutine.
// It reports whether this call disconnected the socket (false: it already was).
func (s *Socket) onClose(reason string) bool {
	if !s.connected.CompareAndSwap(true, false) {
		return false
	}
	s.client.forget(s)
	s.mu.Lock()
	if s.inboxSpace != nil {
		s.inboxSpace.Broadcast()
	}
	pending := s.acks
	s.acks = nil
	s.mu.Unlock()
	s.post(func() {
		s.mu.Lock()
		before, after := s.disconnecting, s.disconnected
		s.mu.Unlock()
		for _, h := range before {
			h(reason)
		}
		rooms := s.Rooms()
		s.nsp.remove(s)
		// Persisted once removed: a recovery may reuse the id at once.
		if s.pid != "" && recoverable(reason) {
			s.nsp.adapter.PersistSession(PersistedSession{SID: s.id, PID: s.pid, Rooms: rooms, Data: s.Data()})
		}
		for _, h := range after {
			h(reason)
		}
	}, false)
	for _, f := range pending {
		f(Args{}, ErrDisconnected)
	}
	return true
}
