package redisadapter

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/socketio"
)

// StreamsAdapter is the adapter of one namespace made by NewStreamsAdapter. It keeps the
// rooms of the local sockets as socketio.InMemoryAdapter does (it embeds one) and carries
// what is not Local to the other servers. All its methods are safe for concurrent use.
type StreamsAdapter struct {
	*socketio.InMemoryAdapter

	hub      *streamsHub
	nsp      *socketio.Namespace
	recovery *socketio.RecoveryOptions // the server's; nil when recovery is off
	uid      string                    // this server's id in the cluster (ClusterAdapter.uid)
	stream   string
	public   string // the namespace's channel: ephemeral requests
	private  string // this adapter's channel: the answers to its requests

	mu          sync.Mutex
	requests    map[string]*streamsRequest
	ackRequests map[string]*streamsAckRequest
	closed      atomic.Bool
}

// streamsRequest waits for the answers of the other servers to FETCH_SOCKETS or
// SERVER_SIDE_EMIT.
type streamsRequest struct {
	expected int   // the other servers
	pending  int   // those that have not answered
	answers  []any // SocketInfo for fetchSockets, the answer for serverSideEmit
	done     chan struct{}
}

// streamsAckRequest routes the answers to a broadcast with acks.
type streamsAckRequest struct {
	onAck func(socketio.Args, error)

	mu      sync.Mutex
	servers int           // the servers that reported their client count
	clients int           // the sum of their counts
	counted chan struct{} // signalled (without blocking) at each count
}

// UID returns the id this server's adapter uses in the cluster messages of its namespace.
func (a *StreamsAdapter) UID() string { return a.uid }

func (a *StreamsAdapter) opts() *StreamsOptions { return &a.hub.opts }

func (a *StreamsAdapter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.opts().RequestTimeout)
}

// xadd appends a message to the namespace's stream and returns the entry id.
func (a *StreamsAdapter) xadd(typ int, data object) (string, error) {
	enc, err := streamsEncodeData(data, a.opts().OnlyPlaintext)
	if err != nil {
		return "", err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	return a.hub.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: a.stream,
		MaxLen: a.opts().MaxLen,
		Approx: true,
		ID:     "*",
		Values: streamsEntryValues(a.uid, a.nsp.Name(), typ, enc),
	}).Result()
}

// publish sends an ephemeral request to every server of the namespace.
func (a *StreamsAdapter) publish(typ int, data object) error {
	return a.publishTo(a.public, typ, data)
}

// publishResponse answers a request of the server with uid to.
func (a *StreamsAdapter) publishResponse(to string, typ int, data object) {
	ch := a.opts().ChannelPrefix + "#" + a.nsp.Name() + "#" + to + "#"
	if err := a.publishTo(ch, typ, data); err != nil {
		a.opts().Logger.Warn("redisadapter: publishing a response", "namespace", a.nsp.Name(), "err", err)
	}
}

func (a *StreamsAdapter) publishTo(channel string, typ int, data object) error {
	payload, err := streamsEncodePubSub(a.uid, a.nsp.Name(), typ, data)
	if err != nil {
		return err
	}
	ctx, cancel := a.ctx()
	defer cancel()
	if a.opts().UseShardedPubSub {
		return a.hub.rdb.SPublish(ctx, channel, payload).Err()
	}
	return a.hub.rdb.Publish(ctx, channel, payload).Err()
}

// serverCount returns the number of servers subscribed to the namespace's channel, this
// one included (PUBSUB NUMSUB, as the Node adapter counts them).
func (a *StreamsAdapter) serverCount(ctx context.Context) (int, error) {
	var (
		m   map[string]int64
		err error
	)
	if a.opts().UseShardedPubSub {
		m, err = a.hub.rdb.PubSubShardNumSub(ctx, a.public).Result()
	} else {
		m, err = a.hub.rdb.PubSubNumSub(ctx, a.public).Result()
	}
	if err != nil {
		return 0, err
	}
	return int(m[a.public]), nil
}

// Broadcast implements socketio.Adapter. Unless opts.Local, the event is appended to the
// stream first; an event kept for recovery then carries the entry id as its offset.
func (a *StreamsAdapter) Broadcast(p *socketio.EncodedPacket, opts socketio.BroadcastOptions) {
	if !opts.Local {
		if id, values, err := a.appendBroadcast(p, opts); err != nil {
			a.opts().Logger.Warn("redisadapter: broadcasting", "namespace", a.nsp.Name(), "err", err)
		} else if p.Offset != "" {
			if q, err := encodeValues(a.nsp.Name(), 0, false, append(values, id)); err == nil {
				q.Offset = id
				p = q
			}
		}
	}
	local := *p
	local.Offset = "" // the stream keeps it, not the embedded adapter
	a.InMemoryAdapter.Broadcast(&local, opts)
}

