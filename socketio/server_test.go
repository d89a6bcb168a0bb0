package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// Behaviour of the server beyond the official protocol suite (suite_test.go), with a raw
// client: Engine.IO over WebSocket, Socket.IO packets written by hand.

func newTestServer(t *testing.T, mode eiotest.Mode, opts *Options) (*Server, string) {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	opts.EventLoop = mode.Loop(t)
	srv := NewServer(opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		hs.Close()
	})
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http") + DefaultPath + "?EIO=4&transport=websocket"
}

type rawClient struct {
	t    *testing.T
	conn *ws.Conn
}

// dialRaw opens an Engine.IO WebSocket session and reads its open packet.
func dialRaw(t *testing.T, url string) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	rc := &rawClient{t: t, conn: c}
	if m := rc.read(); !strings.HasPrefix(m, "0{") {
		t.Fatalf("open packet %q", m)
	}
	return rc
}

// send writes a Socket.IO packet in an Engine.IO message.
func (c *rawClient) send(packet string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(context.Background(), ws.MessageText, []byte("4"+packet)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next Engine.IO message, answering pings.
func (c *rawClient) read() string {
	c.t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		typ, b, err := c.conn.ReadMessage(ctx)
		cancel()
		if err != nil {
			c.t.Fatal(err)
		}
		if typ == ws.MessageText && string(b) == "2" {
			_ = c.conn.WriteMessage(context.Background(), ws.MessageText, []byte("3"))
			continue
		}
		if typ == ws.MessageBinary {
			return "binary:" + string(b)
		}
		return string(b)
	}
}

// packet returns the next Socket.IO packet (the Engine.IO message without its "4").
func (c *rawClient) packet() string {
	c.t.Helper()
	m := c.read()
	p, ok := strings.CutPrefix(m, "4")
	if !ok {
		c.t.Fatalf("not a message: %q", m)
	}
	return p
}

// connect joins a namespace and returns the socket id.
func (c *rawClient) connect(nsp string) string {
	c.t.Helper()
	prefix := ""
	if nsp != "/" {
		prefix = nsp + ","
	}
	c.send("0" + prefix)
	p := c.packet()
	var v struct {
		SID string `json:"sid"`
	}
	if !strings.HasPrefix(p, "0"+prefix) || json.Unmarshal([]byte(strings.TrimPrefix(p, "0"+prefix)), &v) != nil || v.SID == "" {
		c.t.Fatalf("CONNECT answer %q", p)
	}
	return v.SID
}

func TestDynamicNamespacesInheritTheParentsMiddlewareAndHandlers(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url := newTestServer(t, mode, nil)
		parent := srv.OfRegexp(regexp.MustCompile(`^/room-\d+$`))
		var mu sync.Mutex
		var order []string
		parent.Use(func(s *Socket) error {
			mu.Lock()
			order = append(order, "parent middleware "+s.Namespace().Name())
			mu.Unlock()
			if s.Namespace().Name() == "/room-13" {
				return &ConnectError{Message: "unlucky", Data: map[string]int{"code": 13}}
			}
			return nil
		})
		parent.OnConnection(func(s *Socket) {
			s.On("where", func(args Args, ack AckFunc) { _ = ack(s.Namespace().Name()) })
		})
		c := dialRaw(t, url)
		c.connect("/room-7")
		c.send(`2/room-7,1["where"]`)
		if p := c.packet(); p != `3/room-7,1["/room-7"]` {
			t.Fatalf("ack %q", p)
		}
		c.send("0/room-13,")
		if p := c.packet(); p != `4/room-13,{"message":"unlucky","data":{"code":13}}` {
			t.Fatalf("refusal %q", p)
		}
		c.send("0/other,")
		if p := c.packet(); p != `4/other,{"message":"Invalid namespace"}` {
			t.Fatalf("unknown namespace %q", p)
		}
		if srv.Of("/room-7").SocketCount() != 1 {
			t.Fatal("the child namespace has no socket")
		}
	})
}

func TestEventsRunInOrderWhileTheConnectionKeepsReading(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url := newTestServer(t, mode, nil)
		results := make(chan string, 10)
		srv.OnConnection(func(s *Socket) {
			// The handler waits for an ack of the client: the connection must go on reading for
			// the ack to arrive.
			s.On("first", func(args Args, ack AckFunc) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				a, err := s.EmitWithAck(ctx, "question")
				if err != nil {
					results <- "error: " + err.Error()
					return
				}
				results <- "first got " + string(a.Raw(0))
			})
			s.On("second", func(args Args, ack AckFunc) { results <- "second" })
		})
		c := dialRaw(t, url)
		c.connect("/")
		c.send(`2["first"]`)
		c.send(`2["second"]`)
		q := c.packet() // 2<id>["question"]
		id := strings.TrimSuffix(strings.TrimPrefix(q, "2"), `["question"]`)
		c.send("3" + id + `["yes"]`)
		for _, want := range []string{`first got "yes"`, "second"} {
			select {
			case got := <-results:
				if got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %q", want)
			}
		}
	})
}

func TestEmitWithAckFailsWhenTheSocketDisconnects(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url := newTestServer(t, mode, nil)
		errs := make(chan error, 1)
		srv.OnConnection(func(s *Socket) {
			s.On("ask", func(Args, AckFunc) {
				_, err := s.EmitWithAck(context.Background(), "never answered")
				errs <- err
			})
		})
		c := dialRaw(t, url)
		c.connect("/")
		c.send(`2["ask"]`)
		c.packet()
		c.send("1") // DISCONNECT
		select {
		case err := <-errs:
			if !errors.Is(err, ErrDisconnected) {
				t.Fatalf("err %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("EmitWithAck still waiting")
		}
	})
}

