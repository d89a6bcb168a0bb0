package redisadapter

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/socketio"
)

// StreamsOptions configures NewStreamsAdapter. The zero value is the Node package's
// defaults.
type StreamsOptions struct {
	// StreamName is the Redis stream (default "socket.io"). With StreamCount > 1 the
	// streams are StreamName-0 ... StreamName-(n-1), each namespace on one of them.
	StreamName string
	// StreamCount is the number of streams the namespaces are spread over (default 1).
	StreamCount int
	// MaxLen trims the stream to about this many entries at each XADD (default 10,000).
	// It bounds how far back a recovery can go.
	MaxLen int64
	// ReadCount is the COUNT of each XREAD (default 100).
	ReadCount int64
	// BlockTime is the BLOCK of each XREAD (default 5s).
	BlockTime time.Duration
	// ChannelPrefix names the pub/sub channels of the ephemeral requests and of the
	// responses (default "socket.io").
	ChannelPrefix string
	// UseShardedPubSub uses SPUBLISH/SSUBSCRIBE (Redis 7) for them.
	UseShardedPubSub bool
	// SessionKeyPrefix prefixes the Redis keys of persisted sessions (default
	// "sio:session:").
	SessionKeyPrefix string
	// OnlyPlaintext writes the data of stream entries as JSON even when it holds binary
	// values (which then become Node Buffer objects {"type":"Buffer","data":[...]}).
	OnlyPlaintext bool
	// RequestTimeout bounds FetchSockets, ServerSideEmitWithAck and the wait for the other
	// servers' socket counts in a broadcast with acks, within the caller's context
	// (default 5s).
	RequestTimeout time.Duration
	// Logger receives the adapter's errors (nil: slog.Default()).
	Logger *slog.Logger
}

