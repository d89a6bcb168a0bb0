package redisadapter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"
	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/redistest"
	"github.com/duplexio/duplex/socketio"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// node is a socketio.Server with the redis adapter on httptest.
type node struct {
	srv *socketio.Server
	url string
}

// newNode starts a server whose sockets join the rooms listed in their "rooms" query
// parameter (comma-separated).
func newNode(t *testing.T, addr string, opts redisadapter.Options) *node {
	t.Helper()
	return newNodeOn(t, redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 1, DialTimeout: time.Second}), opts)
}

// newNodeOn is newNode on a client of any kind (closed at the end of the test).
func newNodeOn(t *testing.T, rdb redis.UniversalClient, opts redisadapter.Options) *node {
	t.Helper()
	t.Cleanup(func() { rdb.Close() })
	opts.Logger = quiet
	srv := socketio.NewServer(&socketio.Options{NewAdapter: redisadapter.New(rdb, &opts), Logger: quiet})
	srv.OnConnection(func(s *socketio.Socket) {
		if r := s.Handshake().Query.Get("rooms"); r != "" {
			for _, room := range strings.Split(r, ",") {
				s.Join(socketio.Room(room))
			}
		}
		s.SetData(map[string]any{"name": s.Handshake().Query.Get("name")})
		s.On("join", func(args socketio.Args, ack socketio.AckFunc) {
			var room string
			_ = args.Decode(0, &room)
			s.Join(socketio.Room(room))
			if ack != nil {
				_ = ack("ok")
			}
		})
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return &node{srv: srv, url: ts.URL}
}

// client is a Go client that records the events it gets.
type client struct {
	s      *socketio.ClientSocket
	mu     sync.Mutex
	events []string
	got    chan struct{}
}

func dial(t *testing.T, n *node, name, rooms string, answer any) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mopts := &socketio.ManagerOptions{
		Engine: engineio.ClientOptions{
			Transports: []string{"websocket"},
			Query:      url.Values{"name": {name}, "rooms": {rooms}},
		},
		NoReconnect: true,
		Logger:      quiet,
	}
	s, err := socketio.Dial(ctx, n.url, mopts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Disconnect)
	c := &client{s: s, got: make(chan struct{}, 1000)}
	s.OnAny(func(event string, args socketio.Args) {
		vals, _ := args.Values()
		c.mu.Lock()
		c.events = append(c.events, fmt.Sprintf("%s%v", event, vals))
		c.mu.Unlock()
		c.got <- struct{}{}
	})
	s.On("ask", func(args socketio.Args, ack socketio.AckFunc) {
		if ack != nil {
			_ = ack(answer)
		}
	})
	return c
}

// wait waits for n events in all and returns them.
func (c *client) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		if len(c.events) >= n {
			out := slices.Clone(c.events)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("got %d events, want %d: %v", len(c.events), n, c.events)
		}
	}
}

// quietFor checks that no more than n events came within d.
func (c *client) quietFor(t *testing.T, d time.Duration, n int) {
	t.Helper()
	time.Sleep(d)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) != n {
		t.Fatalf("got %d events, want %d: %v", len(c.events), n, c.events)
	}
}

func cluster(t *testing.T, opts redisadapter.Options) (string, *node, *node) {
	addr := redistest.Start(t)
	if opts.Key == "" {
		opts.Key = "t" + fmt.Sprint(time.Now().UnixNano())
	}
	return addr, newNode(t, addr, opts), newNode(t, addr, opts)
}

func modes() map[string]redisadapter.Options {
	return map[string]redisadapter.Options{
		"pubsub":          {},
		"pubsub-specific": {PublishOnSpecificResponseChannel: true},
		"sharded":         {Sharded: true},
		"sharded-static":  {Sharded: true, SubscriptionMode: redisadapter.Static},
		"sharded-dynpriv": {Sharded: true, SubscriptionMode: redisadapter.DynamicPrivate},
	}
}

