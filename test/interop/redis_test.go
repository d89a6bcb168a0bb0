package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
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

// The mixed cluster: two duplex servers (redisadapter) and one Node socket.io 4.8.4 server
// (@socket.io/redis-adapter 8.3.0, redis-node-server.js) on one Redis, with official
// socket.io-client clients on each and a Go client on the Node server.

var quietRedis = slog.New(slog.NewTextHandler(io.Discard, nil))

func requireRedisPeers(t *testing.T) {
	t.Helper()
	requireNode(t)
	for _, mod := range []string{"@socket.io/redis-adapter", "@socket.io/redis-emitter", "redis", "socket.io", "socket.io-client"} {
		_, err := os.Stat("node_modules/" + mod + "/package.json")
		needPeer(t, "node_modules/"+mod, err == nil)
	}
}

// goRedisNode is a duplex server on the redis adapter: its sockets join the rooms of their
// "rooms" query parameter and get data {name}; it answers the server-side event "hi" with
// "go<i>:<arg>".
type goRedisNode struct {
	srv *socketio.Server
	url string
}

func startGoRedisNode(t *testing.T, i int, addr string, opts redisadapter.Options) *goRedisNode {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	opts.Logger = quietRedis
	srv := socketio.NewServer(&socketio.Options{NewAdapter: redisadapter.New(rdb, &opts), Logger: quietRedis})
	srv.OnConnection(func(s *socketio.Socket) {
		q := s.Handshake().Query
		s.SetData(map[string]any{"name": q.Get("name")})
		if r := q.Get("rooms"); r != "" {
			for _, room := range strings.Split(r, ",") {
				s.Join(socketio.Room(room))
			}
		}
	})
	srv.Of("/").OnServerSideEmit("hi", func(args socketio.Args, ack socketio.AckFunc) {
		var x any
		_ = args.Decode(0, &x)
		if ack != nil {
			_ = ack(fmt.Sprintf("go%d:%v", i, x))
		}
	})
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		ts.Close()
	})
	return &goRedisNode{srv: srv, url: ts.URL}
}

// redisEv is a line of redis-node-server.js.
type redisEv struct {
	Op      string            `json:"op"`
	Name    string            `json:"name"`
	Event   string            `json:"event"`
	Args    json.RawMessage   `json:"args"`
	Answers json.RawMessage   `json:"answers"`
	Err     string            `json:"err"`
	Reason  string            `json:"reason"`
	Port    int               `json:"port"`
	Message string            `json:"message"`
	Sockets []json.RawMessage `json:"sockets"`
	ID      string            `json:"id"`
	Rooms   []string          `json:"rooms"`
}

// nodeCluster drives redis-node-server.js and records what its clients receive.
type nodeCluster struct {
	p      *nodeProc
	url    string
	mu     sync.Mutex
	events map[string][]string // client name -> "event args"
	discon map[string]string
}

func startNodeRedisServer(t *testing.T, addr, key string, sharded bool) *nodeCluster {
	return startNodeRedisServerWith(t, addr, map[string]any{"key": key, "sharded": sharded})
}

// startNodeRedisServerWith starts redis-node-server.js with cfg (port and redis added).
func startNodeRedisServerWith(t *testing.T, addr string, cfg map[string]any) *nodeCluster {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg["port"], cfg["redis"] = port, "redis://"+addr
	b, _ := json.Marshal(cfg)
	nc := &nodeCluster{p: startNode(t, 50*time.Second, "redis-node-server.js", string(b)),
		url: fmt.Sprintf("http://127.0.0.1:%d", port), events: map[string][]string{}, discon: map[string]string{}}
	nc.until(t, 15*time.Second, func(e redisEv) bool { return e.Op == "listening" })
	return nc
}

func (nc *nodeCluster) send(t *testing.T, cmd map[string]any) {
	t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := nc.p.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("redis-node-server.js stdin: %v", err)
	}
}

