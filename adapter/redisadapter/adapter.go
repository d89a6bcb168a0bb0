package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/socketio"
)

// DefaultKey is the default prefix of the channel names, as in the Node adapters.
const DefaultKey = "socket.io"

// DefaultRequestsTimeout is how long a request to the other servers waits for their
// answers when Options.RequestsTimeout is 0 (the Node adapter's requestsTimeout).
const DefaultRequestsTimeout = 5 * time.Second

// DefaultPublishQueue is the number of messages waiting to be published that an adapter
// keeps when Options.PublishQueue is 0.
const DefaultPublishQueue = 8192

// SubscriptionMode chooses, for the sharded adapter, which rooms get a channel of their
// own; the names and behaviour are those of createShardedAdapter's subscriptionMode.
type SubscriptionMode string

const (
	// Dynamic (the default) gives each public room (not a socket's own) a channel that a
	// server subscribes to while it has members of that room; a broadcast to one such room
	// is published there.
	Dynamic SubscriptionMode = "dynamic"
	// DynamicPrivate does the same for every room, sockets' own rooms included.
	DynamicPrivate SubscriptionMode = "dynamic-private"
	// Static uses the namespace's channel for every broadcast.
	Static SubscriptionMode = "static"
)

// Options configures the adapters made by New. The zero value is the Node adapter's
// defaults.
type Options struct {
	// Key is the prefix of the channel names (Node: key, or channelPrefix for the sharded
	// adapter); "" means DefaultKey.
	Key string
	// RequestsTimeout bounds the wait for other servers' answers (fetchSockets,
	// serverSideEmit with acks, the client counts of a broadcast with acks); 0 means
	// DefaultRequestsTimeout.
	RequestsTimeout time.Duration
	// PublishOnSpecificResponseChannel makes the servers answer a request on the
	// requester's own response channel instead of the shared one (classic pub/sub only;
	// every server of the cluster should agree on it).
	PublishOnSpecificResponseChannel bool
	// Sharded selects sharded pub/sub (Redis 7 SSUBSCRIBE/SPUBLISH), compatible with
	// createShardedAdapter; the default is classic pub/sub, compatible with createAdapter.
	// Both work on a standalone Redis and on a Redis Cluster (pass a *redis.ClusterClient
	// to New); sharded pub/sub is what scales on a cluster. The sharded adapter has no
	// AllRooms request and the Node emitter does not speak it.
	Sharded bool
	// SubscriptionMode is the sharded adapter's (default Dynamic).
	SubscriptionMode SubscriptionMode
	// PublishQueue bounds the messages waiting to be published (0: DefaultPublishQueue).
	// When it is full, further messages are dropped and counted: a slow or unreachable
	// Redis never blocks the caller nor local delivery.
	PublishQueue int
	// Logger receives what could not be published or decoded (nil: slog.Default()).
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Key == "" {
		c.Key = DefaultKey
	}
	if c.RequestsTimeout <= 0 {
		c.RequestsTimeout = DefaultRequestsTimeout
	}
	if c.SubscriptionMode == "" {
		c.SubscriptionMode = Dynamic
	}
	if c.PublishQueue <= 0 {
		c.PublishQueue = DefaultPublishQueue
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Stats counts what an adapter published and received.
type Stats struct {
	// Published is the number of messages published; PublishFailed those Redis did not
	// take (an error, a lost connection); Dropped those left out because the publish queue
	// was full or the adapter closed.
	Published, PublishFailed, Dropped uint64
	// Received is the number of messages received; Undecodable those that could not be
	// decoded and were ignored.
	Received, Undecodable uint64
}

// ErrTimeout matches the error of a request that did not get every server's answer in
// time; the answers received are returned with it.
var ErrTimeout = errors.New("redisadapter: timeout reached while waiting for other servers")

// New returns the NewAdapterFunc of socketio.Options that makes, for each namespace, an
// Adapter over Redis. client is a *redis.Client, a *redis.ClusterClient (Redis Cluster) or
// any redis.UniversalClient; each namespace's adapter holds one subscribed connection of
// it.
func New(client redis.UniversalClient, opts *Options) socketio.NewAdapterFunc {
	o := opts.withDefaults()
	return func(nsp *socketio.Namespace) socketio.Adapter { return newAdapter(nsp, client, o) }
}

// Adapter is a socketio.ClusterAdapter over Redis pub/sub: the namespace's rooms on this
// server (a socketio.InMemoryAdapter does the local work) plus the messages that carry
// broadcasts and requests to the other servers, Go or Node. Every method is safe for
// concurrent use. Messages from the other servers are handled on the adapter's own
// goroutines (one per subscribed connection); server-side events go on to the
// namespace's handlers (socketio.Namespace.OnServerSideEmit).
type Adapter struct {
	nsp    *socketio.Namespace
	local  socketio.Adapter
	client redis.UniversalClient
	opts   Options
	uid    string
	log    *slog.Logger

	channel         string // broadcasts: "<key>#<nsp>#"
	requestChannel  string // classic: "<key>-request#<nsp>#"
	responseChannel string // classic: "<key>-response#<nsp>#"; sharded: "<key>#<nsp>#<uid>#"
	specificChannel string // classic: "<key>-response#<nsp>#<uid>#"

	ps        *redis.PubSub            // classic pub/sub
	subsMu    sync.Mutex               // guards shardSubs
	shardSubs map[string]*redis.PubSub // sharded: one per node (by address; "" for a non-cluster client)
	out       chan outMsg
	subOps    chan subOp
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closed    atomic.Bool

	roomsMu sync.Mutex
	rooms   map[socketio.Room]int // members on this server, for allRooms and dynamic channels

	reqMu    sync.Mutex
	requests map[string]*pending
	acks     map[string]*ackPending

	published, publishFailed, dropped, received, undecodable atomic.Uint64
}

type outMsg struct {
	channel string
	payload []byte
}

type subOp struct {
	subscribe bool
	channel   string
}

// pending is a request waiting for the other servers' answers.
type pending struct {
	typ      int
	expected int
	got      int
	answers  []any // the sockets, or the server-side emit answers
	done     chan struct{}
}

// ackPending is a broadcast with acks waiting for the other servers' counts and answers.
type ackPending struct {
	onAck    func(socketio.Args, error)
	mu       sync.Mutex
	counts   int
	total    int
	countsCh chan struct{} // signalled on each count
}

func newAdapter(nsp *socketio.Namespace, client redis.UniversalClient, o Options) *Adapter {
	a := &Adapter{
		nsp:      nsp,
		local:    socketio.NewInMemoryAdapter(nsp),
		client:   client,
		opts:     o,
		uid:      newUID(),
		log:      o.Logger.With("adapter", "redis", "nsp", nsp.Name()),
		out:      make(chan outMsg, o.PublishQueue),
		subOps:   make(chan subOp, 1024),
		rooms:    make(map[socketio.Room]int),
		requests: make(map[string]*pending),
		acks:     make(map[string]*ackPending),
	}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	name := nsp.Name()
	a.channel = o.Key + "#" + name + "#"
	if o.Sharded {
		a.responseChannel = a.channel + a.uid + "#"
		a.shardSubs = make(map[string]*redis.PubSub)
		// One command per channel: two channels of different slots in one SSUBSCRIBE
		// would be refused (CROSSSLOT) by a cluster.
		for _, ch := range []string{a.channel, a.responseChannel} {
			if err := a.shardSubscribe(ch, true); err != nil {
				a.log.Warn("redis sharded subscribe failed", "channel", ch, "err", err)
			}
		}
		a.wg.Add(2)
		go a.publisher()
		go a.subscriber()
		return a
	}
	a.requestChannel = o.Key + "-request#" + name + "#"
	a.responseChannel = o.Key + "-response#" + name + "#"
	a.specificChannel = a.responseChannel + a.uid + "#"
	a.ps = client.PSubscribe(a.ctx, a.channel+"*")
	if err := a.ps.Subscribe(a.ctx, a.requestChannel, a.responseChannel, a.specificChannel); err != nil {
		a.log.Warn("redis subscribe failed (retried on reconnection)", "err", err)
	}
	// Wait (bounded) for the subscriptions to be confirmed, so that what other servers
	// publish from now on reaches this one.
	ctx, cancel := context.WithTimeout(a.ctx, o.RequestsTimeout)
	if _, err := a.ps.Receive(ctx); err != nil {
		a.log.Warn("redis subscription not confirmed", "err", err)
	}
	cancel()
	a.wg.Add(2)
	go a.receive(a.ps.Channel(redis.WithChannelSize(4096), redis.WithChannelHealthCheckInterval(3*time.Second)))
	go a.publisher()
	return a
}

func newUID() string { return randomHex(8) }

// UID returns the adapter's id in the cluster's messages.
func (a *Adapter) UID() string { return a.uid }

// Stats returns the adapter's counters.
func (a *Adapter) Stats() Stats {
	return Stats{
		Published: a.published.Load(), PublishFailed: a.publishFailed.Load(), Dropped: a.dropped.Load(),
		Received: a.received.Load(), Undecodable: a.undecodable.Load(),
	}
}

// ---- publishing

// publish queues a message; it never blocks.
func (a *Adapter) publish(channel string, payload []byte) {
	if a.closed.Load() {
		a.dropped.Add(1)
		return
	}
	select {
	case a.out <- outMsg{channel, payload}:
	default:
		if a.dropped.Add(1)%1000 == 1 {
			a.log.Warn("redis publish queue full: message dropped", "channel", channel, "dropped", a.dropped.Load())
		}
	}
}

// publisher sends the queued messages, in order, in pipelines of what is waiting.
func (a *Adapter) publisher() {
	defer a.wg.Done()
	batch := make([]outMsg, 0, 256)
	for {
		select {
		case <-a.ctx.Done():
			return
		case m := <-a.out:
			batch = append(batch[:0], m)
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case m := <-a.out:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		a.send(batch)
	}
}

func (a *Adapter) send(batch []outMsg) {
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.RequestsTimeout)
	defer cancel()
	var err error
	if len(batch) == 1 {
		err = a.publishCmd(ctx, a.client, batch[0]).Err()
	} else {
		_, err = a.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, m := range batch {
				a.publishCmd(ctx, p, m)
			}
			return nil
		})
	}
	if err != nil {
		n := a.publishFailed.Add(uint64(len(batch)))
		if a.ctx.Err() == nil {
			a.log.Warn("redis publish failed", "messages", len(batch), "failed", n, "err", err)
		}
		return
	}
	a.published.Add(uint64(len(batch)))
}

