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

	hub     *streamsHub
	nsp     *socketio.Namespace
	uid     string // this server's id in the cluster (ClusterAdapter.uid)
	stream  string
	public  string // the namespace's channel: ephemeral requests
	private string // this adapter's channel: the answers to its requests

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
	onAck  func(socketio.Args, error)
	counts chan int
}

// UID returns the id this server's adapter uses in the cluster messages of its namespace.
func (a *StreamsAdapter) UID() string { return a.uid }

func (a *StreamsAdapter) opts() *StreamsOptions { return &a.hub.opts }

func (a *StreamsAdapter) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.opts().RequestTimeout)
}

// xadd appends a message to the namespace's stream and returns the entry id.
func (a *StreamsAdapter) xadd(typ int, data map[string]any) (string, error) {
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
func (a *StreamsAdapter) publish(typ int, data map[string]any) error {
	return a.publishTo(a.public, typ, data)
}

// publishResponse answers a request of the server with uid to.
func (a *StreamsAdapter) publishResponse(to string, typ int, data map[string]any) {
	ch := a.opts().ChannelPrefix + "#" + a.nsp.Name() + "#" + to + "#"
	if err := a.publishTo(ch, typ, data); err != nil {
		a.opts().Logger.Warn("redisadapter: publishing a response", "namespace", a.nsp.Name(), "err", err)
	}
}

func (a *StreamsAdapter) publishTo(channel string, typ int, data map[string]any) error {
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
	data := map[string]any{
		"packet": map[string]any{"type": 2, "data": values, "nsp": a.nsp.Name()},
		"opts":   encodeStreamsOpts(opts),
	}
	id, err := a.xadd(streamsBroadcast, data)
	return id, values, err
}

// BroadcastWithAck implements socketio.Adapter. The request goes to the other servers by
// pub/sub; the returned count includes the sockets they reached, for which it waits (at
// most RequestTimeout) until every server subscribed to the namespace has answered.
func (a *StreamsAdapter) BroadcastWithAck(p *socketio.EncodedPacket, ackID uint64, opts socketio.BroadcastOptions, onAck func(args socketio.Args, err error)) int {
	if opts.Local {
		return a.InMemoryAdapter.BroadcastWithAck(p, ackID, opts, onAck)
	}
	var (
		requestID = randomHex(8)
		req       = &streamsAckRequest{onAck: onAck, counts: make(chan int, 64)}
		expected  = 0
		published = false
	)
	values, _, err := packetValues(p)
	if err == nil {
		ctx, cancel := a.ctx()
		n, cerr := a.serverCount(ctx)
		cancel()
		if cerr == nil && n > 1 {
			expected = n - 1
			a.mu.Lock()
			a.ackRequests[requestID] = req
			a.mu.Unlock()
			err = a.publish(streamsBroadcast, map[string]any{
				"packet":    map[string]any{"type": 2, "data": values, "nsp": a.nsp.Name(), "id": ackID},
				"requestId": requestID,
				"opts":      encodeStreamsOpts(opts),
			})
			published = err == nil
		} else {
			err = cerr
		}
	}
	if err != nil {
		a.opts().Logger.Warn("redisadapter: broadcasting with acks", "namespace", a.nsp.Name(), "err", err)
	}
	total := a.InMemoryAdapter.BroadcastWithAck(p, ackID, opts, onAck)
	if !published {
		a.forgetAck(requestID)
		return total
	}
	deadline := time.NewTimer(a.opts().RequestTimeout)
	defer deadline.Stop()
	for got := 0; got < expected; got++ {
		select {
		case n := <-req.counts:
			total += n
		case <-deadline.C:
			got = expected
		}
	}
	// The answers keep coming after this returns; the request is forgotten when the
	// longest ack wait one would reasonably give has passed.
	time.AfterFunc(max(time.Minute, 2*a.opts().RequestTimeout), func() { a.forgetAck(requestID) })
	return total
}

func (a *StreamsAdapter) forgetAck(requestID string) {
	a.mu.Lock()
	delete(a.ackRequests, requestID)
	a.mu.Unlock()
}

// AddSockets implements socketio.Adapter.
func (a *StreamsAdapter) AddSockets(opts socketio.BroadcastOptions, rooms []socketio.Room) {
	if !opts.Local {
		a.appendOp(streamsSocketsJoin, map[string]any{"opts": encodeStreamsOpts(opts), "rooms": roomStrings(rooms)})
	}
	a.InMemoryAdapter.AddSockets(opts, rooms)
}

// DelSockets implements socketio.Adapter.
func (a *StreamsAdapter) DelSockets(opts socketio.BroadcastOptions, rooms []socketio.Room) {
	if !opts.Local {
		a.appendOp(streamsSocketsLeave, map[string]any{"opts": encodeStreamsOpts(opts), "rooms": roomStrings(rooms)})
	}
	a.InMemoryAdapter.DelSockets(opts, rooms)
}

// DisconnectSockets implements socketio.Adapter.
func (a *StreamsAdapter) DisconnectSockets(opts socketio.BroadcastOptions, closeConn bool) {
	if !opts.Local {
		a.appendOp(streamsDisconnectSockets, map[string]any{"opts": encodeStreamsOpts(opts), "close": closeConn})
	}
	a.InMemoryAdapter.DisconnectSockets(opts, closeConn)
}

func (a *StreamsAdapter) appendOp(typ int, data map[string]any) {
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
	answers, err := a.request(ctx, streamsFetchSockets, map[string]any{"opts": encodeStreamsOpts(opts)})
	for _, ans := range answers {
		local = append(local, ans.(socketio.SocketInfo))
	}
	return local, err
}

// ServerSideEmit implements socketio.Adapter: the event goes to the other servers of the
// namespace (StreamsOptions.OnServerSideEmit there, or the Node server's serverSideEmit
// listeners).
func (a *StreamsAdapter) ServerSideEmit(event string, args []any) error {
	packet, err := serverSideValues(event, args)
	if err != nil {
		return err
	}
	return a.publish(streamsServerSideEmit, map[string]any{"packet": packet})
}

// ServerSideEmitWithAck sends an event to the other servers of the namespace and returns
// their answers (one per server: the first argument it acknowledged with). It fails when
// some server has not answered by the end of ctx or RequestTimeout, with the answers
// received so far.
func (a *StreamsAdapter) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]any, error) {
	packet, err := serverSideValues(event, args)
	if err != nil {
		return nil, err
	}
	return a.request(ctx, streamsServerSideEmit, map[string]any{"packet": packet})
}

