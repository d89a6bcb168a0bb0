package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"
	"github.com/duplexio/duplex/internal/redistest"
	"github.com/duplexio/duplex/socketio"
)

const streamsWait = 10 * time.Second

var streamsQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// streamsMixed is one Go and one Node server on the same Redis stream.
type streamsMixed struct {
	rdb      *redis.Client
	goSrv    *socketio.Server
	goURL    string
	goGone   chan string
	node     *nodeProc
	nodeURL  string
	nodeSent func(t *testing.T, cmd ...any)
}

func startStreamsMixed(t *testing.T) *streamsMixed {
	t.Helper()
	requireSIOClient(t)
	_, err := os.Stat("node_modules/@socket.io/redis-streams-adapter/package.json")
	needPeer(t, "node_modules/@socket.io/redis-streams-adapter", err == nil)
	addr := redistest.Start(t)
	m := &streamsMixed{goGone: make(chan string, 4)}
	m.rdb = redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = m.rdb.Close() })
	_ = m.rdb.FlushAll(context.Background()).Err()

	rec := &socketio.RecoveryOptions{MaxDisconnectionDuration: time.Minute}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	m.goSrv = socketio.NewServer(&socketio.Options{
		NewAdapter: redisadapter.NewStreamsAdapter(rdb, &redisadapter.StreamsOptions{
			BlockTime: 200 * time.Millisecond, Logger: streamsQuiet,
		}),
		ConnectionStateRecovery: rec,
		Logger:                  streamsQuiet,
	})
	m.goSrv.OnConnection(func(s *socketio.Socket) {
		if !s.Recovered() {
			s.Join("news")
		}
		s.OnDisconnect(func(reason string) { m.goGone <- reason })
	})
	hs := httptest.NewServer(m.goSrv)
	m.goURL = hs.URL
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.goSrv.Shutdown(ctx)
		_ = rdb.Close()
	})
	_ = m.goSrv.Of("/") // the adapter of "/" starts the reader

	m.node = startNode(t, 60*time.Second, "redis-streams-node-server.js", "redis://"+addr)
	ev := m.node.waitFor(t, streamsWait, func(e event) bool { return e.Op == "listening" })
	m.nodeURL = fmt.Sprintf("http://127.0.0.1:%d", ev.Port)
	m.nodeSent = func(t *testing.T, cmd ...any) {
		t.Helper()
		b, _ := json.Marshal(cmd)
		if _, err := m.node.stdin.Write(append(b, '\n')); err != nil {
			t.Fatal(err)
		}
		m.node.waitFor(t, streamsWait, func(e event) bool { return e.Op == "sent" })
	}
	// Both read the stream and listen on "/"'s channel.
	deadline := time.Now().Add(streamsWait)
	for {
		ctx := context.Background()
		list, _ := m.rdb.ClientList(ctx).Result()
		subs, _ := m.rdb.PubSubNumSub(ctx, "socket.io#/#").Result()
		if strings.Count(list, "cmd=xread") >= 2 && subs["socket.io#/#"] >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: clients %s, subscribers %v", list, subs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return m
}

// goClient is a Go socket.io client that records "event:arg0" of every event.
func streamsGoClient(t *testing.T, url string) chan string {
	t.Helper()
	mgr := socketio.NewManager(url, &socketio.ManagerOptions{Logger: streamsQuiet})
	t.Cleanup(mgr.Close)
	s := mgr.Socket("/", nil)
	events := make(chan string, 64)
	s.OnAny(func(ev string, args socketio.Args) {
		if b, ok := args.Binary(0); ok {
			events <- fmt.Sprintf("%s:bin %x", ev, b)
			return
		}
		var a any
		_ = args.Decode(0, &a)
		events <- fmt.Sprintf("%s:%v", ev, a)
	})
	ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return events
}