// until reads lines (recording client events) until one matches.
func (nc *nodeCluster) until(t *testing.T, timeout time.Duration, match func(redisEv) bool) redisEv {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("redis-node-server.js: expected line not seen within %v; stderr:\n%s", timeout, nc.p.stderr.String())
		}
		line, ok := nc.p.nextLine(t, left, nil)
		if !ok {
			continue
		}
		e := decodeLine[redisEv](t, nc.p.name, line)
		switch e.Op {
		case "error":
			t.Fatalf("redis-node-server.js failed: %s\nstderr:\n%s", e.Message, nc.p.stderr.String())
		case "event":
			nc.mu.Lock()
			nc.events[e.Name] = append(nc.events[e.Name], e.Event+" "+string(e.Args))
			nc.mu.Unlock()
		case "disconnect":
			nc.mu.Lock()
			nc.discon[e.Name] = e.Reason
			nc.mu.Unlock()
		}
		if match(e) {
			return e
		}
	}
}

// call sends a command and returns its result line (the first line with op).
func (nc *nodeCluster) call(t *testing.T, cmd map[string]any, op string) redisEv {
	t.Helper()
	nc.send(t, cmd)
	return nc.until(t, 10*time.Second, func(e redisEv) bool { return e.Op == op })
}

// settle reads lines for d (recording events).
func (nc *nodeCluster) settle(t *testing.T, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	id := fmt.Sprint(time.Now().UnixNano())
	nc.call(t, map[string]any{"cmd": "mark", "id": id}, "mark")
}

// expect waits until every named client got exactly the wanted events (in any order) and no
// more within a short settling time; then it forgets them.
func (nc *nodeCluster) expect(t *testing.T, want map[string][]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc.mu.Lock()
		done := true
		for name, w := range want {
			if len(nc.events[name]) < len(w) {
				done = false
			}
		}
		nc.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			nc.mu.Lock()
			defer nc.mu.Unlock()
			t.Fatalf("events: got %v, want %v", nc.events, want)
		}
		nc.until(t, 10*time.Second, func(e redisEv) bool { return e.Op == "event" })
	}
	nc.settle(t, 300*time.Millisecond)
	nc.mu.Lock()
	defer nc.mu.Unlock()
	for name := range nc.events {
		got := slices.Clone(nc.events[name])
		w := slices.Clone(want[name])
		sort.Strings(got)
		sort.Strings(w)
		if !slices.Equal(got, w) {
			t.Errorf("client %s got %q, want %q (exactly once each)", name, got, w)
		}
	}
	nc.events = map[string][]string{}
}

// goClient is a Go client (socketio.Dial) that records its events like the Node ones.
type goClient struct {
	s      *socketio.ClientSocket
	mu     sync.Mutex
	events []string
}

func dialGo(t *testing.T, base, name, rooms string) *goClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := socketio.Dial(ctx, base, &socketio.ManagerOptions{
		Engine:      engineio.ClientOptions{Transports: []string{"websocket"}, Query: url.Values{"name": {name}, "rooms": {rooms}}},
		NoReconnect: true,
		Logger:      quietRedis,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Disconnect)
	c := &goClient{s: s}
	s.OnAny(func(event string, args socketio.Args) {
		raw := make([]string, args.Len())
		for i := range raw {
			if b, ok := args.Binary(i); ok {
				raw[i] = fmt.Sprintf(`{"bin":"%x"}`, b)
			} else {
				raw[i] = string(args.Raw(i))
			}
		}
		c.mu.Lock()
		c.events = append(c.events, event+" ["+strings.Join(raw, ",")+"]")
		c.mu.Unlock()
	})
	s.On("ask", func(_ socketio.Args, ack socketio.AckFunc) {
		if ack != nil {
			_ = ack("from-" + name)
		}
	})
	return c
}

