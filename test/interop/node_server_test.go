package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// wsServer is a running ws-server.js.
type wsServer struct {
	proc *nodeProc
	port int
}

type wsServerArgs struct {
	PerMessageDeflate any      `json:"perMessageDeflate"` // bool or ws's perMessageDeflate options
	Protocols         []string `json:"protocols,omitempty"`
}

func startWSServer(t *testing.T, args wsServerArgs) *wsServer {
	t.Helper()
	js, _ := json.Marshal(args)
	p := startNode(t, 3*time.Minute, "ws-server.js", string(js))
	ev := p.next(t, 15*time.Second)
	if ev.Op != "listening" || ev.Port == 0 {
		t.Fatalf("ws-server.js: got %+v, want listening", ev)
	}
	return &wsServer{proc: p, port: ev.Port}
}

func (s *wsServer) url(id string, kv ...string) string {
	q := url.Values{"id": {id}}
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	return fmt.Sprintf("ws://127.0.0.1:%d/?%s", s.port, q.Encode())
}

// expect waits for the server's next event of op on connection id.
func (s *wsServer) expect(t testing.TB, id, op string) event {
	t.Helper()
	return s.proc.waitFor(t, 30*time.Second, func(ev event) bool { return ev.ID == id && ev.Op == op })
}

func dial(t *testing.T, ctx context.Context, u string, opts *ws.DialOptions) (*ws.Conn, *http.Response) {
	t.Helper()
	c, resp, err := ws.Dial(ctx, u, opts)
	if err != nil {
		t.Fatalf("ws.Dial %s: %v", u, err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c, resp
}

// roundTrip sends data as one message (or through NextWriter in parts) and checks the echo.
func roundTrip(t *testing.T, ctx context.Context, c *ws.Conn, typ string, data []byte, parts int) {
	t.Helper()
	if parts <= 1 {
		if err := c.WriteMessage(ctx, msgType(typ), data); err != nil {
			t.Fatalf("WriteMessage: %v", err)
		}
	} else {
		w, err := c.NextWriter(ctx, msgType(typ))
		if err != nil {
			t.Fatalf("NextWriter: %v", err)
		}
		for i := range parts {
			if _, err := w.Write(data[i*len(data)/parts : (i+1)*len(data)/parts]); err != nil {
				t.Fatalf("Write part %d: %v", i, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatalf("close writer: %v", err)
		}
	}
	gotType, got, err := c.ReadMessage(ctx)
	if err != nil {
		t.Fatalf("ReadMessage: %v", err)
	}
	if gotType != msgType(typ) || !bytes.Equal(got, data) {
		t.Errorf("echo: got %v of %d bytes (sha256 %.12s…), want %s of %d bytes (sha256 %.12s…)",
			gotType, len(got), sha256Hex(got), typ, len(data), sha256Hex(data))
	}
}

// checkReceived checks the ws server's record of the message it got.
func (s *wsServer) checkReceived(t *testing.T, id, typ string, n int) {
	t.Helper()
	ev := s.expect(t, id, "message")
	if ev.Type != typ || ev.Len != n || ev.SHA256 != patternSHA(typ, n) {
		t.Errorf("ws server received %s of %d bytes (sha256 %.12s…), want %s of %d bytes", ev.Type, ev.Len, ev.SHA256, typ, n)
	}
}

// Every size and type sent by ws.Dial's Conn reaches the Node ws server
// byte-exact and comes back byte-exact, with and without permessage-deflate
// enabled on the server.
func TestDuplexClientEchoesNodeWSServer(t *testing.T) {
	requireNode(t)
	for _, deflate := range []bool{false, true} {
		t.Run(fmt.Sprintf("perMessageDeflate=%v", deflate), func(t *testing.T) {
			t.Parallel()
			srv := startWSServer(t, wsServerArgs{PerMessageDeflate: deflate})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			c, _ := dial(t, ctx, srv.url("echo"), nil)
			t.Logf("duplex client offered extensions %q", srv.expect(t, "echo", "open").Extensions)
			for _, typ := range msgTypes {
				for _, n := range sizes {
					t.Run(fmt.Sprintf("%s/%d", typ, n), func(t *testing.T) {
						roundTrip(t, ctx, c, typ, pattern(typ, n), 1)
						srv.checkReceived(t, "echo", typ, n)
					})
				}
			}
			if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
			if ev := srv.expect(t, "echo", "close"); ev.Code != 1000 {
				t.Errorf("ws server saw close %d, want 1000", ev.Code)
			}
		})
	}
}

// A message written through NextWriter in several Writes (cut inside UTF-8
// characters for text) reaches the Node ws server as one message.
func TestDuplexClientFragmentsToNodeWSServer(t *testing.T) {
	requireNode(t)
	srv := startWSServer(t, wsServerArgs{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, _ := dial(t, ctx, srv.url("frag"), nil)
	srv.expect(t, "frag", "open")
	cases := []struct {
		typ      string
		n, parts int
	}{
		{"text", 125, 5}, {"text", 65536, 3}, {"binary", 126, 2}, {"binary", 65535, 9},
		{"binary", 16 << 20, 4}, {"text", 16 << 20, 7},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d/%d-writes", tc.typ, tc.n, tc.parts), func(t *testing.T) {
			roundTrip(t, ctx, c, tc.typ, pattern(tc.typ, tc.n), tc.parts)
			srv.checkReceived(t, "frag", tc.typ, tc.n)
		})
	}
}

// Close codes travel both ways between ws.Dial's Conn and the Node ws server.
func TestDuplexClientCloseCodesWithNodeWSServer(t *testing.T) {
	requireNode(t)
	srv := startWSServer(t, wsServerArgs{})

	t.Run("client closes 4000 bye", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, _ := dial(t, ctx, srv.url("c4000"), nil)
		srv.expect(t, "c4000", "open")
		if err := c.Close(4000, "bye"); err != nil {
			t.Errorf("Close(4000): %v", err)
		}
		if ev := srv.expect(t, "c4000", "close"); ev.Code != 4000 || ev.Reason != "bye" {
			t.Errorf("ws server saw close %d %q, want 4000 \"bye\"", ev.Code, ev.Reason)
		}
		if _, _, err := c.ReadMessage(ctx); err == nil {
			t.Errorf("ReadMessage after Close returned no error")
		}
	})

	t.Run("server closes 1001 going away", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, _ := dial(t, ctx, srv.url("s1001", "close", "1001", "reason", "going away"), nil)
		_, _, err := c.ReadMessage(ctx)
		checkCloseError(t, err, ws.CloseError{Code: 1001, Reason: "going away", Remote: true})
		// The duplex client echoes the server's code in its close frame.
		if ev := srv.expect(t, "s1001", "close"); ev.Code != 1001 {
			t.Errorf("ws server's close event has code %d, want the echoed 1001", ev.Code)
		}
	})
}

// A ping from the Node ws server is answered with a pong carrying its payload
// while the duplex client reads.
func TestDuplexClientAnswersNodeWSServerPing(t *testing.T) {
	requireNode(t)
	srv := startWSServer(t, wsServerArgs{})
	for _, payload := range []string{"hello", "", "p-125-" + string(bytes.Repeat([]byte("x"), 119))} {
		t.Run(fmt.Sprintf("%d-byte ping", len(payload)), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id := fmt.Sprintf("ping%d", len(payload))
			c, _ := dial(t, ctx, srv.url(id, "ping", payload), nil)
			// The server sends "pong:<payload>" once it has the pong.
			typ, msg, err := c.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("ReadMessage: %v", err)
			}
			if typ != ws.MessageText || string(msg) != "pong:"+payload {
				t.Errorf("got %v %q, want text %q", typ, msg, "pong:"+payload)
			}
			if ev := srv.expect(t, id, "pong"); ev.Data != payload {
				t.Errorf("pong payload %q, want %q", ev.Data, payload)
			}
			_ = c.Close(ws.StatusNormalClosure, "")
		})
	}
}