// appendBroadcast writes a broadcast to the stream; it returns the entry id and the
// event's values (name first) without the recovery offset.
func (a *StreamsAdapter) appendBroadcast(p *socketio.EncodedPacket, opts socketio.BroadcastOptions) (string, []any, error) {
	values, _, err := packetValues(p)
	if err != nil {
		return "", nil, err
	}
	if p.Offset != "" && len(values) > 1 {
		values = values[:len(values)-1]
	}
	id, err := a.xadd(streamsBroadcast, object{{"packet", eventPacket(values)}, {"opts", encodeStreamsOpts(opts)}})
	return id, values, err
}

// BroadcastWithAck implements socketio.Adapter: BroadcastWithAckContext without a
// deadline of the caller's (the wait for the other servers' counts is bounded by
// RequestTimeout alone).
func (a *StreamsAdapter) BroadcastWithAck(p *socketio.EncodedPacket, ackID uint64, opts socketio.BroadcastOptions, onAck func(args socketio.Args, err error)) int {
	n, _ := a.BroadcastWithAckContext(context.Background(), p, ackID, opts, onAck)
	return n
}

// BroadcastWithAckContext implements socketio.ClusterAdapter (the namespace's EmitWithAck
// calls it with its own context). The request goes to the other servers by pub/sub; each
// sends p to its matched sockets, reports how many it reached, then forwards each answer
// to onAck. The count returned includes the sockets the other servers reported before ctx
// ended or RequestTimeout passed; when some server had not reported by then, the error
// says how many did. Answers are taken as long as ctx lasts (when it has a deadline), else
// for RequestTimeout plus a minute.
func (a *StreamsAdapter) BroadcastWithAckContext(ctx context.Context, p *socketio.EncodedPacket, ackID uint64, opts socketio.BroadcastOptions, onAck func(args socketio.Args, err error)) (int, error) {
	if opts.Local {
		return a.InMemoryAdapter.BroadcastWithAck(p, ackID, opts, onAck), nil
	}
	values, _, err := packetValues(p)
	if err != nil {
		return a.InMemoryAdapter.BroadcastWithAck(p, ackID, opts, onAck), err
	}
	requestID := randomHex(8)
	req := &streamsAckRequest{onAck: onAck, counted: make(chan struct{}, 1)}
	a.mu.Lock()
	a.ackRequests[requestID] = req
	a.mu.Unlock()
	forget := func() { a.forgetAck(requestID) }
	if _, ok := ctx.Deadline(); ok {
		context.AfterFunc(ctx, forget)
	} else {
		stop := context.AfterFunc(ctx, forget)
		time.AfterFunc(a.opts().RequestTimeout+time.Minute, func() { stop(); forget() })
	}
	err = a.publish(streamsBroadcast, object{
		{"packet", eventPacket(values)},
		{"requestId", requestID},
		{"opts", encodeStreamsOpts(opts)},
	})
	n := a.InMemoryAdapter.BroadcastWithAck(p, ackID, opts, onAck)
	if err != nil {
		forget()
		return n, fmt.Errorf("redisadapter: broadcasting with acks: %w", err)
	}

	wctx, cancel := context.WithTimeout(ctx, a.opts().RequestTimeout)
	defer cancel()
	servers, err := a.serverCount(wctx)
	if err != nil {
		return n, fmt.Errorf("redisadapter: counting the servers: %w", err)
	}
	for {
		req.mu.Lock()
		reported, clients := req.servers, req.clients
		req.mu.Unlock()
		if reported >= servers-1 {
			return n + clients, nil
		}
		select {
		case <-req.counted:
		case <-wctx.Done():
			return n + clients, fmt.Errorf("redisadapter: timeout reached: %d of %d servers reported their client count: %w", reported, servers-1, wctx.Err())
		}
	}
}

func (a *StreamsAdapter) forgetAck(requestID string) {
	a.mu.Lock()
	delete(a.ackRequests, requestID)
	a.mu.Unlock()
}

// AddSockets implements socketio.Adapter.
func (a *StreamsAdapter) AddSockets(opts socketio.BroadcastOptions, rooms []socketio.Room) {
	if !opts.Local {
		a.appendOp(streamsSocketsJoin, object{{"opts", encodeStreamsOpts(opts)}, {"rooms", roomStrings(rooms)}})
	}
	a.InMemoryAdapter.AddSockets(opts, rooms)
}

