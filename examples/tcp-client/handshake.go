package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/duplexio/duplex/ws"
)

// maxResponseHead bounds the response head we accept from the server.
const maxResponseHead = 16 << 10

// newKey returns a Sec-WebSocket-Key: 16 random bytes, base64-encoded. It is not a secret;
// it makes the server prove, in Sec-WebSocket-Accept, that it understood a WebSocket
// handshake rather than replaying a cached HTTP answer.
func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.StdEncoding.EncodeToString(b[:])
}

// sendRequest writes the upgrade request. Each line ends with CRLF and an empty line ends the
// head.
func sendRequest(nc net.Conn, u *url.URL, key string, out io.Writer) error {
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" + // the protocol we want to switch to
		"Connection: Upgrade\r\n" + // ... which is what Upgrade means here
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n" + // RFC 6455
		"\r\n"
	printHead(out, "->", req)
	_, err := io.WriteString(nc, req)
	return err
}

// readResponse reads and checks the response head, and returns the reader to read frames
// from: it may already hold the first frame bytes, sent right behind the head.
func readResponse(nc net.Conn, key string, out io.Writer) (*bufio.Reader, error) {
	limited := &io.LimitedReader{R: nc, N: maxResponseHead}
	br := bufio.NewReader(limited)
	var head strings.Builder
	var lines []string
	for {
		line, err := br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			if limited.N <= 0 {
				return nil, fmt.Errorf("response head over %d bytes", maxResponseHead)
			}
			return nil, fmt.Errorf("reading the response head: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		lines = append(lines, line)
	}
	printHead(out, "<-", head.String())
	limited.N = 1 << 62 // the head is read; frames have their own limits

	// "HTTP/1.1 101 Switching Protocols"
	proto, rest, _ := strings.Cut(lines[0], " ")
	status, _, _ := strings.Cut(rest, " ")
	if proto != "HTTP/1.1" || status != "101" {
		return nil, fmt.Errorf("server did not switch protocols: %q", lines[0])
	}
	header := map[string]string{}
	for _, line := range lines[1:] {
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("malformed header line %q", line)
		}
		header[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
	}
	return br, checkResponse(header, key, out)
}

// checkResponse applies RFC 6455 §4.1 to the 101 response's headers (names in lower case).
func checkResponse(header map[string]string, key string, out io.Writer) error {
	if !hasToken(header["upgrade"], "websocket") {
		return fmt.Errorf("header Upgrade is %q, want websocket", header["upgrade"])
	}
	if !hasToken(header["connection"], "upgrade") {
		return fmt.Errorf("header Connection is %q, want Upgrade", header["connection"])
	}
	// We offered no subprotocol and no extension, so the server must not pick one.
	for _, name := range []string{"sec-websocket-protocol", "sec-websocket-extensions"} {
		if v, ok := header[name]; ok {
			return fmt.Errorf("server chose %s %q, which we did not offer", name, v)
		}
	}
	want := ws.AcceptKey(key)
	fmt.Fprintf(out, "expected Sec-WebSocket-Accept = base64(SHA-1(%q + \"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\"))\n", key)
	fmt.Fprintf(out, "                              = %s\n", want)
	if got := header["sec-websocket-accept"]; got != want {
		return fmt.Errorf("Sec-WebSocket-Accept is %q, want %s", got, want)
	}
	fmt.Fprintf(out, "server sent the same value: the connection is now a WebSocket\n")
	return nil
}

// printHead prints an HTTP head line by line (with its CRLFs made visible), then as hex.
func printHead(out io.Writer, dir, head string) {
	for _, line := range strings.SplitAfter(head, "\n") {
		if line != "" {
			fmt.Fprintf(out, "%s %s\n", dir, strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(line))
		}
	}
	fmt.Fprintf(out, "%d bytes on the wire:\n%s", len(head), indent(hex.Dump([]byte(head))))
}

// indent prefixes every line of s with four spaces.
func indent(s string) string {
	s = strings.TrimSuffix(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}

// hasToken reports whether the comma-separated list v contains token, ignoring case.
func hasToken(v, token string) bool {
	for _, part := range strings.Split(v, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}
