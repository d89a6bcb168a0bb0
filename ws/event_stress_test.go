//go:build unix

package ws_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

// stressKind is what one client of the stress test does.
type stressKind int

const (
	kindEcho        stressKind = iota // send, read every echo, close with 1000
	kindFragmented                    // send fragmented messages, read every echo, close with 1000
	kindCloseMid                      // send, read some of the echoes, close with 1000
	kindDrop                          // send, read some of the echoes, drop TCP without a close frame
	kindServerClose                   // the last message asks the handler to Close(4001) after its echo
	kindSilent                        // send, then only read (pongs included): the read deadline ends it
	kindDead                          // raw peer that never answers a ping: keepalive ends it
	numStressKinds
)

func (k stressKind) String() string {
	return [...]string{"echo", "fragmented", "close-mid-stream", "drop", "server-close", "silent", "dead"}[k]
}

// wantClass is the server's OnClose reason class (closeClass) for a client of kind k.
func (k stressKind) wantClass() string {
	switch k {
	case kindDrop:
		return "dropped"
	case kindServerClose:
		return "peer close 4001"
	case kindSilent:
		return "read deadline"
	case kindDead:
		return "keepalive"
	}
	return "peer close 1000"
}

// closeClass sorts an OnClose error into the classes a client behaviour leads to.
func closeClass(err error) string {
	var ce *ws.CloseError
	switch {
	case errors.Is(err, ws.ErrKeepAliveTimeout):
		return "keepalive"
	case isReadTimeout(err):
		return "read deadline"
	case errors.As(err, &ce) && ce.Code == ws.StatusAbnormalClosure,
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "dropped" // read or write on a connection the peer dropped
	case errors.As(err, &ce) && ce.Remote:
		return fmt.Sprintf("peer close %d", ce.Code)
	}
	return fmt.Sprintf("unexpected %T %v", err, err)
}

// Payloads: client messages start with a header of a sequence number, a flag and the
// client's id (ports are reused too often to tell the clients apart by address); the
// server's pushes (written from outside the handler) with pushMark and their own sequence
// number.
const (
	stressHeader = 9 // seq uint32, flag byte, client id uint32
	flagCloseMe  = 1 // the handler echoes, then calls Close(4001)
	flagIdle     = 2 // the handler sets the short read deadline
	pushMark     = 0xFFFFFFFF
)

// stressConn is the server's record of one connection.
type stressConn struct {
	busy   atomic.Bool // set while a handler call for the connection runs
	remote string
	client int           // the id in its messages; -1 before the first
	next   uint32        // next sequence number due; handler calls only
	closed bool          // OnClose was called; handler calls only
	reason error         // OnClose's error
	index  int           // in stressHandler.open while open; the handler's mu
	pushed uint32        // pushes written; the pusher only
	life   time.Duration // from OnOpen to OnClose
	opened time.Time
}

// stressHandler echoes, checks the EventHandler guarantees, and records each connection's
// messages and end.
type stressHandler struct {
	t *testing.T
	// The read deadline, renewed by each message: idle for a connection whose messages
	// carry flagIdle, else long (beyond the test: it only keeps the timer wheel busy).
	idle, long time.Duration
	errs       atomic.Int64
	opened     atomic.Int64

	mu    sync.Mutex
	conns map[*ws.Conn]*stressConn
	open  []*ws.Conn // for the pusher
	ended []*stressConn
}

// errorf reports the first few failures and counts the rest: with thousands of
// connections, one bug would otherwise print thousands of lines.
func (h *stressHandler) errorf(format string, args ...any) {
	if h.errs.Add(1) <= 10 {
		h.t.Errorf(format, args...)
	}
}

func (h *stressHandler) enter(c *ws.Conn, event string) *stressConn {
	h.mu.Lock()
	s := h.conns[c]
	h.mu.Unlock()
	if s == nil {
		h.errorf("%s before OnOpen", event)
		return nil
	}
	if !s.busy.CompareAndSwap(false, true) {
		h.errorf("%s for %s while another handler call for it runs", event, s.remote)
	}
	if s.closed {
		h.errorf("%s for %s after OnClose", event, s.remote)
	}
	return s
}

func (h *stressHandler) OnOpen(c *ws.Conn) {
	s := &stressConn{remote: c.RemoteAddr().String(), client: -1, opened: time.Now()}
	s.busy.Store(true)
	h.mu.Lock()
	if h.conns[c] != nil {
		h.errorf("OnOpen twice for %s", s.remote)
	}
	h.conns[c] = s
	s.index = len(h.open)
	h.open = append(h.open, c)
	h.mu.Unlock()
	h.opened.Add(1)
	_ = c.SetReadDeadline(time.Now().Add(h.long))
	s.busy.Store(false)
}

