package engineio

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/duplexio/duplex/ws"
)

// The client's WebSocket transport: a connection opened on it directly, or a polling one
// upgraded to it (2probe, 3probe, polling paused, then the upgrade packet 5).

// dialWebSocket opens the WebSocket of the session sid, or of a new session when sid is ""
// (then it reads the open packet and returns the handshake).
func (c *Client) dialWebSocket(ctx context.Context, sid string) (*ws.Conn, Handshake, error) {
	u, err := url.Parse(c.requestURL(TransportWebSocket, sid))
	if err != nil {
		return nil, Handshake{}, err
	}
	header := c.cfg.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	if jar := c.httpc.Jar; jar != nil {
		for _, ck := range jar.Cookies(u) {
			header.Add("Cookie", ck.String())
		}
	}
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	opts := &ws.DialOptions{Header: header, TLSConfig: c.cfg.TLSConfig, ReadLimit: c.cfg.ReadLimit}
	if c.cfg.Compression {
		opts.Compression = &ws.CompressionOptions{}
	}
	conn, _, err := ws.Dial(ctx, u.String(), opts)
	if err != nil {
		return nil, Handshake{}, err
	}
	if sid != "" {
		return conn, Handshake{}, nil
	}
	hs, err := readOpen(ctx, conn)
	if err != nil {
		conn.CloseNow()
		return nil, Handshake{}, err
	}
	return conn, hs, nil
}

// readOpen reads the open packet that starts a WebSocket session.
func readOpen(ctx context.Context, conn *ws.Conn) (Handshake, error) {
	p, err := readPacket(ctx, conn)
	if err != nil {
		return Handshake{}, fmt.Errorf("engineio: handshake: %w", err)
	}
	if p.Type != Open {
		return Handshake{}, fmt.Errorf("engineio: handshake: got a %v packet, want open", p.Type)
	}
	hs, err := ParseHandshake(p.Data)
	if err != nil {
		return Handshake{}, fmt.Errorf("engineio: handshake: %w", err)
	}
	if hs.SID == "" {
		return Handshake{}, errors.New("engineio: handshake: the open packet has no sid")
	}
	return hs, nil
}

// maxKeptClientBuffer is the largest read buffer the client keeps between messages.
const maxKeptClientBuffer = 64 << 10

// readWebSocket delivers the packets of conn until the connection ends.
func (c *Client) readWebSocket(conn *ws.Conn) {
	var buf []byte
	for {
		typ, data, err := conn.AppendMessage(context.Background(), buf[:0])
		if err != nil {
			c.transportFailed(webSocketCloseReason(err), err)
			return
		}
		if cap(data) <= maxKeptClientBuffer {
			buf = data
		} else {
			buf = nil // one large message does not pin its buffer for the connection's life
		}
		p, err := ParsePacket(data, typ == ws.MessageBinary)
		if err != nil {
			c.transportFailed(ReasonParseError, err)
			return
		}
		if !c.onPacket(p) {
			return
		}
	}
}

// webSocketCloseReason is the close reason of a WebSocket read error. The connection
// ending from the server's side (a close frame, the TCP connection closed or reset: 1006) is
// "transport close", as engine.io-client reports it; the client failing the connection
// itself (a message over the read limit, a protocol error) is "transport error".
func webSocketCloseReason(err error) CloseReason {
	var ce *ws.CloseError
	if errors.As(err, &ce) && !ce.Remote && ce.Code != ws.StatusAbnormalClosure {
		return ReasonTransportError
	}
	return ReasonTransportClose
}

// writeWebSocket writes packets as one batch of frames (one system call when they fit).
// text is a scratch buffer for the text frames; it returns it, grown as needed.
func writeWebSocket(conn *ws.Conn, batch []outPacket, text []byte) ([]byte, error) {
	ctx := context.Background()
	err := conn.Batch(ctx, func() error {
		for _, p := range batch {
			typ, data := ws.MessageBinary, p.Data
			if !p.IsBinary() {
				typ = ws.MessageText
				text = AppendPacket(text[:0], p.Packet)
				data = text
			}
			if err := conn.WriteMessageCompressed(ctx, typ, data, p.compress); err != nil {
				return err
			}
		}
		return nil
	})
	if cap(text) > maxKeptClientBuffer {
		text = nil
	}
	return text, err
}

// upgrade moves a polling connection to the WebSocket: it probes a WebSocket with the
// session id, pauses polling once the probe is answered (the server releases the pending
// poll), sends the upgrade packet and goes on reading the WebSocket. If the probe fails,
// the connection stays on polling.
func (c *Client) upgrade() {
	defer c.workers.Done()
	ctx, cancel := context.WithTimeout(c.ctx, DefaultUpgradeTimeout)
	defer cancel()
	conn, _, err := c.dialWebSocket(ctx, c.hs.SID)
	if err != nil {
		c.cfg.Logger.Debug("engineio: upgrade failed", "sid", c.hs.SID, "error", err)
		return
	}
	c.mu.Lock()
	if c.closed || c.closing {
		c.mu.Unlock()
		conn.CloseNow()
		return
	}
	c.probe = conn
	c.mu.Unlock()

	if err := probe(ctx, conn); err != nil {
		c.abandonProbe(conn, err)
		return
	}
	c.mu.Lock()
	c.paused = true
	for (c.polling || c.writing) && !c.closed && !c.closing {
		c.cond.Wait()
	}
	if c.closed || c.closing {
		c.paused = false
		c.kickLocked()
		c.mu.Unlock()
		c.abandonProbe(conn, errors.New("engineio: closed during the upgrade"))
		return
	}
	c.mu.Unlock()

	if err := conn.WriteMessage(ctx, ws.MessageText, []byte{byte('0' + Upgrade)}); err != nil {
		c.transportFailed(ReasonTransportError, err)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.CloseNow()
		return
	}
	c.transport, c.conn, c.probe, c.paused = TransportWebSocket, conn, nil, false
	if len(c.queue) > 0 {
		c.kickLocked()
	}
	c.mu.Unlock()
	if c.cfg.OnUpgrade != nil {
		c.cfg.OnUpgrade(TransportWebSocket)
	}
	c.readWebSocket(conn)
}

// probe sends the ping probe and waits for the pong probe.
func probe(ctx context.Context, conn *ws.Conn) error {
	if err := conn.WriteMessage(ctx, ws.MessageText, []byte("2probe")); err != nil {
		return err
	}
	p, err := readPacket(ctx, conn)
	if err != nil {
		return err
	}
	if p.Type != Pong || string(p.Data) != "probe" {
		return fmt.Errorf("engineio: upgrade: got %v packet %q, want the pong probe", p.Type, p.Data)
	}
	return nil
}

// abandonProbe drops a WebSocket whose upgrade failed; the connection stays on polling.
func (c *Client) abandonProbe(conn *ws.Conn, err error) {
	conn.CloseNow()
	c.mu.Lock()
	if c.probe == conn {
		c.probe = nil
	}
	c.mu.Unlock()
	c.cfg.Logger.Debug("engineio: upgrade failed", "sid", c.hs.SID, "error", err)
}
