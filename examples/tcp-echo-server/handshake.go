package main

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/ws"
)

// Bounds and routing of the opening handshake.
const (
	maxHeaderBytes   = 8 << 10          // request line + headers, in bytes; more is refused with 431
	handshakeTimeout = 10 * time.Second // time to receive the whole request head; then 408
	echoPath         = "/echo"          // the only path served
)

// request is what a WebSocket server needs from the HTTP upgrade request.
type request struct {
	method, target, proto string
	header                textproto.MIMEHeader
}

// refusal is a failed handshake: the HTTP status to answer and why.
type refusal struct {
	status int
	reason string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("%d %s: %s", r.status, statusText[r.status], r.reason)
}

// statusText names the statuses this server answers with.
var statusText = map[int]string{
	101: "Switching Protocols",
	400: "Bad Request",
	403: "Forbidden",
	404: "Not Found",
	405: "Method Not Allowed",
	408: "Request Timeout",
	426: "Upgrade Required",
	431: "Request Header Fields Too Large",
}

// handshake reads the upgrade request, checks it and answers: 101 and true when the
// connection is now a WebSocket, an HTTP error and false otherwise.
func handshake(nc net.Conn, br *bufio.Reader, limited *io.LimitedReader, logger *log.Logger) bool {
	req, err := readRequest(textproto.NewReader(br), logger)
	var refused *refusal
	switch {
	case err == nil:
	case limited.N <= 0:
		refused = &refusal{431, fmt.Sprintf("request head over %d bytes", maxHeaderBytes)}
	case isTimeout(err):
		refused = &refusal{408, "request head not received in time"}
	case errors.As(err, &refused):
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		logger.Printf("handshake: connection closed before the request was complete")
		return false
	default:
		refused = &refusal{400, "malformed request: " + err.Error()}
	}
	var accept string
	if refused == nil {
		accept, refused = checkRequest(req)
	}
	if refused != nil {
		logger.Printf("handshake: refused: %v", refused)
		writeRefusal(nc, refused)
		return false
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + accept + "\r\n" +
		"\r\n"
	logger.Printf("handshake: answered 101 Switching Protocols, Sec-WebSocket-Accept: %s", accept)
	if _, err := io.WriteString(nc, resp); err != nil {
		logger.Printf("handshake: writing the response: %v", err)
		return false
	}
	return true
}

// readRequest reads the request line and the header lines up to the empty line that ends
// them, logging each line as it arrives.
func readRequest(tp *textproto.Reader, logger *log.Logger) (*request, error) {
	// The request line: "GET /echo HTTP/1.1".
	line, err := tp.ReadLine()
	if err != nil {
		return nil, err
	}
	logger.Printf("handshake: %s", line)
	parts := strings.Split(line, " ")
	if len(parts) != 3 {
		return nil, &refusal{400, "malformed request line"}
	}
	req := &request{method: parts[0], target: parts[1], proto: parts[2], header: textproto.MIMEHeader{}}

	// Header lines: "Name: value", until an empty line.
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return nil, err
		}
		if line == "" {
			return req, nil
		}
		logger.Printf("handshake:   %s", line)
		name, value, ok := strings.Cut(line, ":")
		// A name is a token: no spaces (a space before the colon is a request-smuggling
		// trick), and a line starting with a space would be the obsolete line folding.
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, &refusal{400, fmt.Sprintf("malformed header line %q", line)}
		}
		req.header.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
}

// checkRequest applies RFC 6455 §4.2.1 to the request and returns the Sec-WebSocket-Accept
// value to answer with.
func checkRequest(r *request) (accept string, _ *refusal) {
	path, _, _ := strings.Cut(r.target, "?")
	switch {
	case r.method != "GET":
		return "", &refusal{405, "method " + r.method + ", want GET"}
	case r.proto != "HTTP/1.1":
		return "", &refusal{400, r.proto + " request, want HTTP/1.1"}
	case path != echoPath:
		return "", &refusal{404, "no WebSocket endpoint at " + path}
	case r.header.Get("Host") == "":
		return "", &refusal{400, "missing Host header"}
	case !hasToken(r.header, "Upgrade", "websocket"):
		return "", &refusal{400, "missing Upgrade: websocket"}
	case !hasToken(r.header, "Connection", "upgrade"):
		return "", &refusal{400, "missing Connection: upgrade"}
	case r.header.Get("Sec-WebSocket-Version") != "13":
		return "", &refusal{426, "Sec-WebSocket-Version must be 13"}
	}
	// The key proves the server understood a WebSocket handshake (it is not a secret): 16
	// random bytes, base64-encoded by the client.
	keys := r.header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return "", &refusal{400, "want exactly one Sec-WebSocket-Key"}
	}
	if raw, err := base64.StdEncoding.Strict().DecodeString(keys[0]); err != nil || len(raw) != 16 {
		return "", &refusal{400, "Sec-WebSocket-Key is not the base64 of 16 bytes"}
	}
	// Browsers send Origin and attach cookies: refuse pages from other sites (cross-site
	// WebSocket hijacking). Non-browser clients send no Origin.
	if origin := r.header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || !strings.EqualFold(u.Host, r.header.Get("Host")) {
			return "", &refusal{403, "origin " + origin + " not allowed"}
		}
	}
	return ws.AcceptKey(keys[0]), nil
}

// hasToken reports whether the comma-separated header list name contains token, ignoring
// case ("Connection: keep-alive, Upgrade" contains "upgrade").
func hasToken(h textproto.MIMEHeader, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// writeRefusal answers a failed handshake with a plain-text HTTP error.
func writeRefusal(nc net.Conn, r *refusal) {
	body := r.reason + "\n"
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, statusText[r.status])
	b.WriteString("Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n")
	switch r.status {
	case 405:
		b.WriteString("Allow: GET\r\n")
	case 426:
		b.WriteString("Sec-WebSocket-Version: 13\r\n") // the version we speak
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(nc, b.String())
	lingerClose(nc)
}

// lingerClose ends our side of the connection, then reads and drops what the client is still
// sending, for a moment: closing a socket with unread input makes the kernel send a reset,
// which can destroy the response before the client reads it.
func lingerClose(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
}

// isTimeout reports whether err is a deadline expiring.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