// The Node ws server answers a ping from ws.Dial's Conn with the same payload.
func TestNodeWSServerAnswersDuplexClientPing(t *testing.T) {
	requireNode(t)
	srv := startWSServer(t, wsServerArgs{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _ := dial(t, ctx, srv.url("dping"), nil)
	pongs := make(chan string, 4)
	c.SetPongHandler(func(data []byte) { pongs <- string(data) })
	if err := c.Ping(ctx, []byte("duplex ping")); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// The pong precedes the echo of a message written after the ping, and the
	// read that returns the echo is what processes it.
	roundTrip(t, ctx, c, "text", pattern("text", 10), 1)
	select {
	case got := <-pongs:
		if got != "duplex ping" {
			t.Errorf("pong payload %q, want %q", got, "duplex ping")
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no pong handled")
	}
	_ = c.Close(ws.StatusNormalClosure, "")
}

// ws.Dial offers its subprotocols and reports the one the Node ws server chose.
func TestDuplexClientNegotiatesSubprotocolWithNodeWSServer(t *testing.T) {
	requireNode(t)
	srv := startWSServer(t, wsServerArgs{Protocols: []string{"superchat", "v1.duplex"}})
	cases := []struct {
		name    string
		offered []string
		want    string
	}{
		{"second offered", []string{"chat", "superchat"}, "superchat"},
		{"first offered", []string{"v1.duplex", "superchat"}, "v1.duplex"},
		{"none offered", nil, ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			id := fmt.Sprint("proto", i)
			c, resp := dial(t, ctx, srv.url(id), &ws.DialOptions{Subprotocols: tc.offered})
			if got := c.Subprotocol(); got != tc.want {
				t.Errorf("Conn.Subprotocol() = %q, want %q", got, tc.want)
			}
			if resp == nil || resp.StatusCode != http.StatusSwitchingProtocols {
				t.Errorf("handshake response %+v, want 101", resp)
			}
			if ev := srv.expect(t, id, "open"); ev.Protocol != tc.want {
				t.Errorf("ws server chose %q, want %q", ev.Protocol, tc.want)
			}
			roundTrip(t, ctx, c, "text", pattern("text", 20), 1)
			_ = c.Close(ws.StatusNormalClosure, "")
		})
	}
}
