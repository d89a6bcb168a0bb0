package interop

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/socketio"
)

// clientPage loads the chat page's Socket.IO client (from the source tree) and its test
// functions.
const clientPage = `<!doctype html><meta charset="utf-8"><title>duplex-client.js</title>
<script src="duplex-client.js"></script><script src="duplex-client-browser.js"></script>`

// DuplexSocket, the chat page's own Socket.IO client (cmd/duplex/web/duplex-client.js), in
// Chromium against socketio.Server: CONNECT with auth, acks both ways, an ack timeout, and a
// disconnection by the server, after which it does not reconnect. In both serving modes.
func TestChatClientInChromium(t *testing.T) {
	b := getBrowser(t)
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) { testChatClientInChromium(t, b, mode) })
}

func testChatClientInChromium(t *testing.T, b *browserProc, mode eiotest.Mode) {
	srv := socketio.NewServer(&socketio.Options{EventLoop: mode.Loop(t)})
	var (
		mu      sync.Mutex
		answers [][]any
		reasons []string
	)
	srv.OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("hello", s.Handshake().Auth)
		s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
			vals, err := args.Values()
			if err == nil && ack != nil {
				_ = ack(vals...)
			}
		})
		s.On("ask", func(args socketio.Args, _ socketio.AckFunc) {
			var n int
			_ = args.Decode(0, &n)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := s.EmitWithAck(ctx, "question", n)
			if err != nil {
				_ = s.Emit("answer", "error: "+err.Error())
				return
			}
			vals, _ := got.Values()
			mu.Lock()
			answers = append(answers, vals)
			mu.Unlock()
			_ = s.Emit("answer", vals...)
		})
		s.On("kick", func(socketio.Args, socketio.AckFunc) { s.Disconnect(false) })
		s.OnDisconnect(func(reason string) {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
		})
	})
	mux := http.NewServeMux()
	mux.Handle(socketio.DefaultPath, srv)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(clientPage))
	})
	mux.HandleFunc("GET /duplex-client.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "../../cmd/duplex/web/duplex-client.js")
	})
	mux.HandleFunc("GET /duplex-client-browser.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, "duplex-client-browser.js")
	})
	hs := httptest.NewServer(mux)
	var logs lockedBuffer
	defer stopTestServer(t, srv.Shutdown, hs, func() {}, &logs)

	var got struct {
		ID      string          `json:"id"`
		Hello   json.RawMessage `json:"hello"`
		Echo    json.RawMessage `json:"echo"`
		EchoAll struct {
			Err  *string `json:"err"`
			Args []any   `json:"args"`
		} `json:"echoAll"`
		Answer             []any  `json:"answer"`
		Unanswered         string `json:"unanswered"`
		Kicked             string `json:"kicked"`
		ConnectedAfterKick bool   `json:"connectedAfterKick"`
		EmitWhileOff       bool   `json:"emitWhileOff"`
	}
	b.run(t, 30*time.Second, hs.URL+"/", "call", map[string]any{"fn": "duplexClientBasics"}, &got)

	if got.ID == "" || string(got.Hello) != `{"token":"abc"}` {
		t.Errorf("connect: id %q, auth seen by the server %s; want an id and {\"token\":\"abc\"}", got.ID, got.Hello)
	}
	if string(got.Echo) != `{"n":[1,"two",null,true]}` {
		t.Errorf("emitWithAck resolved with %s, want the ack's first argument", got.Echo)
	}
	if got.EchoAll.Err != nil || !reflect.DeepEqual(got.EchoAll.Args, []any{1.0, "é€𝄞"}) {
		t.Errorf("emit's ack callback got error %v and %v, want null and [1 é€𝄞]", got.EchoAll.Err, got.EchoAll.Args)
	}
	if want := []any{42.0, "from the page"}; !reflect.DeepEqual(got.Answer, want) {
		t.Errorf("the page answered the server's question with %v, want %v", got.Answer, want)
	}
	if got.Unanswered != "ack timeout" {
		t.Errorf("an event the server never acks: %q, want ack timeout", got.Unanswered)
	}
	if got.Kicked != "io server disconnect" || got.ConnectedAfterKick || got.EmitWhileOff {
		t.Errorf("after the server's disconnect: reason %q, connected %v, emit sent %v; want io server disconnect, false, false",
			got.Kicked, got.ConnectedAfterKick, got.EmitWhileOff)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(answers) != 1 {
		t.Errorf("the server got %d answers to its question, want 1", len(answers))
	}
	if len(reasons) != 1 || reasons[0] != socketio.ReasonServerNamespaceDisconnect {
		t.Errorf("server-side disconnect reasons %q, want [%s]", reasons, socketio.ReasonServerNamespaceDisconnect)
	}
}
