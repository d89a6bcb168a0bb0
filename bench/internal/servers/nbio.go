package servers

import (
	"net"
	"net/http"

	"github.com/lesismal/nbio/logging"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// nbio: the event-loop library (lesismal/nbio) serving HTTP and WebSocket on its own
// pollers (nbhttp.Engine, the default non-blocking IO mode), with the upgrader's OnMessage
// echoing, as nbio's websocket examples do. MaxLoad is raised past the default 10,000 so
// that the idle tests can hold their counts. A comparison point for duplex's ws.EventLoop:
// an event-driven library that owns its connections.
func init() {
	register("nbio", func(ln net.Listener) (Server, error) {
		logging.SetLevel(logging.LevelNone) // its log goes to stdout, where the harness reads "listening ADDR"
		up := websocket.NewUpgrader()
		up.OnMessage(func(c *websocket.Conn, typ websocket.MessageType, data []byte) {
			_ = c.WriteMessage(typ, data)
		})
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			_, _ = up.Upgrade(w, r, nil)
		})
		engine := nbhttp.NewEngine(nbhttp.Config{
			Network: "tcp",
			Addrs:   []string{ln.Addr().String()},
			Listen:  func(string, string) (net.Listener, error) { return ln, nil },
			Handler: mux,
			MaxLoad: 1 << 20,
		})
		if err := engine.Start(); err != nil {
			return nil, err
		}
		return nbioServer{engine}, nil
	})
}

type nbioServer struct{ e *nbhttp.Engine }

func (s nbioServer) Close() error {
	s.e.Stop()
	return nil
}