func (h *stressHandler) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	s := h.enter(c, "OnMessage")
	if s == nil {
		return
	}
	defer s.busy.Store(false)
	if len(data) < stressHeader {
		h.errorf("%s: message of %d bytes", s.remote, len(data))
		return
	}
	id := int(binary.BigEndian.Uint32(data[5:]))
	if s.client < 0 {
		s.client = id
	}
	if seq := binary.BigEndian.Uint32(data); seq != s.next || id != s.client {
		h.errorf("%s: message %d of client %d arrived when %d of client %d was due", s.remote, seq, id, s.next, s.client)
	}
	s.next++
	deadline := h.long
	if data[4]&flagIdle != 0 {
		deadline = h.idle
	}
	_ = c.SetReadDeadline(time.Now().Add(deadline))
	_ = c.WriteMessage(context.Background(), typ, data)
	if data[4]&flagCloseMe != 0 {
		_ = c.Close(4001, "asked to")
	}
}

func (h *stressHandler) OnClose(c *ws.Conn, err error) {
	s := h.enter(c, "OnClose")
	if s == nil {
		return
	}
	s.closed = true
	s.reason = err
	s.life = time.Since(s.opened)
	h.mu.Lock()
	last := h.open[len(h.open)-1]
	h.open[s.index] = last
	h.conns[last].index = s.index
	h.open = h.open[:len(h.open)-1]
	h.ended = append(h.ended, s)
	h.mu.Unlock()
	s.busy.Store(false)
}

func (h *stressHandler) endedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.ended)
}

// push writes a numbered message to up to n open connections picked at random, from
// outside any handler, while their handlers run.
func (h *stressHandler) push(rng *rand.Rand, n int) {
	h.mu.Lock()
	picked := make([]*ws.Conn, 0, n)
	for range min(n, len(h.open)) {
		picked = append(picked, h.open[rng.IntN(len(h.open))])
	}
	states := make([]*stressConn, len(picked))
	for i, c := range picked {
		states[i] = h.conns[c]
	}
	h.mu.Unlock()
	var msg [8]byte
	binary.BigEndian.PutUint32(msg[:], pushMark)
	for i, c := range picked {
		binary.BigEndian.PutUint32(msg[4:], states[i].pushed)
		if c.WriteMessage(context.Background(), ws.MessageBinary, msg[:]) == nil {
			states[i].pushed++
		}
	}
}

// stressClient is one client: its kind, its messages, and what it has received.
type stressClient struct {
	id     int
	kind   stressKind
	rng    *rand.Rand
	sent   [][]byte
	echoed int    // echoes received
	pushes uint32 // pushes received
}

func newStressClient(seed uint64, id int) *stressClient {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	sc := &stressClient{id: id, kind: stressKind(rng.IntN(int(numStressKinds))), rng: rng}
	n := 1 + rng.IntN(12)
	for seq := range n {
		size := stressHeader + rng.IntN(1500)
		if rng.IntN(30) == 0 {
			size = 16<<10 + rng.IntN(48<<10) // over one read buffer
		}
		b := make([]byte, size)
		binary.BigEndian.PutUint32(b, uint32(seq))
		binary.BigEndian.PutUint32(b[5:], uint32(id))
		for j := stressHeader; j < size; j++ {
			b[j] = byte(id + seq + j)
		}
		if sc.kind == kindServerClose && seq == n-1 {
			b[4] = flagCloseMe
		}
		if sc.kind == kindSilent {
			b[4] = flagIdle
		}
		sc.sent = append(sc.sent, b)
	}
	return sc
}

func (sc *stressClient) errorf(format string, args ...any) error {
	return fmt.Errorf("client %d (%s): "+format, append([]any{sc.id, sc.kind}, args...)...)
}

// take checks one data message received: a push (numbered in order) or the next echo.
func (sc *stressClient) take(data []byte) error {
	if len(data) == 8 && binary.BigEndian.Uint32(data) == pushMark {
		if got := binary.BigEndian.Uint32(data[4:]); got != sc.pushes {
			return sc.errorf("push %d arrived when %d was due", got, sc.pushes)
		}
		sc.pushes++
		return nil
	}
	if sc.echoed == len(sc.sent) {
		return sc.errorf("an echo of %d bytes after all %d", len(data), len(sc.sent))
	}
	if want := sc.sent[sc.echoed]; !bytes.Equal(data, want) {
		return sc.errorf("echo %d: %d bytes differ from the %d sent", sc.echoed, len(data), len(want))
	}
	sc.echoed++
	return nil
}