func expectEvents(t *testing.T, who string, ch chan string, want ...string) {
	t.Helper()
	var got []string
	for range want {
		select {
		case e := <-ch:
			got = append(got, e)
		case <-time.After(streamsWait):
			t.Fatalf("%s: got %q, want %q", who, got, want)
		}
	}
	slices.Sort(got)
	if w := slices.Sorted(slices.Values(want)); !slices.Equal(got, w) {
		t.Fatalf("%s: got %q, want %q", who, got, w)
	}
	select {
	case e := <-ch:
		t.Fatalf("%s: extra event %q", who, e)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestRedisStreamsMixedClusterBroadcastsOnce(t *testing.T) {
	m := startStreamsMixed(t)
	onGo := streamsGoClient(t, m.goURL)
	onNode := streamsGoClient(t, m.nodeURL)
	m.node.waitFor(t, streamsWait, func(e event) bool { return e.Op == "connect" })

	if err := m.goSrv.Emit("g", "from go"); err != nil {
		t.Fatal(err)
	}
	m.nodeSent(t, "emit", "", "n", "from node")
	m.nodeSent(t, "emitbin", "news", "nb", "010203")
	if err := m.goSrv.To("news").Emit("gb", []byte{4, 5}); err != nil {
		t.Fatal(err)
	}
	if err := m.goSrv.To("nobody").Emit("g", "to nobody"); err != nil {
		t.Fatal(err)
	}
	want := []string{"g:from go", "n:from node", "nb:bin 010203", "gb:bin 0405"}
	expectEvents(t, "client of the Go server", onGo, want...)
	expectEvents(t, "client of the Node server", onNode, want...)
}

// switchFront is a reverse proxy to one of two backends, switched by the test; while held,
// requests wait (a reconnecting client waits until the test has sent what it must miss).
type switchFront struct {
	*httptest.Server
	target atomic.Int32
	mu     sync.Mutex
	gate   chan struct{} // nil: not held
}

func (f *switchFront) hold() {
	f.mu.Lock()
	f.gate = make(chan struct{})
	f.mu.Unlock()
}

func (f *switchFront) release() {
	f.mu.Lock()
	if f.gate != nil {
		close(f.gate)
		f.gate = nil
	}
	f.mu.Unlock()
}

func newSwitchFront(t *testing.T, backends ...string) *switchFront {
	f := &switchFront{}
	var proxies []*httputil.ReverseProxy
	for _, b := range backends {
		u, _ := url.Parse(b)
		proxies = append(proxies, httputil.NewSingleHostReverseProxy(u))
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		gate := f.gate
		f.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-r.Context().Done():
				return
			case <-time.After(streamsWait):
			}
		}
		proxies[f.target.Load()].ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	t.Cleanup(f.release)
	return f
}

func TestRedisStreamsRecoveryMovesBetweenNodeAndGo(t *testing.T) {
	m := startStreamsMixed(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node server stderr:\n%s", m.node.stderr.String())
			entries, err := m.rdb.XRange(context.Background(), "socket.io", "-", "+").Result()
			t.Logf("stream (%v):", err)
			for _, e := range entries {
				t.Logf("  %s %v", e.ID, e.Values)
			}
		}
	})
	f := newSwitchFront(t, m.nodeURL, m.goURL) // 0: Node, 1: Go
	p := startNode(t, 30*time.Second, "sio-recovery.js", f.URL)
	first := p.waitFor(t, streamsWait, func(e event) bool { return e.Op == "connect" })
	m.node.waitFor(t, streamsWait, func(e event) bool { return e.Op == "connect" })

	// Node's streams adapter reads from "$" until it has read an entry, so an entry added
	// between two of its XREADs is lost: warm it up until the client gets one.
	warmed := false
	for deadline := time.Now().Add(streamsWait); !warmed && time.Now().Before(deadline); {
		if err := m.goSrv.To("news").Emit("warmup"); err != nil {
			t.Fatal(err)
		}
		if line, ok := p.nextLine(t, 300*time.Millisecond, nil); ok {
			ev := decodeLine[event](t, "sio-recovery.js", line)
			warmed = ev.Op == "event" && strings.Contains(ev.Data, `"warmup"`)
		}
	}
	if !warmed {
		t.Fatal("the client of the Node server never got a broadcast of the Go server")
	}
	nextEvent := func() []any {
		t.Helper()
		ev := p.waitFor(t, streamsWait, func(e event) bool { return e.Op == "event" && !strings.Contains(e.Data, `"warmup"`) })
		var args []any
		if err := json.Unmarshal([]byte(ev.Data), &args); err != nil {
			t.Fatal(err)
		}
		return args
	}
	if err := m.goSrv.To("news").Emit("before", 0); err != nil {
		t.Fatal(err)
	}
	if args := nextEvent(); len(args) != 3 || args[0] != "before" {
		t.Fatalf("event %v (want an offset as last argument)", args)
	}

	// From the Node server to the Go server.
	f.target.Store(1)
	f.hold()
	if _, err := io.WriteString(p.stdin, "drop\n"); err != nil {
		t.Fatal(err)
	}
	gone := m.node.waitFor(t, streamsWait, func(e event) bool { return e.Op == "disconnect" })
	if gone.Reason != "transport close" {
		t.Fatalf("the Node server saw %q", gone.Reason)
	}
	if err := m.goSrv.To("news").Emit("missed", 1); err != nil {
		t.Fatal(err)
	}
	m.nodeSent(t, "emit", "news", "missed", 2)
	m.nodeSent(t, "emit", "elsewhere", "not for it", 0)
	time.Sleep(100 * time.Millisecond) // the Node server's XADDs are not awaited by "sent"
	f.release()
	again, replayed := reconnected(t, p)
	if !again.Match || again.ID != first.ID {
		t.Fatalf("on the Go server as %s (recovered %v), was %s", again.ID, again.Match, first.ID)
	}
	// The Go server sends the missed events after its CONNECT answer.
	if len(replayed) != 0 {
		t.Fatalf("events before the connection: %v", replayed)
	}
	var offsets []string
	for i := 1; i <= 2; i++ {
		args := nextEvent()
		if len(args) != 3 || args[0] != "missed" || args[1] != float64(i) {
			t.Fatalf("missed event %d: %v", i, args)
		}
		offsets = append(offsets, args[2].(string))
	}

	// And back to the Node server.
	f.target.Store(0)
	f.hold()
	if _, err := io.WriteString(p.stdin, "drop\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-m.goGone:
		if r != "transport close" {
			t.Fatalf("the Go server saw %q", r)
		}
	case <-time.After(streamsWait):
		t.Fatal("the Go server did not see the connection go")
	}
	if err := m.goSrv.Emit("missed", 3); err != nil {
		t.Fatal(err)
	}
	m.nodeSent(t, "emit", "news", "missed", 4)
	time.Sleep(100 * time.Millisecond)
	f.release()
	back, replayed := reconnected(t, p)
	if !back.Match || back.ID != first.ID {
		t.Fatalf("back on the Node server as %s (recovered %v), was %s", back.ID, back.Match, first.ID)
	}
	// The Node server restores the session the Go server stored and replays the entries
	// after the client's offset (the last event the Go server sent it), the Go server's
	// and its own, each with its entry id as offset. It writes them before its CONNECT
	// answer, and socket.io-client emits them before "connect".
	if len(replayed) != 2 {
		t.Fatalf("replayed by the Node server: %v, want missed 3 and 4", replayed)
	}
	last := offsets[len(offsets)-1]
	for i, args := range replayed {
		if len(args) != 3 || args[0] != "missed" || args[1] != float64(3+i) {
			t.Fatalf("replayed event %d: %v", 3+i, args)
		}
		if off, _ := args[2].(string); !streamIDBefore(last, off) {
			t.Fatalf("replayed event %d has offset %v, not after %s", 3+i, args[2], last)
		}
		last = args[2].(string)
	}
	// Its room came back with it on both kinds of server.
	if err := m.goSrv.To("news").Emit("after", 5); err != nil {
		t.Fatal(err)
	}
	if args := nextEvent(); args[0] != "after" || len(args) != 3 || !streamIDBefore(last, args[2].(string)) {
		t.Fatalf("after recovery: %v", args)
	}
}

