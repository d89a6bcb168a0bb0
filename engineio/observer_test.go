package engineio

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// countingObserver adds up what an Observer is told, by event and transport.
type countingObserver struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *countingObserver) add(key string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = make(map[string]int)
	}
	o.counts[key] += n
}

func (o *countingObserver) SessionOpened(transport string) { o.add("open "+transport, 1) }
func (o *countingObserver) SessionUpgraded()               { o.add("upgraded", 1) }
func (o *countingObserver) SessionClosed(transport string, reason CloseReason) {
	o.add("closed "+transport+" "+string(reason), 1)
}
func (o *countingObserver) MessagesReceived(transport string, n, bytes int) {
	o.add("in "+transport, n)
	o.add("in bytes "+transport, bytes)
}
func (o *countingObserver) MessagesSent(transport string, n, bytes int) {
	o.add("out "+transport, n)
	o.add("out bytes "+transport, bytes)
}
func (o *countingObserver) RequestRefused(code ErrorCode) {
	o.add(fmt.Sprint("refused ", int(code)), 1)
}

func (o *countingObserver) snapshot() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.counts)
}

// await waits until the counts are want (bounded), and fails with what they are.
func (o *countingObserver) await(t *testing.T, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := o.snapshot()
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("observer counts:\n%v\nwant\n%v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestObserverSeesSessionsMessagesAndRefusals(t *testing.T) {
	obs := &countingObserver{}
	ts := newTestServer(t, &Server{Observer: obs}, func(s *Session, data []byte, binary bool) {})
	want := map[string]int{}

	// Refused requests, with their codes.
	ts.do("GET", "transport=carrier-pigeon", "", nil)
	ts.do("GET", "transport=polling&sid=nope", "", nil)
	want["refused 0"], want["refused 1"] = 1, 1
	obs.await(t, want)

	// A polling session: two messages in one POST, one out in a poll.
	s := ts.openPolling()
	sid := s.ID()
	want["open polling"] = 1
	ts.do("POST", "transport=polling&sid="+sid, "4hello\x1e4wörld\x1e2", nil)
	want["in polling"], want["in bytes polling"] = 2, 11
	if err := s.Send([]byte("abc"), Text); err != nil {
		t.Fatal(err)
	}
	if _, body := ts.do("GET", "transport=polling&sid="+sid, "", nil); body != "4abc" {
		t.Fatalf("poll: %q", body)
	}
	want["out polling"], want["out bytes polling"] = 1, 3
	obs.await(t, want)

	// The upgrade moves it to WebSocket.
	c := ts.dial("transport=websocket&sid=" + sid)
	writeWS(t, c, ws.MessageText, "2probe")
	if _, m := readWS(t, c); m != "3probe" {
		t.Fatalf("probe answered %q", m)
	}
	ts.do("GET", "transport=polling&sid="+sid, "", nil) // the noop
	writeWS(t, c, ws.MessageText, "5")
	want["upgraded"] = 1
	obs.await(t, want)
	writeWS(t, c, ws.MessageText, "4hi")
	writeWS(t, c, ws.MessageBinary, "\x01\x02\x03")
	want["in websocket"], want["in bytes websocket"] = 2, 5
	if err := s.Send([]byte{1, 2, 3, 4}, Binary); err != nil {
		t.Fatal(err)
	}
	if typ, m := readWS(t, c); typ != ws.MessageBinary || m != "\x01\x02\x03\x04" {
		t.Fatalf("got %v %q", typ, m)
	}
	want["out websocket"], want["out bytes websocket"] = 1, 4
	obs.await(t, want)

	// The client closes it.
	if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	want["closed websocket transport close"] = 1
	obs.await(t, want)

	// A session opened on WebSocket, closed by Shutdown.
	ts.dial("transport=websocket")
	ts.nextSession()
	want["open websocket"] = 1
	obs.await(t, want)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	want["closed websocket server shutting down"] = 1
	obs.await(t, want)
}

func TestObserverSeesAFailedWebSocketHandshake(t *testing.T) {
	obs := &countingObserver{}
	ts := newTestServer(t, &Server{Observer: obs}, nil)
	// A GET that asks for the WebSocket transport without the upgrade headers.
	ts.do("GET", "transport=websocket", "", nil)
	obs.await(t, map[string]int{fmt.Sprint("refused ", int(ErrorBadRequest)): 1})
}

// atomicObserver is an Observer as a metrics adapter would write one: atomic adds only.
type atomicObserver struct{ n atomic.Int64 }

func (o *atomicObserver) SessionOpened(string)              { o.n.Add(1) }
func (o *atomicObserver) SessionUpgraded()                  { o.n.Add(1) }
func (o *atomicObserver) SessionClosed(string, CloseReason) { o.n.Add(1) }
func (o *atomicObserver) MessagesReceived(_ string, n, b int) {
	o.n.Add(int64(n + b))
}
func (o *atomicObserver) MessagesSent(_ string, n, b int) { o.n.Add(int64(n + b)) }
func (o *atomicObserver) RequestRefused(ErrorCode)        { o.n.Add(1) }

func TestReceivingAMessageWithAnObserverDoesNotAllocate(t *testing.T) {
	obs := &atomicObserver{}
	srv := &Server{Observer: obs}
	srv.init()
	s := newSession(srv, "sid", httptest.NewRequest("GET", "/engine.io/?EIO=4&transport=websocket", nil), TransportWebSocket)
	s.OnMessage = func([]byte, bool) {}
	p := Packet{Type: Message, Data: []byte(`42["chat","hello"]`)}
	if n := testing.AllocsPerRun(100, func() { s.receive(p, TransportWebSocket) }); n != 0 {
		t.Errorf("receive: %v allocs per run, want 0", n)
	}
	if obs.n.Load() == 0 {
		t.Error("the observer was not called")
	}
	batch := []outPacket{{Packet: p}, {Packet: Packet{Type: Ping}}}
	if n := testing.AllocsPerRun(100, func() { countMessages(batch) }); n != 0 {
		t.Errorf("countMessages: %v allocs per run, want 0", n)
	}
}
