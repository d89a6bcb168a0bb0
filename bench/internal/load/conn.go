// Package load is a library-neutral WebSocket (and raw TCP) echo load
// generator. It does the HTTP upgrade itself over a plain TCP connection and
// writes pre-masked client frames, so the client side costs the same whatever
// server library is measured.
package load

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Conn is one client connection, upgraded to WebSocket unless raw.
type Conn struct {
	nc net.Conn
	br *bufio.Reader
	// Deflate is what the server accepted of a permessage-deflate offer; nil
	// when none was offered.
	Deflate *Deflate
}

// Close closes the TCP connection.
func (c *Conn) Close() error { return c.nc.Close() }

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// SourceAddr is the local address connection i dials from when the load's
// connections are spread over sources loopback addresses (127.0.0.1,
// 127.0.0.2, …; each has its own ~28k ephemeral ports, so more than that many
// connections to one server need several), or nil for the kernel's choice when
// sources ≤ 1.
func SourceAddr(i, sources int) net.Addr {
	if sources <= 1 {
		return nil
	}
	k := i % min(sources, 254)
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+k))}
}

// Dial connects to addr from local (nil: the kernel's choice); when websocket is true it performs the RFC 6455
// opening handshake for path and checks the 101 response. readBuf sizes the
// connection's read buffer. A non-empty offer is sent as the
// Sec-WebSocket-Extensions request header (a permessage-deflate offer, such as
// "permessage-deflate; client_max_window_bits"); the server must then accept
// permessage-deflate, and what it accepted is in Conn.Deflate.
func Dial(ctx context.Context, local net.Addr, addr, path string, websocket bool, readBuf int, offer string) (*Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &Conn{nc: nc, br: bufio.NewReaderSize(nc, readBuf)}
	if !websocket {
		return c, nil
	}
	if err := c.handshake(addr, path, offer); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *Conn) handshake(host, path, offer string) error {
	if err := c.nc.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n"
	if offer != "" {
		req += "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	req += "\r\n"
	if _, err := c.nc.Write([]byte(req)); err != nil {
		return fmt.Errorf("handshake write: %w", err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return fmt.Errorf("handshake read: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake: status %s", resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("handshake: Upgrade header %q", resp.Header.Get("Upgrade"))
	}
	if !strings.Contains(strings.ToLower(resp.Header.Get("Connection")), "upgrade") {
		return fmt.Errorf("handshake: Connection header %q", resp.Header.Get("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(key); got != want {
		return fmt.Errorf("handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	ext := strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
	switch {
	case offer == "" && ext != "":
		return fmt.Errorf("handshake: server chose extensions %q that were not offered", ext)
	case offer != "" && ext == "":
		return fmt.Errorf("handshake: server declined the offer %q", offer)
	case offer != "":
		if c.Deflate, err = parseDeflateResponse(ext, offer); err != nil {
			return fmt.Errorf("handshake: %w", err)
		}
	}
	return c.nc.SetDeadline(time.Time{})
}

// DialMany opens n connections, spread over sources loopback addresses (see
// SourceAddr), with at most 64 handshakes in flight and returns them all, or
// closes them and returns the first error.
func DialMany(ctx context.Context, n, sources int, addr, path string, websocket bool, readBuf int, offer string) ([]*Conn, error) {
	conns := make([]*Conn, n)
	err := parallel(ctx, n, 64, "conn", func(ctx context.Context, i int) error {
		c, err := Dial(ctx, SourceAddr(i, sources), addr, path, websocket, readBuf, offer)
		conns[i] = c
		return err
	})
	if err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		return nil, err
	}
	return conns, nil
}

// parallel calls fn(0..n-1) from at most workers goroutines and returns the
// first error, prefixed with what and the index ("conn 3: ..."), or ctx's
// error if it ended first; after an error no new call starts.
func parallel(ctx context.Context, n, workers int, what string, fn func(ctx context.Context, i int) error) error {
	idx := make(chan int, n)
	for i := 0; i < n; i++ {
		idx <- i
	}
	close(idx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for w := 0; w < min(n, workers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx { // bounded by n
				if ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("%s %d: %w", what, i, err); cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return firstErr
}