func (a *Adapter) publishCmd(ctx context.Context, c redis.Cmdable, m outMsg) *redis.IntCmd {
	if a.opts.Sharded {
		return c.SPublish(ctx, m.channel, m.payload)
	}
	return c.Publish(ctx, m.channel, m.payload)
}

// subscriber applies the dynamic subscriptions of the sharded adapter, in order.
func (a *Adapter) subscriber() {
	defer a.wg.Done()
	for {
		select {
		case <-a.ctx.Done():
			return
		case op := <-a.subOps:
			err := a.shardSubscribe(op.channel, op.subscribe)
			if err != nil && a.ctx.Err() == nil {
				a.log.Warn("redis sharded subscription change failed", "channel", op.channel, "err", err)
			}
		}
	}
}

// shardSubscribe subscribes to (or unsubscribes from) a sharded channel on the
// subscription of the node that owns the channel's slot, created on first use with its
// receiving goroutine.
func (a *Adapter) shardSubscribe(channel string, subscribe bool) error {
	key := ""
	var c redis.UniversalClient = a.client
	if cc, ok := a.client.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(a.ctx, channel)
		if err != nil {
			return err
		}
		key, c = node.Options().Addr, node
	}
	a.subsMu.Lock()
	defer a.subsMu.Unlock()
	if a.closed.Load() {
		return nil
	}
	ps := a.shardSubs[key]
	if !subscribe {
		if ps == nil {
			return nil
		}
		return ps.SUnsubscribe(a.ctx, channel)
	}
	if ps != nil {
		return ps.SSubscribe(a.ctx, channel)
	}
	ps = c.SSubscribe(a.ctx, channel)
	a.shardSubs[key] = ps
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.RequestsTimeout)
	defer cancel()
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		a.log.Warn("redis sharded subscription not confirmed", "channel", channel, "err", err)
	}
	a.wg.Add(1)
	go a.receive(ps.Channel(redis.WithChannelSize(4096), redis.WithChannelHealthCheckInterval(3*time.Second)))
	return nil
}