// DelSockets implements socketio.Adapter.
func (a *StreamsAdapter) DelSockets(opts socketio.BroadcastOptions, rooms []socketio.Room) {
	if !opts.Local {
		a.appendOp(streamsSocketsLeave, object{{"opts", encodeStreamsOpts(opts)}, {"rooms", roomStrings(rooms)}})
	}
	a.InMemoryAdapter.DelSockets(opts, rooms)
}

// DisconnectSockets implements socketio.Adapter.
func (a *StreamsAdapter) DisconnectSockets(opts socketio.BroadcastOptions, closeConn bool) {
	if !opts.Local {
		a.appendOp(streamsDisconnectSockets, object{{"opts", encodeStreamsOpts(opts)}, {"close", closeConn}})
	}
	a.InMemoryAdapter.DisconnectSockets(opts, closeConn)
}

func (a *StreamsAdapter) appendOp(typ int, data object) {
	if _, err := a.xadd(typ, data); err != nil {
		a.opts().Logger.Warn("redisadapter: publishing", "namespace", a.nsp.Name(), "type", typ, "err", err)
	}
}

// FetchSockets implements socketio.Adapter: the local sockets, and those of the other
// servers, which answer by pub/sub. It fails when some server has not answered by the end
// of ctx or RequestTimeout.
func (a *StreamsAdapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.SocketInfo, error) {
	local, err := a.InMemoryAdapter.FetchSockets(ctx, opts)
	if err != nil || opts.Local {
		return local, err
	}
	answers, err := a.request(ctx, streamsFetchSockets, object{{"opts", encodeStreamsOpts(opts)}})
	for _, ans := range answers {
		local = append(local, ans.(socketio.SocketInfo))
	}
	return local, err
}

// ServerSideEmit implements socketio.Adapter: the event goes to the other servers of the
// namespace (their socketio.Namespace.OnServerSideEmit handlers, or the Node server's
// io.on listeners).
func (a *StreamsAdapter) ServerSideEmit(event string, args []any) error {
	packet, err := serverSideValues(event, args)
	if err != nil {
		return err
	}
	return a.publish(streamsServerSideEmit, object{{"packet", packet}})
}

// ServerSideEmitWithAck implements socketio.ClusterAdapter (the namespace's
// ServerSideEmitWithAck calls it): it sends an event to the other servers of the namespace
// and returns their answers, one Args per server holding the first value its handler
// answered with. When some server has not answered by the end of ctx or RequestTimeout, it
// returns the answers received so far and an error.
func (a *StreamsAdapter) ServerSideEmitWithAck(ctx context.Context, event string, args []any) ([]socketio.Args, error) {
	packet, err := serverSideValues(event, args)
	if err != nil {
		return nil, err
	}
	answers, err := a.request(ctx, streamsServerSideEmit, object{{"requestId", ""}, {"packet", packet}})
	out := make([]socketio.Args, 0, len(answers))
	for _, ans := range answers {
		if x, e := socketio.NewArgs(ans); e == nil {
			out = append(out, x)
		}
	}
	return out, err
}

// serverSideValues is [event, ...args] with the arguments as JSON carries them (binary
// values as []byte).
func serverSideValues(event string, args []any) ([]any, error) {
	if socketio.IsReservedEvent(event) {
		return nil, fmt.Errorf("%w: %q", socketio.ErrReservedEvent, event)
	}
	sa, err := socketio.NewArgs(args...)
	if err != nil {
		return nil, err
	}
	vals, err := sa.Values()
	if err != nil {
		return nil, err
	}
	return append([]any{event}, vals...), nil
}

// request publishes a request to the other servers and collects their answers. data
// gets the request id in its "requestId" field, which it must have (at the place the Node
// adapter writes it), or at the end.
func (a *StreamsAdapter) request(ctx context.Context, typ int, data object) ([]any, error) {
	ctx, cancel := context.WithTimeout(ctx, a.opts().RequestTimeout)
	defer cancel()
	n, err := a.serverCount(ctx)
	if err != nil {
		return nil, fmt.Errorf("redisadapter: counting the servers: %w", err)
	}
	if n <= 1 {
		return nil, nil
	}
	id := randomHex(8)
	req := &streamsRequest{expected: n - 1, pending: n - 1, done: make(chan struct{})}
	a.mu.Lock()
	a.requests[id] = req
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.requests, id)
		a.mu.Unlock()
	}()
	data = setField(data, "requestId", id)
	if err := a.publish(typ, data); err != nil {
		return nil, err
	}
	select {
	case <-req.done:
		a.mu.Lock()
		defer a.mu.Unlock()
		return req.answers, nil
	case <-ctx.Done():
		a.mu.Lock()
		defer a.mu.Unlock()
		return req.answers, fmt.Errorf("redisadapter: timeout reached: only %d responses received out of %d: %w", req.expected-req.pending, req.expected, ctx.Err())
	}
}

