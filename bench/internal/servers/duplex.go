package servers

import (
	"context"
	"net"
	"net/http"

	"github.com/duplexio/duplex/ws"
)

// duplexEcho is the echo loop: one goroutine per connection, one reused
// buffer, AppendMessage then WriteMessage.
func duplexEcho(c *ws.Conn) {
	defer c.CloseNow()
	ctx := context.Background()
	var buf []byte
	for {
		typ, b, err := c.AppendMessage(ctx, buf[:0])
		if err != nil {
			return
		}
		buf = b
		if err := c.WriteMessage(ctx, typ, buf); err != nil {
			return
		}
	}
}

func init() {
	// duplex: ws.Upgrader.Upgrade over net/http; the loop runs in a goroutine
	// of its own and the handler returns, as ws.Upgrader.Upgrade's doc advises
	// for long-lived connections (net/http frees its per-connection buffers).
	register("duplex", func(ln net.Listener) (Server, error) {
		up := &ws.Upgrader{}
		return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			go duplexEcho(c)
		})), nil
	})
	// duplex-raw: ws.Upgrader.UpgradeConn on a bare net.Listener, no net/http.
	register("duplex-raw", func(ln net.Listener) (Server, error) {
		up := &ws.Upgrader{}
		return serveListener(ln, func(nc net.Conn) {
			c, _, err := up.UpgradeConn(nc)
			if err != nil {
				nc.Close()
				return
			}
			duplexEcho(c)
		}), nil
	})
}