// serverCount returns the number of servers subscribed to the namespace (this one
// included), summed over the masters of a Redis Cluster.
func (a *Adapter) serverCount(ctx context.Context) (int, error) {
	count := func(ctx context.Context, c redis.UniversalClient) (int, error) {
		if a.opts.Sharded {
			m, err := c.PubSubShardNumSub(ctx, a.channel).Result()
			return int(m[a.channel]), err
		}
		m, err := c.PubSubNumSub(ctx, a.requestChannel).Result()
		return int(m[a.requestChannel]), err
	}
	if cc, ok := a.client.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			n, err := count(ctx, c)
			mu.Lock()
			total += n
			mu.Unlock()
			return err
		})
		return total, err
	}
	return count(ctx, a.client)
}

// ---- the local rooms

// AddAll implements socketio.Adapter.
func (a *Adapter) AddAll(id string, rooms []socketio.Room) {
	a.roomsMu.Lock()
	defer a.roomsMu.Unlock()
	before := a.local.SocketRooms(id)
	a.local.AddAll(id, rooms)
	seen := make(map[socketio.Room]bool, len(rooms))
	for _, r := range rooms {
		if seen[r] || slices.Contains(before, r) {
			continue
		}
		seen[r] = true
		a.rooms[r]++
		if a.rooms[r] == 1 {
			a.roomCreated(id, r)
		}
	}
}

// Del implements socketio.Adapter.
func (a *Adapter) Del(id string, room socketio.Room) {
	a.roomsMu.Lock()
	defer a.roomsMu.Unlock()
	had := slices.Contains(a.local.SocketRooms(id), room)
	a.local.Del(id, room)
	if had {
		a.roomLeft(id, room)
	}
}

// DelAll implements socketio.Adapter.
func (a *Adapter) DelAll(id string) {
	a.roomsMu.Lock()
	defer a.roomsMu.Unlock()
	rooms := a.local.SocketRooms(id)
	a.local.DelAll(id)
	for _, r := range rooms {
		a.roomLeft(id, r)
	}
}

func (a *Adapter) roomLeft(id string, r socketio.Room) {
	a.rooms[r]--
	if a.rooms[r] <= 0 {
		delete(a.rooms, r)
		if a.dynamicRoom(id, r) {
			a.subOp(false, a.channel+string(r)+"#")
		}
	}
}

func (a *Adapter) roomCreated(id string, r socketio.Room) {
	if a.dynamicRoom(id, r) {
		a.subOp(true, a.channel+string(r)+"#")
	}
}

// dynamicRoom reports whether the sharded adapter gives room a channel of its own (a
// room named after the socket that joins it is a private room).
func (a *Adapter) dynamicRoom(id string, r socketio.Room) bool {
	if !a.opts.Sharded {
		return false
	}
	switch a.opts.SubscriptionMode {
	case DynamicPrivate:
		return true
	case Dynamic:
		return string(r) != id
	}
	return false
}

func (a *Adapter) subOp(sub bool, channel string) {
	select {
	case a.subOps <- subOp{sub, channel}:
	default:
		a.log.Warn("redis sharded subscription queue full", "channel", channel)
	}
}

// SocketRooms implements socketio.Adapter.
func (a *Adapter) SocketRooms(id string) []socketio.Room { return a.local.SocketRooms(id) }