// readEchoes reads until n echoes have arrived, checking the pushes in between.
func (sc *stressClient) readEchoes(ctx context.Context, c *ws.Conn, n int) error {
	for sc.echoed < n {
		_, data, err := c.ReadMessage(ctx)
		if err != nil {
			return sc.errorf("reading echo %d of %d: %w", sc.echoed, n, err)
		}
		if err := sc.take(data); err != nil {
			return err
		}
	}
	return nil
}

func (sc *stressClient) sendAll(ctx context.Context, c *ws.Conn) error {
	err := c.Batch(ctx, func() error {
		for _, m := range sc.sent {
			if err := c.WriteMessage(ctx, ws.MessageBinary, m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sc.errorf("send: %w", err)
	}
	return nil
}

// sendFragmented sends each message in 1 to 6 frames.
func (sc *stressClient) sendFragmented(ctx context.Context, c *ws.Conn) error {
	for _, m := range sc.sent {
		w, err := c.NextWriter(ctx, ws.MessageBinary)
		if err != nil {
			return sc.errorf("NextWriter: %w", err)
		}
		for rest, frames := m, 1+sc.rng.IntN(6); len(rest) > 0; frames-- {
			n := len(rest)
			if frames > 1 {
				n = sc.rng.IntN(len(rest) + 1)
			}
			if _, err := w.Write(rest[:n]); err != nil {
				return sc.errorf("fragment: %w", err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			return sc.errorf("final fragment: %w", err)
		}
	}
	return nil
}

// run plays the client against the server at url (addr is its host:port).
func (sc *stressClient) run(ctx context.Context, url, addr string) error {
	if sc.kind == kindDead {
		return sc.runDead(addr)
	}
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		return sc.errorf("dial: %w", err)
	}
	defer c.CloseNow()
	if sc.kind == kindFragmented {
		err = sc.sendFragmented(ctx, c)
	} else {
		err = sc.sendAll(ctx, c)
	}
	if err != nil {
		return err
	}
	switch sc.kind {
	case kindEcho, kindFragmented:
		if err := sc.readEchoes(ctx, c, len(sc.sent)); err != nil {
			return err
		}
		if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
			return sc.errorf("close: %w", err)
		}
	case kindCloseMid:
		if err := sc.readEchoes(ctx, c, sc.rng.IntN(len(sc.sent))); err != nil {
			return err
		}
		if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
			return sc.errorf("close: %w", err)
		}
	case kindDrop:
		if err := sc.readEchoes(ctx, c, sc.rng.IntN(len(sc.sent)+1)); err != nil {
			return err
		}
		c.CloseNow()
	case kindServerClose:
		if err := sc.readEchoes(ctx, c, len(sc.sent)); err != nil {
			return err
		}
		if err := sc.readUntilEnd(ctx, c); ws.CloseStatus(err) != 4001 {
			return sc.errorf("after the last echo: %v, want the server's close 4001", err)
		}
	case kindSilent:
		if err := sc.readEchoes(ctx, c, len(sc.sent)); err != nil {
			return err
		}
		if err := sc.readUntilEnd(ctx, c); ws.CloseStatus(err) != ws.StatusAbnormalClosure {
			return sc.errorf("after going silent: %v, want TCP closed without a close frame", err)
		}
	}
	return nil
}

// readUntilEnd reads pushes (answering pings) until the connection ends.
func (sc *stressClient) readUntilEnd(ctx context.Context, c *ws.Conn) error {
	for {
		_, data, err := c.ReadMessage(ctx)
		if err != nil {
			return err
		}
		if err := sc.take(data); err != nil {
			return err
		}
	}
}

// runDead is a raw peer that sends its messages, then reads everything and answers nothing,
// pings included, until the server closes TCP, which it must do without a close frame.
func (sc *stressClient) runDead(addr string) error {
	p, _, err := wstest.Dial(addr, nil)
	if err != nil {
		return sc.errorf("dial: %w", err)
	}
	defer p.Close()
	frames := make([]wstest.Frame, len(sc.sent))
	for i, m := range sc.sent {
		frames[i] = wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: m}
	}
	if err := p.WriteFrames(frames...); err != nil {
		return sc.errorf("send: %w", err)
	}
	for {
		f, err := p.ReadFrameTimeout(30 * time.Second)
		switch {
		case wstest.IsClosedErr(err):
			if sc.echoed != len(sc.sent) {
				return sc.errorf("closed after %d of %d echoes", sc.echoed, len(sc.sent))
			}
			return nil
		case err != nil:
			return sc.errorf("read: %w", err)
		case f.Opcode == wstest.OpClose:
			return sc.errorf("got a close frame (%v), want TCP closed without one", f)
		case f.Opcode == wstest.OpBinary && f.Fin:
			if err := sc.take(f.Payload); err != nil {
				return err
			}
		case f.Opcode != wstest.OpPing:
			return sc.errorf("unexpected frame %v", f)
		}
	}
}

// stressConnCount is the number of clients: thousands, as far as the open-file limit allows
// (each connection takes a descriptor at each end).
func stressConnCount(t *testing.T) int {
	want := 2000
	if testing.Short() {
		want = 300
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		if fit := int(lim.Cur-256) / 2; fit < want {
			t.Logf("open-file limit %d: %d connections instead of %d", lim.Cur, fit, want)
			want = fit
		}
	}
	return want
}

// TestEventLoopStress runs thousands of clients at once against one EventLoop with four
// workers, each doing one of the stressKind behaviours chosen by a logged seed, while a
// goroutine writes to random connections from outside the handlers. It checks, per
// connection: OnOpen first, messages in order, never two handler calls at once, one
// OnClose with the reason class of the client's behaviour (peer's close, dropped TCP,
// read deadline, keepalive); and in the end no connection left, no goroutine leaked.
func TestEventLoopStress(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	conns := stressConnCount(t)
	// Keepalive ends a dead client about 3.5 s after its last pong, the read deadline a
	// silent one 2 s after its last message; the other connections' deadline is beyond
	// the test. The pong timeout leaves room for client goroutines starved by -race on a
	// small shared machine (the server's own lateness does not count: a pong in the socket
	// is read before the timeout is judged).
	const pingInterval, pongTimeout = 500 * time.Millisecond, 3 * time.Second
	loop, err := ws.NewEventLoop(&ws.EventLoopOptions{Workers: 4, PingInterval: pingInterval, PongTimeout: pongTimeout})
	if err != nil {
		t.Fatal(err)
	}
	h := &stressHandler{t: t, idle: 2 * time.Second, long: 45 * time.Second, conns: make(map[*ws.Conn]*stressConn)}
	srv := newEventServer(t, loop, h)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	start := time.Now()
	stopPush, pushDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(pushDone)
		rng := rand.New(rand.NewPCG(seed, 0xfeed))
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopPush:
				return
			case <-tick.C:
				h.push(rng, 8)
			}
		}
	}()

	clients := make([]*stressClient, conns)
	for id := range clients {
		clients[id] = newStressClient(seed, id)
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for _, sc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sc.run(ctx, url, srv.Listener.Addr().String()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	clientsDone := time.Since(start)
	close(stopPush)
	<-pushDone
	close(errs)
	failed := 0
	for err := range errs {
		if failed++; failed <= 10 {
			t.Error(err)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d clients failed", failed, conns)
	}

	for h.endedCount() < conns && time.Since(start) < 50*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.opened.Load(); got != int64(conns) {
		t.Errorf("OnOpen called %d times, want %d", got, conns)
	}
	h.mu.Lock()
	ended := slices.Clone(h.ended)
	h.mu.Unlock()
	if len(ended) != conns {
		t.Errorf("OnClose called for %d connections, want %d", len(ended), conns)
	}
	classes := map[string]int{}
	seen := make([]bool, conns)
	for _, s := range ended {
		class := closeClass(s.reason)
		if s.client < 0 || s.client >= conns {
			// No message arrived: only a client that dropped TCP may lose them all.
			classes["(no message) → "+class]++
			if class != "dropped" {
				h.errorf("connection from %s: no message, then OnClose(%v)", s.remote, s.reason)
			}
			continue
		}
		sc := clients[s.client]
		if seen[s.client] {
			h.errorf("client %d: two connections", s.client)
		}
		seen[s.client] = true
		classes[sc.kind.String()+" → "+class]++
		if want := sc.kind.wantClass(); class != want {
			h.errorf("client %d (%s): OnClose(%v) after %v, class %q, want %q", sc.id, sc.kind, s.reason, s.life, class, want)
		}
		got, sent := int(s.next), len(sc.sent)
		if got != sent && !(sc.kind == kindDrop && got < sent) {
			h.errorf("client %d (%s): the handler got %d of %d messages", sc.id, sc.kind, got, sent)
		}
	}
	for id, ok := range seen {
		if sc := clients[id]; !ok && sc.kind != kindDrop {
			h.errorf("client %d (%s): no connection with its messages", id, sc.kind)
		}
	}
	t.Logf("%d connections, clients done after %v, all ended after %v", conns, clientsDone, time.Since(start))
	for _, k := range slices.Sorted(maps.Keys(classes)) {
		t.Logf("%5d %s", classes[k], k)
	}
	if n := loop.Len(); n != 0 {
		t.Errorf("loop still serves %d connections", n)
	}
	if n := h.errs.Load(); n > 10 {
		t.Errorf("%d failures in all", n)
	}
	srv.Close()
	if err := loop.Close(); err != nil {
		t.Errorf("loop.Close: %v", err)
	}
}
