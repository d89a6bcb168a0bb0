package interop

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/duplexio/duplex/ws"
)

// serveEvented is serve on an event loop: the same behaviours (the query's close and
// ping, the echo or the hook's, the 1000-message cap) and the same events, reported by
// an EventHandler instead of a read loop.
func (s *duplexServer) serveEvented(loop *ws.EventLoop, c *ws.Conn, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = c.CloseNow()
		return
	}
	s.conns[c] = true
	s.wg.Add(1) // Done after OnClose: the cleanup waits for it
	s.mu.Unlock()
	if err := loop.Serve(c, &eventedConn{s: s, r: r, q: r.URL.Query()}); err != nil {
		s.report(r, srvEvent{Op: "rejected", Err: err})
		s.ended(c)
	}
}

// ended forgets a connection whose handler has returned for good.
func (s *duplexServer) ended(c *ws.Conn) {
	_ = c.CloseNow()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// eventedConn is the EventHandler of one connection of serveEvented.
type eventedConn struct {
	s        *duplexServer
	r        *http.Request
	q        url.Values
	messages int
	// over: the last event was reported (closeSent, writeError, as serve returns after
	// them); OnClose reports nothing more.
	over bool
}

func (h *eventedConn) OnOpen(c *ws.Conn) {
	s, r := h.s, h.r
	open := srvEvent{Op: "open", Subprotocol: c.Subprotocol()}
	if s.hooks.info != nil {
		open.Extensions = s.hooks.info(c)
	}
	s.report(r, open)
	if code := h.q.Get("close"); code != "" {
		n, _ := strconv.Atoi(code)
		err := c.Close(ws.StatusCode(n), h.q.Get("reason")) // does not wait: OnClose ends it
		s.report(r, srvEvent{Op: "closeSent", Err: err})
		h.over = true
		return
	}
	if h.q.Has("ping") {
		c.SetPongHandler(func(data []byte) { s.report(r, srvEvent{Op: "pong", Data: string(data)}) })
		if err := c.Ping(context.Background(), []byte(h.q.Get("ping"))); err != nil {
			s.report(r, srvEvent{Op: "pingError", Err: err})
		}
	}
}

func (h *eventedConn) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	s, r := h.s, h.r
	if h.over {
		return
	}
	s.report(r, srvEvent{Op: "message", Type: typ, Len: len(data), SHA256: sha256Hex(data)})
	ctx := context.Background() // writes on a served Conn queue, they do not block
	var err error
	if s.hooks.echo != nil {
		err = s.hooks.echo(ctx, c, h.q, h.messages, typ, data)
	} else {
		err = c.WriteMessage(ctx, typ, data)
	}
	if err != nil {
		s.report(r, srvEvent{Op: "writeError", Err: err})
		h.over = true
		_ = c.CloseNow()
		return
	}
	if h.messages++; h.messages == 1000 {
		_ = c.Close(ws.StatusPolicyViolation, "too many messages")
		h.over = true
	}
}

func (h *eventedConn) OnClose(c *ws.Conn, err error) {
	if !h.over {
		h.s.report(h.r, srvEvent{Op: "closed", Err: err})
	}
	h.s.ended(c)
}
