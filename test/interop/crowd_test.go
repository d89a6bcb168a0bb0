package interop

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/duplexio/duplex/socketio"
)

// TestSocketIORoomOf200Clients: 200 socket.io-client connections join one room; broadcasts
// to the room reach every one of them once, in order, and a relay from one member reaches
// all the others but not the sender. On each transport mode (sioModes: those with a
// WebSocket in both serving modes).
func TestSocketIORoomOf200Clients(t *testing.T) {
	requireSIOClient(t)
	const n, news = 200, 10
	for _, mode := range sioModes {
		t.Run(mode.name, func(t *testing.T) {
			srv := socketio.NewServer(&socketio.Options{EventLoop: mode.serve.Loop(t)})
			sockets := make(chan *socketio.Socket, n)
			srv.OnConnection(func(s *socketio.Socket) {
				s.On("join", func(args socketio.Args, ack socketio.AckFunc) {
					var room string
					if args.Decode(0, &room) == nil {
						s.Join(socketio.Room(room))
						sockets <- s
					}
					if ack != nil {
						_ = ack()
					}
				})
			})
			hs := httptest.NewServer(srv)
			t.Cleanup(hs.Close)
			opts, _ := json.Marshal(mode.opts)
			p := startNode(t, 70*time.Second, "sio-crowd.js", hs.URL, "200", string(opts))
			ready := p.waitFor(t, 60*time.Second, func(e event) bool { return e.Op == "ready" })
			if ready.Size != n {
				t.Fatalf("ready with %d clients", ready.Size)
			}
			if got := srv.Of("/").SocketCount(); got != n {
				t.Fatalf("SocketCount %d, want %d", got, n)
			}
			sender := <-sockets
			for i := range news {
				if err := srv.To("crowd").Emit("news", i); err != nil {
					t.Fatal(err)
				}
			}
			if err := sender.To("crowd").Emit("relay"); err != nil {
				t.Fatal(err)
			}
			if err := srv.To("crowd").Emit("done"); err != nil {
				t.Fatal(err)
			}
			ev := p.waitFor(t, 60*time.Second, func(e event) bool { return e.Op == "crowd" })
			var results []struct {
				Name   string `json:"name"`
				News   []int  `json:"news"`
				Relays int    `json:"relays"`
			}
			if err := json.Unmarshal([]byte(ev.Data), &results); err != nil || len(results) != n {
				t.Fatalf("%d results (%v)", len(results), err)
			}
			senderName := ""
			var auth struct {
				Name string `json:"name"`
			}
			if json.Unmarshal(sender.Handshake().Auth, &auth) == nil {
				senderName = auth.Name
			}
			relays := 0
			for _, r := range results {
				if len(r.News) != news {
					t.Fatalf("%s got %d news: %v", r.Name, len(r.News), r.News)
				}
				for i, v := range r.News {
					if v != i {
						t.Fatalf("%s got news %v", r.Name, r.News)
					}
				}
				if r.Name == senderName && r.Relays != 0 {
					t.Errorf("the sender %s got its own relay", r.Name)
				}
				relays += r.Relays
			}
			if relays != n-1 {
				t.Errorf("%d relays delivered, want %d", relays, n-1)
			}
		})
	}
}