// Close implements socketio.Adapter: the namespace leaves the cluster; the stream readers
// stop with the last namespace.
func (a *StreamsAdapter) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	a.hub.remove(a)
	return a.InMemoryAdapter.Close()
}

// onMessage applies a message of another server; offset is the stream entry id ("" for a
// pub/sub message).
func (a *StreamsAdapter) onMessage(m streamsMsg, offset string) {
	if m.UID == a.uid || m.NSP != a.nsp.Name() {
		return
	}
	log := a.opts().Logger
	switch m.Type {
	case streamsBroadcast:
		packet, _ := m.Data["packet"].(map[string]any)
		values, _ := packet["data"].([]any)
		opts := decodeStreamsOpts(m.Data["opts"])
		if requestID, ok := m.Data["requestId"].(string); ok {
			a.onBroadcastWithAck(m.UID, requestID, values, opts)
			return
		}
		_, withID := packet["id"]
		rec := offset != "" && a.recovery != nil && !opts.Volatile && !withID
		if rec {
			values = append(values, offset)
		}
		p, err := encodeValues(a.nsp.Name(), 0, false, values)
		if err != nil {
			log.Warn("redisadapter: invalid broadcast", "namespace", a.nsp.Name(), "from", m.UID, "err", err)
			return
		}
		a.InMemoryAdapter.Broadcast(p, opts)
	case streamsSocketsJoin:
		a.InMemoryAdapter.AddSockets(decodeStreamsOpts(m.Data["opts"]), asRooms(m.Data["rooms"]))
	case streamsSocketsLeave:
		a.InMemoryAdapter.DelSockets(decodeStreamsOpts(m.Data["opts"]), asRooms(m.Data["rooms"]))
	case streamsDisconnectSockets:
		closeConn, _ := m.Data["close"].(bool)
		a.InMemoryAdapter.DisconnectSockets(decodeStreamsOpts(m.Data["opts"]), closeConn)
	case streamsFetchSockets:
		requestID, _ := m.Data["requestId"].(string)
		opts := decodeStreamsOpts(m.Data["opts"])
		go func() {
			ctx, cancel := a.ctx()
			defer cancel()
			infos, _ := a.InMemoryAdapter.FetchSockets(ctx, opts)
			sockets := make([]any, 0, len(infos))
			for _, s := range infos {
				data, err := genericValue(s.Data)
				if err != nil {
					data = nil
				}
				sockets = append(sockets, object{
					{"id", s.ID},
					{"handshake", handshakeValue(s.Handshake)},
					{"rooms", roomStrings(s.Rooms)},
					{"data", data},
				})
			}
			a.publishResponse(m.UID, streamsFetchSocketsResponse, object{{"requestId", requestID}, {"sockets", sockets}})
		}()
	case streamsServerSideEmit:
		a.onServerSideEmit(m)
	case streamsFetchSocketsResponse, streamsServerSideEmitResponse, streamsBroadcastClientCount, streamsBroadcastAck:
		a.onResponse(m)
	}
}