func TestBroadcastAcrossNodes(t *testing.T) {
	for name, opts := range modes() {
		t.Run(name, func(t *testing.T) {
			_, n1, n2 := cluster(t, opts)
			a := dial(t, n1, "a", "r1", nil)
			b := dial(t, n2, "b", "r1,r2", nil)
			c := dial(t, n2, "c", "r2", nil)
			time.Sleep(100 * time.Millisecond) // dynamic subscriptions

			if err := n1.srv.To("r1").Emit("one", "x", []byte{1, 2}, map[string]any{"k": 1.5}); err != nil {
				t.Fatal(err)
			}
			want := "one[x [1 2] map[k:1.5]]"
			for _, cl := range []*client{a, b} {
				if got := cl.wait(t, 1); got[0] != want {
					t.Fatalf("got %q, want %q", got[0], want)
				}
			}
			// multi-room with except, from the other node
			_ = n2.srv.To("r1", "r2").Except("r2").Emit("two")
			a.wait(t, 2)
			// everyone, from n1
			_ = n1.srv.Emit("three", 3)
			a.wait(t, 3)
			b.wait(t, 2)
			c.wait(t, 1)
			a.quietFor(t, 200*time.Millisecond, 3)
			b.quietFor(t, 0, 2)
			c.quietFor(t, 0, 1)
			if got := a.wait(t, 3); got[1] != "two[]" || got[2] != "three[3]" {
				t.Fatalf("a got %v", got)
			}
			// to a socket's own room on another node (the sharded adapter's dynamic mode
			// keeps those on the namespace channel, as socket ids have 20 characters)
			_ = n1.srv.To(socketio.Room(c.s.ID())).Emit("direct")
			if got := c.wait(t, 2); got[1] != "direct[]" {
				t.Fatalf("c got %v", got)
			}
		})
	}
}

