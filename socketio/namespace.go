package socketio

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Middleware runs for every socket that asks to join a namespace, before the socket is
// connected; a non-nil error refuses it with a CONNECT_ERROR whose message is the error's
// text (and whose data is ConnectError.Data when the error is a *ConnectError). Middleware
// runs on the connection's goroutine: it may block (e.g. to check a token), which delays
// that connection only.
type Middleware func(s *Socket) error

// ConnectError refuses a connection from a Middleware with a message and data that the
// client receives in its connect_error event (err.message, err.data).
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return e.Message }

// Namespace is a communication channel of a Server: its own sockets, rooms, middleware and
// handlers over the connections they share. All methods are safe for concurrent use.
type Namespace struct {
	srv     *Server
	name    string
	parent  *Namespace // the parent of a dynamic namespace
	adapter Adapter
	ackIDs  atomic.Uint64

	offsetPrefix string // recovery offsets: a prefix of this server's run, then a counter
	offsets      atomic.Uint64

	mu         sync.RWMutex
	middleware []Middleware
	handlers   []func(*Socket)
	sockets    map[string]*Socket
	children   []*Namespace // of a parent namespace

	serverSide serverSide // handlers of events from other servers (cluster.go)
}

func newNamespace(srv *Server, name string, parent *Namespace) *Namespace {
	nsp := &Namespace{srv: srv, name: name, parent: parent, sockets: make(map[string]*Socket), offsetPrefix: newID()[:8] + "-"}
	nsp.adapter = srv.newAdapter(nsp)
	return nsp
}

// Name returns the namespace's name ("/" for the main one; "" for a parent of dynamic
// namespaces).
func (nsp *Namespace) Name() string { return nsp.name }

// Adapter returns the namespace's adapter.
func (nsp *Namespace) Adapter() Adapter { return nsp.adapter }

// Use adds a middleware, run in the order added, after those of the parent namespace.
func (nsp *Namespace) Use(mw Middleware) {
	nsp.mu.Lock()
	nsp.middleware = append(nsp.middleware, mw)
	nsp.mu.Unlock()
}

// OnConnection adds a handler called with each socket that joins the namespace, after the
// middleware accepted it and the client was told. Register the socket's event handlers
// there: events are dispatched only after the connection handlers return.
func (nsp *Namespace) OnConnection(h func(s *Socket)) {
	nsp.mu.Lock()
	nsp.handlers = append(nsp.handlers, h)
	nsp.mu.Unlock()
}

// Socket returns the socket of this namespace on this server with the given id, or nil.
func (nsp *Namespace) Socket(id string) *Socket {
	nsp.mu.RLock()
	defer nsp.mu.RUnlock()
	return nsp.sockets[id]
}

// SocketCount returns the number of sockets connected to the namespace on this server.
func (nsp *Namespace) SocketCount() int {
	nsp.mu.RLock()
	defer nsp.mu.RUnlock()
	return len(nsp.sockets)
}

func (nsp *Namespace) addChild(child *Namespace) {
	nsp.mu.Lock()
	nsp.children = append(nsp.children, child)
	nsp.mu.Unlock()
}

// chain returns the middleware and connection handlers that apply: the parent's first.
func (nsp *Namespace) chain() ([]Middleware, []func(*Socket)) {
	var mws []Middleware
	var hs []func(*Socket)
	if nsp.parent != nil {
		mws, hs = nsp.parent.chain()
	}
	nsp.mu.RLock()
	defer nsp.mu.RUnlock()
	return append(mws, nsp.middleware...), append(hs, nsp.handlers...)
}

// admit runs the middleware for s, then connects it: it joins its own room, the client
// gets the CONNECT answer, and the connection handlers run.
//
// A recovered socket skips the middleware (unless RecoveryOptions.RunMiddlewares), joins
// its former rooms, and gets the events it missed right after the CONNECT answer.
func (nsp *Namespace) admit(s *Socket, formerRooms []Room, missed []*EncodedPacket) error {
	mws, handlers := nsp.chain()
	if s.recovered && !nsp.srv.recovery.RunMiddlewares {
		mws = nil
	}
	for _, mw := range mws {
		if err := mw(s); err != nil {
			return err
		}
	}
	nsp.mu.Lock()
	nsp.sockets[s.id] = s
	nsp.mu.Unlock()
	nsp.adapter.AddAll(s.id, append(formerRooms, Room(s.id)))
	s.client.sendConnect(s)
	for _, p := range missed {
		_ = s.client.write(p, false, false)
	}
	for _, h := range handlers {
		h(s)
	}
	return nil
}