// Sockets implements socketio.Adapter: the local sockets matched by opts.
func (a *Adapter) Sockets(opts socketio.BroadcastOptions) []string { return a.local.Sockets(opts) }

// Rooms returns the rooms that have members on this server.
func (a *Adapter) Rooms() []socketio.Room {
	a.roomsMu.Lock()
	defer a.roomsMu.Unlock()
	out := make([]socketio.Room, 0, len(a.rooms))
	for r := range a.rooms {
		out = append(out, r)
	}
	return out
}

// PersistSession implements socketio.Adapter (on this server only).
func (a *Adapter) PersistSession(s socketio.PersistedSession) { a.local.PersistSession(s) }

// RestoreSession implements socketio.Adapter (on this server only).
func (a *Adapter) RestoreSession(pid, offset string) (socketio.PersistedSession, []*socketio.EncodedPacket, bool) {
	return a.local.RestoreSession(pid, offset)
}

// ---- broadcasts

// Broadcast implements socketio.Adapter: p goes to the matched local sockets at once and,
// unless opts.Local, is published once for the other servers.
func (a *Adapter) Broadcast(p *socketio.EncodedPacket, opts socketio.BroadcastOptions) {
	if !opts.Local {
		if err := a.publishBroadcast(p, opts); err != nil {
			a.log.Warn("broadcast not published", "err", err)
		}
	}
	a.local.Broadcast(p, opts)
}

func (a *Adapter) publishBroadcast(p *socketio.EncodedPacket, opts socketio.BroadcastOptions) error {
	event, args, err := eventValues(p)
	if err != nil {
		return err
	}
	packet := packetObject(a.nsp.Name(), event, args)
	wopts := encodeOpts(opts, 0)
	if a.opts.Sharded {
		b, err := a.clusterMessage(msgBroadcast, map[string]any{"packet": packet, "opts": wopts})
		if err != nil {
			return err
		}
		a.publish(a.shardedChannel(opts, false), b)
		return nil
	}
	b, err := encodeMsgpack([]any{a.uid, packet, wopts})
	if err != nil {
		return err
	}
	channel := a.channel
	if len(opts.Rooms) == 1 {
		channel += string(opts.Rooms[0]) + "#"
	}
	a.publish(channel, b)
	return nil
}

// shardedChannel is createShardedAdapter's computeChannel.
func (a *Adapter) shardedChannel(opts socketio.BroadcastOptions, withAck bool) string {
	if withAck || len(opts.Rooms) != 1 {
		return a.channel
	}
	r := string(opts.Rooms[0])
	switch a.opts.SubscriptionMode {
	case DynamicPrivate:
		return a.channel + r + "#"
	case Dynamic:
		if len(r) != 20 { // looksLikeASocketId
			return a.channel + r + "#"
		}
	}
	return a.channel
}

// clusterMessage encodes a ClusterAdapter message of this adapter.
func (a *Adapter) clusterMessage(typ int, data map[string]any) ([]byte, error) {
	m := map[string]any{"uid": a.uid, "nsp": a.nsp.Name(), "type": typ}
	if data != nil {
		m["data"] = data
	}
	return encodeMessage(m)
}

// BroadcastWithAck implements socketio.Adapter; see BroadcastWithAckContext.
func (a *Adapter) BroadcastWithAck(p *socketio.EncodedPacket, ackID uint64, opts socketio.BroadcastOptions, onAck func(args socketio.Args, err error)) int {
	n, _ := a.BroadcastWithAckContext(context.Background(), p, ackID, opts, onAck)
	return n
}

// BroadcastWithAckContext implements socketio.ClusterAdapter: the request goes to the other
// servers, which send p to their matched sockets, report how many they reached, then
// forward each answer.
func (a *Adapter) BroadcastWithAckContext(ctx context.Context, p *socketio.EncodedPacket, ackID uint64, opts socketio.BroadcastOptions, onAck func(args socketio.Args, err error)) (int, error) {
	if opts.Local {
		return a.local.BroadcastWithAck(p, ackID, opts, onAck), nil
	}
	event, args, err := eventValues(p)
	if err != nil {
		return a.local.BroadcastWithAck(p, ackID, opts, onAck), err
	}
	reqID := newUID()
	ap := &ackPending{onAck: onAck, countsCh: make(chan struct{}, 1)}
	a.reqMu.Lock()
	a.acks[reqID] = ap
	a.reqMu.Unlock()
	forget := func() {
		a.reqMu.Lock()
		delete(a.acks, reqID)
		a.reqMu.Unlock()
	}
	// The answers may come until the caller stops waiting (ctx); without a deadline, for
	// a minute after the requests timeout at most.
	if _, ok := ctx.Deadline(); ok {
		context.AfterFunc(ctx, forget)
	} else {
		stop := context.AfterFunc(ctx, forget)
		time.AfterFunc(a.opts.RequestsTimeout+time.Minute, func() { stop(); forget() })
	}

	timeoutMS := a.opts.RequestsTimeout.Milliseconds()
	if dl, ok := ctx.Deadline(); ok {
		timeoutMS = max(time.Until(dl).Milliseconds(), 1)
	}
	packet := packetObject(a.nsp.Name(), event, args)
	wopts := encodeOpts(opts, timeoutMS)
	var b []byte
	if a.opts.Sharded {
		b, err = a.clusterMessage(msgBroadcast, map[string]any{"packet": packet, "requestId": reqID, "opts": wopts})
	} else {
		b, err = encodeMsgpack(map[string]any{"uid": a.uid, "requestId": reqID, "type": reqBroadcast, "packet": packet, "opts": wopts})
	}
	if err != nil {
		forget()
		return a.local.BroadcastWithAck(p, ackID, opts, onAck), err
	}
	if a.opts.Sharded {
		a.publish(a.channel, b)
	} else {
		a.publish(a.requestChannel, b)
	}
	n := a.local.BroadcastWithAck(p, ackID, opts, onAck)

	wctx, cancel := context.WithTimeout(ctx, a.opts.RequestsTimeout)
	defer cancel()
	servers, err := a.serverCount(wctx)
	if err != nil {
		return n, err
	}
	for {
		ap.mu.Lock()
		counts, total := ap.counts, ap.total
		ap.mu.Unlock()
		if counts >= servers-1 {
			return n + total, nil
		}
		select {
		case <-ap.countsCh:
		case <-wctx.Done():
			return n + total, fmt.Errorf("%w: %d of %d servers reported their client count", ErrTimeout, counts, servers-1)
		}
	}
}

