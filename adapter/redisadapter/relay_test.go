package redisadapter_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"
	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/internal/lbtest"
	"github.com/duplexio/duplex/internal/redistest"
	"github.com/duplexio/duplex/socketio"
)

// relayNode is an Engine.IO server of a cluster relaying over Redis.
type relayNode struct {
	srv    *engineio.Server
	relay  *redisadapter.Relay
	url    string // http://127.0.0.1:N
	opened chan *engineio.Session
	closed chan engineio.CloseReason
	quiet  atomic.Bool // no echo
}

// newRedisClient returns a client of the Redis at addr, closed when the test ends.
func newRedisClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// serveNode serves srv on a loopback port with a relay over the Redis at addr; at the end of
// the test the server is shut down, then the relay closed.
func serveNode(t testing.TB, addr string, srv *engineio.Server, h http.Handler, shutdown func(context.Context) error) (*redisadapter.Relay, string) {
	t.Helper()
	rc := newRedisClient(t, addr)
	relay, err := redisadapter.NewRelay(context.Background(), rc, srv, &redisadapter.RelayOptions{Key: "relaytest"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
		if err := relay.Close(); err != nil {
			t.Errorf("relay Close: %v", err)
		}
	})
	return relay, hs.URL
}

// newEchoCluster starts n Engine.IO echo servers (ping interval 300 ms, ping timeout
// 200 ms) relaying to each other over the Redis at addr, and a round-robin front.
func newEchoCluster(t testing.TB, addr string, n int) ([]*relayNode, *lbtest.Front) {
	t.Helper()
	nodes := make([]*relayNode, n)
	urls := make([]string, n)
	for i := range nodes {
		node := &relayNode{opened: make(chan *engineio.Session, 16), closed: make(chan engineio.CloseReason, 16)}
		node.srv = &engineio.Server{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
			OnConnection: func(s *engineio.Session) {
				s.OnMessage = func(data []byte, binary bool) {
					if node.quiet.Load() {
						return
					}
					flags := engineio.Text
					if binary {
						flags = engineio.Binary
					}
					_ = s.Send(bytes.Clone(data), flags)
				}
				s.OnClose = func(reason engineio.CloseReason, _ error) { node.closed <- reason }
				node.opened <- s
			},
		}
		node.relay, node.url = serveNode(t, addr, node.srv, node.srv, node.srv.Shutdown)
		urls[i] = node.url
		nodes[i] = node
	}
	return nodes, lbtest.RoundRobin(t, urls...)
}

func TestRelayOverRedisServesPollingWithoutStickySessions(t *testing.T) {
	addr := redistest.Start(t)
	nodes, front := newEchoCluster(t, addr, 2)
	received := make(chan string, 256)
	closed := make(chan engineio.CloseReason, 1)
	httpc := &http.Client{Transport: &http.Transport{}}
	defer httpc.CloseIdleConnections()
	c, err := engineio.Dial(context.Background(), front.URL, &engineio.ClientOptions{
		Transports: []string{engineio.TransportPolling},
		HTTPClient: httpc,
		OnMessage:  func(data []byte, _ bool) { received <- string(data) },
		OnClose:    func(reason engineio.CloseReason, _ error) { closed <- reason },
	})
	if err != nil {
		t.Fatal(err)
	}
	owner := nodes[0]
	if !strings.HasPrefix(c.ID(), nodes[1].relay.NodeID()) {
		if !strings.HasPrefix(c.ID(), owner.relay.NodeID()) {
			t.Fatalf("session id %q names neither node", c.ID())
		}
	} else {
		owner = nodes[1]
	}
	<-owner.opened

	lbtest.EchoInOrder(t, 200, func(m []byte) error { return c.Send(m, engineio.Text) }, received)

	time.Sleep(2 * time.Second) // more than 6 pings, each poll and pong through either node
	select {
	case r := <-closed:
		t.Fatalf("the client closed: %v", r)
	case r := <-owner.closed:
		t.Fatalf("the session closed: %v", r)
	default:
	}
	if counts := front.Counts(); counts[0] < 100 || counts[1] < 100 {
		t.Errorf("requests per node %v: the front did not alternate", counts)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-owner.closed:
		if r != engineio.ReasonTransportClose {
			t.Errorf("the session closed with %q, want %q", r, engineio.ReasonTransportClose)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session did not close")
	}
	<-c.Done()
}

func TestRelayOverRedisRefusesUnknownSessions(t *testing.T) {
	addr := redistest.Start(t)
	nodes, _ := newEchoCluster(t, addr, 3)
	a, b, gone := nodes[0], nodes[1], nodes[2]
	ca := eiotest.NewClient(t, a.url+engineio.DefaultPath)
	cb := eiotest.NewClient(t, b.url+engineio.DefaultPath)
	sid := cb.OpenPolling(t)
	<-b.opened

	// The third node leaves the cluster: its sessions are nobody's.
	if err := gone.relay.Close(); err != nil {
		t.Fatal(err)
	}
	unknown := []string{
		"x",                        // not a relay's session id
		a.relay.NodeID() + sid[8:], // this node's id, a session it does not have
		b.relay.NodeID() + "AAAAAAAAAAAAAAAAAAAA", // the other node's id, a session it does not have
		gone.relay.NodeID() + sid[8:],             // a node that left
		"zzzzzzzz" + sid[8:],                      // a node that never was
	}
	for _, u := range unknown {
		start := time.Now()
		r := ca.Poll(t, u)
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `"code":1`) {
			t.Errorf("poll of %q: %v, want 400 code 1", u, r)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("poll of %q answered after %v, want at once", u, d)
		}
	}
	if status := ca.ExpectRefusedWebSocket(t, "EIO=4&transport=websocket&sid="+sid); status != http.StatusBadRequest {
		t.Errorf("upgrade on the other node: %d, want 400", status)
	}
	// The session is still there and is served through the other node.
	if r := ca.Push(t, sid, "4hello"); r.Status != http.StatusOK || r.Body != "ok" {
		t.Fatalf("relayed POST: %v", r)
	}
	if got := ca.PollPackets(t, sid, 1); len(got) != 1 || got[0] != "4hello" {
		t.Fatalf("relayed poll: %q, want the echo", got)
	}
}

