package interop

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// The duplex server accepts connections in both of ws's ways.
const (
	modeHTTP = "Upgrade"     // ws.Upgrader.Upgrade behind net/http
	modeConn = "UpgradeConn" // ws.Upgrader.UpgradeConn on a bare net.Listener
)

// serverMode is how the duplex server accepts a connection (modeHTTP, modeConn) and serves
// it (eiotest.Mode: a goroutine reading in a loop, or a ws.EventLoop and an EventHandler).
type serverMode struct {
	accept string
	serve  eiotest.Mode
}

func (m serverMode) String() string { return m.accept + "/" + string(m.serve) }

// httpMode is the net/http server of a serving mode.
func httpMode(serve eiotest.Mode) serverMode { return serverMode{modeHTTP, serve} }

// serverModes are every accept path in every serving mode.
var serverModes = []serverMode{
	{modeHTTP, eiotest.Goroutines}, {modeConn, eiotest.Goroutines},
	{modeHTTP, eiotest.Evented}, {modeConn, eiotest.Evented},
}

// srvEvent is what the duplex server's handler saw on one connection.
type srvEvent struct {
	Op          string // open, message, pong, closed (read error), closeSent, rejected, writeError, pingError
	Subprotocol string
	Extensions  string // open: serverHooks.info's report (the negotiated extensions)
	Data        string // pong payload
	Type        ws.MessageType
	Len         int
	SHA256      string
	Err         error
}

// duplexServer is a duplex echo server on 127.0.0.1. Per connection, the
// query selects the behaviour: ?id= names the connection's event stream,
// ?close=CODE&reason=R closes right after the handshake, else it echoes;
// ?ping=DATA sends a ping first and reports the pong.
type duplexServer struct {
	wsURL   string // ws://127.0.0.1:port/ws
	pageURL string // http://127.0.0.1:port/ (modeHTTP only): a blank same-origin page

	hooks serverHooks

	mu      sync.Mutex
	streams map[string]chan srvEvent
	conns   map[*ws.Conn]bool
	closing bool
	wg      sync.WaitGroup
}

const blankPage = "<!doctype html><meta charset=utf-8><title>duplex interop</title>\n"

// serverHooks customize the duplex server; nil fields keep the defaults.
type serverHooks struct {
	// info is reported as the Extensions of the "open" event.
	info func(c *ws.Conn) string
	// echo sends message i (0-based) back instead of WriteMessage; q is the URL's query.
	echo func(ctx context.Context, c *ws.Conn, q url.Values, i int, typ ws.MessageType, data []byte) error
}

func startDuplexServer(t *testing.T, mode serverMode, up *ws.Upgrader) *duplexServer {
	t.Helper()
	return startDuplexServerHooks(t, mode, up, serverHooks{})
}

func startDuplexServerHooks(t *testing.T, mode serverMode, up *ws.Upgrader, hooks serverHooks) *duplexServer {
	t.Helper()
	s := &duplexServer{streams: map[string]chan srvEvent{}, conns: map[*ws.Conn]bool{}, hooks: hooks}
	serve := s.serve
	if loop := mode.serve.Loop(t); loop != nil { // closed after the cleanup below
		serve = func(c *ws.Conn, r *http.Request) { s.serveEvented(loop, c, r) }
	}
	var stopListener func()
	switch mode.accept {
	case modeHTTP:
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(blankPage))
		})
		mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				s.report(r, srvEvent{Op: "rejected", Err: err})
				return
			}
			serve(c, r)
		})
		hs := httptest.NewServer(mux) // listens on 127.0.0.1:0
		s.pageURL = hs.URL + "/"
		s.wsURL = "ws" + hs.URL[len("http"):] + "/ws"
		stopListener = hs.Close // waits for the handlers: conns are closed first
	case modeConn:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.wsURL = "ws://" + ln.Addr().String() + "/ws"
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					c, r, err := up.UpgradeConn(nc)
					if err != nil {
						_ = nc.Close()
						s.report(r, srvEvent{Op: "rejected", Err: err})
						return
					}
					serve(c, r)
				}()
			}
		}()
		stopListener = func() { _ = ln.Close() }
	default:
		t.Fatalf("unknown server mode %v", mode)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		s.closing = true
		for c := range s.conns {
			_ = c.CloseNow()
		}
		s.mu.Unlock()
		done := make(chan struct{})
		go func() { stopListener(); s.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("duplex server handlers still running 10s after CloseNow")
		}
	})
	return s
}

// startPageServer serves the blank page from its own origin (another port).
func startPageServer(t *testing.T) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(blankPage))
	}))
	t.Cleanup(hs.Close)
	return hs.URL + "/"
}