// ---- other operations

// FetchSockets implements socketio.Adapter: the local sockets, then those the other
// servers describe. When some server does not answer in time it returns what it has
// with an error matching ErrTimeout.
func (a *Adapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]socketio.SocketInfo, error) {
	infos, _ := a.local.FetchSockets(ctx, opts)
	if opts.Local {
		return infos, nil
	}
	wopts := map[string]any{"rooms": roomList(opts.Rooms), "except": roomList(opts.Except)}
	answers, err := a.request(ctx, reqRemoteFetch, msgFetchSockets, map[string]any{"opts": wopts})
	for _, ans := range answers {
		list, _ := ans.([]any)
		for _, s := range list {
			infos = append(infos, socketInfo(s))
		}
	}
	return infos, err
}

// AllRooms returns the rooms that have members on any server (a request to the other
// servers, classic pub/sub only; the sharded adapter returns this server's).
func (a *Adapter) AllRooms(ctx context.Context) ([]socketio.Room, error) {
	rooms := a.Rooms()
	if a.opts.Sharded {
		return rooms, nil
	}
	answers, err := a.request(ctx, reqAllRooms, 0, nil)
	seen := make(map[socketio.Room]bool)
	for _, r := range rooms {
		seen[r] = true
	}
	for _, ans := range answers {
		for _, r := range roomsOf(ans) {
			if !seen[r] {
				seen[r] = true
				rooms = append(rooms, r)
			}
		}
	}
	return rooms, err
}

// request publishes a request that every other server answers and collects the answers.
func (a *Adapter) request(ctx context.Context, typ, clusterTyp int, fields map[string]any) ([]any, error) {
	wctx, cancel := context.WithTimeout(ctx, a.opts.RequestsTimeout)
	defer cancel()
	servers, err := a.serverCount(wctx)
	if err != nil {
		return nil, err
	}
	if servers <= 1 {
		return nil, nil
	}
	reqID := newUID()
	pr := &pending{typ: typ, expected: servers - 1, done: make(chan struct{})}
	a.reqMu.Lock()
	a.requests[reqID] = pr
	a.reqMu.Unlock()
	defer func() {
		a.reqMu.Lock()
		delete(a.requests, reqID)
		a.reqMu.Unlock()
	}()
	var b []byte
	if a.opts.Sharded {
		data := map[string]any{"requestId": reqID}
		for k, v := range fields {
			data[k] = v
		}
		b, err = a.clusterMessage(clusterTyp, data)
	} else {
		m := map[string]any{"uid": a.uid, "requestId": reqID, "type": typ}
		for k, v := range fields {
			m[k] = v
		}
		b, err = encodeMessage(m)
	}
	if err != nil {
		return nil, err
	}
	if a.opts.Sharded {
		a.publish(a.channel, b)
	} else {
		a.publish(a.requestChannel, b)
	}
	select {
	case <-pr.done:
	case <-wctx.Done():
	}
	a.reqMu.Lock()
	defer a.reqMu.Unlock()
	answers := slices.Clone(pr.answers)
	if pr.got < pr.expected {
		return answers, fmt.Errorf("%w: %d of %d servers answered", ErrTimeout, pr.got, pr.expected)
	}
	return answers, nil
}

// AddSockets implements socketio.Adapter.
func (a *Adapter) AddSockets(opts socketio.BroadcastOptions, rooms []socketio.Room) {
	a.local.AddSockets(opts, rooms)
	if !opts.Local {
		a.remoteOp(reqRemoteJoin, msgSocketsJoin, opts, map[string]any{"rooms": roomList(rooms)})
	}
}

// DelSockets implements socketio.Adapter.
func (a *Adapter) DelSockets(opts socketio.BroadcastOptions, rooms []socketio.Room) {
	a.local.DelSockets(opts, rooms)
	if !opts.Local {
		a.remoteOp(reqRemoteLeave, msgSocketsLeave, opts, map[string]any{"rooms": roomList(rooms)})
	}
}

// DisconnectSockets implements socketio.Adapter.
func (a *Adapter) DisconnectSockets(opts socketio.BroadcastOptions, closeConn bool) {
	a.local.DisconnectSockets(opts, closeConn)
	if !opts.Local {
		a.remoteOp(reqRemoteDisconnect, msgDisconnectSockets, opts, map[string]any{"close": closeConn})
	}
}

