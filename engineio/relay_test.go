package engineio_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/internal/lbtest"
)

// memRelay is an in-process SessionRelay: the sids of each server start with its two-letter
// tag, which names the owner, and relaying is a call of the owner's ServeRelayed.
type memRelay struct {
	tag     string
	cluster *memCluster
	relayed atomic.Int64
}

type memCluster struct {
	mu      sync.Mutex
	servers map[string]*engineio.Server
}

var errNoOwner = errors.New("no server has the session")

func (m *memRelay) NewSessionID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return m.tag + base64.RawURLEncoding.EncodeToString(b[:])
}

func (m *memRelay) Relay(ctx context.Context, req *engineio.RelayedRequest) (*engineio.RelayedResponse, error) {
	if len(req.SID) < 2 {
		return nil, errNoOwner
	}
	m.cluster.mu.Lock()
	owner := m.cluster.servers[req.SID[:2]]
	m.cluster.mu.Unlock()
	if owner == nil {
		return nil, errNoOwner
	}
	m.relayed.Add(1)
	// What a relay over a network carries: copies.
	cp := *req
	cp.Header = req.Header.Clone()
	cp.Body = bytes.Clone(req.Body)
	return owner.ServeRelayed(ctx, &cp), nil
}

// relayNode is one server of an in-process cluster.
type relayNode struct {
	srv    *engineio.Server
	relay  *memRelay
	client *eiotest.Client // straight to this node
	opened chan *engineio.Session
	closed chan engineio.CloseReason
}