// url is the WebSocket URL for connection id with extra query parameters (key, value, ...).
func (s *duplexServer) url(id string, kv ...string) string {
	q := url.Values{"id": {id}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return s.wsURL + "?" + q.Encode()
}

func (s *duplexServer) stream(id string) chan srvEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.streams[id]
	if ch == nil {
		ch = make(chan srvEvent, 256)
		s.streams[id] = ch
	}
	return ch
}

func (s *duplexServer) report(r *http.Request, ev srvEvent) {
	id := ""
	if r != nil && r.URL != nil {
		id = r.URL.Query().Get("id")
	}
	select {
	case s.stream(id) <- ev:
	default: // a test that floods 256 events has failed already
	}
}

// next returns connection id's next server event.
func (s *duplexServer) next(t testing.TB, id string, timeout time.Duration) srvEvent {
	t.Helper()
	select {
	case ev := <-s.stream(id):
		return ev
	case <-time.After(timeout):
		t.Fatalf("duplex server: no event for connection %q within %v", id, timeout)
	}
	panic("unreachable")
}

// expect returns the next event of connection id and checks its Op.
func (s *duplexServer) expect(t testing.TB, id, op string) srvEvent {
	t.Helper()
	ev := s.next(t, id, 30*time.Second)
	if ev.Op != op {
		t.Fatalf("duplex server, connection %q: got event %+v, want %s", id, ev, op)
	}
	return ev
}

func (s *duplexServer) serve(c *ws.Conn, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = c.CloseNow()
		return
	}
	s.conns[c] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}()

	open := srvEvent{Op: "open", Subprotocol: c.Subprotocol()}
	if s.hooks.info != nil {
		open.Extensions = s.hooks.info(c)
	}
	s.report(r, open)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	q := r.URL.Query()
	if code := q.Get("close"); code != "" {
		n, _ := strconv.Atoi(code)
		err := c.Close(ws.StatusCode(n), q.Get("reason"))
		s.report(r, srvEvent{Op: "closeSent", Err: err})
		return
	}
	if q.Has("ping") {
		c.SetPongHandler(func(data []byte) { s.report(r, srvEvent{Op: "pong", Data: string(data)}) })
		if err := c.Ping(ctx, []byte(q.Get("ping"))); err != nil {
			s.report(r, srvEvent{Op: "pingError", Err: err})
		}
	}
	for i := range 1000 {
		typ, data, err := c.ReadMessage(ctx)
		if err != nil {
			s.report(r, srvEvent{Op: "closed", Err: err})
			_ = c.CloseNow()
			return
		}
		s.report(r, srvEvent{Op: "message", Type: typ, Len: len(data), SHA256: sha256Hex(data)})
		echo := func() error { return c.WriteMessage(ctx, typ, data) }
		if s.hooks.echo != nil {
			echo = func() error { return s.hooks.echo(ctx, c, q, i, typ, data) }
		}
		if err := echo(); err != nil {
			s.report(r, srvEvent{Op: "writeError", Err: err})
			_ = c.CloseNow()
			return
		}
	}
	_ = c.Close(ws.StatusPolicyViolation, "too many messages")
}

// checkServerMessages checks the messages the duplex server received against the steps.
func (s *duplexServer) checkMessages(t *testing.T, id string, steps []step) {
	t.Helper()
	for _, st := range steps {
		if st.Op != "echo" {
			continue
		}
		ev := s.expect(t, id, "message")
		if want := payloadSHA(st.Data, st.Type, st.Size); ev.Type != msgType(st.Type) || ev.Len != st.Size || ev.SHA256 != want {
			t.Errorf("duplex server received %v of %d bytes (sha256 %.12s…), want %s %s of %d bytes (sha256 %.12s…)",
				ev.Type, ev.Len, ev.SHA256, st.Data, st.Type, st.Size, want)
		}
	}
}

// checkCloseError checks that err is a *ws.CloseError equal to want.
func checkCloseError(t testing.TB, err error, want ws.CloseError) {
	t.Helper()
	var ce *ws.CloseError
	if !errors.As(err, &ce) {
		t.Errorf("got error %v (%T), want *ws.CloseError %+v", err, err, want)
		return
	}
	if *ce != want {
		t.Errorf("got CloseError %+v, want %+v", *ce, want)
	}
	if got := ws.CloseStatus(err); got != want.Code {
		t.Errorf("CloseStatus = %d, want %d", got, want.Code)
	}
}

func msgType(typ string) ws.MessageType {
	if typ == "text" {
		return ws.MessageText
	}
	return ws.MessageBinary
}
