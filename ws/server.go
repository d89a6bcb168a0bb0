package ws

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server-side defaults.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxHeaderBytes   = 8 << 10
)

// Upgrader accepts WebSocket connections on the server side, either from a net/http handler
// (Upgrade, which hijacks the connection) or directly on a raw net.Conn with no HTTP server
// (UpgradeConn, which reads the HTTP request itself). Both check the request the same way.
//
// Origin policy: browsers send an Origin header with every WebSocket handshake and attach the
// user's cookies, so a page on another site could otherwise open an authenticated connection
// (cross-site WebSocket hijacking). By default a request is accepted only when it has no
// Origin header (non-browser clients) or when the Origin's host equals the request's Host.
// AllowedOrigins or CheckOrigin widen or replace that policy.
//
// An Upgrader may be used from many goroutines at once; it must not be copied after first use.
type Upgrader struct {
	// Subprotocols lists the subprotocols the server supports, in order of preference. The
	// first one the client also offered is chosen.
	Subprotocols []string

	// CheckOrigin, when set, decides whether the request's origin is allowed; it replaces
	// the default policy and AllowedOrigins.
	CheckOrigin func(r *http.Request) bool

	// AllowedOrigins lists origins accepted besides same-origin requests, as patterns
	// matched case-insensitively against the whole Origin value with path.Match syntax
	// (e.g. "https://app.example.com", "https://*.example.com"). "*" accepts every origin.
	AllowedOrigins []string

	// ReadLimit is the largest message accepted, in bytes (0: DefaultReadLimit). A larger
	// message fails the connection with StatusMessageTooBig.
	ReadLimit int64

	// HandshakeTimeout bounds reading the request (UpgradeConn) and writing the response
	// (0: DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration

	// MaxHeaderBytes bounds the request head read by UpgradeConn (0: DefaultMaxHeaderBytes);
	// a larger one is answered 431. Over net/http, http.Server.MaxHeaderBytes applies.
	MaxHeaderBytes int

	// ReadBufferSize and WriteBufferSize size the pooled I/O buffers (0: the defaults).
	ReadBufferSize, WriteBufferSize int

	// Compression enables permessage-deflate (RFC 7692) for clients that offer it; nil
	// declines it. See CompressionOptions.
	Compression *CompressionOptions

	// Header is added to every 101 response (e.g. Set-Cookie). The handshake's own headers
	// cannot be overridden.
	Header http.Header

	mu           sync.Mutex
	conns        map[*Conn]struct{}
	shuttingDown bool
	handshaking  sync.WaitGroup // accepted requests whose Conn is not yet registered
}

// handshake is the outcome of checking an upgrade request.
type handshake struct {
	accept      string
	subprotocol string
	extensions  string         // Sec-WebSocket-Extensions of the response
	deflate     *deflateParams // agreed permessage-deflate parameters, nil when declined
}

// check validates an upgrade request (RFC 6455 §4.2.1) and the origin policy. It is the one
// validation path of both entry points.
func (u *Upgrader) check(r *http.Request) (handshake, *HandshakeError) {
	fail := func(status int, format string, args ...any) (handshake, *HandshakeError) {
		return handshake{}, &HandshakeError{StatusCode: status, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case r.Method != http.MethodGet:
		return fail(http.StatusMethodNotAllowed, "method %s, want GET", r.Method)
	case !r.ProtoAtLeast(1, 1):
		return fail(http.StatusBadRequest, "%s request, want HTTP/1.1 or later", r.Proto)
	case r.Host == "":
		return fail(http.StatusBadRequest, "missing Host header")
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return fail(http.StatusBadRequest, "missing Upgrade: websocket")
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return fail(http.StatusBadRequest, "missing Connection: upgrade")
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return fail(http.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version %q, want 13", strings.Join(v, ", "))
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return fail(http.StatusBadRequest, "want exactly one Sec-WebSocket-Key header, got %d", len(keys))
	}
	key := strings.TrimSpace(keys[0])
	if raw, err := base64.StdEncoding.Strict().DecodeString(key); err != nil || len(raw) != 16 {
		return fail(http.StatusBadRequest, "Sec-WebSocket-Key is not the base64 of 16 bytes")
	}
	offers, err := parseExtensions(r.Header.Values("Sec-WebSocket-Extensions"))
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err)
	}
	var hs handshake
	if u.Compression != nil {
		if err := u.Compression.validate(); err != nil {
			return fail(http.StatusInternalServerError, "%v", err)
		}
		if resp, params, ok := negotiateDeflate(offers, u.Compression); ok {
			hs.extensions, hs.deflate = resp, &params
		}
	}
	if !u.originAllowed(r) {
		return fail(http.StatusForbidden, "origin %q not allowed", r.Header.Get("Origin"))
	}
	u.mu.Lock()
	down := u.shuttingDown
	if !down {
		u.handshaking.Add(1) // Done in finish, or where the handshake fails after this point
	}
	u.mu.Unlock()
	if down {
		return fail(http.StatusServiceUnavailable, "server is shutting down")
	}
	hs.accept, hs.subprotocol = AcceptKey(key), u.selectSubprotocol(r)
	return hs, nil
}

