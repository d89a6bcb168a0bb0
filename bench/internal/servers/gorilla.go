package servers

import (
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// gorilla: Upgrader with default buffer sizes, then a ReadMessage/WriteMessage
// loop in the handler goroutine, as gorilla's echo example does.
func init() {
	register("gorilla", func(ln net.Listener) (Server, error) {
		up := websocket.Upgrader{}
		return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			for {
				typ, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if err := c.WriteMessage(typ, msg); err != nil {
					return
				}
			}
		})), nil
	})
}