func (c *goClient) take(t *testing.T, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.events)
		c.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	got := slices.Clone(c.events)
	c.events = nil
	c.mu.Unlock()
	sort.Strings(got)
	w := slices.Clone(want)
	sort.Strings(w)
	if !slices.Equal(got, w) {
		t.Errorf("go client got %q, want %q", got, w)
	}
}

func answersOf(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answers %s: %v", raw, err)
	}
	sort.Strings(out)
	return out
}

// waitRoom waits until fetchSockets from g finds want sockets in room (remote joins and
// leaves are not acknowledged: this is how a test knows they were applied).
func waitRoom(t *testing.T, g *goRedisNode, room socketio.Room, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		infos, err := g.srv.Of("/").In(room).FetchSockets(ctx)
		cancel()
		if err == nil && len(infos) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: %d sockets (%v), want %d", room, len(infos), err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisMixedCluster(t *testing.T) {
	requireRedisPeers(t)
	for _, v := range []struct {
		name              string
		sharded, specific bool
	}{{"pubsub", false, false}, {"pubsub-specific-response", false, true}, {"sharded", true, false}} {
		t.Run(v.name, func(t *testing.T) { testMixedCluster(t, v.sharded, v.specific) })
	}
}

func testMixedCluster(t *testing.T, sharded, specific bool) {
	addr := redistest.Start(t)
	key := fmt.Sprintf("mix%d", time.Now().UnixNano())
	opts := redisadapter.Options{Key: key, Sharded: sharded, PublishOnSpecificResponseChannel: specific, RequestsTimeout: 3 * time.Second}
	g1, g2 := startGoRedisNode(t, 1, addr, opts), startGoRedisNode(t, 2, addr, opts)
	nc := startNodeRedisServerWith(t, addr, map[string]any{"key": key, "sharded": sharded, "specific": specific})

	// Node clients: c1 on go1 (r1), c2 on go2 (r1, r2), c3 on node (r1), c4 on node (r2);
	// a Go client gc on node (r1).
	for _, c := range []struct{ name, url, rooms string }{
		{"c1", g1.url, "r1"}, {"c2", g2.url, "r1,r2"}, {"c3", nc.url, "r1"}, {"c4", nc.url, "r2"},
	} {
		nc.call(t, map[string]any{"cmd": "client", "name": c.name, "url": c.url, "rooms": c.rooms}, "connected")
	}
	gc := dialGo(t, nc.url, "gc", "r1")
	time.Sleep(300 * time.Millisecond) // the sharded adapters' dynamic room subscriptions

	t.Run("broadcast", func(t *testing.T) {
		// from a Go node to one room, with binary and nested values
		if err := g1.srv.To("r1").Emit("hello", "x", []byte{1, 2, 255}, map[string]any{"n": 1.5, "b": []byte{7}}); err != nil {
			t.Fatal(err)
		}
		hello := `hello ["x",{"bin":"0102ff"},{"b":{"bin":"07"},"n":1.5}]`
		nc.expect(t, map[string][]string{"c1": {hello}, "c2": {hello}, "c3": {hello}})
		gc.take(t, []string{goHello})

		// from Node to one room with an exception
		nc.call(t, map[string]any{"cmd": "broadcast", "rooms": []string{"r1"}, "except": []string{"r2"}, "event": "n1", "args": []any{1, map[string]any{"bin": "aa"}}}, "done")
		n1 := `n1 [1,{"bin":"aa"}]`
		nc.expect(t, map[string][]string{"c1": {n1}, "c3": {n1}})
		gc.take(t, []string{`n1 [1,{"bin":"aa"}]`})

		// from the other Go node to two rooms: each member once
		_ = g2.srv.To("r1", "r2").Emit("multi", 7)
		m := `multi [7]`
		nc.expect(t, map[string][]string{"c1": {m}, "c2": {m}, "c3": {m}, "c4": {m}})
		gc.take(t, []string{m})

		// to everyone but r1, from Node
		nc.call(t, map[string]any{"cmd": "broadcast", "except": []string{"r1"}, "event": "all"}, "done")
		nc.expect(t, map[string][]string{"c4": {"all []"}})
		gc.take(t, nil)
	})

	t.Run("fetchSockets", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		infos, err := g1.srv.Of("/").In("r1").FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range infos {
			m, _ := s.Data.(map[string]any)
			names = append(names, fmt.Sprint(m["name"]))
			if s.Handshake.Query.Get("name") != fmt.Sprint(m["name"]) || !slices.Contains(s.Rooms, "r1") || s.Handshake.Time.IsZero() {
				t.Errorf("socket %s: handshake %+v rooms %v", s.ID, s.Handshake, s.Rooms)
			}
		}
		sort.Strings(names)
		if fmt.Sprint(names) != "[c1 c2 c3 gc]" {
			t.Errorf("Go fetchSockets(r1): %v", names)
		}
		e := nc.call(t, map[string]any{"cmd": "fetch", "rooms": []string{"r2"}}, "fetch")
		if e.Err != "" {
			t.Fatal(e.Err)
		}
		names = nil
		for _, raw := range e.Sockets {
			var s struct {
				Name  string   `json:"name"`
				Rooms []string `json:"rooms"`
			}
			_ = json.Unmarshal(raw, &s)
			names = append(names, s.Name)
			if !slices.Contains(s.Rooms, "r2") {
				t.Errorf("Node fetchSockets: %s", raw)
			}
		}
		sort.Strings(names)
		if fmt.Sprint(names) != "[c2 c4]" {
			t.Errorf("Node fetchSockets(r2): %v", names)
		}
	})

	t.Run("remoteJoinLeave", func(t *testing.T) {
		// Node makes r2 join r5; a Go node broadcasts to r5
		nc.call(t, map[string]any{"cmd": "join", "rooms": []string{"r2"}, "room": "r5"}, "done")
		waitRoom(t, g1, "r5", 2)
		_ = g1.srv.To("r5").Emit("r5")
		nc.expect(t, map[string][]string{"c2": {"r5 []"}, "c4": {"r5 []"}})
		// a Go node makes r1 join r6 and c2 leave r5; Node broadcasts to r5 and r6
		g2.srv.Of("/").In("r1").SocketsJoin("r6")
		g2.srv.Of("/").In("c2room-none").SocketsLeave("r5") // matches nobody
		g1.srv.Of("/").In("r2").Except("r1").SocketsLeave("r5")
		waitRoom(t, g2, "r6", 4)
		waitRoom(t, g2, "r5", 1)
		time.Sleep(100 * time.Millisecond) // the sharded adapters' dynamic subscriptions to r6
		nc.call(t, map[string]any{"cmd": "broadcast", "rooms": []string{"r5", "r6"}, "event": "r56"}, "done")
		nc.expect(t, map[string][]string{"c1": {"r56 []"}, "c2": {"r56 []"}, "c3": {"r56 []"}})
		gc.take(t, []string{"r56 []"})
	})

	if !sharded {
		t.Run("allRooms", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rooms, err := g1.srv.Of("/").Adapter().(*redisadapter.Adapter).AllRooms(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []socketio.Room{"r1", "r2", "r5", "r6"} {
				if !slices.Contains(rooms, r) {
					t.Errorf("Go allRooms lacks %s: %v", r, rooms)
				}
			}
			e := nc.call(t, map[string]any{"cmd": "allRooms"}, "rooms")
			if e.Err != "" {
				t.Fatal(e.Err)
			}
			for _, r := range []string{"r1", "r2", "r5", "r6"} {
				if !slices.Contains(e.Rooms, r) {
					t.Errorf("Node allRooms lacks %s: %v", r, e.Rooms)
				}
			}
		})
	}

	t.Run("serverSideEmit", func(t *testing.T) {
		// without ack, Go to Node (and the other Go server)
		if err := g2.srv.Of("/").ServerSideEmit("hi", "plain", []byte{4}); err != nil {
			t.Fatal(err)
		}
		e := nc.until(t, 5*time.Second, func(e redisEv) bool { return e.Op == "sse" })
		if string(e.Args) != `["plain",{"bin":"04"}]` {
			t.Errorf("Node got server-side emit %s", e.Args)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := g1.srv.Of("/").ServerSideEmitWithAck(ctx, "hi", 5)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range res {
			var s string
			_ = a.Decode(0, &s)
			got = append(got, s)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != "[go2:5 node:5]" {
			t.Errorf("Go serverSideEmitWithAck: %v", got)
		}
		e = nc.call(t, map[string]any{"cmd": "sse", "event": "hi", "args": []any{"x"}}, "sse-ack")
		if e.Err != "" {
			t.Fatal(e.Err)
		}
		if got := answersOf(t, e.Answers); fmt.Sprint(got) != "[go1:x go2:x]" {
			t.Errorf("Node serverSideEmitWithAck: %v", got)
		}
	})

	t.Run("broadcastWithAck", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		answers, err := g2.srv.Timeout(3*time.Second).To("r1").EmitWithAck(ctx, "ask")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range answers {
			var s string
			_ = a.Decode(0, &s)
			got = append(got, s)
		}
		sort.Strings(got)
		if fmt.Sprint(got) != "[from-c1 from-c2 from-c3 from-gc]" {
			t.Errorf("Go emitWithAck: %v", got)
		}
		e := nc.call(t, map[string]any{"cmd": "emitAck", "rooms": []string{"r2"}, "event": "ask"}, "emit-ack")
		if e.Err != "" {
			t.Fatal(e.Err)
		}
		if got := answersOf(t, e.Answers); fmt.Sprint(got) != "[from-c2 from-c4]" {
			t.Errorf("Node emitWithAck: %v", got)
		}
		nc.settle(t, 0)
		nc.mu.Lock()
		nc.events = map[string][]string{} // the "ask" events themselves
		nc.mu.Unlock()
		gc.take(t, []string{"ask []"})
	})

	if !sharded {
		t.Run("emitter", func(t *testing.T) {
			nc.call(t, map[string]any{"cmd": "emitter", "rooms": []string{"r2"}, "event": "em", "args": []any{"e", map[string]any{"bin": "01"}}}, "done")
			em := `em ["e",{"bin":"01"}]`
			nc.expect(t, map[string][]string{"c2": {em}, "c4": {em}})
			// the Go emitter
			rdb := redis.NewClient(&redis.Options{Addr: addr})
			defer rdb.Close()
			e := redisadapter.NewEmitter(rdb, &redisadapter.EmitterOptions{Key: key})
			if err := e.To("r1").Except("r2").Emit("gem", 1, []byte{9}); err != nil {
				t.Fatal(err)
			}
			gem := `gem [1,{"bin":"09"}]`
			nc.expect(t, map[string][]string{"c1": {gem}, "c3": {gem}})
			gc.take(t, []string{gem})
			if err := e.In("r2").SocketsJoin("r7"); err != nil {
				t.Fatal(err)
			}
			waitRoom(t, g1, "r7", 2)
			_ = e.To("r7").Emit("r7")
			nc.expect(t, map[string][]string{"c2": {"r7 []"}, "c4": {"r7 []"}})
		})
	}

	t.Run("remoteDisconnect", func(t *testing.T) {
		g1.srv.Of("/").In("r2").DisconnectSockets(false)
		deadline := time.Now().Add(10 * time.Second)
		for {
			nc.mu.Lock()
			n := len(nc.discon)
			nc.mu.Unlock()
			if n >= 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("disconnected: %v", nc.discon)
			}
			nc.until(t, 10*time.Second, func(e redisEv) bool { return e.Op == "disconnect" })
		}
		nc.settle(t, 200*time.Millisecond)
		nc.mu.Lock()
		defer nc.mu.Unlock()
		if nc.discon["c2"] != "io server disconnect" || nc.discon["c4"] != "io server disconnect" || len(nc.discon) != 2 {
			t.Errorf("disconnected: %v", nc.discon)
		}
	})
}

