package interop

import (
	"errors"
	"testing"

	"github.com/duplexio/duplex/ws"
)

// nodeClients are the Node client peers; both take the same steps (common.js).
var nodeClients = []struct {
	name, script string
	fragments    bool // can send a message as explicit fragments
}{
	{"ws", "ws-client.js", true},
	{"websocket", "websocket-client.js", false},
}

// Every size and type sent by each Node client comes back byte-exact from the
// duplex server (in every server mode), and the server received the exact bytes.
func TestDuplexServerEchoesNodeClients(t *testing.T) {
	requireNode(t)
	for _, cl := range nodeClients {
		for _, mode := range serverModes {
			t.Run(cl.name+"/"+mode.String(), func(t *testing.T) {
				t.Parallel()
				srv := startDuplexServer(t, mode, &ws.Upgrader{})
				steps := append(echoSteps(16<<20), step{Op: "close", Code: 1000})
				events := runClient(t, cl.script, srv.url("echo"), clientArgs{Steps: steps})
				srv.expect(t, "echo", "open")
				checkEchoEvents(t, steps[:len(steps)-1], events)
				srv.checkMessages(t, "echo", steps)
				// WebSocket-Node adds a reason of its own to 1000: check the code only.
				ev := srv.expect(t, "echo", "closed")
				if ws.CloseStatus(ev.Err) != 1000 {
					t.Errorf("server read error %v, want a CloseError with code 1000", ev.Err)
				}
			})
		}
	}
}

// A message the Node ws client sends in several frames (text cut inside UTF-8
// characters) reaches the duplex server whole and comes back byte-exact.
func TestDuplexServerReassemblesNodeWSFragments(t *testing.T) {
	requireNode(t)
	steps := []step{
		{Op: "echo", Type: "text", Size: 125, Fragments: 5},
		{Op: "echo", Type: "text", Size: 65536, Fragments: 3},
		{Op: "echo", Type: "binary", Size: 126, Fragments: 2},
		{Op: "echo", Type: "binary", Size: 16 << 20, Fragments: 4},
		{Op: "echo", Type: "text", Size: 16 << 20, Fragments: 7},
	}
	for _, mode := range serverModes {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			srv := startDuplexServer(t, mode, &ws.Upgrader{})
			events := runClient(t, "ws-client.js", srv.url("frag"), clientArgs{Steps: append(steps, step{Op: "close", Code: 1000})})
			srv.expect(t, "frag", "open")
			checkEchoEvents(t, steps, events)
			srv.checkMessages(t, "frag", steps)
		})
	}
}

