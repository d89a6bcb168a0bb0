package ws

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultDialTimeout bounds Dial when ctx has no deadline and DialOptions.HandshakeTimeout is 0.
const DefaultDialTimeout = 30 * time.Second

// maxResponseHead bounds the HTTP response head a client reads.
const maxResponseHead = 64 << 10

// DialOptions configures Dial. The zero value is ready to use.
type DialOptions struct {
	// Header is sent with the handshake request (e.g. Origin, Cookie, Authorization). The
	// handshake's own headers cannot be overridden.
	Header http.Header

	// Subprotocols are offered in order of preference.
	Subprotocols []string

	// TLSConfig is used for wss:// (nil: the defaults, with ServerName from the URL).
	TLSConfig *tls.Config

	// Proxy returns the proxy to use for a request, as http.Transport.Proxy does (nil:
	// http.ProxyFromEnvironment). HTTP and HTTPS proxies are used with a CONNECT tunnel.
	Proxy func(*http.Request) (*url.URL, error)

	// NetDialContext dials the TCP connection (nil: a net.Dialer).
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// HandshakeTimeout bounds the whole dial and handshake when ctx has no earlier
	// deadline (0: DefaultDialTimeout).
	HandshakeTimeout time.Duration

	// ReadLimit is the largest message accepted (0: DefaultReadLimit).
	ReadLimit int64

	// ReadBufferSize and WriteBufferSize size the pooled I/O buffers (0: the defaults).
	ReadBufferSize, WriteBufferSize int

	// Compression offers permessage-deflate (RFC 7692); nil does not offer it.
	Compression *CompressionOptions
}

// Dial opens a WebSocket connection to a ws:// or wss:// URL. It returns the connection and
// the server's 101 response. If the server answers anything but a valid 101, the error is a
// *HandshakeError carrying the status, headers and the start of the body, and the response
// is returned too.
func Dial(ctx context.Context, rawURL string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, fmt.Errorf("ws: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, nil, fmt.Errorf("ws: bad URL scheme %q, want ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return nil, nil, errors.New("ws: URL has no host")
	}
	timeout := opts.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var keyBytes [16]byte
	_, _ = rand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Host:       u.Host,
	}
	for name, values := range opts.Header {
		if isHandshakeHeader(name) {
			continue
		}
		for _, v := range values {
			req.Header.Add(name, sanitizeHeaderValue(v))
		}
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if len(opts.Subprotocols) > 0 {
		req.Header.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	}
	if opts.Compression != nil {
		if err := opts.Compression.validate(); err != nil {
			return nil, nil, err
		}
		req.Header.Set("Sec-WebSocket-Extensions", deflateOffer(opts.Compression))
	}
	req = req.WithContext(ctx)

	nc, err := dialTransport(ctx, req, opts)
	if err != nil {
		return nil, nil, err
	}
	// ctx bounds the handshake: its deadline, and its cancellation through a past deadline.
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	c, resp, err := clientHandshake(nc, req, key, opts)
	if !stop() && err == nil {
		err = ctx.Err()
		c = nil
	}
	if err != nil {
		nc.Close()
		if cerr := contextError(ctx); cerr != nil && !isHandshakeError(err) {
			err = fmt.Errorf("ws: dial %s: %w (%w)", rawURL, cerr, err)
		}
		return nil, resp, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, resp, nil
}

// contextError returns ctx's error, counting a deadline that has passed even before ctx's own
// timer has fired (the connection's deadline, set from it, may fire first).
func contextError(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

func isHandshakeError(err error) bool {
	var he *HandshakeError
	return errors.As(err, &he)
}

// dialTransport opens the TCP connection, through a proxy tunnel when one applies, and
// TLS for https.
func dialTransport(ctx context.Context, req *http.Request, opts *DialOptions) (net.Conn, error) {
	dial := opts.NetDialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	proxyFunc := opts.Proxy
	if proxyFunc == nil {
		proxyFunc = http.ProxyFromEnvironment
	}
	proxyURL, err := proxyFunc(req)
	if err != nil {
		return nil, fmt.Errorf("ws: choosing a proxy: %w", err)
	}
	target := hostPort(req.URL)
	var nc net.Conn
	if proxyURL == nil {
		nc, err = dial(ctx, "tcp", target)
		if err != nil {
			return nil, fmt.Errorf("ws: dial: %w", err)
		}
	} else {
		nc, err = dialProxy(ctx, dial, proxyURL, target)
		if err != nil {
			return nil, err
		}
	}
	if req.URL.Scheme == "https" {
		cfg := &tls.Config{}
		if opts.TLSConfig != nil {
			cfg = opts.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = req.URL.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("ws: TLS handshake: %w", err)
		}
		nc = tc
	}
	return nc, nil
}

// dialProxy connects to an HTTP or HTTPS proxy and opens a CONNECT tunnel to target.
func dialProxy(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), proxyURL *url.URL, target string) (net.Conn, error) {
	if proxyURL.Scheme != "http" && proxyURL.Scheme != "https" {
		return nil, fmt.Errorf("ws: unsupported proxy scheme %q", proxyURL.Scheme)
	}
	nc, err := dial(ctx, "tcp", hostPort(proxyURL))
	if err != nil {
		return nil, fmt.Errorf("ws: dial proxy: %w", err)
	}
	if proxyURL.Scheme == "https" {
		tc := tls.Client(nc, &tls.Config{ServerName: proxyURL.Hostname()})
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("ws: TLS handshake with proxy: %w", err)
		}
		nc = tc
	}
	if d, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(d)
	}
	connect := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: http.Header{},
	}
	if u := proxyURL.User; u != nil {
		pass, _ := u.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(u.Username() + ":" + pass))
		connect.Header.Set("Proxy-Authorization", "Basic "+cred)
	}
	if err := connect.Write(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("ws: proxy CONNECT: %w", err)
	}
	br := bufio.NewReader(&io.LimitedReader{R: nc, N: maxResponseHead})
	resp, err := http.ReadResponse(br, connect)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("ws: proxy CONNECT response: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		nc.Close()
		return nil, fmt.Errorf("ws: proxy refused CONNECT to %s: %s", target, resp.Status)
	}
	if br.Buffered() > 0 {
		nc.Close()
		return nil, errors.New("ws: proxy sent data before the tunnel was used")
	}
	_ = nc.SetDeadline(time.Time{})
	return nc, nil
}