// goHello is "hello" as the Go client's Raw shows it: a nested binary value stays a
// placeholder there.
const goHello = `hello ["x",{"bin":"0102ff"},{"b":{"_placeholder":true,"num":1},"n":1.5}]`

func (c *goClient) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.events {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

// waitCount waits until c got at least n events starting with prefix.
func (c *goClient) waitCount(t *testing.T, prefix string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for c.count(prefix) < n {
		if time.Now().After(deadline) {
			t.Fatalf("got %d %q events, want %d", c.count(prefix), prefix, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisFaults: a Node server killed (SIGKILL) in the middle of broadcasts leaves the Go
// servers serving, and their requests complete with the live servers' answers; after a
// Redis restart, delivery across servers resumes.
func TestRedisFaults(t *testing.T) {
	requireRedisPeers(t)
	rs := redistest.StartServer(t)
	key := fmt.Sprintf("fault%d", time.Now().UnixNano())
	opts := redisadapter.Options{Key: key, RequestsTimeout: 2 * time.Second}
	g1, g2 := startGoRedisNode(t, 1, rs.Addr, opts), startGoRedisNode(t, 2, rs.Addr, opts)
	nc := startNodeRedisServer(t, rs.Addr, key, false)
	a := dialGo(t, g1.url, "a", "r")
	b := dialGo(t, g2.url, "b", "r")
	n := dialGo(t, nc.url, "n", "r")

	// broadcasts from every server reach everyone
	_ = g1.srv.To("r").Emit("warm")
	for _, c := range []*goClient{a, b, n} {
		c.waitCount(t, "warm", 1, 5*time.Second)
	}

	// tick from g1 every 5 ms; kill the Node server in the middle
	stop := make(chan struct{})
	ticked := make(chan int)
	go func() {
		i := 0
		defer func() { ticked <- i }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				_ = g1.srv.To("r").Emit("tick", i)
				i++
			}
		}
	}()
	b.waitCount(t, "tick", 20, 5*time.Second)
	if err := nc.p.cmd.Process.Kill(); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	<-nc.p.exited
	b.waitCount(t, "tick", b.count("tick")+20, 5*time.Second)
	close(stop)
	sent := <-ticked
	b.waitCount(t, "tick", sent, 5*time.Second)
	if got := b.count("tick"); got != sent {
		t.Errorf("b got %d ticks, %d sent", got, sent)
	}

	// requests complete with the live servers' answers, within the requests timeout
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	infos, err := g1.srv.Of("/").FetchSockets(ctx)
	if len(infos) != 2 {
		t.Errorf("fetchSockets after the kill: %d sockets (%v)", len(infos), err)
	}
	res, err := g2.srv.Of("/").ServerSideEmitWithAck(ctx, "hi", 1)
	if len(res) != 1 {
		t.Errorf("serverSideEmitWithAck after the kill: %d answers (%v)", len(res), err)
	}
	answers, err := g1.srv.Timeout(3*time.Second).EmitWithAck(ctx, "ask")
	if len(answers) != 2 {
		t.Errorf("emitWithAck after the kill: %d answers (%v)", len(answers), err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("requests took %v", d)
	}

	// Redis restarts: delivery resumes both ways (go-redis reconnects, the adapters
	// resubscribe); local delivery never stopped.
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	_ = g1.srv.To("r").Local().Emit("local")
	a.waitCount(t, "local", 1, 5*time.Second)
	for _, dir := range []struct {
		from *goRedisNode
		to   *goClient
	}{{g1, b}, {g2, a}} {
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; dir.to.count("resumed") == 0; i++ {
			if time.Now().After(deadline) {
				t.Fatal("no delivery across servers after the Redis restart")
			}
			_ = dir.from.srv.To("r").Emit("resumed", i)
			time.Sleep(100 * time.Millisecond)
		}
	}
}
