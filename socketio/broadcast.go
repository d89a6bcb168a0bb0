package socketio

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrReservedEvent is returned when an application emits one of the event names the
// protocol reserves: connect, connect_error, disconnect, disconnecting, newListener,
// removeListener.
var ErrReservedEvent = errors.New("socketio: reserved event name")

// ErrAckTimeout is returned by the EmitWithAck methods when answers are still missing at
// the end of the timeout (or of the context).
var ErrAckTimeout = errors.New("socketio: acknowledgement timed out")

func checkEvent(event string) error {
	if IsReservedEvent(event) {
		return fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	return nil
}

// BroadcastOperator is a broadcast being built: its rooms, exclusions and flags. Each method
// returns a new operator, so a partly built one can be reused. It is safe for concurrent
// use.
type BroadcastOperator struct {
	nsp     *Namespace
	opts    BroadcastOptions
	timeout time.Duration
}

func (b *BroadcastOperator) with(f func(c *BroadcastOperator)) *BroadcastOperator {
	c := *b
	c.opts.Rooms = slices.Clip(c.opts.Rooms)
	c.opts.Except = slices.Clip(c.opts.Except)
	f(&c)
	return &c
}

// To adds rooms: the broadcast reaches the sockets in any of its rooms.
func (b *BroadcastOperator) To(rooms ...Room) *BroadcastOperator {
	return b.with(func(c *BroadcastOperator) { c.opts.Rooms = append(c.opts.Rooms, rooms...) })
}

// In is To.
func (b *BroadcastOperator) In(rooms ...Room) *BroadcastOperator { return b.To(rooms...) }

// Except leaves out the sockets in any of rooms.
func (b *BroadcastOperator) Except(rooms ...Room) *BroadcastOperator {
	return b.with(func(c *BroadcastOperator) { c.opts.Except = append(c.opts.Except, rooms...) })
}

// Volatile drops the event for sockets whose connection cannot take it at once.
func (b *BroadcastOperator) Volatile() *BroadcastOperator {
	return b.with(func(c *BroadcastOperator) { c.opts.Volatile = true })
}

// Local keeps the broadcast on this server.
func (b *BroadcastOperator) Local() *BroadcastOperator {
	return b.with(func(c *BroadcastOperator) { c.opts.Local = true })
}

// Compress turns compression of the event on (the default) or off.
func (b *BroadcastOperator) Compress(on bool) *BroadcastOperator {
	return b.with(func(c *BroadcastOperator) { c.opts.NoCompress = !on })
}

// Timeout bounds the wait of EmitWithAck.
func (b *BroadcastOperator) Timeout(d time.Duration) *BroadcastOperator {
	return b.with(func(c *BroadcastOperator) { c.timeout = d })
}

// Emit sends the event with args to every selected socket. The packet is encoded once per
// namespace and the same bytes are queued for every recipient. Arguments are encoded as
// AppendArgs does: []byte values travel as binary attachments.
func (b *BroadcastOperator) Emit(event string, args ...any) error {
	if err := checkEvent(event); err != nil {
		return err
	}
	for _, nsp := range b.nsp.targets() {
		p, err := nsp.encodeKept(event, args, b.opts.Volatile)
		if err != nil {
			return err
		}
		nsp.adapter.Broadcast(p, b.opts)
	}
	return nil
}

// encodeKept encodes an event without ack; with connection-state recovery on and unless it
// is volatile, the event carries a new offset as its last argument and is kept for replay.
func (nsp *Namespace) encodeKept(event string, args []any, volatile bool) (*EncodedPacket, error) {
	if nsp.srv.recovery == nil || volatile {
		return encodeEvent(nsp.name, 0, false, event, args)
	}
	offset := nsp.nextOffset()
	p, err := encodeEvent(nsp.name, 0, false, event, append(slices.Clip(args), offset))
	if p != nil {
		p.Offset = offset
	}
	return p, err
}

// EmitWithAck sends the event to every selected socket, each asked to acknowledge it, and
// returns their answers once all have come. When ctx ends or the operator's Timeout passes
// first, it returns the answers received so far and an error matching ErrAckTimeout.
func (b *BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	if err := checkEvent(event); err != nil {
		return nil, err
	}
	if b.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.timeout)
		defer cancel()
	}
	var mu sync.Mutex
	var answers []Args
	var failed error
	calls := 0
	arrived := make(chan struct{}, 1)
	onAck := func(a Args, err error) {
		mu.Lock()
		calls++
		if err != nil {
			failed = err
		} else {
			answers = append(answers, a)
		}
		mu.Unlock()
		select {
		case arrived <- struct{}{}:
		default:
		}
	}
	type sent struct {
		nsp *Namespace
		id  uint64
	}
	var ids []sent
	expected := 0
	for _, nsp := range b.nsp.targets() {
		id := nsp.nextAckID()
		p, err := encodeEvent(nsp.name, id, true, event, args)
		if err != nil {
			return nil, err
		}
		ids = append(ids, sent{nsp, id})
		if ca, ok := nsp.adapter.(ClusterAdapter); ok && !b.opts.Local {
			n, _ := ca.BroadcastWithAckContext(ctx, p, id, b.opts, onAck) // a server that did not report counts as none
			expected += n
		} else {
			expected += nsp.adapter.BroadcastWithAck(p, id, b.opts, onAck)
		}
	}
	for {
		mu.Lock()
		done := calls >= expected
		mu.Unlock()
		if done {
			break
		}
		select {
		case <-arrived:
			continue
		case <-ctx.Done():
		}
		// Forget the ids at the sockets that did not answer.
		for _, x := range ids {
			for _, id := range x.nsp.adapter.Sockets(b.opts) {
				if s := x.nsp.Socket(id); s != nil {
					s.cancelAck(x.id)
				}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(answers), fmt.Errorf("%w: %d of %d answers (%v)", ErrAckTimeout, len(answers), expected, ctx.Err())
	}
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		return slices.Clone(answers), fmt.Errorf("socketio: %d of %d sockets answered: %w", len(answers), expected, failed)
	}
	return slices.Clone(answers), nil
}