func (o *StreamsOptions) withDefaults() StreamsOptions {
	var c StreamsOptions
	if o != nil {
		c = *o
	}
	if c.StreamName == "" {
		c.StreamName = "socket.io"
	}
	if c.StreamCount <= 0 {
		c.StreamCount = 1
	}
	if c.MaxLen <= 0 {
		c.MaxLen = 10000
	}
	if c.ReadCount <= 0 {
		c.ReadCount = 100
	}
	if c.BlockTime <= 0 {
		c.BlockTime = 5 * time.Second
	}
	if c.ChannelPrefix == "" {
		c.ChannelPrefix = "socket.io"
	}
	if c.SessionKeyPrefix == "" {
		c.SessionKeyPrefix = "sio:session:"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// NewStreamsAdapter returns the NewAdapterFunc of a cluster adapter on Redis streams,
// wire-compatible with the Node package @socket.io/redis-streams-adapter 0.3.1: Go and
// Node servers given the same Redis and options serve one cluster.
//
// Broadcasts, socketsJoin/Leave and disconnectSockets are appended (XADD) to the stream;
// every server reads the stream with one XREAD BLOCK loop for all its namespaces, from the
// entries after its start, and after a Redis failure it reconnects (with backoff) and
// goes on from the last entry it read, so nothing appended meanwhile is lost. Requests
// that wait for answers (broadcasts with acks, fetchSockets, serverSideEmit) and the
// answers go through pub/sub, as in the Node package. The adapters implement
// socketio.ClusterAdapter: EmitWithAck waits for the other servers' counts within its own
// context, and the events other servers send with ServerSideEmit(WithAck) reach the
// namespace's socketio.Namespace.OnServerSideEmit handlers.
//
// With the server's connection-state recovery on (socketio.Options.ConnectionStateRecovery,
// read through socketio.Namespace.Recovery), the recovery offset of an event is the id of
// its stream entry and sessions are kept in Redis (SET with PX MaxDisconnectionDuration),
// so a client may come back on any server of the cluster, Go or Node, and get the events
// it missed.
//
// rdb is used for commands; the adapter opens its own connections (from rdb's options) for
// the stream readers and the subscriptions when rdb is a *redis.Client or a
// *redis.ClusterClient. The readers and the subscriptions start with the first namespace's
// adapter and stop when the last one is closed; rdb itself is never closed.
func NewStreamsAdapter(rdb redis.UniversalClient, opts *StreamsOptions) socketio.NewAdapterFunc {
	h := &streamsHub{rdb: rdb, opts: opts.withDefaults(), adapters: make(map[string]*StreamsAdapter)}
	return h.newAdapter
}

// streamsHub is what the adapters of the namespaces of one server share: the stream
// readers and the subscription.
type streamsHub struct {
	rdb  redis.UniversalClient
	opts StreamsOptions

	mu       sync.Mutex
	adapters map[string]*StreamsAdapter // by namespace name
	channels map[string]*StreamsAdapter // by pub/sub channel
	running  *streamsRun
}

// streamsRun is one run of the readers and the subscriber.
type streamsRun struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	clients []redis.UniversalClient // dedicated connections, closed at stop
	sub     *redis.PubSub
}

func (h *streamsHub) newAdapter(nsp *socketio.Namespace) socketio.Adapter {
	local, _ := socketio.NewInMemoryAdapter(nsp).(*socketio.InMemoryAdapter)
	a := &StreamsAdapter{
		InMemoryAdapter: local,
		hub:             h,
		nsp:             nsp,
		recovery:        nsp.Recovery(),
		uid:             randomHex(8),
		stream:          h.streamName(nsp.Name()),
		requests:        make(map[string]*streamsRequest),
		ackRequests:     make(map[string]*streamsAckRequest),
	}
	a.public = h.opts.ChannelPrefix + "#" + nsp.Name() + "#"
	a.private = a.public + a.uid + "#"

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.channels == nil {
		h.channels = make(map[string]*StreamsAdapter)
	}
	h.adapters[nsp.Name()] = a
	h.channels[a.public] = a
	h.channels[a.private] = a
	if h.running == nil {
		h.start()
	}
	ctx, cancel := context.WithTimeout(h.running.ctx, h.opts.RequestTimeout)
	defer cancel()
	var err error
	if h.opts.UseShardedPubSub {
		err = h.running.sub.SSubscribe(ctx, a.public, a.private)
	} else {
		err = h.running.sub.Subscribe(ctx, a.public, a.private)
	}
	if err != nil {
		h.opts.Logger.Error("redisadapter: subscribe", "namespace", nsp.Name(), "err", err)
	}
	return a
}

// streamName returns the stream of a namespace (computeStreamName).
func (h *streamsHub) streamName(nsp string) string {
	if h.opts.StreamCount == 1 {
		return h.opts.StreamName
	}
	return h.opts.StreamName + "-" + strconv.Itoa(int(javaHash(nsp)%int32(h.opts.StreamCount)))
}

// javaHash is util.hashCode: the 32-bit string hash over the UTF-16 code units, with
// JavaScript's remainder sign (negative stays negative).
func javaHash(s string) int32 {
	var hash int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			hash = hash*31 + int32(0xD800+(r>>10))
			hash = hash*31 + int32(0xDC00+(r&0x3FF))
			continue
		}
		hash = hash*31 + r
	}
	return hash
}

// start starts the readers and the subscriber; h.mu is held.
func (h *streamsHub) start() {
	ctx, cancel := context.WithCancel(context.Background())
	run := &streamsRun{ctx: ctx, cancel: cancel}
	if h.opts.UseShardedPubSub {
		run.sub = h.rdb.SSubscribe(ctx)
	} else {
		run.sub = h.rdb.Subscribe(ctx)
	}
	names := []string{h.opts.StreamName}
	if h.opts.StreamCount > 1 {
		names = names[:0]
		for i := range h.opts.StreamCount {
			names = append(names, h.opts.StreamName+"-"+strconv.Itoa(i))
		}
	}
	for _, name := range names {
		c := duplicateClient(h.rdb)
		if c != h.rdb {
			run.clients = append(run.clients, c)
		}
		run.wg.Add(1)
		go func() {
			defer run.wg.Done()
			h.read(run.ctx, c, name)
		}()
	}
	ch := run.sub.Channel(redis.WithChannelSize(1024))
	run.wg.Add(1)
	go func() {
		defer run.wg.Done()
		for msg := range ch {
			h.onPubSub(msg)
		}
	}()
	h.running = run
}