func (u *Upgrader) originAllowed(r *http.Request) bool {
	if u.CheckOrigin != nil {
		return u.CheckOrigin(r)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if o, err := url.Parse(origin); err == nil && strings.EqualFold(o.Host, r.Host) {
		return true
	}
	lower := strings.ToLower(origin)
	for _, pattern := range u.AllowedOrigins {
		if pattern == "*" {
			return true
		}
		if ok, _ := path.Match(strings.ToLower(pattern), lower); ok {
			return true
		}
	}
	return false
}

func (u *Upgrader) selectSubprotocol(r *http.Request) string {
	offered := headerTokens(r.Header, "Sec-WebSocket-Protocol")
	for _, want := range u.Subprotocols {
		for _, o := range offered {
			if o == want {
				return want
			}
		}
	}
	return ""
}

// Upgrade upgrades an HTTP request to a WebSocket connection by hijacking it. On failure it
// answers the request with the matching status (400, 403, 405, 426 with
// Sec-WebSocket-Version: 13, 503) and a one-line reason, and returns a *HandshakeError.
//
// Headers the handler set on w before calling Upgrade (a Set-Cookie, say) are sent with the
// 101 response, after those of Upgrader.Header; the handshake's own headers cannot be
// overridden.
//
// net/http keeps its per-connection buffers (about 8 KiB) until the handler returns. For
// many long-lived connections, hand the Conn to a goroutine of its own and return from the
// handler, so that only the Conn remains.
func (u *Upgrader) Upgrade(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	hs, herr := u.check(r)
	if herr != nil {
		if herr.StatusCode == http.StatusUpgradeRequired {
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		if herr.StatusCode == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", http.MethodGet)
		}
		http.Error(w, herr.Reason, herr.StatusCode)
		return nil, herr
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		u.handshaking.Done()
		herr := &HandshakeError{StatusCode: http.StatusInternalServerError, Reason: "cannot hijack the connection: " + err.Error()}
		http.Error(w, "websocket: cannot take over the connection", http.StatusInternalServerError)
		return nil, herr
	}
	// Bytes the client sent after its request (its first frames) are in the reader.
	var early []byte
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ = brw.Reader.Peek(n)
	}
	return u.finish(nc, early, hs, w.Header())
}

// UpgradeConn performs the server side of the opening handshake directly on a raw connection,
// with no HTTP server: it reads and parses the HTTP request (at most MaxHeaderBytes, within
// HandshakeTimeout), answers 101 or the matching error, and returns the connection and the
// request. On failure it closes nc.
func (u *Upgrader) UpgradeConn(nc net.Conn) (*Conn, *http.Request, error) {
	timeout := u.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	maxHeader := u.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeaderBytes
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	limited := &io.LimitedReader{R: nc, N: int64(maxHeader)}
	br := bufio.NewReaderSize(limited, min(maxHeader, 4096))
	r, err := http.ReadRequest(br)
	if err != nil {
		herr := &HandshakeError{StatusCode: http.StatusBadRequest, Reason: "malformed HTTP request: " + err.Error()}
		if limited.N <= 0 {
			herr = &HandshakeError{StatusCode: http.StatusRequestHeaderFieldsTooLarge, Reason: fmt.Sprintf("request head over %d bytes", maxHeader)}
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			herr = &HandshakeError{StatusCode: http.StatusRequestTimeout, Reason: "request not received in time"}
		} else if errors.Is(err, io.EOF) {
			nc.Close()
			return nil, nil, &HandshakeError{Reason: "connection closed before the request was complete"}
		}
		writeRawError(nc, herr)
		return nil, nil, herr
	}
	hs, herr := u.check(r)
	if herr != nil {
		writeRawError(nc, herr)
		return nil, r, herr
	}
	var early []byte
	if n := br.Buffered(); n > 0 {
		early, _ = br.Peek(n)
	}
	c, err := u.finish(nc, early, hs, nil)
	return c, r, err
}