// onBroadcastWithAck delivers a broadcast that asks for acks, with an ack id of this
// server's namespace (as the Node adapter does: the sender's id could clash with an ack
// this server's sockets already wait for), and sends the count of sockets reached, then
// each socket's answer, to the server that asked.
func (a *StreamsAdapter) onBroadcastWithAck(from, requestID string, values []any, opts socketio.BroadcastOptions) {
	// The count goes out first, then the answers, in order, from a goroutine: the reader
	// of the pub/sub messages must not wait for Redis.
	type response struct {
		typ  int
		data object
	}
	var (
		mu      sync.Mutex
		queue   []response
		sending bool
	)
	send := func(typ int, data object) {
		mu.Lock()
		defer mu.Unlock()
		queue = append(queue, response{typ, data})
		if sending {
			return
		}
		sending = true
		go func() {
			for {
				mu.Lock()
				if len(queue) == 0 {
					sending = false
					mu.Unlock()
					return
				}
				r := queue[0]
				queue = queue[1:]
				mu.Unlock()
				a.publishResponse(from, r.typ, r.data)
			}
		}()
	}
	count := func(n int) {
		send(streamsBroadcastClientCount, object{{"requestId", requestID}, {"clientCount", n}})
	}
	var event string
	if len(values) > 0 {
		event, _ = values[0].(string)
	}
	p, id, err := a.nsp.EncodeBroadcastWithAck(event, values[min(1, len(values)):])
	if err != nil || event == "" {
		a.opts().Logger.Warn("redisadapter: invalid broadcast", "namespace", a.nsp.Name(), "from", from, "err", err)
		count(0)
		return
	}
	var (
		cmu     sync.Mutex
		counted bool
		early   []object
	)
	n := a.InMemoryAdapter.BroadcastWithAck(p, id, opts, func(args socketio.Args, err error) {
		if err != nil {
			return // the socket left; the Node adapter sends nothing either
		}
		var first any
		if vals, err := args.Values(); err == nil && len(vals) > 0 {
			first = vals[0]
		}
		ack := object{{"requestId", requestID}, {"packet", first}}
		cmu.Lock()
		if !counted {
			early = append(early, ack)
			cmu.Unlock()
			return
		}
		cmu.Unlock()
		send(streamsBroadcastAck, ack)
	})
	count(n)
	cmu.Lock()
	counted = true
	rest := early
	early = nil
	cmu.Unlock()
	for _, ack := range rest {
		send(streamsBroadcastAck, ack)
	}
}

// onServerSideEmit hands an event of another server to the namespace's server-side
// handlers (socketio.Namespace.OnServerSideEmit).
func (a *StreamsAdapter) onServerSideEmit(m streamsMsg) {
	values, _ := m.Data["packet"].([]any)
	requestID, withAck := m.Data["requestId"].(string)
	if len(values) == 0 {
		return
	}
	event, ok := values[0].(string)
	if !ok {
		return
	}
	args, err := socketio.NewArgs(values[1:]...)
	if err != nil {
		a.opts().Logger.Warn("redisadapter: invalid serverSideEmit", "namespace", a.nsp.Name(), "from", m.UID, "err", err)
		return
	}
	var ack socketio.AckFunc
	if withAck {
		var once atomic.Bool
		ack = func(answer ...any) error {
			if !once.CompareAndSwap(false, true) {
				return nil
			}
			var v any
			if len(answer) > 0 {
				var err error
				if v, err = genericValue(answer[0]); err != nil {
					return err
				}
			}
			go a.publishResponse(m.UID, streamsServerSideEmitResponse, object{{"requestId", requestID}, {"packet", v}})
			return nil
		}
	}
	a.nsp.ReceiveServerSideEmit(event, args, ack)
}

// onResponse routes an answer to the request it answers.
func (a *StreamsAdapter) onResponse(m streamsMsg) {
	requestID, _ := m.Data["requestId"].(string)
	switch m.Type {
	case streamsBroadcastClientCount, streamsBroadcastAck:
		a.mu.Lock()
		req := a.ackRequests[requestID]
		a.mu.Unlock()
		if req == nil {
			return
		}
		if m.Type == streamsBroadcastClientCount {
			n, _ := asInt(m.Data["clientCount"])
			req.mu.Lock()
			req.servers++
			req.clients += int(n)
			req.mu.Unlock()
			select {
			case req.counted <- struct{}{}:
			default:
			}
			return
		}
		args, err := socketio.NewArgs(m.Data["packet"])
		if err != nil {
			a.opts().Logger.Warn("redisadapter: invalid ack", "namespace", a.nsp.Name(), "from", m.UID, "err", err)
			return
		}
		req.onAck(args, nil)
	case streamsFetchSocketsResponse, streamsServerSideEmitResponse:
		a.mu.Lock()
		defer a.mu.Unlock()
		req := a.requests[requestID]
		if req == nil || req.pending == 0 {
			return
		}
		if m.Type == streamsFetchSocketsResponse {
			sockets, _ := m.Data["sockets"].([]any)
			for _, s := range sockets {
				sm, _ := s.(map[string]any)
				id, _ := sm["id"].(string)
				req.answers = append(req.answers, socketio.SocketInfo{
					ID:        id,
					Rooms:     asRooms(sm["rooms"]),
					Handshake: handshakeFrom(sm["handshake"]),
					Data:      sm["data"],
				})
			}
		} else {
			req.answers = append(req.answers, m.Data["packet"])
		}
		req.pending--
		if req.pending == 0 {
			close(req.done)
		}
	}
}