func (a *Adapter) remoteOp(typ, clusterTyp int, opts socketio.BroadcastOptions, fields map[string]any) {
	wopts := map[string]any{"rooms": roomList(opts.Rooms), "except": roomList(opts.Except)}
	var b []byte
	var err error
	if a.opts.Sharded {
		fields["opts"] = wopts
		b, err = a.clusterMessage(clusterTyp, fields)
	} else {
		m := map[string]any{"uid": a.uid, "type": typ, "opts": wopts}
		for k, v := range fields {
			m[k] = v
		}
		b, err = json.Marshal(m)
	}
	if err != nil {
		a.log.Warn("request not published", "err", err)
		return
	}
	if a.opts.Sharded {
		a.publish(a.channel, b)
	} else {
		a.publish(a.requestChannel, b)
	}
}

// ServerSideEmit implements socketio.Adapter: the other servers' handlers (Go
// Namespace.OnServerSideEmit, Node io.on) receive the event.
func (a *Adapter) ServerSideEmit(event string, args []any) error {
	data, err := serverSideData(event, args)
	if err != nil {
		return err
	}
	var b []byte
	if a.opts.Sharded {
		b, err = a.clusterMessage(msgServerSideEmit, map[string]any{"packet": data})
	} else {
		b, err = encodeMessage(map[string]any{"uid": a.uid, "type": reqServerSideEmit, "data": data})
	}
	if err != nil {
		return err
	}
	if a.opts.Sharded {
		a.publish(a.channel, b)
	} else {
		a.publish(a.requestChannel, b)
	}
	return nil
}

// serverSideData is [event, ...args] with the arguments as JSON would carry them.
func serverSideData(event string, args []any) ([]any, error) {
	vals, err := jsonValues(args)
	if err != nil {
		return nil, err
	}
	return append([]any{event}, vals...), nil
}

// jsonValues turns Go values into the generic values their JSON encoding gives ([]byte
// kept as binary).
func jsonValues(args []any) ([]any, error) {
	a, err := socketio.NewArgs(args...)
	if err != nil {
		return nil, err
	}
	return a.Values()
}

// ServerSideEmitWithAck implements socketio.ClusterAdapter.
func (a *Adapter) ServerSideEmitWithAck(ctx context.Context, event string, args []any) ([]socketio.Args, error) {
	data, err := serverSideData(event, args)
	if err != nil {
		return nil, err
	}
	var answers []any
	if a.opts.Sharded {
		answers, err = a.request(ctx, reqServerSideEmit, msgServerSideEmit, map[string]any{"packet": data})
	} else {
		answers, err = a.request(ctx, reqServerSideEmit, 0, map[string]any{"data": data})
	}
	out := make([]socketio.Args, 0, len(answers))
	for _, ans := range answers {
		if x, e := socketio.NewArgs(ans); e == nil {
			out = append(out, x)
		}
	}
	return out, err
}

// Close implements socketio.Adapter: it unsubscribes and stops publishing (what is still
// queued is dropped and counted).
func (a *Adapter) Close() error {
	if !a.closed.CompareAndSwap(false, true) {
		return nil
	}
	a.cancel()
	var err error
	if a.ps != nil {
		err = a.ps.Close()
	}
	a.subsMu.Lock()
	for _, ps := range a.shardSubs {
		if e := ps.Close(); e != nil && err == nil {
			err = e
		}
	}
	a.subsMu.Unlock()
	a.wg.Wait()
	a.dropped.Add(uint64(len(a.out)))
	return err
}

// ---- receiving

func (a *Adapter) receive(ch <-chan *redis.Message) {
	defer a.wg.Done()
	for {
		select {
		case <-a.ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			a.received.Add(1)
			a.onMessage(m)
		}
	}
}

func (a *Adapter) onMessage(m *redis.Message) {
	payload := []byte(m.Payload)
	if a.opts.Sharded {
		a.onClusterMessage(m.Channel, payload)
		return
	}
	switch {
	case m.Channel == a.requestChannel:
		a.onRequest(payload)
	case m.Channel == a.responseChannel || m.Channel == a.specificChannel:
		a.onResponse(payload)
	case strings.HasPrefix(m.Channel, a.channel):
		a.onBroadcast(payload)
	}
}

func (a *Adapter) bad(what string, err error) {
	if a.undecodable.Add(1)%1000 == 1 {
		a.log.Warn("redis message ignored", "what", what, "err", err)
	}
}

// onBroadcast handles [uid, packet, opts] from another server or an emitter.
func (a *Adapter) onBroadcast(payload []byte) {
	v, err := decodeMessage(payload)
	if err != nil {
		a.bad("broadcast", err)
		return
	}
	arr, ok := v.([]any)
	if !ok || len(arr) < 3 {
		a.bad("broadcast", errors.New("not [uid, packet, opts]"))
		return
	}
	if uid, _ := arr[0].(string); uid == a.uid {
		return
	}
	a.deliver(arr[1], arr[2])
}

// deliver sends a packet object from another server to the local sockets.
func (a *Adapter) deliver(packet, wopts any) {
	nsp, event, args, err := eventOf(packet)
	if err != nil {
		a.bad("broadcast packet", err)
		return
	}
	if nsp != a.nsp.Name() {
		return
	}
	opts := decodeOpts(wopts)
	p, err := a.nsp.EncodeBroadcast(event, args, opts.Volatile)
	if err != nil {
		a.bad("broadcast arguments", err)
		return
	}
	a.local.Broadcast(p, opts)
}