func TestRequestsAcrossNodes(t *testing.T) {
	for name, opts := range modes() {
		t.Run(name, func(t *testing.T) {
			_, n1, n2 := cluster(t, opts)
			a := dial(t, n1, "a", "r1", "from-a")
			b := dial(t, n2, "b", "r1", "from-b")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()

			// fetchSockets
			infos, err := n1.srv.Of("/").In("r1").FetchSockets(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range infos {
				m, _ := s.Data.(map[string]any)
				names = append(names, fmt.Sprint(m["name"]))
				if s.Handshake.Query.Get("name") == "" || !slices.Contains(s.Rooms, "r1") {
					t.Errorf("socket %+v", s)
				}
			}
			sort.Strings(names)
			if fmt.Sprint(names) != "[a b]" {
				t.Fatalf("fetchSockets: %v", names)
			}

			// remote join, then a broadcast to the new room
			n1.srv.Of("/").In("r1").SocketsJoin("r9")
			time.Sleep(100 * time.Millisecond)
			_ = n2.srv.To("r9").Emit("r9")
			a.wait(t, 1)
			b.wait(t, 1)

			// broadcast with acks across nodes
			answers, err := n1.srv.Timeout(3*time.Second).To("r1").EmitWithAck(ctx, "ask")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ans := range answers {
				var s string
				_ = ans.Decode(0, &s)
				got = append(got, s)
			}
			sort.Strings(got)
			if fmt.Sprint(got) != "[from-a from-b]" {
				t.Fatalf("acks: %v", got)
			}

			// server-side emit with acks, both ways
			n2.srv.Of("/").OnServerSideEmit("hi", func(args socketio.Args, ack socketio.AckFunc) {
				var x int
				_ = args.Decode(0, &x)
				if ack != nil {
					_ = ack(x + 1)
				}
			})
			res, err := n1.srv.Of("/").ServerSideEmitWithAck(ctx, "hi", 41)
			if err != nil || len(res) != 1 {
				t.Fatalf("serverSideEmitWithAck: %v %v", res, err)
			}
			var x int
			if err := res[0].Decode(0, &x); err != nil || x != 42 {
				t.Fatalf("answer %v %v", x, err)
			}

			// remote disconnect
			n2.srv.Of("/").In("r1").DisconnectSockets(false)
			deadline := time.Now().Add(5 * time.Second)
			for a.s.Connected() || b.s.Connected() {
				if time.Now().After(deadline) {
					t.Fatal("sockets not disconnected")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestDeadNodeRequestsTimeOut(t *testing.T) {
	addr := redistest.Start(t)
	opts := redisadapter.Options{Key: "dead", RequestsTimeout: 500 * time.Millisecond}
	n1 := newNode(t, addr, opts)
	// a "server" that subscribes to the request channel and never answers
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ps := rdb.Subscribe(context.Background(), "dead-request#/#")
	defer ps.Close()
	if _, err := ps.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	dial(t, n1, "a", "", nil)
	start := time.Now()
	infos, err := n1.srv.Of("/").FetchSockets(context.Background())
	if !errors.Is(err, redisadapter.ErrTimeout) || len(infos) != 1 {
		t.Fatalf("fetchSockets: %d %v", len(infos), err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRedisRestart(t *testing.T) {
	for name, opts := range map[string]redisadapter.Options{"pubsub": {}, "sharded": {Sharded: true}} {
		t.Run(name, func(t *testing.T) {
			s := redistest.StartServer(t)
			opts.Key = "restart"
			n1, n2 := newNode(t, s.Addr, opts), newNode(t, s.Addr, opts)
			b := dial(t, n2, "b", "r", nil)
			time.Sleep(100 * time.Millisecond)
			_ = n1.srv.To("r").Emit("before")
			b.wait(t, 1)
			if err := s.Restart(); err != nil {
				t.Fatal(err)
			}
			// delivery (to the room's own channel, for the sharded adapter) resumes once
			// both adapters have reconnected and resubscribed
			deadline := time.Now().Add(15 * time.Second)
			for i := 0; ; i++ {
				_ = n1.srv.To("r").Emit("after", i)
				b.mu.Lock()
				n := len(b.events)
				b.mu.Unlock()
				if n >= 2 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no delivery after the restart")
				}
				time.Sleep(100 * time.Millisecond)
			}
			// local delivery never stopped
			a := dial(t, n1, "a", "r", nil)
			_ = n1.srv.To("r").Local().Emit("local")
			a.wait(t, 1)
		})
	}
}

func TestRedisCluster(t *testing.T) {
	s := redistest.StartCluster(t)
	for _, sharded := range []bool{false, true} {
		t.Run(fmt.Sprint("sharded=", sharded), func(t *testing.T) {
			opts := redisadapter.Options{Key: fmt.Sprint("cl", sharded), Sharded: sharded}
			newClient := func() redis.UniversalClient {
				return redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{s.Addr}, MaxRetries: 1})
			}
			n1, n2 := newNodeOn(t, newClient(), opts), newNodeOn(t, newClient(), opts)
			a := dial(t, n1, "a", "r", "A")
			b := dial(t, n2, "b", "r", "B")
			time.Sleep(100 * time.Millisecond)
			_ = n2.srv.To("r").Emit("x", 1)
			a.wait(t, 1)
			b.wait(t, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			infos, err := n1.srv.Of("/").FetchSockets(ctx)
			if err != nil || len(infos) != 2 {
				t.Fatalf("fetchSockets: %d %v", len(infos), err)
			}
			answers, err := n2.srv.Timeout(3*time.Second).EmitWithAck(ctx, "ask")
			if err != nil || len(answers) != 2 {
				t.Fatalf("emitWithAck: %v %v", answers, err)
			}
		})
	}
}

func TestEmitter(t *testing.T) {
	addr, n1, n2 := cluster(t, redisadapter.Options{Key: "em"})
	a := dial(t, n1, "a", "r1", nil)
	b := dial(t, n2, "b", "r2", nil)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	e := redisadapter.NewEmitter(rdb, &redisadapter.EmitterOptions{Key: "em"})
	if err := e.Emit("connect"); !errors.Is(err, socketio.ErrReservedEvent) {
		t.Fatalf("reserved: %v", err)
	}
	if err := e.Except("r1").Emit("x", []byte{1}); err != nil {
		t.Fatal(err)
	}
	if got := b.wait(t, 1); got[0] != "x[[1]]" {
		t.Fatalf("b got %v", got)
	}
	_ = e.In("r2").SocketsJoin("r3")
	time.Sleep(100 * time.Millisecond)
	_ = e.To("r3", "r1").Emit("y")
	a.wait(t, 1)
	b.wait(t, 2)
	got := make(chan string, 1)
	n2.srv.Of("/").OnServerSideEmit("ping", func(args socketio.Args, ack socketio.AckFunc) {
		var s string
		_ = args.Decode(0, &s)
		got <- s
	})
	_ = e.ServerSideEmit("ping", "p")
	select {
	case s := <-got:
		if s != "p" {
			t.Fatalf("server-side %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no server-side emit")
	}
	_ = e.Of("/other").Emit("z") // another namespace: nobody here
	_ = e.DisconnectSockets(true)
	deadline := time.Now().Add(5 * time.Second)
	for a.s.Connected() || b.s.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("sockets not disconnected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	a.quietFor(t, 0, 1)
}

func TestRedisDownCountsAndKeepsLocalDelivery(t *testing.T) {
	s := redistest.StartServer(t)
	n1 := newNode(t, s.Addr, redisadapter.Options{Key: "down", RequestsTimeout: 300 * time.Millisecond})
	a := dial(t, n1, "a", "r", nil)
	ad := n1.srv.Of("/").Adapter().(*redisadapter.Adapter)
	redistest.Kill(t, s.Addr)
	for i := range 5 {
		_ = n1.srv.To("r").Emit("while-down", i) // never blocks on Redis
	}
	a.wait(t, 5)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := ad.Stats()
		if st.PublishFailed+st.Dropped >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// requests fail fast with what this server has
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	infos, err := n1.srv.Of("/").FetchSockets(ctx)
	if err == nil || len(infos) != 1 {
		t.Fatalf("fetchSockets with Redis down: %d %v", len(infos), err)
	}
	redistest.Restart(t, s.Addr)
}
