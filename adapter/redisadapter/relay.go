package redisadapter

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/duplexio/duplex/engineio"
)

// DefaultRelayKey is the prefix of the relay's channels when RelayOptions.Key is empty:
// DefaultKey, the Node adapter's default key.
const DefaultRelayKey = DefaultKey

// relayNodeIDLen is the length of a node id: 6 random bytes in URL-safe base64. Session ids
// of a relayed server are the node id followed by 20 characters of 120 random bits.
const (
	relayNodeIDLen = 8
	relaySIDLen    = relayNodeIDLen + 20
)

// ErrNoOwner is the error of Relay.Relay when no node has the session: its id does not
// name a node, names this node (which no longer has it), or a node that is not subscribed
// to Redis any more. The client then gets 400 "Session ID unknown".
var ErrNoOwner = errors.New("redisadapter: no node has the session")

// ErrRelayClosed is returned by Relay.Relay once the relay is closed.
var ErrRelayClosed = errors.New("redisadapter: relay closed")

// RelayOptions configure NewRelay.
type RelayOptions struct {
	// Key is the prefix of the relay's channels, "<Key>-relay#<node id>#" (empty:
	// DefaultRelayKey). Nodes relay to each other only when they share it.
	Key string
	// Logger receives a line for each relayed request that failed (nil: slog.Default()).
	Logger *slog.Logger
}

// Relay lets the nodes of a cluster serve Engine.IO long-polling without sticky sessions:
// an engineio.SessionRelay over Redis pub/sub. A node that receives a polling request for
// a session of another node publishes it to the owner's channel and answers the client
// with the owner's response, which comes back on its own channel.
//
// Finding the owner costs nothing: the relay names its server's sessions, and each
// session id starts with the 8-character id of the node that opened it, so no record of
// the sessions is kept in Redis. A request for a session id that names no live node (no
// subscriber on that channel: PUBLISH reports 0 receivers) is answered at once with 400
// "Session ID unknown"; one the owner no longer has gets the same from the owner. The
// owner holds a relayed poll as its own (until it has packets, a ping at the latest), and
// the relaying node waits at most the server's PingInterval+PingTimeout.
//
// PUBLISH counts the receivers of one Redis server: the relay needs a standalone Redis (or
// a primary with replicas or Sentinel), not Redis Cluster, where it would count only the
// subscribers of the node that got the PUBLISH.
//
// WebSocket upgrades are not relayed (see engineio.SessionRelay): behind a balancer that is
// not sticky, sessions opened over polling stay on polling, unless the balancer sends the
// upgrade to the owner.
//
// Concurrency: all methods are safe from any goroutine. A Relay holds one Redis
// connection (its subscription) and a goroutine, plus one per relayed request it answers.
type Relay struct {
	client  redis.UniversalClient
	srv     *engineio.Server
	nodeID  string
	channel string
	prefix  string // "<key>-relay#"
	logger  *slog.Logger

	ps     *redis.PubSub
	ctx    context.Context // ends the requests this node answers, at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the receive loop and the requests being answered

	nextID   atomic.Uint64
	mu       sync.Mutex
	closed   bool
	draining bool
	pending  map[uint64]*pendingRelay // requests relayed from here, by id
	serving  map[servingKey]context.CancelCauseFunc
	idle     chan struct{} // closed when pending empties, while draining
}

// pendingRelay is a request relayed from here, waiting for its answer.
type pendingRelay struct {
	owner  string
	answer chan *relayMessage
}

// servingKey names a request another node relayed here.
type servingKey struct {
	from string
	id   uint64
}

// The types of relay messages.
const (
	relayRequest  = 1 // a polling request, to its session's owner
	relayResponse = 2 // the owner's answer, to the relaying node
	relayCancel   = 3 // the client went away: the owner ends the request
	relayRelease  = 4 // the relaying node stops: the owner answers a held poll now
)

// relayMessage is what goes over a relay channel, in msgpack.
type relayMessage struct {
	Type uint8  `msgpack:"t"`
	ID   uint64 `msgpack:"i"` // the request id, unique per relaying node
	From string `msgpack:"f"` // the relaying node

	// relayRequest
	SID     string              `msgpack:"s,omitempty"`
	Method  string              `msgpack:"m,omitempty"`
	Query   string              `msgpack:"q,omitempty"`
	Remote  string              `msgpack:"r,omitempty"`
	Timeout int64               `msgpack:"d,omitempty"` // milliseconds the relaying node waits
	NoHold  bool                `msgpack:"n,omitempty"` // answer a poll at once (the relaying node stops)
	Header  map[string][]string `msgpack:"h,omitempty"` // also of relayResponse
	Body    []byte              `msgpack:"b,omitempty"` // also of relayResponse

	// relayResponse
	Status int `msgpack:"c,omitempty"`
}