// newRelayCluster starts n echo servers (ping interval 300 ms, ping timeout 200 ms) that
// relay to each other in memory, and a round-robin front before them.
func newRelayCluster(t *testing.T, n int) ([]*relayNode, *lbtest.Front) {
	t.Helper()
	cluster := &memCluster{servers: make(map[string]*engineio.Server)}
	nodes := make([]*relayNode, n)
	urls := make([]string, n)
	for i := range nodes {
		node := &relayNode{
			relay:  &memRelay{tag: fmt.Sprintf("n%d", i), cluster: cluster},
			opened: make(chan *engineio.Session, 16),
			closed: make(chan engineio.CloseReason, 16),
		}
		node.srv = &engineio.Server{
			PingInterval: 300 * time.Millisecond,
			PingTimeout:  200 * time.Millisecond,
			Relay:        node.relay,
			OnConnection: func(s *engineio.Session) {
				s.OnMessage = func(data []byte, binary bool) {
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
		cluster.servers[node.relay.tag] = node.srv
		node.client = eiotest.Serve(t, node.srv, engineio.DefaultPath, node.srv.Shutdown, nil)
		urls[i] = strings.TrimSuffix(node.client.URL, engineio.DefaultPath)
		nodes[i] = node
	}
	return nodes, lbtest.RoundRobin(t, urls...)
}

func TestRelayServesPollingRequestsThatReachAnotherServer(t *testing.T) {
	nodes, front := newRelayCluster(t, 2)
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
	if !strings.HasPrefix(c.ID(), "n0") {
		owner = nodes[1]
	}
	<-owner.opened

	lbtest.EchoInOrder(t, 200, func(m []byte) error { return c.Send(m, engineio.Text) }, received)

	// Heartbeats through the relay keep the session open: 2 s is more than 6 pings.
	time.Sleep(2 * time.Second)
	select {
	case r := <-closed:
		t.Fatalf("the client closed: %v", r)
	case r := <-owner.closed:
		t.Fatalf("the session closed: %v", r)
	default:
	}
	relayed := nodes[0].relay.relayed.Load() + nodes[1].relay.relayed.Load()
	if counts := front.Counts(); counts[0] < 100 || counts[1] < 100 || relayed < 100 {
		t.Errorf("requests per node %v, %d relayed: the front did not alternate", counts, relayed)
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
	if owner.srv.SessionCount() != 0 {
		t.Errorf("%d sessions left", owner.srv.SessionCount())
	}
}

func TestRelayRefusals(t *testing.T) {
	nodes, _ := newRelayCluster(t, 2)
	a, b := nodes[0], nodes[1]
	sid := b.client.OpenPolling(t)
	<-b.opened

	// An id no server has: 400 "Session ID unknown", as with no relay.
	for _, unknown := range []string{"n9" + sid[2:], "x", "n1nosuchsession"} {
		r := a.client.Poll(t, unknown)
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `"code":1`) {
			t.Errorf("poll of %q on the other server: %v, want 400 code 1", unknown, r)
		}
	}
	// A WebSocket upgrade must reach the owner: 400 elsewhere.
	if status := a.client.ExpectRefusedWebSocket(t, "EIO=4&transport=websocket&sid="+sid); status != http.StatusBadRequest {
		t.Errorf("upgrade on the other server: %d, want 400", status)
	}
	// A body over MaxHTTPBufferSize is refused before it is relayed.
	big := strings.Repeat("x", engineio.DefaultMaxHTTPBufferSize+1)
	if r := a.client.Push(t, sid, "4"+big); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("large POST on the other server: %v, want 413", r)
	}
	// The session is still there and answers relayed requests.
	if r := a.client.Push(t, sid, "4hello"); r.Status != http.StatusOK || r.Body != "ok" {
		t.Fatalf("relayed POST: %v", r)
	}
	if got := a.client.PollPackets(t, sid, 1); len(got) != 1 || got[0] != "4hello" {
		t.Fatalf("relayed poll: %q, want the echo", got)
	}
}

func TestServeRelayedAbandonedPollClosesTheSession(t *testing.T) {
	nodes, _ := newRelayCluster(t, 1)
	node := nodes[0]
	sid := node.client.OpenPolling(t)
	<-node.opened

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *engineio.RelayedResponse, 1)
	go func() {
		done <- node.srv.ServeRelayed(ctx, &engineio.RelayedRequest{SID: sid, Method: http.MethodGet, Query: eiotest.PollQuery(sid)})
	}()
	time.Sleep(50 * time.Millisecond) // the poll waits for the next ping (300 ms)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeRelayed did not return when its context ended")
	}
	select {
	case r := <-node.closed:
		if r != engineio.ReasonTransportError {
			t.Errorf("closed with %q, want %q", r, engineio.ReasonTransportError)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session was not closed")
	}
	res := node.srv.ServeRelayed(context.Background(), &engineio.RelayedRequest{SID: sid, Method: http.MethodGet, Query: eiotest.PollQuery(sid)})
	if res.Status != http.StatusBadRequest || !bytes.Contains(res.Body, []byte(`"code":1`)) {
		t.Errorf("relayed poll of a closed session: %d %q, want 400 code 1", res.Status, res.Body)
	}
}

func TestServeRelayedReleasedPollAnswersANoopAndKeepsTheSession(t *testing.T) {
	nodes, _ := newRelayCluster(t, 1)
	node := nodes[0]
	sid := node.client.OpenPolling(t)
	<-node.opened
	req := &engineio.RelayedRequest{SID: sid, Method: http.MethodGet, Query: eiotest.PollQuery(sid)}

	// Released while held.
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan *engineio.RelayedResponse, 1)
	go func() { done <- node.srv.ServeRelayed(ctx, req) }()
	time.Sleep(50 * time.Millisecond) // the poll waits for the next ping (300 ms)
	cancel(engineio.ErrPollReleased)
	var res *engineio.RelayedResponse
	select {
	case res = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeRelayed did not return when released")
	}
	if res.Status != http.StatusOK || (string(res.Body) != "6" && string(res.Body) != "2") {
		t.Errorf("released poll: %d %q, want 200 and a noop (or a ping)", res.Status, res.Body)
	}
	// Released before it is held: answered at once.
	ctx, cancel = context.WithCancelCause(context.Background())
	cancel(engineio.ErrPollReleased)
	if res := node.srv.ServeRelayed(ctx, req); res.Status != http.StatusOK {
		t.Errorf("poll released at once: %d %q", res.Status, res.Body)
	}
	select {
	case r := <-node.closed:
		t.Fatalf("the session closed: %v", r)
	default:
	}
	if r := node.client.Push(t, sid, "4still"); r.Status != http.StatusOK {
		t.Fatalf("POST after the released polls: %v", r)
	}
}

func TestRelayClientsThatTryToUpgradeKeepWorking(t *testing.T) {
	_, front := newRelayCluster(t, 2)
	httpc := &http.Client{Transport: &http.Transport{}}
	defer httpc.CloseIdleConnections()
	// The upgrade reaches the owner (the client moves to WebSocket) or the other server (400:
	// the client stays on polling); either way the connection goes on.
	for i := range 4 {
		received := make(chan string, 1)
		c, err := engineio.Dial(context.Background(), front.URL, &engineio.ClientOptions{
			HTTPClient: httpc,
			OnMessage:  func(data []byte, _ bool) { received <- string(data) },
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the upgrade, or its failure
		if err := c.Send([]byte("hi"), engineio.Text); err != nil {
			t.Fatalf("client %d (%s): %v", i, c.Transport(), err)
		}
		select {
		case m := <-received:
			if m != "hi" {
				t.Fatalf("client %d: %q", i, m)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("client %d (%s): no echo", i, c.Transport())
		}
		t.Logf("client %d: %s", i, c.Transport())
		_ = c.Close()
		<-c.Done()
	}
}