// deliverWithAck runs another server's broadcast with acks on the local sockets: count
// first, then each answer.
func (a *Adapter) deliverWithAck(packet, wopts any, count func(n int), ack func(v any)) {
	_, event, args, err := eventOf(packet)
	if err != nil {
		a.bad("broadcast packet", err)
		return
	}
	p, id, err := a.nsp.EncodeBroadcastWithAck(event, args)
	if err != nil {
		a.bad("broadcast arguments", err)
		return
	}
	// Answers wait until the count is out, so that the requester sees the count first.
	var mu sync.Mutex
	var early []any
	counted := false
	n := a.local.BroadcastWithAck(p, id, decodeOpts(wopts), func(args socketio.Args, err error) {
		if err != nil {
			return // the socket disconnected: no answer will come
		}
		var v any
		if args.Len() > 0 {
			if vals, e := args.Values(); e == nil {
				v = vals[0]
			}
		}
		mu.Lock()
		if !counted {
			early = append(early, v)
			mu.Unlock()
			return
		}
		mu.Unlock()
		ack(v)
	})
	count(n)
	mu.Lock()
	counted = true
	rest := early
	early = nil
	mu.Unlock()
	for _, v := range rest {
		ack(v)
	}
}

// onRequest handles a request of the classic adapter.
func (a *Adapter) onRequest(payload []byte) {
	v, err := decodeMessage(payload)
	if err != nil {
		a.bad("request", err)
		return
	}
	req, ok := v.(map[string]any)
	if !ok {
		a.bad("request", errors.New("not an object"))
		return
	}
	typ, _ := intOf(req, "type")
	uid, reqID := str(req, "uid"), str(req, "requestId")
	self := uid == a.uid
	respond := func(m map[string]any, msgpackAlways bool) {
		var b []byte
		var err error
		if msgpackAlways {
			b, err = encodeMsgpack(m)
		} else {
			b, err = encodeMessage(m)
		}
		if err != nil {
			a.log.Warn("response not published", "err", err)
			return
		}
		ch := a.responseChannel
		if a.opts.PublishOnSpecificResponseChannel {
			ch = a.responseChannel + uid + "#"
		}
		a.publish(ch, b)
	}
	switch typ {
	case reqSockets:
		if self {
			return
		}
		ids := a.local.Sockets(socketio.BroadcastOptions{Rooms: roomsOf(req["rooms"])})
		respond(map[string]any{"requestId": reqID, "sockets": stringsAny(ids)}, false)
	case reqAllRooms:
		if self {
			return
		}
		respond(map[string]any{"requestId": reqID, "rooms": roomList(a.Rooms())}, false)
	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		if self {
			return // applied locally already
		}
		if o, ok := req["opts"]; ok && o != nil {
			opts := decodeOpts(o)
			switch typ {
			case reqRemoteJoin:
				a.local.AddSockets(opts, roomsOf(req["rooms"]))
			case reqRemoteLeave:
				a.local.DelSockets(opts, roomsOf(req["rooms"]))
			default:
				c, _ := req["close"].(bool)
				a.local.DisconnectSockets(opts, c)
			}
			return
		}
		s := a.nsp.Socket(str(req, "sid"))
		if s == nil {
			return
		}
		room, _ := roomName(req["room"])
		switch typ {
		case reqRemoteJoin:
			s.Join(socketio.Room(room))
		case reqRemoteLeave:
			s.Leave(socketio.Room(room))
		default:
			c, _ := req["close"].(bool)
			s.Disconnect(c)
		}
		respond(map[string]any{"requestId": reqID}, false)
	case reqRemoteFetch:
		if self {
			return
		}
		infos, _ := a.local.FetchSockets(context.Background(), decodeOpts(req["opts"]))
		respond(map[string]any{"requestId": reqID, "sockets": wireSockets(infos)}, false)
	case reqServerSideEmit:
		if self {
			return
		}
		data, _ := req["data"].([]any)
		a.onServerSideEmit(data, reqID != "", func(v any) {
			b, err := encodeMessage(map[string]any{"type": reqServerSideEmit, "requestId": reqID, "data": v})
			if err == nil {
				a.publish(a.responseChannel, b) // where the Node adapter answers, whatever its options
			}
		})
	case reqBroadcast:
		if self {
			return
		}
		a.deliverWithAck(req["packet"], req["opts"], func(n int) {
			respond(map[string]any{"type": reqBroadcastClientCount, "requestId": reqID, "clientCount": n}, false)
		}, func(v any) {
			respond(map[string]any{"type": reqBroadcastAck, "requestId": reqID, "packet": v}, true)
		})
	}
}

