//go:build unix

package socketio_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// The slow consumer: a room of 1,000 WebSocket clients receives a steady broadcast of
// 4 KiB events; one client stops reading its socket (a tiny receive buffer, then no read).
// The queue bounds close it, the others get every event in order, and the server's heap
// stays within the bounds. In both serving modes.

// The bounds: a client that stops reading is closed once about slowQueueBytes plus the
// socket buffers (SO_SNDBUF of the server's sockets, SO_RCVBUF of the client's: small, so
// that the kernel does not hide the queue) wait for it, some 4 s of broadcasts; a client
// that reads, even one starved for a second or two by -race on a small shared machine,
// never gets there. The rate stays well below what 1,000 clients in one process can take
// under -race in the goroutine mode (each broadcast wakes 1,000 writers and 1,000 readers).
const (
	slowQueueBytes  = 64 << 10 // engineio.Server.MaxQueuedBytes and ws.EventLoopOptions.MaxQueuedBytes
	slowSndBuf      = 8 << 10  // SO_SNDBUF of the server's sockets
	slowRcvBuf      = 4 << 10  // SO_RCVBUF of the clients that stop reading
	slowEventBytes  = 4 << 10  // the padding of each broadcast event
	slowEventPeriod = 200 * time.Millisecond
)

// slowServer is the Socket.IO server of the test: each socket joins the room named in its
// auth; each session's end is recorded under the client name in its URL's query.
type slowServer struct {
	srv *socketio.Server
	hs  *httptest.Server
	url string // ws://.../socket.io/?EIO=4&transport=websocket

	mu      sync.Mutex
	joined  int                  // sockets in their room
	closed  map[string]slowClose // by client name
	changed chan struct{}        // closed and replaced when joined or closed change
}

// slowClose is how a client's Engine.IO session ended.
type slowClose struct {
	reason engineio.CloseReason
	cause  error
}

type slowAuth struct {
	Room string `json:"room"`
}

func startSlowServer(t *testing.T, mode eiotest.Mode) *slowServer {
	t.Helper()
	ss := &slowServer{closed: map[string]slowClose{}, changed: make(chan struct{})}
	eng := &engineio.Server{MaxQueuedBytes: slowQueueBytes}
	var loop *ws.EventLoop
	if mode == eiotest.Evented {
		var err error
		loop, err = ws.NewEventLoop(&ws.EventLoopOptions{MaxQueuedBytes: slowQueueBytes})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { loop.Close() }) // after the server's shutdown, registered below
	}
	ss.srv = socketio.NewServer(&socketio.Options{Engine: eng, EventLoop: loop})
	next := eng.OnConnection
	eng.OnConnection = func(s *engineio.Session) {
		next(s)
		name := s.Request().URL.Query().Get("name")
		onClose := s.OnClose
		s.OnClose = func(reason engineio.CloseReason, cause error) {
			onClose(reason, cause)
			ss.mu.Lock()
			ss.closed[name] = slowClose{reason, cause}
			ss.notifyLocked()
			ss.mu.Unlock()
		}
	}
	ss.srv.OnConnection(func(s *socketio.Socket) {
		var auth slowAuth
		if err := json.Unmarshal(s.Handshake().Auth, &auth); err != nil || auth.Room == "" {
			s.Disconnect(true)
			return
		}
		s.Join(socketio.Room(auth.Room))
		ss.mu.Lock()
		ss.joined++
		ss.notifyLocked()
		ss.mu.Unlock()
	})
	ss.hs = httptest.NewUnstartedServer(ss.srv)
	ss.hs.Listener = sndBufListener{ss.hs.Listener}
	ss.hs.Start()
	ss.url = "ws" + strings.TrimPrefix(ss.hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ss.srv.Shutdown(ctx)
		ss.hs.Close()
	})
	return ss
}

// sndBufListener sets SO_SNDBUF (slowSndBuf) on the connections it accepts.
type sndBufListener struct{ net.Listener }

func (l sndBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(slowSndBuf)
	}
	return c, err
}

func (ss *slowServer) notifyLocked() {
	close(ss.changed)
	ss.changed = make(chan struct{})
}