// reconnected waits for the recovery client's next connection and returns it with the
// events (name and arguments) it printed before it: socket.io-client emits the events a
// server sends ahead of its CONNECT answer (as the Node server replays missed events)
// before "connect".
func reconnected(t *testing.T, p *nodeProc) (event, [][]any) {
	t.Helper()
	var before [][]any
	ev := p.waitFor(t, streamsWait, func(e event) bool {
		if e.Op == "event" {
			var args []any
			if err := json.Unmarshal([]byte(e.Data), &args); err != nil {
				t.Fatal(err)
			}
			before = append(before, args)
		}
		return e.Op == "connect"
	})
	return ev, before
}

// streamIDBefore reports whether the stream entry id a comes before b.
func streamIDBefore(a, b string) bool {
	var at, as, bt, bs uint64
	if _, err := fmt.Sscanf(a, "%d-%d", &at, &as); err != nil {
		return false
	}
	if _, err := fmt.Sscanf(b, "%d-%d", &bt, &bs); err != nil {
		return false
	}
	return at < bt || at == bt && as < bs
}

// askClient connects a Go client to url that answers "ask" with "answer from " + who.
func askClient(t *testing.T, url, who string) {
	t.Helper()
	mgr := socketio.NewManager(url, &socketio.ManagerOptions{Logger: streamsQuiet})
	t.Cleanup(mgr.Close)
	s := mgr.Socket("/", nil)
	s.On("ask", func(_ socketio.Args, ack socketio.AckFunc) {
		if ack != nil {
			_ = ack("answer from " + who)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatal(err)
	}
}

// Server-side events and broadcasts with acks between a Go and a Node server on the
// streams adapters: the Go server's handlers are Namespace.OnServerSideEmit's.
func TestRedisStreamsMixedClusterAcksAndServerSideEvents(t *testing.T) {
	m := startStreamsMixed(t)
	got := make(chan string, 4)
	m.goSrv.Of("/").OnServerSideEmit("hello", func(args socketio.Args, ack socketio.AckFunc) {
		var s string
		_ = args.Decode(0, &s)
		got <- s
		if ack != nil {
			_ = ack("go got " + s)
		}
	})
	gotOnGo := func(want string) {
		t.Helper()
		select {
		case s := <-got:
			if s != want {
				t.Fatalf("the Go server's handler got %q, want %q", s, want)
			}
		case <-time.After(streamsWait):
			t.Fatalf("the Go server's handler did not get %q", want)
		}
	}
	nodeResult := func(op string) event {
		t.Helper()
		ev := m.node.waitFor(t, streamsWait, func(e event) bool { return e.Op == op || e.Op == "ackerr" })
		if ev.Op == "ackerr" {
			t.Fatalf("node: %s", ev.Message)
		}
		return ev
	}

	// Node to Go, without and with an answer.
	m.nodeSent(t, "sse", "", "hello", "plain")
	gotOnGo("plain")
	m.nodeSent(t, "sseack", "", "hello", "asked")
	gotOnGo("asked")
	if ev := nodeResult("sseack"); ev.Data != `["go got asked"]` {
		t.Fatalf("the Node server's answers %s", ev.Data)
	}

	// Go to Node.
	ctx, cancel := context.WithTimeout(context.Background(), streamsWait)
	defer cancel()
	if err := m.goSrv.Of("/").ServerSideEmit("hello", "from go"); err != nil {
		t.Fatal(err)
	}
	if ev := nodeResult("sse"); ev.Data != "from go" {
		t.Fatalf("the Node server got %q", ev.Data)
	}
	answers, err := m.goSrv.Of("/").ServerSideEmitWithAck(ctx, "hello", "asked by go")
	var answer string
	if err == nil && len(answers) == 1 {
		err = answers[0].Decode(0, &answer)
	}
	if err != nil || answer != "node got asked by go" {
		t.Fatalf("the Go server's answers %v %q %v", answers, answer, err)
	}
	if ev := nodeResult("sse"); ev.Data != "asked by go" {
		t.Fatalf("the Node server got %q", ev.Data)
	}

	// Broadcasts with acks reach the clients of both servers, from either.
	askClient(t, m.goURL, "go")
	askClient(t, m.nodeURL, "node")
	m.node.waitFor(t, streamsWait, func(e event) bool { return e.Op == "connect" })
	acks, err := m.goSrv.Of("/").EmitWithAck(ctx, "ask")
	var from []string
	for _, a := range acks {
		var s string
		_ = a.Decode(0, &s)
		from = append(from, s)
	}
	slices.Sort(from)
	if err != nil || !slices.Equal(from, []string{"answer from go", "answer from node"}) {
		t.Fatalf("the Go server's acks %q %v", from, err)
	}
	m.nodeSent(t, "ack", "", "ask", 0)
	if ev := nodeResult("acks"); ev.Data != `["answer from go","answer from node"]` {
		t.Fatalf("the Node server's acks %s", ev.Data)
	}
}
