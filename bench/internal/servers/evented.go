package servers

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/duplexio/duplex/ws"
)

// eventedEcho is the echo as a ws.EventHandler: every message goes back from OnMessage
// (WriteMessage copies it into the connection's write queue, so data may be reused).
type eventedEcho struct{}

func (eventedEcho) OnOpen(*ws.Conn) {}
func (eventedEcho) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	_ = c.WriteMessage(context.Background(), typ, data)
}
func (eventedEcho) OnClose(*ws.Conn, error) {}

// eventedServer is a server whose connections an EventLoop serves: closing it closes the
// listener, then the loop (which ends the connections).
type eventedServer struct {
	Server
	loop *ws.EventLoop
}

func (s eventedServer) Close() error { return errors.Join(s.Server.Close(), s.loop.Close()) }

func init() {
	// duplex-evented: ws.Upgrader.Upgrade over net/http, then ws.EventLoop.Serve with the
	// echo handler; the net/http handler returns at once. Default loop options.
	register("duplex-evented", func(ln net.Listener) (Server, error) {
		loop, err := ws.NewEventLoop(nil)
		if err != nil {
			return nil, err
		}
		up := &ws.Upgrader{}
		return eventedServer{serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			if loop.Serve(c, eventedEcho{}) != nil {
				c.CloseNow()
			}
		})), loop}, nil
	})
	// duplex-raw-evented: ws.Upgrader.UpgradeConn on a bare net.Listener, then Serve.
	register("duplex-raw-evented", func(ln net.Listener) (Server, error) {
		loop, err := ws.NewEventLoop(nil)
		if err != nil {
			return nil, err
		}
		up := &ws.Upgrader{}
		return eventedServer{serveListener(ln, func(nc net.Conn) {
			c, _, err := up.UpgradeConn(nc)
			if err != nil {
				nc.Close()
				return
			}
			if loop.Serve(c, eventedEcho{}) != nil {
				c.CloseNow()
			}
		}), loop}, nil
	})
}