func TestRelayOverRedisAbandonedPollClosesTheSessionOnItsOwner(t *testing.T) {
	addr := redistest.Start(t)
	nodes, _ := newEchoCluster(t, addr, 2)
	a, b := nodes[0], nodes[1]
	cb := eiotest.NewClient(t, b.url+engineio.DefaultPath)
	sid := cb.OpenPolling(t)
	<-b.opened

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.url+engineio.DefaultPath+"?"+eiotest.PollQuery(sid), nil)
	done := make(chan error, 1)
	httpc := &http.Client{Transport: &http.Transport{}}
	defer httpc.CloseIdleConnections()
	go func() {
		res, err := httpc.Do(req)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // the poll waits on b for the next ping (300 ms)
	cancel()
	<-done
	select {
	case r := <-b.closed:
		if r != engineio.ReasonTransportError {
			t.Errorf("closed with %q, want %q", r, engineio.ReasonTransportError)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session was not closed on its owner")
	}
}

func TestRelayOverRedisServesSocketIO(t *testing.T) {
	addr := redistest.Start(t)
	urls := make([]string, 2)
	disconnected := make(chan string, 2)
	for i := range urls {
		sio := socketio.NewServer(&socketio.Options{Engine: &engineio.Server{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
		}})
		sio.OnConnection(func(s *socketio.Socket) {
			s.On("n", func(args socketio.Args, _ socketio.AckFunc) {
				var k int
				_ = args.Decode(0, &k)
				_ = s.Emit("m", k)
			})
			s.OnDisconnect(func(reason string) { disconnected <- reason })
		})
		_, urls[i] = serveNode(t, addr, sio.Engine(), sio, sio.Shutdown)
	}
	front := lbtest.RoundRobin(t, urls...)

	got := make(chan int, 256)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := socketio.Dial(ctx, front.URL, &socketio.ManagerOptions{
		Engine:      engineio.ClientOptions{Transports: []string{engineio.TransportPolling}},
		NoReconnect: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Manager().Close()
	s.On("m", func(args socketio.Args, _ socketio.AckFunc) {
		var k int
		_ = args.Decode(0, &k)
		got <- k
	})
	next := 0
	expectUpTo := func(i int) {
		t.Helper()
		for ; next <= i; next++ {
			select {
			case k := <-got:
				if k != next {
					t.Fatalf("got answer %d, want %d", k, next)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("answer %d did not come", next)
			}
		}
	}
	const n = 200
	for i := range n {
		if err := s.Emit("n", i); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 { // every other one waits for the answers: more requests, through both nodes
			expectUpTo(i)
		}
	}
	expectUpTo(n - 1)

	time.Sleep(2 * time.Second)
	if !s.Connected() {
		t.Fatal("the socket disconnected during 2 s of heartbeats")
	}
	if counts := front.Counts(); counts[0] < 50 || counts[1] < 50 {
		t.Errorf("requests per node %v: the front did not alternate", counts)
	}
	s.Disconnect()
	select {
	case r := <-disconnected:
		if r != "client namespace disconnect" {
			t.Errorf("the server socket disconnected with %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not see the disconnect")
	}
}

func TestRelayOverRedisDrainReleasesHeldPollsAndKeepsTheSessions(t *testing.T) {
	addr := redistest.Start(t)
	nodes, _ := newEchoCluster(t, addr, 2)
	a, b := nodes[0], nodes[1]
	ca := eiotest.NewClient(t, a.url+engineio.DefaultPath)
	cb := eiotest.NewClient(t, b.url+engineio.DefaultPath)
	sid := cb.OpenPolling(t)
	<-b.opened

	polled := make(chan eiotest.Reply, 1)
	go func() {
		r, _ := ca.Do(http.MethodGet, eiotest.PollQuery(sid), nil, nil)
		polled <- r
	}()
	time.Sleep(100 * time.Millisecond) // held by b until its next ping
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := a.relay.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-polled
	if r.Status != http.StatusOK || (r.Body != "6" && r.Body != "2") {
		t.Fatalf("released poll: %v, want a noop", r)
	}
	if d := time.Since(start); d > 150*time.Millisecond {
		t.Logf("drained in %v", d) // a ping may have answered it first
	}
	// Polls relayed from now on are answered at once.
	for range 3 {
		if r := ca.Poll(t, sid); r.Status != http.StatusOK {
			t.Fatalf("poll through the draining node: %v", r)
		}
	}
	select {
	case reason := <-b.closed:
		t.Fatalf("the session closed on its owner: %v", reason)
	default:
	}
	if r := cb.Push(t, sid, "4after"); r.Status != http.StatusOK {
		t.Fatalf("POST to the owner: %v", r)
	}
}