// remove forgets a disconnected socket.
func (nsp *Namespace) remove(s *Socket) {
	nsp.adapter.DelAll(s.id)
	nsp.mu.Lock()
	delete(nsp.sockets, s.id)
	nsp.mu.Unlock()
}

// nextAckID returns a new ack id, unique in the namespace.
func (nsp *Namespace) nextAckID() uint64 { return nsp.ackIDs.Add(1) - 1 }

// operator returns a broadcast operator over the namespace (over every child, for a
// parent of dynamic namespaces).
func (nsp *Namespace) operator() *BroadcastOperator { return &BroadcastOperator{nsp: nsp} }

// To starts a broadcast to the sockets in rooms; chain To, Except and the flags, then Emit.
func (nsp *Namespace) To(rooms ...Room) *BroadcastOperator { return nsp.operator().To(rooms...) }

// In is To.
func (nsp *Namespace) In(rooms ...Room) *BroadcastOperator { return nsp.To(rooms...) }

// Except starts a broadcast to every socket but those in rooms.
func (nsp *Namespace) Except(rooms ...Room) *BroadcastOperator {
	return nsp.operator().Except(rooms...)
}

// Volatile starts a broadcast that skips the sockets not ready to write at once.
func (nsp *Namespace) Volatile() *BroadcastOperator { return nsp.operator().Volatile() }

// Local starts a broadcast that stays on this server.
func (nsp *Namespace) Local() *BroadcastOperator { return nsp.operator().Local() }

// Compress starts a broadcast with compression on or off.
func (nsp *Namespace) Compress(on bool) *BroadcastOperator { return nsp.operator().Compress(on) }

// Timeout starts a broadcast whose acknowledgements are awaited at most d.
func (nsp *Namespace) Timeout(d time.Duration) *BroadcastOperator {
	return nsp.operator().Timeout(d)
}

// Emit sends an event to every socket of the namespace.
func (nsp *Namespace) Emit(event string, args ...any) error {
	return nsp.operator().Emit(event, args...)
}

// EmitWithAck sends an event to every socket of the namespace and collects their answers.
func (nsp *Namespace) EmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	return nsp.operator().EmitWithAck(ctx, event, args...)
}

// FetchSockets describes every socket of the namespace (of the cluster, with a cluster
// adapter).
func (nsp *Namespace) FetchSockets(ctx context.Context) ([]SocketInfo, error) {
	return nsp.operator().FetchSockets(ctx)
}

// SocketsJoin makes every socket of the namespace join rooms.
func (nsp *Namespace) SocketsJoin(rooms ...Room) { nsp.operator().SocketsJoin(rooms...) }

// SocketsLeave makes every socket of the namespace leave rooms.
func (nsp *Namespace) SocketsLeave(rooms ...Room) { nsp.operator().SocketsLeave(rooms...) }

// DisconnectSockets disconnects every socket of the namespace.
func (nsp *Namespace) DisconnectSockets(closeConn bool) { nsp.operator().DisconnectSockets(closeConn) }

// ServerSideEmit sends an event to the other servers of a cluster (nothing with the
// in-memory adapter).
func (nsp *Namespace) ServerSideEmit(event string, args ...any) error {
	return nsp.adapter.ServerSideEmit(event, args)
}

// targets returns the namespaces a broadcast on nsp reaches.
func (nsp *Namespace) targets() []*Namespace {
	if nsp.name != "" {
		return []*Namespace{nsp}
	}
	nsp.mu.RLock()
	defer nsp.mu.RUnlock()
	return append([]*Namespace(nil), nsp.children...)
}
