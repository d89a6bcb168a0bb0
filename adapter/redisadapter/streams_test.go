package redisadapter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/internal/redistest"
	"github.com/duplexio/duplex/socketio"
)

const streamsWait = 5 * time.Second

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// streamsNode is one server of a test cluster.
type streamsNode struct {
	srv     *socketio.Server
	ts      *httptest.Server
	sockets chan *socketio.Socket
	sse     chan string // server-side events received: "event:arg"
}

type streamsCluster struct {
	addr  string
	rdb   *redis.Client
	nodes []*streamsNode
}

// newStreamsCluster starts Redis and n servers with the streams adapter, and waits until
// each one reads the stream and listens on its channels.
func newStreamsCluster(t *testing.T, n int, recovery *socketio.RecoveryOptions) *streamsCluster {
	t.Helper()
	c := &streamsCluster{addr: redistest.Start(t)}
	c.rdb = redis.NewClient(&redis.Options{Addr: c.addr})
	t.Cleanup(func() { _ = c.rdb.Close() })
	ctx := context.Background()
	if err := c.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for range n {
		node := &streamsNode{sockets: make(chan *socketio.Socket, 16), sse: make(chan string, 16)}
		rdb := redis.NewClient(&redis.Options{Addr: c.addr, MaxRetries: -1})
		opts := &StreamsOptions{
			BlockTime:      200 * time.Millisecond,
			RequestTimeout: 2 * time.Second,
			Logger:         quiet,
		}
		node.srv = socketio.NewServer(&socketio.Options{
			NewAdapter:              NewStreamsAdapter(rdb, opts),
			ConnectionStateRecovery: recovery,
			Logger:                  quiet,
		})
		for _, event := range []string{"hi", "q"} {
			node.srv.Of("/").OnServerSideEmit(event, func(args socketio.Args, ack socketio.AckFunc) {
				var s string
				_ = args.Decode(0, &s)
				node.sse <- event + ":" + s
				if ack != nil {
					_ = ack("ok from /", "ignored")
				}
			})
		}
		node.srv.OnConnection(func(s *socketio.Socket) {
			s.On("join", func(args socketio.Args, ack socketio.AckFunc) {
				var room string
				_ = args.Decode(0, &room)
				s.Join(socketio.Room(room))
				if ack != nil {
					_ = ack()
				}
			})
			node.sockets <- s
		})
		node.ts = httptest.NewServer(node.srv)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
			defer cancel()
			node.ts.Close()
			_ = node.srv.Shutdown(ctx)
			_ = rdb.Close()
		})
		c.nodes = append(c.nodes, node)
	}
	c.waitReady(t)
	return c
}