// writeRawError answers a failed handshake on a raw connection and closes it.
func writeRawError(nc net.Conn, herr *HandshakeError) {
	body := herr.Reason + "\n"
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", herr.StatusCode, http.StatusText(herr.StatusCode))
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n")
	if herr.StatusCode == http.StatusUpgradeRequired {
		b.WriteString("Sec-WebSocket-Version: 13\r\n")
	}
	if herr.StatusCode == http.StatusMethodNotAllowed {
		b.WriteString("Allow: GET\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(nc, b.String())
	nc.Close()
}

// finish writes the 101 response, with the headers of u.Header and then extra, and makes
// the Conn.
func (u *Upgrader) finish(nc net.Conn, early []byte, hs handshake, extra http.Header) (*Conn, error) {
	defer u.handshaking.Done()
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(hs.accept)
	b.WriteString("\r\n")
	if hs.subprotocol != "" {
		b.WriteString("Sec-WebSocket-Protocol: " + hs.subprotocol + "\r\n")
	}
	if hs.extensions != "" {
		b.WriteString("Sec-WebSocket-Extensions: " + hs.extensions + "\r\n")
	}
	writeExtraHeaders(&b, u.Header)
	writeExtraHeaders(&b, extra)
	b.WriteString("\r\n")
	timeout := u.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		nc.Close()
		return nil, &HandshakeError{Reason: "writing the 101 response: " + err.Error()}
	}
	_ = nc.SetDeadline(time.Time{})
	c := newConn(nc, early, connConfig{
		isServer:        true,
		subprotocol:     hs.subprotocol,
		readLimit:       u.ReadLimit,
		readBufferSize:  u.ReadBufferSize,
		writeBufferSize: u.WriteBufferSize,
		upgrader:        u,
		extensions:      hs.extensions,
		deflate:         newDeflate(hs.deflate, u.Compression, true),
	})
	u.mu.Lock()
	if u.conns == nil {
		u.conns = make(map[*Conn]struct{})
	}
	u.conns[c] = struct{}{}
	u.mu.Unlock()
	return c, nil
}

func (u *Upgrader) forget(c *Conn) {
	u.mu.Lock()
	delete(u.conns, c)
	u.mu.Unlock()
}

// Shutdown refuses new upgrades (503) and closes every open connection this Upgrader
// accepted with StatusGoingAway, each with a close handshake. It returns when all are closed
// or when ctx is done (it then closes the rest at once and returns ctx.Err()). For a
// connection served by an EventLoop, "closed" means its OnClose has returned.
func (u *Upgrader) Shutdown(ctx context.Context) error {
	u.mu.Lock()
	u.shuttingDown = true
	u.mu.Unlock()
	// Handshakes already accepted finish first, so that their connections are closed too.
	registered := make(chan struct{})
	go func() { u.handshaking.Wait(); close(registered) }()
	select {
	case <-registered:
	case <-ctx.Done():
	}
	u.mu.Lock()
	open := make([]*Conn, 0, len(u.conns))
	for c := range u.conns {
		open = append(open, c)
	}
	u.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range open {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Close(StatusGoingAway, "server shutting down")
			if l := c.loop.Load(); l != nil {
				// Served by an EventLoop: Close may return before the end (the peer's
				// answer or the close timeout); wait for OnClose.
				_ = l.waitEnded(ctx, c)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		for _, c := range open {
			c.CloseNow()
		}
		<-done
		return ctx.Err()
	}
}

// writeExtraHeaders writes the lines of h to b, leaving out the headers the handshake sets.
func writeExtraHeaders(b *strings.Builder, h http.Header) {
	for name, values := range h {
		if isHandshakeHeader(name) {
			continue
		}
		for _, v := range values {
			b.WriteString(name + ": " + sanitizeHeaderValue(v) + "\r\n")
		}
	}
}

// isHandshakeHeader reports whether name is one the handshake itself sets.
func isHandshakeHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions",
		"Sec-Websocket-Key", "Sec-Websocket-Version", "Host", "Content-Length", "Transfer-Encoding":
		return true
	}
	return false
}

// sanitizeHeaderValue drops CR and LF so that a value cannot inject header lines.
func sanitizeHeaderValue(v string) string {
	return strings.NewReplacer("\r", "", "\n", "").Replace(v)
}