// NewRelay subscribes to the channel of a new node (a fresh random node id) and makes the
// relay srv's: it sets srv.Relay, which must be done before srv serves its first request.
// ctx bounds the subscription. Close the relay after srv's Shutdown, which answers the
// polls the relay holds.
func NewRelay(ctx context.Context, client redis.UniversalClient, srv *engineio.Server, opts *RelayOptions) (*Relay, error) {
	if opts == nil {
		opts = &RelayOptions{}
	}
	key := opts.Key
	if key == "" {
		key = DefaultRelayKey
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	r := &Relay{
		client:  client,
		srv:     srv,
		nodeID:  base64.RawURLEncoding.EncodeToString(id[:]),
		prefix:  key + "-relay#",
		logger:  logger,
		pending: make(map[uint64]*pendingRelay),
		serving: make(map[servingKey]context.CancelCauseFunc),
	}
	r.channel = r.channelOf(r.nodeID)
	r.ps = client.Subscribe(ctx, r.channel)
	if _, err := r.ps.Receive(ctx); err != nil { // the subscription's confirmation
		_ = r.ps.Close()
		return nil, fmt.Errorf("redisadapter: relay: subscribing to %s: %w", r.channel, err)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	msgs := r.ps.Channel(redis.WithChannelSize(1024))
	r.wg.Add(1)
	go r.receive(msgs)
	srv.Relay = r
	return r, nil
}

func (r *Relay) channelOf(nodeID string) string { return r.prefix + nodeID + "#" }

// NodeID returns the id of this node, the first 8 characters of its session ids.
func (r *Relay) NodeID() string { return r.nodeID }

// NewSessionID returns a session id for this node's server: the node id and 120 random
// bits, 28 URL-safe characters.
func (r *Relay) NewSessionID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return r.nodeID + base64.RawURLEncoding.EncodeToString(b[:])
}

// ownerOf returns the node id in sid, or "" when sid is not one of a relay's session ids.
func ownerOf(sid string) string {
	if len(sid) != relaySIDLen || !urlSafe(sid) {
		return ""
	}
	return sid[:relayNodeIDLen]
}

// urlSafe reports whether s is made of the characters of URL-safe base64.
func urlSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Relay publishes req to the node whose id starts req.SID and returns that node's answer.
// It fails with ErrNoOwner when no node is subscribed under that id, with ctx's error when
// no answer came in time (the owner is then told to end the request), and with the error
// of Redis.
func (r *Relay) Relay(ctx context.Context, req *engineio.RelayedRequest) (*engineio.RelayedResponse, error) {
	owner := ownerOf(req.SID)
	if owner == "" || owner == r.nodeID {
		return nil, ErrNoOwner
	}
	m := &relayMessage{
		Type:   relayRequest,
		ID:     r.nextID.Add(1),
		From:   r.nodeID,
		SID:    req.SID,
		Method: req.Method,
		Query:  req.Query,
		Remote: req.RemoteAddr,
		Header: req.Header,
		Body:   req.Body,
	}
	if d, ok := ctx.Deadline(); ok {
		m.Timeout = max(time.Until(d).Milliseconds(), 1)
	}
	p := &pendingRelay{owner: owner, answer: make(chan *relayMessage, 1)}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrRelayClosed
	}
	r.pending[m.ID] = p
	m.NoHold = r.draining
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, m.ID)
		if len(r.pending) == 0 && r.idle != nil {
			close(r.idle)
			r.idle = nil
		}
		r.mu.Unlock()
	}()
	data, err := msgpack.Marshal(m)
	if err != nil {
		return nil, err
	}

	n, err := r.client.Publish(ctx, r.channelOf(owner), data).Result()
	if err != nil {
		return nil, fmt.Errorf("redisadapter: relay: %w", err)
	}
	if n == 0 {
		return nil, ErrNoOwner
	}
	select {
	case res := <-p.answer:
		return &engineio.RelayedResponse{Status: res.Status, Header: res.Header, Body: res.Body}, nil
	case <-ctx.Done():
		r.sendCancel(owner, m.ID)
		return nil, ctx.Err()
	case <-r.ctx.Done():
		return nil, ErrRelayClosed
	}
}

// sendCancel tells owner that request id is abandoned, so that it ends it as a client's
// abandoned poll.
func (r *Relay) sendCancel(owner string, id uint64) { r.sendControl(relayCancel, owner, id) }