func serverSideValues(event string, args []any) ([]any, error) {
	if socketio.IsReservedEvent(event) {
		return nil, fmt.Errorf("%w: %q", socketio.ErrReservedEvent, event)
	}
	sa, err := serverArgs(args)
	if err != nil {
		return nil, err
	}
	vals, err := sa.Values()
	if err != nil {
		return nil, err
	}
	return append([]any{event}, vals...), nil
}

// request publishes a request to the other servers and collects their answers.
func (a *StreamsAdapter) request(ctx context.Context, typ int, data map[string]any) ([]any, error) {
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
	data["requestId"] = id
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
			a.onBroadcastWithAck(m.UID, requestID, packet, values, opts)
			return
		}
		_, withID := packet["id"]
		rec := offset != "" && a.opts().Recovery != nil && !opts.Volatile && !withID
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
				sockets = append(sockets, map[string]any{
					"id":        s.ID,
					"handshake": handshakeValue(s.Handshake),
					"rooms":     roomStrings(s.Rooms),
					"data":      data,
				})
			}
			a.publishResponse(m.UID, streamsFetchSocketsResponse, map[string]any{"requestId": requestID, "sockets": sockets})
		}()
	case streamsServerSideEmit:
		a.onServerSideEmit(m)
	case streamsFetchSocketsResponse, streamsServerSideEmitResponse, streamsBroadcastClientCount, streamsBroadcastAck:
		a.onResponse(m)
	}
}

// onBroadcastWithAck delivers a broadcast that asks for acks and sends the count of
// sockets reached, then each socket's answer, to the server that asked.
func (a *StreamsAdapter) onBroadcastWithAck(from, requestID string, packet map[string]any, values []any, opts socketio.BroadcastOptions) {
	id, _ := asInt(packet["id"])
	p, err := encodeValues(a.nsp.Name(), uint64(id), true, values)
	if err != nil {
		a.opts().Logger.Warn("redisadapter: invalid broadcast", "namespace", a.nsp.Name(), "from", from, "err", err)
		a.publishResponse(from, streamsBroadcastClientCount, map[string]any{"requestId": requestID, "clientCount": 0})
		return
	}
	n := a.InMemoryAdapter.BroadcastWithAck(p, uint64(id), opts, func(args socketio.Args, err error) {
		if err != nil {
			return // the socket left; the Node adapter sends nothing either
		}
		var first any
		if vals, err := args.Values(); err == nil && len(vals) > 0 {
			first = vals[0]
		}
		go a.publishResponse(from, streamsBroadcastAck, map[string]any{"requestId": requestID, "packet": first})
	})
	go a.publishResponse(from, streamsBroadcastClientCount, map[string]any{"requestId": requestID, "clientCount": n})
}

// onServerSideEmit hands an event of another server to StreamsOptions.OnServerSideEmit.
func (a *StreamsAdapter) onServerSideEmit(m streamsMsg) {
	values, _ := m.Data["packet"].([]any)
	requestID, withAck := m.Data["requestId"].(string)
	h := a.opts().OnServerSideEmit
	if len(values) == 0 || h == nil {
		return
	}
	event, ok := values[0].(string)
	if !ok {
		return
	}
	args, err := serverArgs(values[1:])
	if err != nil {
		a.opts().Logger.Warn("redisadapter: invalid serverSideEmit", "namespace", a.nsp.Name(), "from", m.UID, "err", err)
		return
	}
	var ack func(any)
	if withAck {
		var once sync.Once
		ack = func(answer any) {
			once.Do(func() {
				v, err := genericValue(answer)
				if err != nil {
					v = nil
				}
				go a.publishResponse(m.UID, streamsServerSideEmitResponse, map[string]any{"requestId": requestID, "packet": v})
			})
		}
	}
	h(a.nsp, event, args, ack)
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
			select {
			case req.counts <- int(n):
			default:
			}
			return
		}
		args, err := ackArgs(m.Data["packet"])
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