// waitReady waits until every node blocks in XREAD and is subscribed to "/"'s channel.
func (c *streamsCluster) waitReady(t *testing.T) {
	t.Helper()
	n := len(c.nodes)
	deadline := time.Now().Add(streamsWait)
	for {
		ctx := context.Background()
		list, err := c.rdb.ClientList(ctx).Result()
		readers := strings.Count(list, "cmd=xread")
		subs, _ := c.rdb.PubSubNumSub(ctx, "socket.io#/#").Result()
		if err == nil && readers >= n && subs["socket.io#/#"] >= int64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %d readers, %v subscribers (%v)", readers, subs, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is a Go socket.io client with every event it got.
type client struct {
	s      *socketio.ClientSocket
	m      *socketio.Manager
	events chan string // "event:arg0"
}

func dialStreams(t *testing.T, url string) *client {
	t.Helper()
	m := socketio.NewManager(url, &socketio.ManagerOptions{
		ReconnectionDelay:    20 * time.Millisecond,
		ReconnectionDelayMax: 100 * time.Millisecond,
		Logger:               quiet,
	})
	t.Cleanup(m.Close)
	c := &client{m: m, s: m.Socket("/", nil), events: make(chan string, 64)}
	c.s.OnAny(func(event string, args socketio.Args) {
		var a any
		if args.Len() > 0 {
			_ = args.Decode(0, &a)
		}
		c.events <- fmt.Sprintf("%s:%v", event, a)
	})
	c.s.On("ask", func(args socketio.Args, ack socketio.AckFunc) {
		if ack != nil {
			_ = ack("answer from " + c.s.ID())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
	defer cancel()
	if err := c.s.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

func (c *client) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-c.events:
			if got != w {
				t.Fatalf("client %s got %q, want %q", c.s.ID(), got, w)
			}
		case <-time.After(streamsWait):
			t.Fatalf("client %s: no %q", c.s.ID(), w)
		}
	}
}

// expectSet checks the next len(want) events, in any order (events sent from two nodes
// have no order between them).
func (c *client) expectSet(t *testing.T, want ...string) {
	t.Helper()
	var got []string
	for range want {
		select {
		case e := <-c.events:
			got = append(got, e)
		case <-time.After(streamsWait):
			t.Fatalf("client %s: got %q, want %q", c.s.ID(), got, want)
		}
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Fatalf("client %s got %q, want %q", c.s.ID(), got, want)
	}
}

// expectNothing checks that no more events come (after a marker broadcast that every
// client gets, the order of the stream makes a late duplicate visible).
func (c *client) expectNothing(t *testing.T) {
	t.Helper()
	select {
	case got := <-c.events:
		t.Fatalf("client %s got %q, want nothing", c.s.ID(), got)
	default:
	}
}

func recvSocket(t *testing.T, ch chan *socketio.Socket) *socketio.Socket {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(streamsWait):
		t.Fatal("no connection")
		return nil
	}
}

func TestStreamsBroadcastReachesEveryNodeOnce(t *testing.T) {
	c := newStreamsCluster(t, 2, nil)
	a := dialStreams(t, c.nodes[0].ts.URL)
	sa := recvSocket(t, c.nodes[0].sockets)
	b := dialStreams(t, c.nodes[1].ts.URL)
	sb := recvSocket(t, c.nodes[1].sockets)
	sa.Join("red")
	sb.Join("blue")

	must(t, c.nodes[0].srv.Emit("all", "from0"))
	must(t, c.nodes[1].srv.Emit("all", "from1"))
	a.expectSet(t, "all:from0", "all:from1")
	b.expectSet(t, "all:from0", "all:from1")

	must(t, c.nodes[0].srv.To("blue").Emit("rooms", "blue"))
	must(t, c.nodes[1].srv.Except("blue").Emit("rooms", "not blue"))
	must(t, c.nodes[0].srv.To("red", "blue").Except("red").Emit("rooms", "blue again"))
	must(t, c.nodes[1].srv.Local().Emit("rooms", "local to 1"))
	must(t, c.nodes[0].srv.To(socketio.Room(sb.ID())).Emit("rooms", "to b's id"))
	// A duplicate would come before the marker of the node it came from.
	must(t, c.nodes[0].srv.Emit("marker", 0))
	must(t, c.nodes[1].srv.Emit("marker", 1))
	a.expectSet(t, "rooms:not blue", "marker:0", "marker:1")
	b.expectSet(t, "rooms:blue", "rooms:blue again", "rooms:local to 1", "rooms:to b's id", "marker:0", "marker:1")
	a.expectNothing(t)
	b.expectNothing(t)

	// Binary arguments cross as msgpack and arrive as binary.
	got := make(chan []byte, 1)
	b.s.On("bin", func(args socketio.Args, _ socketio.AckFunc) {
		v, _ := args.Binary(0)
		got <- v
	})
	must(t, c.nodes[0].srv.Emit("bin", []byte{1, 2, 3}))
	select {
	case v := <-got:
		if string(v) != "\x01\x02\x03" {
			t.Fatalf("binary %v", v)
		}
	case <-time.After(streamsWait):
		t.Fatal("no binary event")
	}
}

func TestStreamsSocketsJoinLeaveDisconnectAndFetch(t *testing.T) {
	c := newStreamsCluster(t, 2, nil)
	a := dialStreams(t, c.nodes[0].ts.URL)
	recvSocket(t, c.nodes[0].sockets)
	b := dialStreams(t, c.nodes[1].ts.URL)
	sb := recvSocket(t, c.nodes[1].sockets)
	sb.SetData(map[string]any{"user": "bob"})

	c.nodes[0].srv.Of("/").SocketsJoin("all")
	c.nodes[0].srv.Of("/").To(socketio.Room(b.s.ID())).SocketsJoin("b")
	waitFor(t, func() bool { return slices.Contains(sb.Rooms(), "all") && slices.Contains(sb.Rooms(), "b") })

	ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
	defer cancel()
	infos, err := c.nodes[0].srv.Of("/").In("b").FetchSockets(ctx)
	if err != nil || len(infos) != 1 || infos[0].ID != b.s.ID() {
		t.Fatalf("fetch: %v %+v", err, infos)
	}
	if d, _ := infos[0].Data.(map[string]any); d["user"] != "bob" || !slices.Contains(infos[0].Rooms, "all") {
		t.Fatalf("fetched %+v", infos[0])
	}
	all, err := c.nodes[1].srv.Of("/").FetchSockets(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("fetch all: %v %d", err, len(all))
	}

	c.nodes[0].srv.Of("/").In("b").SocketsLeave("all")
	waitFor(t, func() bool { return !slices.Contains(sb.Rooms(), "all") })

	gone := make(chan string, 1)
	b.s.OnDisconnect(func(reason string) { gone <- reason })
	c.nodes[0].srv.Of("/").In("b").DisconnectSockets(false)
	select {
	case r := <-gone:
		if r != socketio.ReasonIOServerDisconnect {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(streamsWait):
		t.Fatal("b was not disconnected")
	}
	if !a.s.Connected() {
		t.Fatal("a was disconnected too")
	}
}

func TestStreamsServerSideEmitAndBroadcastWithAck(t *testing.T) {
	c := newStreamsCluster(t, 2, nil)
	dialStreams(t, c.nodes[0].ts.URL)
	b := dialStreams(t, c.nodes[1].ts.URL)

	must(t, c.nodes[0].srv.Of("/").ServerSideEmit("hi", "there"))
	select {
	case got := <-c.nodes[1].sse:
		if got != "hi:there" {
			t.Fatalf("server-side event %q", got)
		}
	case <-time.After(streamsWait):
		t.Fatal("no server-side event")
	}
	select {
	case got := <-c.nodes[0].sse:
		t.Fatalf("the sender got its own event %q", got)
	default:
	}

	ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
	defer cancel()
	answers, err := c.nodes[0].srv.Of("/").ServerSideEmitWithAck(ctx, "q", "x")
	var answer string
	if err == nil && len(answers) == 1 {
		_ = answers[0].Decode(0, &answer)
	}
	if err != nil || len(answers) != 1 || answers[0].Len() != 1 || answer != "ok from /" {
		t.Fatalf("server-side answers %v %v", answers, err)
	}
	<-c.nodes[1].sse

	acks, err := c.nodes[0].srv.Of("/").Timeout(streamsWait).EmitWithAck(ctx, "ask")
	if err != nil || len(acks) != 2 {
		t.Fatalf("acks %v %v", acks, err)
	}
	var got []string
	for _, a := range acks {
		var s string
		_ = a.Decode(0, &s)
		got = append(got, s)
	}
	if !slices.Contains(got, "answer from "+b.s.ID()) {
		t.Fatalf("acks %v lack b's", got)
	}
}

// front is a reverse proxy that sends every request to one backend of its choosing, and
// can hold new requests off (503) while a test arranges what a client misses.
type front struct {
	*httptest.Server
	target atomic.Int32
	held   atomic.Bool
}

func newFront(t *testing.T, backends ...string) *front {
	f := &front{}
	var proxies []*httputil.ReverseProxy
	for _, b := range backends {
		u, _ := url.Parse(b)
		proxies = append(proxies, httputil.NewSingleHostReverseProxy(u))
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.held.Load() {
			http.Error(w, "held", http.StatusServiceUnavailable)
			return
		}
		proxies[f.target.Load()].ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func TestStreamsRecoveryOnAnotherNode(t *testing.T) {
	rec := &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}
	c := newStreamsCluster(t, 2, rec)
	f := newFront(t, c.nodes[0].ts.URL, c.nodes[1].ts.URL)
	a := dialStreams(t, f.URL)
	sa := recvSocket(t, c.nodes[0].sockets)
	sa.Join("news")
	ended := make(chan string, 1)
	sa.OnDisconnect(func(reason string) { ended <- reason })
	id := a.s.ID()

	must(t, c.nodes[1].srv.To("news").Emit("news", 1))
	a.expect(t, "news:1")

	// Node 0 is lost to the client; it comes back through node 1.
	f.held.Store(true)
	f.target.Store(1)
	must(t, a.m.Engine().Close())
	select {
	case <-ended:
	case <-time.After(streamsWait):
		t.Fatal("node 0 never saw the disconnection")
	}
	must(t, c.nodes[1].srv.To("news").Emit("news", 2))
	must(t, c.nodes[0].srv.To("news").Emit("news", 3))
	must(t, c.nodes[0].srv.To("elsewhere").Emit("news", "not for it"))
	must(t, c.nodes[1].srv.Emit("news", 4))
	f.held.Store(false)

	sb := recvSocket(t, c.nodes[1].sockets)
	a.expect(t, "news:2", "news:3", "news:4")
	if !a.s.Recovered() || a.s.ID() != id || !sb.Recovered() || sb.ID() != id || !slices.Contains(sb.Rooms(), "news") {
		t.Fatalf("recovered %v/%v id %s/%s (was %s), rooms %v", a.s.Recovered(), sb.Recovered(), a.s.ID(), sb.ID(), id, sb.Rooms())
	}
	// Live events go on after the replay, with stream ids as offsets.
	must(t, c.nodes[0].srv.To("news").Emit("news", 5))
	a.expect(t, "news:5")
	a.expectNothing(t)
}

func TestStreamsRecoveryRefusedForAnUnknownOffset(t *testing.T) {
	rec := &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}
	c := newStreamsCluster(t, 1, rec)
	ad := c.nodes[0].srv.Of("/").Adapter().(*StreamsAdapter)
	ad.PersistSession(socketio.PersistedSession{SID: "s1", PID: "p1", Rooms: []socketio.Room{"s1"}, Data: map[string]any{"n": 1}})
	if ttl := c.rdb.PTTL(context.Background(), "sio:session:p1").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("session TTL %v", ttl)
	}
	if _, _, ok := ad.RestoreSession("p1", "not-an-offset"); ok {
		t.Fatal("restored with an invalid offset")
	}
	if _, _, ok := ad.RestoreSession("p1", "1-0"); ok {
		t.Fatal("restored from an offset that is not in the stream")
	}
	if n := c.rdb.Exists(context.Background(), "sio:session:p1").Val(); n != 0 {
		t.Fatal("the session was not consumed")
	}
}

func TestStreamsResumeAfterRedisRestart(t *testing.T) {
	c := newStreamsCluster(t, 2, nil)
	a := dialStreams(t, c.nodes[0].ts.URL)
	recvSocket(t, c.nodes[0].sockets)
	b := dialStreams(t, c.nodes[1].ts.URL)
	recvSocket(t, c.nodes[1].sockets)
	must(t, c.nodes[1].srv.Emit("before", 0))
	a.expect(t, "before:0")
	b.expect(t, "before:0")

	redistest.Restart(t, c.addr)
	// Appended at once, before the readers are back: they read them from their last id.
	const n = 5
	sent := 0
	deadline := time.Now().Add(streamsWait)
	for sent < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.rdb.Ping(ctx).Result()
		cancel()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		must(t, c.nodes[1].srv.Emit("after", sent))
		sent++
	}
	for i := range n {
		a.expect(t, fmt.Sprintf("after:%d", i))
		b.expect(t, fmt.Sprintf("after:%d", i))
	}
	must(t, c.nodes[0].srv.Emit("marker", "end"))
	a.expect(t, "marker:end")
	b.expect(t, "marker:end")
	a.expectNothing(t)
	b.expectNothing(t)
}

func TestStreamNameSpreadsNamespacesAsNode(t *testing.T) {
	// hashCode("/") = 47, hashCode("/chat") = 46, 458, 46 097 … (computed by hand as
	// JavaScript does, with 32-bit overflow).
	h := &streamsHub{opts: (&StreamsOptions{StreamCount: 3}).withDefaults()}
	if got := h.streamName("/"); got != "socket.io-2" {
		t.Fatalf("stream of / is %q", got)
	}
	var want int32
	for _, r := range "/a-very-long-namespace-name-that-overflows" {
		want = want*31 + r
	}
	if got := h.streamName("/a-very-long-namespace-name-that-overflows"); got != fmt.Sprintf("socket.io-%d", want%3) {
		t.Fatalf("stream %q, want remainder %d", got, want%3)
	}
	one := &streamsHub{opts: (&StreamsOptions{}).withDefaults()}
	if got := one.streamName("/x"); got != "socket.io" {
		t.Fatalf("default stream %q", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(streamsWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A server that is subscribed to the namespace but never reports its client count holds a
// broadcast with acks no longer than the caller's context, not RequestTimeout (2s here).
func TestStreamsBroadcastWithAckWaitsWithinTheCallersContext(t *testing.T) {
	c := newStreamsCluster(t, 1, nil)
	dialStreams(t, c.nodes[0].ts.URL)
	recvSocket(t, c.nodes[0].sockets)
	silent := c.rdb.Subscribe(context.Background(), "socket.io#/#")
	t.Cleanup(func() { _ = silent.Close() })
	if _, err := silent.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	acks, err := c.nodes[0].srv.Of("/").EmitWithAck(ctx, "ask")
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond {
		t.Fatalf("EmitWithAck took %v (its context had 300ms)", elapsed)
	}
	if err != nil || len(acks) != 1 {
		t.Fatalf("acks %v %v (the local client answered)", acks, err)
	}

	ad := c.nodes[0].srv.Of("/").Adapter().(*StreamsAdapter)
	p, id, err := c.nodes[0].srv.Of("/").EncodeBroadcastWithAck("ask", nil)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan struct{}, 1)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	n, err := ad.BroadcastWithAckContext(ctx2, p, id, socketio.BroadcastOptions{}, func(socketio.Args, error) { answered <- struct{}{} })
	if elapsed := time.Since(start); elapsed > 1500*time.Millisecond || n != 1 || err == nil || !strings.Contains(err.Error(), "0 of 1 servers") {
		t.Fatalf("BroadcastWithAckContext: %d, %v after %v", n, err, elapsed)
	}
	select {
	case <-answered:
	case <-time.After(streamsWait):
		t.Fatal("no answer from the local client")
	}
}

// A broadcast with acks from another server gets an ack id of the receiving namespace: an
// ack its socket already waits for (same id on the sending server) is not replaced.
func TestStreamsBroadcastWithAckKeepsTheReceiversPendingAcks(t *testing.T) {
	c := newStreamsCluster(t, 2, nil)
	dialStreams(t, c.nodes[0].ts.URL)
	recvSocket(t, c.nodes[0].sockets)
	b := dialStreams(t, c.nodes[1].ts.URL)
	sb := recvSocket(t, c.nodes[1].sockets)
	held := make(chan socketio.AckFunc, 1)
	b.s.On("hold", func(_ socketio.Args, ack socketio.AckFunc) { held <- ack })

	// Node 1's first ack id goes to "hold", node 0's first to "ask": both are 0.
	ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
	defer cancel()
	holdDone := make(chan error, 1)
	go func() {
		args, err := sb.EmitWithAck(ctx, "hold")
		var s string
		if err == nil {
			err = args.Decode(0, &s)
		}
		if err == nil && s != "released" {
			err = fmt.Errorf("hold answered %q", s)
		}
		holdDone <- err
	}()
	var release socketio.AckFunc
	select {
	case release = <-held:
	case <-time.After(streamsWait):
		t.Fatal("hold did not reach the client")
	}
	acks, err := c.nodes[0].srv.Of("/").EmitWithAck(ctx, "ask")
	if err != nil || len(acks) != 2 {
		t.Fatalf("acks %v %v", acks, err)
	}
	must(t, release("released"))
	select {
	case err := <-holdDone:
		must(t, err)
	case <-time.After(streamsWait):
		t.Fatal("the pending ack of hold was lost")
	}
}
