package socketio

import (
	"context"
	"slices"
	"sync"
)

// What cluster adapters (package adapter/redisadapter) need of a namespace beyond Adapter:
// building the packets of broadcasts that other servers sent, running the handlers of
// server-side events, and collecting acknowledgements and answers across servers.

// ClusterAdapter is implemented by adapters whose broadcasts and server-side events reach
// other servers. The namespace uses it, when its adapter has it, for EmitWithAck and
// ServerSideEmitWithAck.
type ClusterAdapter interface {
	Adapter
	// BroadcastWithAckContext is BroadcastWithAck across the cluster: p, which carries
	// ackID, goes to the matched sockets of every server; onAck is called once per answer
	// (from any server) and once per local socket that disconnected first. It returns the
	// number of calls to expect: the local sockets reached plus the counts the other
	// servers reported before ctx ended (or the adapter's request timeout passed), with a
	// non-nil error when some server did not report.
	BroadcastWithAckContext(ctx context.Context, p *EncodedPacket, ackID uint64, opts BroadcastOptions, onAck func(args Args, err error)) (int, error)
	// ServerSideEmitWithAck sends an event to the other servers, each asked to answer,
	// and returns the answers (one Args per server, holding the first argument the
	// server's handler answered with). When ctx ends or the adapter's request timeout
	// passes first, it returns the answers received and an error.
	ServerSideEmitWithAck(ctx context.Context, event string, args []any) ([]Args, error)
}

// ServerSideHandler handles an event another server of the cluster sent with
// ServerSideEmit or ServerSideEmitWithAck. ack is nil when the sender expects no answer;
// otherwise only the first of its arguments travels back, as with the Node adapters.
type ServerSideHandler func(args Args, ack AckFunc)

// serverSide holds the server-side event handlers of a namespace and runs them, one event
// at a time in arrival order, on a goroutine of its own.
type serverSide struct {
	mu          sync.Mutex
	handlers    map[string][]ServerSideHandler
	queue       []func()
	dispatching bool
}

// OnServerSideEmit adds a handler for an event that other servers of the cluster send
// with ServerSideEmit (Node: io.on(event, ...) / io.serverSideEmit). Handlers run one
// event at a time, in arrival order, on a goroutine of the namespace's own; one may call
// ServerSideEmitWithAck.
func (nsp *Namespace) OnServerSideEmit(event string, h ServerSideHandler) {
	ss := &nsp.serverSide
	ss.mu.Lock()
	if ss.handlers == nil {
		ss.handlers = make(map[string][]ServerSideHandler)
	}
	ss.handlers[event] = append(ss.handlers[event], h)
	ss.mu.Unlock()
}

// ReceiveServerSideEmit hands the namespace an event that another server sent: a cluster
// adapter calls it. The handlers run later, on the namespace's goroutine; ack (nil for
// none) answers the sender. It does not block.
func (nsp *Namespace) ReceiveServerSideEmit(event string, args Args, ack AckFunc) {
	ss := &nsp.serverSide
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.queue = append(ss.queue, func() {
		ss.mu.Lock()
		hs := slices.Clone(ss.handlers[event])
		ss.mu.Unlock()
		for _, h := range hs {
			h(args, ack)
		}
	})
	if !ss.dispatching {
		ss.dispatching = true
		go ss.dispatch()
	}
}

func (ss *serverSide) dispatch() {
	for {
		ss.mu.Lock()
		if len(ss.queue) == 0 {
			ss.dispatching = false
			ss.queue = nil
			ss.mu.Unlock()
			return
		}
		f := ss.queue[0]
		ss.queue[0] = nil
		ss.queue = ss.queue[1:]
		ss.mu.Unlock()
		f()
	}
}

// ServerSideEmitWithAck sends an event to the other servers of the cluster and returns
// their answers, one Args per server (see ClusterAdapter). With an adapter that is not a
// ClusterAdapter there is no other server: it returns no answers and no error.
func (nsp *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	if err := checkEvent(event); err != nil {
		return nil, err
	}
	if ca, ok := nsp.adapter.(ClusterAdapter); ok {
		return ca.ServerSideEmitWithAck(ctx, event, args)
	}
	return nil, nil
}

// EncodeBroadcast encodes an event for Adapter.Broadcast on this namespace, as Emit does:
// with connection-state recovery on and unless volatile, the packet carries a new offset
// and is kept for replay. Cluster adapters use it for the broadcasts other servers send.
func (nsp *Namespace) EncodeBroadcast(event string, args []any, volatile bool) (*EncodedPacket, error) {
	return nsp.encodeKept(event, args, volatile)
}

// EncodeBroadcastWithAck encodes an event that asks for acknowledgements with a new ack
// id of this namespace, for Adapter.BroadcastWithAck; it returns the packet and the id.
func (nsp *Namespace) EncodeBroadcastWithAck(event string, args []any) (*EncodedPacket, uint64, error) {
	id := nsp.nextAckID()
	p, err := encodeEvent(nsp.name, id, true, event, args)
	return p, id, err
}

// NewArgs returns Args holding values, encoded as AppendArgs encodes them ([]byte values
// become binary values that Binary, Decode and Values return). Cluster adapters use it for
// the arguments and answers that come from other servers.
func NewArgs(values ...any) (Args, error) {
	data, attachments, err := AppendArgs(nil, "", values)
	if err != nil {
		return Args{}, err
	}
	elems, _ := splitArray(data, make([][]byte, 0, len(values)))
	return Args{elems: elems, binary: attachments, resolve: len(attachments) > 0}, nil
}
