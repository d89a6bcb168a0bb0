package servers

import (
	"net"
	"net/http"
	"strings"

	"github.com/gorilla/websocket"
	"github.com/lxzan/gws"

	"github.com/duplexio/duplex/ws"
)

// IsDeflate reports whether impl is one of the permessage-deflate echo
// servers (cmd/compare -deflate). They also serve clients that offer no
// compression, uncompressed.
func IsDeflate(impl string) bool { return strings.Contains(impl, "-deflate") }

// The permessage-deflate (RFC 7692) servers: the same echo loops as the plain
// ones, with each library's compression switched on so that every message is
// compressed, at each library's default level (1, BestSpeed, for all three).
func init() {
	// duplex-deflate: Threshold -1 compresses every message; context
	// takeover (both directions, 15-bit windows) unless the client's offer
	// asks for no context takeover.
	register("duplex-deflate", func(ln net.Listener) (Server, error) {
		up := &ws.Upgrader{Compression: &ws.CompressionOptions{Threshold: -1}}
		return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			go duplexEcho(c)
		})), nil
	})

	// gorilla-deflate: EnableCompression plus EnableWriteCompression(true).
	// gorilla implements no context takeover only: it always answers
	// "server_no_context_takeover; client_no_context_takeover".
	register("gorilla-deflate", func(ln net.Listener) (Server, error) {
		up := websocket.Upgrader{EnableCompression: true}
		return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer c.Close()
			c.EnableWriteCompression(true)
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

	// gws-deflate: PermessageDeflate enabled with gws's defaults (no context
	// takeover either way, level 1), Threshold 1 so every message is
	// compressed (0 would mean gws's default of 512 bytes).
	register("gws-deflate", func(ln net.Listener) (Server, error) {
		return gwsServe(ln, &gws.ServerOption{PermessageDeflate: gws.PermessageDeflate{Enabled: true, Threshold: 1}}), nil
	})

	// gws-deflate-ctx: the same with context takeover enabled both ways (gws
	// then compresses every message whatever the threshold) and 15-bit windows,
	// as duplex uses by default; gws's own default with takeover is 12 bits.
	register("gws-deflate-ctx", func(ln net.Listener) (Server, error) {
		return gwsServe(ln, &gws.ServerOption{PermessageDeflate: gws.PermessageDeflate{
			Enabled: true, Threshold: 1,
			ServerContextTakeover: true, ClientContextTakeover: true,
			ServerMaxWindowBits: 15, ClientMaxWindowBits: 15,
		}}), nil
	})
}

// gwsServe mounts a gws Upgrader with opt on net/http, ReadLoop in its own
// goroutine, echo from OnMessage.
func gwsServe(ln net.Listener, opt *gws.ServerOption) Server {
	up := gws.NewUpgrader(gwsEcho{}, opt)
	return serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r)
		if err != nil {
			return
		}
		go c.ReadLoop()
	}))
}
