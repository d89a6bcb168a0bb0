package ws

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestAcceptKeyMatchesRFCExample(t *testing.T) {
	if got := AcceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("AcceptKey = %q", got)
	}
}

const validKey = "dGhlIHNhbXBsZSBub25jZQ=="

// upgradeRequest returns a valid handshake request head; edit replaces or removes lines.
func upgradeRequest(edit map[string]string) string {
	lines := []struct{ k, v string }{
		{"Host", "example.com"},
		{"Upgrade", "websocket"},
		{"Connection", "Upgrade"},
		{"Sec-WebSocket-Key", validKey},
		{"Sec-WebSocket-Version", "13"},
	}
	start := "GET /chat HTTP/1.1"
	if s, ok := edit["start"]; ok {
		start = s
	}
	var b strings.Builder
	b.WriteString(start + "\r\n")
	for _, l := range lines {
		v, ok := edit[l.k]
		if !ok {
			v = l.v
		}
		if v != "" {
			b.WriteString(l.k + ": " + v + "\r\n")
		}
	}
	if extra, ok := edit["extra"]; ok {
		b.WriteString(extra)
	}
	b.WriteString("\r\n")
	return b.String()
}

var handshakeCases = []struct {
	name   string
	edit   map[string]string
	status int
}{
	{"valid", nil, 101},
	{"connection token list", map[string]string{"Connection": "keep-alive, Upgrade"}, 101},
	{"case-insensitive tokens", map[string]string{"Upgrade": "WebSocket", "Connection": "UPGRADE"}, 101},
	{"upgrade token list", map[string]string{"Upgrade": "h2c, websocket"}, 101},
	{"POST", map[string]string{"start": "POST /chat HTTP/1.1"}, 405},
	{"HTTP/1.0", map[string]string{"start": "GET /chat HTTP/1.0"}, 400},
	{"no Host", map[string]string{"Host": ""}, 400},
	{"no Upgrade", map[string]string{"Upgrade": ""}, 400},
	{"wrong Upgrade", map[string]string{"Upgrade": "h2c"}, 400},
	{"no Connection", map[string]string{"Connection": ""}, 400},
	{"Connection without upgrade", map[string]string{"Connection": "keep-alive"}, 400},
	{"version 8", map[string]string{"Sec-WebSocket-Version": "8"}, 426},
	{"no version", map[string]string{"Sec-WebSocket-Version": ""}, 426},
	{"no key", map[string]string{"Sec-WebSocket-Key": ""}, 400},
	{"key not base64", map[string]string{"Sec-WebSocket-Key": "not base64!"}, 400},
	{"key of 15 bytes", map[string]string{"Sec-WebSocket-Key": "AAAAAAAAAAAAAAAAAAAA"}, 400},
	{"two keys", map[string]string{"extra": "Sec-WebSocket-Key: " + validKey + "\r\n"}, 400},
	{"same origin", map[string]string{"extra": "Origin: https://example.com\r\n"}, 101},
	{"cross origin", map[string]string{"extra": "Origin: https://evil.example\r\n"}, 403},
	{"allowed origin", map[string]string{"extra": "Origin: https://app.trusted.example\r\n"}, 101},
}

// readStatus reads an HTTP response head from r and returns it.
func readStatus(t *testing.T, r io.Reader) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(r), nil)
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	return resp
}

func checkHandshakeResponse(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, status)
	}
	switch status {
	case 101:
		if got := resp.Header.Get("Sec-WebSocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("Sec-WebSocket-Accept = %q", got)
		}
	case 426:
		if resp.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Fatal("426 without Sec-WebSocket-Version: 13")
		}
	}
}

func TestUpgradeConnAnswersEachRequest(t *testing.T) {
	for _, tc := range handshakeCases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			u := &Upgrader{AllowedOrigins: []string{"https://*.trusted.example"}}
			done := make(chan error, 1)
			go func() {
				c, _, err := u.UpgradeConn(server)
				if c != nil {
					c.CloseNow()
				}
				done <- err
			}()
			go io.WriteString(client, upgradeRequest(tc.edit))
			client.SetDeadline(time.Now().Add(5 * time.Second))
			checkHandshakeResponse(t, readStatus(t, client), tc.status)
			client.Close()
			err := <-done
			var he *HandshakeError
			if tc.status == 101 && err != nil || tc.status != 101 && (!errors.As(err, &he) || he.StatusCode != tc.status) {
				t.Fatalf("UpgradeConn error = %v", err)
			}
		})
	}
}