// FetchSockets describes the selected sockets. With a cluster adapter, when some server
// does not answer in time, it returns the sockets of those that did with the error.
func (b *BroadcastOperator) FetchSockets(ctx context.Context) ([]SocketInfo, error) {
	var all []SocketInfo
	for _, nsp := range b.nsp.targets() {
		infos, err := nsp.adapter.FetchSockets(ctx, b.opts)
		all = append(all, infos...) // with a cluster adapter, what answered in time
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// SocketsJoin makes the selected sockets join rooms.
func (b *BroadcastOperator) SocketsJoin(rooms ...Room) {
	for _, nsp := range b.nsp.targets() {
		nsp.adapter.AddSockets(b.opts, rooms)
	}
}

// SocketsLeave makes the selected sockets leave rooms.
func (b *BroadcastOperator) SocketsLeave(rooms ...Room) {
	for _, nsp := range b.nsp.targets() {
		nsp.adapter.DelSockets(b.opts, rooms)
	}
}

// DisconnectSockets disconnects the selected sockets; closeConn also closes their
// connections (and so their other namespaces).
func (b *BroadcastOperator) DisconnectSockets(closeConn bool) {
	for _, nsp := range b.nsp.targets() {
		nsp.adapter.DisconnectSockets(b.opts, closeConn)
	}
}

// encodeEvent encodes an EVENT (or BINARY_EVENT) packet once for all its recipients.
func encodeEvent(nsp string, id uint64, hasID bool, event string, args []any) (*EncodedPacket, error) {
	data, attachments, err := AppendArgs(nil, event, args)
	if err != nil {
		return nil, err
	}
	p := Packet{Type: Event, Namespace: nsp, ID: id, HasID: hasID, Data: data}
	if len(attachments) > 0 {
		p.Type = BinaryEvent
		p.Attachments = len(attachments)
	}
	return &EncodedPacket{Text: AppendPacket(nil, &p), Attachments: attachments, Event: event, Args: args}, nil
}