// Close codes travel both ways between the Node clients and the duplex server,
// including the codes of connections the server fails (1007, 1009).
func TestDuplexServerCloseCodesWithNodeClients(t *testing.T) {
	requireNode(t)
	// surrogate is text whose UTF-8 is invalid: ED A0 80 encodes U+D800.
	const surrogate = "cebae1bdb9cf83cebcceb5eda080656469746564"
	cases := []struct {
		name       string
		wsOnly     bool     // WebSocket-Node cannot send invalid UTF-8
		readLimit  int64    // Upgrader.ReadLimit
		query      []string // extra query parameters for the server
		steps      []step
		wantClient int            // the code of the client's close event
		wantReason string         // its reason; checked when not empty (an echo's reason is optional)
		wantOp     string         // the server's last event
		wantErr    *ws.CloseError // the server's read error, if Op is "closed" (Reason ignored when !Remote)
	}{
		{
			name:       "client closes 4000 bye",
			steps:      []step{{Op: "echo", Type: "text", Size: 5}, {Op: "close", Code: 4000, Reason: "bye"}},
			wantClient: 4000, // the server's echo; its reason is optional
			wantOp:     "closed",
			wantErr:    &ws.CloseError{Code: 4000, Reason: "bye", Remote: true},
		},
		{
			name:       "server closes 1001 going away",
			query:      []string{"close", "1001", "reason", "going away"},
			steps:      []step{{Op: "awaitClose"}},
			wantClient: 1001,
			wantReason: "going away",
			wantOp:     "closeSent",
		},
		{
			name:       "invalid UTF-8 fails with 1007",
			wsOnly:     true,
			steps:      []step{{Op: "send", Type: "text", Hex: surrogate}, {Op: "awaitClose"}},
			wantClient: 1007,
			wantOp:     "closed",
			wantErr:    &ws.CloseError{Code: 1007},
		},
		{
			name:       "message over ReadLimit fails with 1009",
			readLimit:  65536,
			steps:      []step{{Op: "echo", Type: "binary", Size: 65536}, {Op: "send", Type: "binary", Size: 65537}, {Op: "awaitClose"}},
			wantClient: 1009,
			wantOp:     "closed",
			wantErr:    &ws.CloseError{Code: 1009},
		},
	}
	for _, cl := range nodeClients {
		for _, mode := range serverModes {
			for _, tc := range cases {
				if tc.wsOnly && cl.name != "ws" {
					continue
				}
				t.Run(cl.name+"/"+mode.String()+"/"+tc.name, func(t *testing.T) {
					t.Parallel()
					srv := startDuplexServer(t, mode, &ws.Upgrader{ReadLimit: tc.readLimit})
					events := runClient(t, cl.script, srv.url("c", tc.query...), clientArgs{Steps: tc.steps, TimeoutMs: 20000})
					last := events[len(events)-1]
					if last.Op != "close" || last.Code != tc.wantClient || (tc.wantReason != "" && last.Reason != tc.wantReason) {
						t.Errorf("%s saw %+v, want close %d %q", cl.name, last, tc.wantClient, tc.wantReason)
					}
					srv.expect(t, "c", "open")
					for _, st := range tc.steps {
						if st.Op == "echo" {
							srv.expect(t, "c", "message")
						}
					}
					ev := srv.expect(t, "c", tc.wantOp)
					switch {
					case tc.wantErr == nil:
						if ev.Err != nil {
							t.Errorf("server Close: %v", ev.Err)
						}
					case tc.wantErr.Remote:
						checkCloseError(t, ev.Err, *tc.wantErr)
					default:
						var ce *ws.CloseError
						if !errors.As(ev.Err, &ce) || ce.Code != tc.wantErr.Code || ce.Remote {
							t.Errorf("server read error %v, want a local CloseError with code %d", ev.Err, tc.wantErr.Code)
						}
					}
				})
			}
		}
	}
}

// The duplex server picks the first of its own subprotocols that the Node ws
// client offers, and both sides agree on it.
func TestDuplexServerNegotiatesSubprotocolWithNodeWS(t *testing.T) {
	requireNode(t)
	cases := []struct {
		name    string
		server  []string
		offered []string
		want    string
	}{
		{"server preference wins", []string{"v2.duplex", "v1.duplex"}, []string{"v1.duplex", "v2.duplex"}, "v2.duplex"},
		{"single common protocol", []string{"chat"}, []string{"superchat", "chat"}, "chat"},
		{"none offered", []string{"chat"}, nil, ""},
	}
	for _, mode := range serverModes {
		for _, tc := range cases {
			t.Run(mode.String()+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				srv := startDuplexServer(t, mode, &ws.Upgrader{Subprotocols: tc.server})
				steps := []step{{Op: "echo", Type: "text", Size: 3}, {Op: "close", Code: 1000}}
				events := runClient(t, "ws-client.js", srv.url("p"), clientArgs{Protocols: tc.offered, Steps: steps})
				if got := events[0].Protocol; got != tc.want {
					t.Errorf("ws client's protocol = %q, want %q", got, tc.want)
				}
				if got := srv.expect(t, "p", "open").Subprotocol; got != tc.want {
					t.Errorf("duplex Conn.Subprotocol() = %q, want %q", got, tc.want)
				}
			})
		}
	}
}