func TestUpgradeOverNetHTTPAnswersEachRequest(t *testing.T) {
	u := &Upgrader{AllowedOrigins: []string{"https://*.trusted.example"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host = "example.com" // the raw requests below name this host
		if c, err := u.Upgrade(w, r); err == nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()
	for _, tc := range handshakeCases {
		if tc.name == "no Host" || tc.name == "HTTP/1.0" {
			continue // net/http itself answers these before the handler runs
		}
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(nc, upgradeRequest(tc.edit))
			checkHandshakeResponse(t, readStatus(t, nc), tc.status)
		})
	}
}

func TestUpgradeConnRefusesOversizedHeadWith431(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	u := &Upgrader{MaxHeaderBytes: 1024}
	go u.UpgradeConn(server)
	client.SetDeadline(time.Now().Add(5 * time.Second))
	go io.WriteString(client, upgradeRequest(map[string]string{"extra": "X-Big: " + strings.Repeat("x", 4000) + "\r\n"}))
	if resp := readStatus(t, client); resp.StatusCode != 431 {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

func TestUpgradeConnTimesOutASlowRequest(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	u := &Upgrader{HandshakeTimeout: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() { _, _, err := u.UpgradeConn(server); done <- err }()
	go io.WriteString(client, "GET / HTTP/1.1\r\n") // and nothing more
	client.SetDeadline(time.Now().Add(5 * time.Second))
	if resp := readStatus(t, client); resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408", resp.StatusCode)
	}
	if err := <-done; err == nil {
		t.Fatal("UpgradeConn succeeded")
	}
}

func TestUpgradeChoosesServerPreferredSubprotocol(t *testing.T) {
	u := &Upgrader{Subprotocols: []string{"v2.chat", "v1.chat"}}
	srv := echoServer(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, wsURL(srv), &DialOptions{Subprotocols: []string{"v1.chat", "v2.chat"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "v2.chat" || resp.Header.Get("Sec-WebSocket-Protocol") != "v2.chat" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	c2, _, err := Dial(ctx, wsURL(srv), &DialOptions{Subprotocols: []string{"other"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.CloseNow()
	if c2.Subprotocol() != "" {
		t.Fatalf("subprotocol %q, want none", c2.Subprotocol())
	}
}

func TestUpgradeSendsConfiguredHeadersButNotOverrides(t *testing.T) {
	u := &Upgrader{Header: http.Header{"Set-Cookie": {"s=1"}, "Sec-Websocket-Accept": {"forged"}}}
	srv := echoServer(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if resp.Header.Get("Set-Cookie") != "s=1" {
		t.Fatal("Set-Cookie missing from the 101")
	}
}

func TestDialReportsNon101WithStatusAndBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "go away", http.StatusUnauthorized)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := Dial(ctx, wsURL(srv), nil)
	var he *HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 401 || !strings.Contains(string(he.Body), "go away") {
		t.Fatalf("err = %v", err)
	}
	if resp == nil || resp.StatusCode != 401 {
		t.Fatal("response not returned")
	}
}

// fakeServer answers one handshake with a response built from the request's key.
func fakeServer(t *testing.T, respond func(key string) string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		r, err := http.ReadRequest(bufio.NewReader(nc))
		if err != nil {
			return
		}
		io.WriteString(nc, respond(r.Header.Get("Sec-WebSocket-Key")))
		io.Copy(io.Discard, nc)
	}()
	return "ws://" + ln.Addr().String() + "/"
}

func TestDialRejectsInvalid101Responses(t *testing.T) {
	head := func(lines ...string) func(string) string {
		return func(key string) string {
			s := "HTTP/1.1 101 Switching Protocols\r\n"
			for _, l := range lines {
				s += strings.ReplaceAll(l, "ACCEPT", AcceptKey(key)) + "\r\n"
			}
			return s + "\r\n"
		}
	}
	tests := []struct {
		name    string
		respond func(string) string
		reason  string
	}{
		{"wrong accept", head("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: AAAA"), "Accept"},
		{"no upgrade", head("Connection: Upgrade", "Sec-WebSocket-Accept: ACCEPT"), "Upgrade"},
		{"no connection", head("Upgrade: websocket", "Sec-WebSocket-Accept: ACCEPT"), "Connection"},
		{"unoffered subprotocol", head("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: ACCEPT", "Sec-WebSocket-Protocol: x"), "subprotocol"},
		{"unoffered extension", head("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Accept: ACCEPT", "Sec-WebSocket-Extensions: permessage-deflate"), "extension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, err := Dial(ctx, fakeServer(t, tt.respond), nil)
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.reason)
			}
		})
	}
}

func TestDialKeepsFrameBytesSentWithThe101(t *testing.T) {
	url := fakeServer(t, func(key string) string {
		return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			AcceptKey(key) + "\r\n\r\n\x81\x02hi"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	typ, msg, err := c.ReadMessage(ctx)
	if err != nil || typ != MessageText || string(msg) != "hi" {
		t.Fatalf("%v %q %v", typ, msg, err)
	}
}

func TestDialHonoursContextDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err == nil {
			defer nc.Close()
			io.Copy(io.Discard, nc) // never answers
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err = Dial(ctx, "ws://"+ln.Addr().String(), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("Dial ignored the deadline")
	}
}

func TestDialThroughHTTPConnectProxy(t *testing.T) {
	srv := echoServer(t, &Upgrader{})
	proxied := make(chan string, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("Proxy-Authorization") != "Basic dTpw" { // u:p
			http.Error(w, "auth", http.StatusProxyAuthRequired)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		proxied <- r.Host
		nc, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(nc, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(up, nc); up.Close() }()
		io.Copy(nc, up)
		nc.Close()
	}))
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := &DialOptions{Proxy: func(*http.Request) (*url.URL, error) {
		return url.Parse("http://u:p@" + proxy.Listener.Addr().String())
	}}
	c, _, err := Dial(ctx, wsURL(srv), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if got := <-proxied; got != srv.Listener.Addr().String() {
		t.Fatalf("proxy tunnelled to %q", got)
	}
	if err := c.WriteMessage(ctx, MessageText, []byte("via proxy")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := c.ReadMessage(ctx); err != nil || string(msg) != "via proxy" {
		t.Fatalf("%q %v", msg, err)
	}
}

func TestDialWSSWithTLS(t *testing.T) {
	u := &Upgrader{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		defer c.CloseNow()
		typ, msg, err := c.ReadMessage(context.Background())
		if err == nil {
			c.WriteMessage(context.Background(), typ, msg)
			c.Close(StatusNormalClosure, "")
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https"), &DialOptions{TLSConfig: srv.Client().Transport.(*http.Transport).TLSClientConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.WriteMessage(ctx, MessageBinary, []byte{1, 2, 3})
	if _, msg, err := c.ReadMessage(ctx); err != nil || string(msg) != "\x01\x02\x03" {
		t.Fatalf("%q %v", msg, err)
	}
	if _, _, err := c.ReadMessage(ctx); CloseStatus(err) != StatusNormalClosure {
		t.Fatalf("err = %v, want close 1000", err)
	}
}

func TestUpgradeSendsHeadersTheHandlerSet(t *testing.T) {
	u := &Upgrader{Header: http.Header{"X-Static": {"a"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "io=abc; Path=/")
		w.Header().Set("Sec-WebSocket-Accept", "forged")
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		c.CloseNow()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
	if got := resp.Header.Get("Set-Cookie"); got != "io=abc; Path=/" {
		t.Fatalf("Set-Cookie = %q", got)
	}
	if resp.Header.Get("X-Static") != "a" {
		t.Fatal("Upgrader.Header missing from the 101")
	}
}