// waitFor waits until cond (called with ss.mu held) holds, at most d.
func (ss *slowServer) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(d)
	for {
		ss.mu.Lock()
		ok, changed := cond(), ss.changed
		ss.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// rawClient is a Socket.IO client written by hand over ws.Dial: the Engine.IO open packet,
// "40" with its auth, "3" for each "2"; cheap enough for a thousand in one test.
type rawClient struct {
	name string
	conn *ws.Conn
	next int             // the next broadcast number due
	lat  []time.Duration // by broadcast number: from Emit to arrival
}

// dialRaw connects a client named name to the room; a positive rcvbuf sets its socket's
// SO_RCVBUF before it connects.
func dialRaw(ctx context.Context, url, name, room string, rcvbuf int) (*rawClient, error) {
	opts := &ws.DialOptions{}
	if rcvbuf > 0 {
		d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}); err != nil {
				return err
			}
			return serr
		}}
		opts.NetDialContext = d.DialContext
	}
	conn, _, err := ws.Dial(ctx, url+"&name="+name, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: dial: %w", name, err)
	}
	c := &rawClient{name: name, conn: conn}
	if _, data, err := conn.ReadMessage(ctx); err != nil || !bytes.HasPrefix(data, []byte("0{")) {
		conn.CloseNow()
		return nil, fmt.Errorf("%s: open packet %q, %v", name, data, err)
	}
	if err := conn.WriteMessage(ctx, ws.MessageText, []byte(`40{"room":"`+room+`"}`)); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("%s: CONNECT: %w", name, err)
	}
	for {
		_, data, err := conn.ReadMessage(ctx)
		if err != nil {
			conn.CloseNow()
			return nil, fmt.Errorf("%s: waiting for the CONNECT answer: %w", name, err)
		}
		if bytes.HasPrefix(data, []byte("40")) {
			return c, nil
		}
		if err := c.answerPing(ctx, data); err != nil {
			conn.CloseNow()
			return nil, err
		}
	}
}

func (c *rawClient) answerPing(ctx context.Context, data []byte) error {
	if string(data) == "2" {
		if err := c.conn.WriteMessage(ctx, ws.MessageText, []byte("3")); err != nil {
			return fmt.Errorf("%s: pong: %w", c.name, err)
		}
	}
	return nil
}

// Broadcast events: 42["news",N,MICROS,"pad"] (MICROS: when it was emitted, since start),
// then 42["done",TOTAL].
var (
	newsPrefix = []byte(`42["news",`)
	donePrefix = []byte(`42["done",`)
)

