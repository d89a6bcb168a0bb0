package wstest

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// DialOptions tunes Dial. The zero value is fine.
type DialOptions struct {
	Path    string        // request target; "" means "/"
	Header  http.Header   // extra request headers
	Timeout time.Duration // dial + handshake; zero means DefaultTimeout
	// Extra bytes (typically encoded frames) written in the same write as
	// the request, to check that the server does not drop bytes that arrive
	// with the handshake.
	Extra []byte
}

// Dial connects to addr ("host:port") and does the client opening handshake.
func Dial(addr string, opts *DialOptions) (*Peer, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	d := opts.Timeout
	if d <= 0 {
		d = DefaultTimeout
	}
	nc, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return nil, nil, err
	}
	p, resp, err := clientHandshake(nc, addr, opts.Path, opts.Header, d, opts.Extra)
	if err != nil {
		nc.Close()
		return nil, resp, err
	}
	return p, resp, nil
}

// ClientHandshake writes a GET upgrade request on nc and reads the 101
// response, checking Upgrade, Connection and Sec-WebSocket-Accept. It does
// not close nc on error.
func ClientHandshake(nc net.Conn, host, path string, extra http.Header, d time.Duration) (*Peer, *http.Response, error) {
	return clientHandshake(nc, host, path, extra, d, nil)
}

func clientHandshake(nc net.Conn, host, path string, extra http.Header, d time.Duration, trailing []byte) (*Peer, *http.Response, error) {
	if path == "" {
		path = "/"
	}
	if d <= 0 {
		d = DefaultTimeout
	}
	if err := nc.SetDeadline(time.Now().Add(d)); err != nil {
		return nil, nil, err
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, nil, err
	}
	key := base64.StdEncoding.EncodeToString(raw[:])
	var sb strings.Builder
	fmt.Fprintf(&sb, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, host)
	fmt.Fprintf(&sb, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	for k, vs := range extra {
		for _, v := range vs {
			fmt.Fprintf(&sb, "%s: %s\r\n", k, v)
		}
	}
	sb.WriteString("\r\n")
	if _, err := nc.Write(append([]byte(sb.String()), trailing...)); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: reading handshake response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, resp, fmt.Errorf("wstest: handshake status %s, want 101", resp.Status)
	}
	if !headerHas(resp.Header.Values("Upgrade"), "websocket") {
		return nil, resp, fmt.Errorf("wstest: handshake response Upgrade = %q", resp.Header.Values("Upgrade"))
	}
	if !headerHas(resp.Header.Values("Connection"), "upgrade") {
		return nil, resp, fmt.Errorf("wstest: handshake response Connection = %q", resp.Header.Values("Connection"))
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), AcceptKey(key); got != want {
		return nil, resp, fmt.Errorf("wstest: Sec-WebSocket-Accept = %q, want %q", got, want)
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, resp, err
	}
	return NewPeer(nc, br, RoleClient), resp, nil
}

// ServerHandshake reads an upgrade request from nc, checks it and writes the
// 101 response with the correct accept key. On a bad request it writes a 400
// and returns an error. It does not close nc on error.
func ServerHandshake(nc net.Conn, d time.Duration) (*Peer, *http.Request, error) {
	return serverHandshake(nc, d, nil, nil)
}

func serverHandshake(nc net.Conn, d time.Duration, trailing []byte, header func(*http.Request) http.Header) (*Peer, *http.Request, error) {
	if d <= 0 {
		d = DefaultTimeout
	}
	if err := nc.SetDeadline(time.Now().Add(d)); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, fmt.Errorf("wstest: reading handshake request: %w", err)
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	var problem string
	switch {
	case req.Method != http.MethodGet:
		problem = "method " + req.Method
	case !headerHas(req.Header.Values("Upgrade"), "websocket"):
		problem = fmt.Sprintf("Upgrade = %q", req.Header.Values("Upgrade"))
	case !headerHas(req.Header.Values("Connection"), "upgrade"):
		problem = fmt.Sprintf("Connection = %q", req.Header.Values("Connection"))
	case req.Header.Get("Sec-WebSocket-Version") != "13":
		problem = fmt.Sprintf("Sec-WebSocket-Version = %q", req.Header.Get("Sec-WebSocket-Version"))
	default:
		if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
			problem = fmt.Sprintf("Sec-WebSocket-Key = %q", key)
		}
	}
	if problem != "" {
		nc.Write([]byte("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"))
		return nil, req, fmt.Errorf("wstest: bad upgrade request: %s", problem)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + AcceptKey(key) + "\r\n"
	if header != nil {
		for k, vs := range header(req) {
			for _, v := range vs {
				resp += k + ": " + v + "\r\n"
			}
		}
	}
	resp += "\r\n"
	if _, err := nc.Write(append([]byte(resp), trailing...)); err != nil {
		return nil, req, err
	}
	if err := nc.SetDeadline(time.Time{}); err != nil {
		return nil, req, err
	}
	return NewPeer(nc, br, RoleServer), req, nil
}

// Listener accepts TCP connections on a loopback port and plays the server
// side of the handshake.
type Listener struct {
	ln *net.TCPListener
}

// Listen listens on 127.0.0.1 on a free port.
func Listen() (*Listener, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	return &Listener{ln: ln}, nil
}

// Addr returns "127.0.0.1:port".
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// URL returns "ws://127.0.0.1:port" + path.
func (l *Listener) URL(path string) string { return "ws://" + l.Addr() + path }

// Close stops listening.
func (l *Listener) Close() error { return l.ln.Close() }

// AcceptConn accepts one TCP connection, waiting at most d.
func (l *Listener) AcceptConn(d time.Duration) (net.Conn, error) {
	if d <= 0 {
		d = DefaultTimeout
	}
	if err := l.ln.SetDeadline(time.Now().Add(d)); err != nil {
		return nil, err
	}
	return l.ln.Accept()
}

// Accept accepts one connection and does the server handshake, all within d.
func (l *Listener) Accept(d time.Duration) (*Peer, *http.Request, error) {
	return l.AcceptWithExtra(d, nil)
}

// AcceptWithExtra is Accept, writing extra (typically encoded frames) in the
// same write as the 101 response, to check that the client does not drop
// bytes that arrive with the handshake.
func (l *Listener) AcceptWithExtra(d time.Duration, extra []byte) (*Peer, *http.Request, error) {
	return l.AcceptWith(d, AcceptOptions{Extra: extra})
}

// AcceptOptions tunes Listener.AcceptWith.
type AcceptOptions struct {
	// Extra bytes written in the same write as the 101 response.
	Extra []byte
	// Header, when set, returns header fields added to the 101 response
	// for the request (for example Sec-WebSocket-Extensions); they are
	// written as given, without validation.
	Header func(req *http.Request) http.Header
}

// AcceptWith is Accept with options.
func (l *Listener) AcceptWith(d time.Duration, o AcceptOptions) (*Peer, *http.Request, error) {
	if d <= 0 {
		d = DefaultTimeout
	}
	nc, err := l.AcceptConn(d)
	if err != nil {
		return nil, nil, err
	}
	p, req, err := serverHandshake(nc, d, o.Extra, o.Header)
	if err != nil {
		nc.Close()
		return nil, req, err
	}
	return p, req, nil
}