// recordingAdapter records the packets handed to Broadcast.
type recordingAdapter struct {
	Adapter
	mu      sync.Mutex
	packets []*EncodedPacket
}

func (r *recordingAdapter) Broadcast(p *EncodedPacket, opts BroadcastOptions) {
	r.mu.Lock()
	r.packets = append(r.packets, p)
	r.mu.Unlock()
	r.Adapter.Broadcast(p, opts)
}

func TestABroadcastIsEncodedOnceForAllRecipients(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		var rec *recordingAdapter
		srv, url := newTestServer(t, mode, &Options{NewAdapter: func(nsp *Namespace) Adapter {
			a := &recordingAdapter{Adapter: NewInMemoryAdapter(nsp)}
			if nsp.Name() == "/" {
				rec = a
			}
			return a
		}})
		srv.OnConnection(func(s *Socket) { s.Join("room") })
		var clients []*rawClient
		for range 3 {
			c := dialRaw(t, url)
			c.connect("/")
			clients = append(clients, c)
		}
		if err := srv.To("room").Emit("news", "hi", []byte{1, 2}); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		n := len(rec.packets)
		rec.mu.Unlock()
		if n != 1 {
			t.Fatalf("%d packets encoded for one broadcast", n)
		}
		for _, c := range clients {
			if got := c.packet(); got != `51-["news","hi",{"_placeholder":true,"num":0}]` {
				t.Fatalf("got %q", got)
			}
			if got := c.read(); got != "binary:\x01\x02" {
				t.Fatalf("attachment %q", got)
			}
		}
	})
}

func TestReservedEventsCannotBeEmitted(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, _ := newTestServer(t, mode, nil)
		for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
			if err := srv.Emit(name); !errors.Is(err, ErrReservedEvent) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

func TestAConnectionThatJoinsNoNamespaceIsClosed(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		_, url := newTestServer(t, mode, &Options{ConnectTimeout: 200 * time.Millisecond})
		c := dialRaw(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			if _, _, err := c.conn.ReadMessage(ctx); err != nil {
				if ws.CloseStatus(err) != ws.StatusNormalClosure {
					t.Fatalf("closed with %v", err)
				}
				return
			}
		}
	})
}

func TestAMalformedPacketClosesTheConnection(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url := newTestServer(t, mode, nil)
		reasons := make(chan string, 1)
		srv.OnConnection(func(s *Socket) { s.OnDisconnect(func(r string) { reasons <- r }) })
		c := dialRaw(t, url)
		c.connect("/")
		c.send(`2{"not":"an array"}`)
		select {
		case r := <-reasons:
			if r != string(engineio.ReasonParseError) {
				t.Fatalf("reason %q", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("socket not disconnected")
		}
	})
}

func TestDisconnectingSeesTheRoomsThenTheSocketLeavesThem(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url := newTestServer(t, mode, nil)
		got := make(chan []Room, 1)
		left := make(chan int, 1)
		srv.OnConnection(func(s *Socket) {
			s.Join("a", "b")
			s.OnDisconnecting(func(string) { got <- s.Rooms() })
			s.OnDisconnect(func(string) { left <- len(s.Rooms()) })
		})
		c := dialRaw(t, url)
		c.connect("/")
		c.send("1")
		select {
		case rooms := <-got:
			if len(rooms) != 3 {
				t.Fatalf("rooms while disconnecting: %v", rooms)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no disconnecting")
		}
		if n := <-left; n != 0 {
			t.Fatalf("%d rooms after disconnect", n)
		}
	})
}

func TestPacketMiddlewareCanDropAnEvent(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url := newTestServer(t, mode, nil)
		errs := make(chan error, 1)
		handled := make(chan string, 4)
		srv.OnConnection(func(s *Socket) {
			s.Use(func(event string, args Args) error {
				if event == "admin" {
					return errors.New("unauthorized event")
				}
				return nil
			})
			s.OnError(func(err error) { errs <- err })
			s.OnAny(func(event string, _ Args) { handled <- "any " + event })
			s.On("admin", func(Args, AckFunc) { handled <- "admin" })
			s.On("hello", func(Args, AckFunc) { handled <- "hello" })
		})
		c := dialRaw(t, url)
		c.connect("/")
		c.send(`2["admin"]`)
		c.send(`2["hello"]`)
		if err := recv(t, errs, "middleware error"); err.Error() != "unauthorized event" {
			t.Fatalf("error %v", err)
		}
		for _, want := range []string{"any hello", "hello"} {
			if got := recv(t, handled, want); got != want {
				t.Fatalf("handled %q, want %q (the dropped event reached a handler?)", got, want)
			}
		}
	})
}

func TestOnAnyOutgoingSeesEmitsAndBroadcasts(t *testing.T) {
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
		srv, url := newTestServer(t, mode, nil)
		seen := make(chan string, 4)
		sockets := make(chan *Socket, 1)
		srv.OnConnection(func(s *Socket) {
			s.OnAnyOutgoing(func(event string, args []any) { seen <- fmt.Sprint(event, args) })
			sockets <- s
		})
		c := dialRaw(t, url)
		c.connect("/")
		s := recv(t, sockets, "socket")
		if err := s.Emit("direct", 1); err != nil {
			t.Fatal(err)
		}
		if err := srv.Emit("broadcast", "x"); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"direct[1]", "broadcast[x]"} {
			if got := recv(t, seen, want); got != want {
				t.Fatalf("saw %q, want %q", got, want)
			}
		}
		c.packet()
		c.packet()
	})
}