// hostPort returns u's host with the scheme's default port when it has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// clientHandshake writes the upgrade request and checks the server's response.
func clientHandshake(nc net.Conn, req *http.Request, key string, opts *DialOptions) (*Conn, *http.Response, error) {
	var b strings.Builder
	b.WriteString("GET " + req.URL.RequestURI() + " HTTP/1.1\r\nHost: " + req.Host + "\r\n")
	if err := req.Header.Write(&b); err != nil {
		return nil, nil, err
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		return nil, nil, fmt.Errorf("ws: writing the handshake request: %w", err)
	}
	limited := &io.LimitedReader{R: nc, N: maxResponseHead}
	br := bufio.NewReaderSize(limited, 4096)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, fmt.Errorf("ws: reading the handshake response: %w", err)
	}
	fail := func(reason string) (*Conn, *http.Response, error) {
		return nil, resp, &HandshakeError{StatusCode: resp.StatusCode, Reason: reason, Header: resp.Header}
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, resp, &HandshakeError{StatusCode: resp.StatusCode, Reason: "server did not switch protocols", Header: resp.Header, Body: body}
	}
	switch {
	case !headerHasToken(resp.Header, "Upgrade", "websocket"):
		return fail("response lacks Upgrade: websocket")
	case !headerHasToken(resp.Header, "Connection", "upgrade"):
		return fail("response lacks Connection: upgrade")
	case resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key):
		return fail("Sec-WebSocket-Accept does not match the key")
	}
	exts, err := parseExtensions(resp.Header.Values("Sec-WebSocket-Extensions"))
	if err != nil {
		return fail(err.Error())
	}
	var deflate *deflateParams
	if opts.Compression != nil {
		if deflate, err = acceptDeflateResponse(exts, opts.Compression); err != nil {
			return fail(err.Error())
		}
	} else if len(exts) > 0 {
		return fail("server chose an extension that was not offered")
	}
	sub := resp.Header.Get("Sec-WebSocket-Protocol")
	if sub != "" {
		offered := false
		for _, p := range opts.Subprotocols {
			offered = offered || p == sub
		}
		if !offered {
			return fail(fmt.Sprintf("server chose subprotocol %q that was not offered", sub))
		}
	}
	var early []byte
	if n := br.Buffered(); n > 0 {
		early, _ = br.Peek(n)
	}
	c := newConn(nc, early, connConfig{
		isServer:        false,
		subprotocol:     sub,
		readLimit:       opts.ReadLimit,
		readBufferSize:  opts.ReadBufferSize,
		writeBufferSize: opts.WriteBufferSize,
		deflate:         newDeflate(deflate, opts.Compression, false),
		extensions:      resp.Header.Get("Sec-WebSocket-Extensions"),
	})
	return c, resp, nil
}
