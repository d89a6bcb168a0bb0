package engineio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The client's polling transport: a GET that the server holds until it has packets, one at
// a time, and a POST for what the client sends, one at a time, each body a payload of
// packets joined by the record separator.

// pollingHandshake opens the session with a first GET, whose answer starts with the open
// packet. It returns the handshake and the packets that came after it.
func (c *Client) pollingHandshake(ctx context.Context) (Handshake, []Packet, error) {
	body, err := c.get(ctx, c.requestURL(TransportPolling, ""))
	if err != nil {
		return Handshake{}, nil, err
	}
	packets, err := ParsePayload(body, 0)
	if err != nil {
		return Handshake{}, nil, fmt.Errorf("engineio: handshake: %w", err)
	}
	if packets[0].Type != Open {
		return Handshake{}, nil, fmt.Errorf("engineio: handshake: got a %v packet, want open", packets[0].Type)
	}
	hs, err := ParseHandshake(packets[0].Data)
	if err != nil {
		return Handshake{}, nil, fmt.Errorf("engineio: handshake: %w", err)
	}
	if hs.SID == "" {
		return Handshake{}, nil, errors.New("engineio: handshake: the open packet has no sid")
	}
	return hs, packets[1:], nil
}

// requestURL is the URL of a request on transport, for the session sid ("" for a
// handshake).
func (c *Client) requestURL(transport, sid string) string {
	u := *c.url
	q := u.Query()
	q.Set("transport", transport)
	if sid != "" {
		q.Set("sid", sid)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// pollLoop delivers the packets that came with the handshake, starts the upgrade when
// upgrade is set, then polls until the connection ends or an upgrade pauses it.
func (c *Client) pollLoop(first []Packet, upgrade bool) {
	defer func() {
		c.mu.Lock()
		c.polling = false
		c.cond.Broadcast()
		c.mu.Unlock()
		c.workers.Done()
	}()
	for _, p := range first {
		if !c.onPacket(p) {
			return
		}
	}
	if upgrade {
		c.workers.Add(1)
		go c.upgrade()
	}
	url := c.requestURL(TransportPolling, c.hs.SID)
	var sc PayloadScanner
	for {
		c.mu.Lock()
		stop := c.paused || c.closed
		c.mu.Unlock()
		if stop {
			return
		}
		body, err := c.get(c.ctx, url)
		if err != nil {
			c.transportFailed(ReasonTransportError, err)
			return
		}
		sc.Reset(body, 0)
		for sc.Scan() {
			if !c.onPacket(sc.Packet()) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			c.transportFailed(ReasonParseError, err)
			return
		}
	}
}

// get makes a GET request and returns its body, bounded by the read limit.
func (c *Client) get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req)
}

// post sends packets in one POST.
func (c *Client) post(batch []outPacket) error {
	packets := make([]Packet, len(batch))
	for i, p := range batch {
		packets[i] = p.Packet
	}
	body := AppendPayload(nil, packets)
	req, err := http.NewRequestWithContext(c.ctx, http.MethodPost, c.requestURL(TransportPolling, c.hs.SID), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	_, err = c.do(req)
	return err
}

// do sends req with the options' headers and returns the body of a 200 answer.
func (c *Client) do(req *http.Request) ([]byte, error) {
	for k, vs := range c.cfg.Header {
		req.Header[k] = append(req.Header[k], vs...)
	}
	res, err := c.httpc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, newHTTPError(res)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, c.cfg.ReadLimit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > c.cfg.ReadLimit {
		return nil, fmt.Errorf("engineio: polling response over the read limit of %d bytes", c.cfg.ReadLimit)
	}
	return body, nil
}

// pollingBatchLen is how many queued packets the next POST carries: as many as fit in the
// server's maxPayload, and at least one. The close packet goes alone, after the rest, as
// engine.io-client sends it: a server may handle what came with it after the close (the
// Node Socket.IO server takes a DISCONNECT on its next tick), so it would be lost. c.mu is
// held.
func (c *Client) pollingBatchLen() int {
	size := 0
	for i, p := range c.queue {
		if p.Type == Close {
			return max(i, 1)
		}
		if i > 0 {
			size++ // separator
		}
		size += payloadLen(p.Packet)
		if i > 0 && c.hs.MaxPayload > 0 && size > c.hs.MaxPayload {
			return i
		}
	}
	return len(c.queue)
}