// receive reads the broadcasts until "done", checking that each arrives once and in order,
// and records their latency; it stops early, without an error, once stop is set (the
// slow client).
func (c *rawClient) receive(ctx context.Context, start time.Time, stop *atomic.Bool) error {
	for stop == nil || !stop.Load() {
		_, data, err := c.conn.ReadMessage(ctx)
		if err != nil {
			return fmt.Errorf("%s: after %d broadcasts: %w", c.name, c.next, err)
		}
		switch {
		case bytes.HasPrefix(data, newsPrefix):
			fields := bytes.SplitN(data[len(newsPrefix):], []byte(","), 3)
			n, err1 := strconv.Atoi(string(fields[0]))
			at, err2 := strconv.ParseInt(string(fields[min(1, len(fields)-1)]), 10, 64)
			if len(fields) != 3 || err1 != nil || err2 != nil {
				return fmt.Errorf("%s: malformed event %.40q", c.name, data)
			}
			if n != c.next {
				return fmt.Errorf("%s: broadcast %d arrived when %d was due", c.name, n, c.next)
			}
			c.next++
			c.lat = append(c.lat, time.Since(start)-time.Duration(at)*time.Microsecond)
		case bytes.HasPrefix(data, donePrefix):
			total, err := strconv.Atoi(string(bytes.TrimSuffix(data[len(donePrefix):], []byte("]"))))
			if err != nil || total != c.next {
				return fmt.Errorf("%s: done after %d broadcasts, the server sent %d (%v)", c.name, c.next, total, err)
			}
			return nil
		default:
			if err := c.answerPing(ctx, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// heapInUse is the heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// p99 is the 99th percentile of d (sorted in place).
func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[(len(d)*99)/100]
}

// TestSlowConsumerInBroadcastRoom: 1,000 clients in one room receive a steady broadcast of
// 4 KiB events (5 a second): first all reading (phase 1), then with one client that has
// stopped reading (phase 2, until the server closes it, then a little more). The queue
// bounds close the slow one; every other client gets every event once and in order; their
// p99 latency is logged for both phases (speed is for benchmarks, not tests). Then a client
// that never reads gets 16 MiB of events alone in a room: the server's heap grows by no
// more than the queue bounds and some slack, and that client is closed too.
//
// The server's heap is that of the whole test process, clients included; the 1,000-client
// phases send too little to one client (some hundred KiB) for a heap bound to tell a queue
// that grows without bound from noise, hence the 16 MiB phase with the others idle.
func TestSlowConsumerInBroadcastRoom(t *testing.T) {
	eiotest.InEveryMode(t, testSlowConsumer)
}

func testSlowConsumer(t *testing.T, mode eiotest.Mode) {
	clients := 1000
	if testing.Short() {
		clients = 100
	}
	const phase1, after, maxEvents = 5, 5, 100 // broadcasts
	ss := startSlowServer(t, mode)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Connect: the slow client first, then the others, 50 dials at a time.
	began := time.Now()
	slow, err := dialRaw(ctx, ss.url, "slow", "crowd", slowRcvBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.conn.CloseNow()
	others := make([]*rawClient, clients-1)
	dialed := make(chan error, len(others))
	sem := make(chan struct{}, 50)
	for i := range others {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			c, err := dialRaw(ctx, ss.url, "c"+strconv.Itoa(i), "crowd", 0)
			others[i] = c
			dialed <- err
		}()
	}
	for range others {
		if err := <-dialed; err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, c := range others {
			c.conn.CloseNow()
		}
	}()
	ss.waitFor(t, 30*time.Second, "every socket in the room", func() bool { return ss.joined == clients })
	connected := time.Since(began)

	start := time.Now()
	var stopSlow atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for _, c := range append([]*rawClient{slow}, others...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stop *atomic.Bool
			if c == slow {
				stop = &stopSlow
			}
			if err := c.receive(ctx, start, stop); err != nil {
				errs <- err
			}
		}()
	}
	heapBefore := heapInUse()
	pad := strings.Repeat("x", slowEventBytes)
	slowClosed := func() bool {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		_, ok := ss.closed["slow"]
		return ok
	}
	// Phase 1 until phase1 events are out; phase 2 from then until after events past the
	// slow client's end (at most maxEvents in all).
	tick := time.NewTicker(slowEventPeriod)
	sent, closedAt := 0, -1
	for ; sent < maxEvents && (closedAt < 0 || sent < closedAt+after); sent++ {
		if sent == phase1 {
			stopSlow.Store(true)
		}
		if closedAt < 0 && sent > phase1 && slowClosed() {
			closedAt = sent
		}
		<-tick.C
		at := time.Since(start).Microseconds()
		if err := ss.srv.To("crowd").Emit("news", sent, at, pad); err != nil {
			t.Fatalf("broadcast %d: %v", sent, err)
		}
	}
	tick.Stop()
	if err := ss.srv.To("crowd").Emit("done", sent); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 10 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d clients failed", failed, clients-1)
	}
	heapAfter := heapInUse()
	if closedAt < 0 {
		t.Fatalf("the slow client was still open after %d broadcasts of %d bytes", sent, slowEventBytes)
	}
	ss.mu.Lock()
	end := ss.closed["slow"]
	ss.mu.Unlock()
	checkQueueFull(t, mode, "slow", end)
	var lat1, lat2 []time.Duration
	for _, c := range others {
		lat1 = append(lat1, c.lat[:phase1]...)
		lat2 = append(lat2, c.lat[phase1:closedAt]...)
	}
	t.Logf("%s: %d clients connected in %v; the slow one read %d events and was closed after %d; "+
		"the others' p99 latency %v all reading, %v with the slow one; heap in use %d → %d KiB; %v in all",
		mode, clients, connected.Round(time.Millisecond), slow.next, closedAt, p99(lat1), p99(lat2),
		heapBefore>>10, heapAfter>>10, time.Since(began).Round(time.Millisecond))

	// The volume: 16 MiB of events for a client alone in its room that never reads.
	const volume = 16 << 20
	mem, err := dialRaw(ctx, ss.url, "mem", "mem", slowRcvBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.conn.CloseNow()
	ss.waitFor(t, 10*time.Second, "the mem client in its room", func() bool { return ss.joined == clients+1 })
	base := heapInUse()
	peak := base
	for n := range volume / slowEventBytes {
		if err := ss.srv.To("mem").Emit("news", n, 0, pad); err != nil {
			t.Fatalf("event %d to the room mem: %v", n, err)
		}
		if n%1024 == 1023 {
			peak = max(peak, heapInUse())
		}
	}
	bound := uint64(2*slowQueueBytes + 4<<20) // the session's queue, the connection's, slack
	t.Logf("%s: %d MiB for a client that does not read: heap in use %d KiB, at most %d KiB more (bound %d KiB)",
		mode, volume>>20, base>>10, (peak-base)>>10, bound>>10)
	if peak > base+bound {
		t.Errorf("heap grew by %d KiB, bound %d KiB", (peak-base)>>10, bound>>10)
	}
	ss.waitFor(t, 15*time.Second, "the mem client's session closed", func() bool { _, ok := ss.closed["mem"]; return ok })
	ss.mu.Lock()
	end = ss.closed["mem"]
	ss.mu.Unlock()
	checkQueueFull(t, mode, "mem", end)
}

// checkQueueFull checks that a session ended because its client did not read: in the
// goroutine mode by the session's queue bound (engineio.ErrQueueFull); on an event loop by
// whichever comes first, the session's bound or the connection's (ws.ErrWriteQueueFull).
func checkQueueFull(t *testing.T, mode eiotest.Mode, name string, end slowClose) {
	t.Helper()
	which := "the session's queue (engineio.ErrQueueFull)"
	if errors.Is(end.cause, ws.ErrWriteQueueFull) {
		which = "the connection's write queue (ws.ErrWriteQueueFull)"
	}
	t.Logf("%s: the %s client's session closed: %q, by %s", mode, name, end.reason, which)
	if end.reason != engineio.ReasonQueueFull {
		t.Errorf("%s client: session closed with %q (%v), want %q", name, end.reason, end.cause, engineio.ReasonQueueFull)
	}
	if mode == eiotest.Goroutines && !errors.Is(end.cause, engineio.ErrQueueFull) {
		t.Errorf("%s client: cause %v, want engineio.ErrQueueFull", name, end.cause)
	}
}