// sendControl sends a cancel or a release of request id to owner.
func (r *Relay) sendControl(typ uint8, owner string, id uint64) {
	data, err := msgpack.Marshal(&relayMessage{Type: typ, ID: id, From: r.nodeID})
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer cancel()
	if err := r.client.Publish(ctx, r.channelOf(owner), data).Err(); err != nil && r.ctx.Err() == nil {
		r.logger.Debug("redisadapter: relay: control message not sent", "node", owner, "type", typ, "error", err)
	}
}

// receive reads the node's channel until the subscription is closed.
func (r *Relay) receive(msgs <-chan *redis.Message) {
	defer r.wg.Done()
	for msg := range msgs {
		m := new(relayMessage)
		if err := msgpack.Unmarshal([]byte(msg.Payload), m); err != nil {
			r.logger.Warn("redisadapter: relay: undecodable message", "channel", msg.Channel, "error", err)
			continue
		}
		switch m.Type {
		case relayResponse:
			r.mu.Lock()
			p := r.pending[m.ID]
			r.mu.Unlock()
			if p != nil && p.owner == m.From {
				select {
				case p.answer <- m:
				default: // a second answer: ignored
				}
			}
		case relayRequest:
			r.serve(m)
		case relayCancel, relayRelease:
			r.mu.Lock()
			cancel := r.serving[servingKey{m.From, m.ID}]
			r.mu.Unlock()
			if cancel != nil {
				if m.Type == relayRelease {
					cancel(engineio.ErrPollReleased)
				} else {
					cancel(nil)
				}
			}
		}
	}
}

// serve answers a request relayed here on a goroutine of its own.
func (r *Relay) serve(m *relayMessage) {
	if len(m.From) != relayNodeIDLen || !urlSafe(m.From) {
		return // no node to answer
	}
	timeout := time.Duration(m.Timeout) * time.Millisecond
	if timeout <= 0 {
		timeout = engineio.DefaultPingInterval + engineio.DefaultPingTimeout
	}
	cctx, cancel := context.WithCancelCause(r.ctx)
	ctx, cancelTimeout := context.WithTimeout(cctx, timeout)
	if m.NoHold {
		cancel(engineio.ErrPollReleased)
	}
	key := servingKey{m.From, m.ID}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		cancelTimeout()
		cancel(nil)
		return
	}
	r.serving[key] = cancel
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.serving, key)
			r.mu.Unlock()
			cancelTimeout()
			cancel(nil)
		}()
		res := r.srv.ServeRelayed(ctx, &engineio.RelayedRequest{
			SID:        m.SID,
			Method:     m.Method,
			Query:      m.Query,
			Header:     http.Header(m.Header),
			Body:       m.Body,
			RemoteAddr: m.Remote,
		})
		if ctx.Err() != nil && !errors.Is(context.Cause(ctx), engineio.ErrPollReleased) {
			return // abandoned: nobody waits for the answer
		}
		data, err := msgpack.Marshal(&relayMessage{
			Type:   relayResponse,
			ID:     m.ID,
			From:   r.nodeID,
			Status: res.Status,
			Header: res.Header,
			Body:   res.Body,
		})
		if err != nil {
			return
		}
		pctx, pcancel := context.WithTimeout(r.ctx, 5*time.Second)
		defer pcancel()
		if err := r.client.Publish(pctx, r.channelOf(m.From), data).Err(); err != nil {
			r.logger.Warn("redisadapter: relay: answer not sent", "node", m.From, "sid", m.SID, "error", err)
		}
	}()
}

// Drain prepares the node to stop without harm to the sessions of the other nodes: the
// polls it relays are released (their owners answer them now, with a noop when they have
// nothing to send, and keep the sessions) and the polls it relays from now on are not
// held. It returns when no relayed request is pending, or when ctx ends.
func (r *Relay) Drain(ctx context.Context) error {
	r.mu.Lock()
	r.draining = true
	var release []servingKey
	for id, p := range r.pending {
		release = append(release, servingKey{p.owner, id})
	}
	var idle chan struct{}
	if len(r.pending) > 0 {
		if r.idle == nil {
			r.idle = make(chan struct{})
		}
		idle = r.idle
	}
	r.mu.Unlock()
	for _, k := range release {
		r.sendControl(relayRelease, k.from, k.id)
	}
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// relayDrainTimeout bounds the Drain that Close starts with.
const relayDrainTimeout = 2 * time.Second

// Close drains the relay (at most 2 s, see Drain), unsubscribes the node and ends the
// requests it still relays or answers: a poll held for another node is abandoned, which
// closes its session, so close the relay after the server's Shutdown. It does not close the
// Redis client.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), relayDrainTimeout)
	_ = r.Drain(ctx)
	cancel()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	err := r.ps.Close()
	r.cancel()
	r.wg.Wait()
	return err
}