// stop ends the readers and the subscriber and waits for them.
func (h *streamsHub) stop(run *streamsRun) {
	run.cancel()
	_ = run.sub.Close()
	for _, c := range run.clients {
		_ = c.Close() // interrupts a blocked XREAD
	}
	run.wg.Wait()
}

// duplicateClient opens a client of its own with rdb's options, for a blocking reader; rdb
// itself when its type is not known.
func duplicateClient(rdb redis.UniversalClient) redis.UniversalClient {
	switch c := rdb.(type) {
	case *redis.Client:
		o := *c.Options()
		o.PoolSize = 1
		o.MinIdleConns = 0
		o.MaxIdleConns = 0
		o.PushNotificationProcessor = nil // the original's; the copy makes its own
		return redis.NewClient(&o)
	case *redis.ClusterClient:
		o := *c.Options()
		return redis.NewClusterClient(&o)
	}
	return rdb
}

// read is the XREAD loop of one stream: from the stream's last entry when it starts, then
// from the last id read. It never reads from "$" itself: an XREAD from "$" that times out
// and the next one would lose what was added between them. On an error it waits (100ms
// doubling to 5s, with jitter) and goes on from the last id.
func (h *streamsHub) read(ctx context.Context, c redis.UniversalClient, stream string) {
	last := ""
	failures := 0
	fail := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		failures++
		d := backoff(failures)
		h.opts.Logger.Warn("redisadapter: reading the stream", "stream", stream, "err", err, "retry", d)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for ctx.Err() == nil {
		if last == "" {
			newest, err := c.XRevRangeN(ctx, stream, "+", "-", 1).Result()
			if err != nil {
				if !fail(err) {
					return
				}
				continue
			}
			last = "0-0" // an empty stream: everything added from now on
			if len(newest) > 0 {
				last = newest[0].ID
			}
		}
		res, err := c.XRead(ctx, &redis.XReadArgs{
			Streams: []string{stream, last},
			Count:   h.opts.ReadCount,
			Block:   h.opts.BlockTime,
		}).Result()
		if errors.Is(err, redis.Nil) {
			failures = 0
			continue
		}
		if err != nil {
			if !fail(err) {
				return
			}
			continue
		}
		failures = 0
		for _, s := range res {
			for _, e := range s.Messages {
				h.onEntry(e)
				last = e.ID
			}
		}
	}
}

// backoff returns the wait after n consecutive failures.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// onEntry hands a stream entry to the adapter of its namespace.
func (h *streamsHub) onEntry(e redis.XMessage) {
	nsp, _ := e.Values["nsp"].(string)
	if nsp == "" {
		return
	}
	h.mu.Lock()
	a := h.adapters[nsp]
	h.mu.Unlock()
	if a == nil {
		return
	}
	m, err := streamsDecodeEntry(e.Values)
	if err != nil {
		h.opts.Logger.Warn("redisadapter: invalid stream entry", "id", e.ID, "err", err)
		return
	}
	a.onMessage(m, e.ID)
}

// onPubSub hands a pub/sub message to the adapter of its channel.
func (h *streamsHub) onPubSub(msg *redis.Message) {
	h.mu.Lock()
	a := h.channels[msg.Channel]
	h.mu.Unlock()
	if a == nil {
		return
	}
	m, err := streamsDecodePubSub([]byte(msg.Payload))
	if err != nil {
		h.opts.Logger.Warn("redisadapter: invalid pub/sub message", "channel", msg.Channel, "err", err)
		return
	}
	a.onMessage(m, "")
}

// remove forgets a closed adapter and stops everything with the last one.
func (h *streamsHub) remove(a *StreamsAdapter) {
	h.mu.Lock()
	if h.adapters[a.nsp.Name()] == a {
		delete(h.adapters, a.nsp.Name())
	}
	delete(h.channels, a.public)
	delete(h.channels, a.private)
	run := h.running
	last := len(h.adapters) == 0
	if last {
		h.running = nil
	}
	h.mu.Unlock()
	if run == nil {
		return
	}
	if last {
		h.stop(run)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.RequestTimeout)
	defer cancel()
	if h.opts.UseShardedPubSub {
		_ = run.sub.SUnsubscribe(ctx, a.public, a.private)
	} else {
		_ = run.sub.Unsubscribe(ctx, a.public, a.private)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