// onServerSideEmit hands [event, ...args] to the namespace's server-side handlers.
func (a *Adapter) onServerSideEmit(data []any, withAck bool, answer func(v any)) {
	if len(data) == 0 {
		a.bad("server-side emit", errors.New("no event name"))
		return
	}
	event, ok := roomName(data[0])
	if !ok {
		a.bad("server-side emit", errors.New("event name is not a string"))
		return
	}
	args, err := socketio.NewArgs(data[1:]...)
	if err != nil {
		a.bad("server-side emit", err)
		return
	}
	var ack socketio.AckFunc
	if withAck {
		var once atomic.Bool
		ack = func(vals ...any) error {
			if !once.CompareAndSwap(false, true) {
				return nil
			}
			var v any
			if len(vals) > 0 {
				jv, err := jsonValues(vals[:1])
				if err != nil {
					return err
				}
				v = jv[0]
			}
			answer(v)
			return nil
		}
	}
	a.nsp.ReceiveServerSideEmit(event, args, ack)
}

// onResponse handles a response of the classic adapter.
func (a *Adapter) onResponse(payload []byte) {
	v, err := decodeMessage(payload)
	if err != nil {
		a.bad("response", err)
		return
	}
	res, ok := v.(map[string]any)
	if !ok {
		return
	}
	reqID := str(res, "requestId")
	typ, _ := intOf(res, "type")
	if a.onAckResponse(reqID, typ == reqBroadcastClientCount, typ == reqBroadcastAck, res["clientCount"], res["packet"]) {
		return
	}
	a.reqMu.Lock()
	defer a.reqMu.Unlock()
	pr := a.requests[reqID]
	if pr == nil {
		return
	}
	switch pr.typ {
	case reqRemoteFetch, reqSockets:
		pr.answers = append(pr.answers, res["sockets"])
	case reqAllRooms:
		pr.answers = append(pr.answers, res["rooms"])
	case reqServerSideEmit:
		pr.answers = append(pr.answers, res["data"])
	default:
		return
	}
	pr.answered()
}

func (pr *pending) answered() {
	pr.got++
	if pr.got == pr.expected {
		close(pr.done)
	}
}

// onAckResponse handles a client count or an answer of a broadcast with acks; it reports
// whether reqID is such a broadcast.
func (a *Adapter) onAckResponse(reqID string, isCount, isAck bool, count, packet any) bool {
	a.reqMu.Lock()
	ap := a.acks[reqID]
	a.reqMu.Unlock()
	if ap == nil {
		return false
	}
	switch {
	case isCount:
		n, _ := toInt(count)
		ap.mu.Lock()
		ap.counts++
		ap.total += n
		ap.mu.Unlock()
		select {
		case ap.countsCh <- struct{}{}:
		default:
		}
	case isAck:
		args, err := socketio.NewArgs(packet)
		if err != nil {
			a.bad("broadcast ack", err)
			return true
		}
		ap.onAck(args, nil)
	}
	return true
}

// onClusterMessage handles a message of the sharded adapter (ClusterAdapter format).
func (a *Adapter) onClusterMessage(channel string, payload []byte) {
	v, err := decodeMessage(payload)
	if err != nil {
		a.bad("message", err)
		return
	}
	m, ok := v.(map[string]any)
	if !ok {
		a.bad("message", errors.New("not an object"))
		return
	}
	uid := str(m, "uid")
	if uid == a.uid || str(m, "nsp") != a.nsp.Name() {
		return
	}
	typ, _ := intOf(m, "type")
	data, _ := m["data"].(map[string]any)
	reqID := str(data, "requestId")
	respond := func(typ int, d map[string]any) {
		d["requestId"] = reqID
		b, err := a.clusterMessage(typ, d)
		if err != nil {
			a.log.Warn("response not published", "err", err)
			return
		}
		a.publish(a.channel+uid+"#", b)
	}
	switch typ {
	case msgBroadcast:
		if reqID == "" {
			a.deliver(data["packet"], data["opts"])
			return
		}
		a.deliverWithAck(data["packet"], data["opts"], func(n int) {
			respond(msgBroadcastClientCount, map[string]any{"clientCount": n})
		}, func(v any) {
			respond(msgBroadcastAck, map[string]any{"packet": v})
		})
	case msgSocketsJoin:
		a.local.AddSockets(decodeOpts(data["opts"]), roomsOf(data["rooms"]))
	case msgSocketsLeave:
		a.local.DelSockets(decodeOpts(data["opts"]), roomsOf(data["rooms"]))
	case msgDisconnectSockets:
		c, _ := data["close"].(bool)
		a.local.DisconnectSockets(decodeOpts(data["opts"]), c)
	case msgFetchSockets:
		infos, _ := a.local.FetchSockets(context.Background(), decodeOpts(data["opts"]))
		respond(msgFetchSocketsResponse, map[string]any{"sockets": wireSockets(infos)})
	case msgServerSideEmit:
		packet, _ := data["packet"].([]any)
		a.onServerSideEmit(packet, reqID != "", func(v any) {
			respond(msgServerSideEmitResponse, map[string]any{"packet": v})
		})
	case msgBroadcastClientCount, msgBroadcastAck:
		a.onAckResponse(reqID, typ == msgBroadcastClientCount, typ == msgBroadcastAck, data["clientCount"], data["packet"])
	case msgFetchSocketsResponse, msgServerSideEmitResponse:
		a.reqMu.Lock()
		defer a.reqMu.Unlock()
		pr := a.requests[reqID]
		if pr == nil {
			return
		}
		if typ == msgFetchSocketsResponse {
			pr.answers = append(pr.answers, data["sockets"])
		} else {
			pr.answers = append(pr.answers, data["packet"])
		}
		pr.answered()
	}
}

func stringsAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

var (
	_ socketio.ClusterAdapter = (*Adapter)(nil)
)
