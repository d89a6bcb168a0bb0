// Command tcp-client is a WebSocket client written on net.Dial alone. It performs every step
// of RFC 6455 by hand — the HTTP upgrade request, the check of the 101 response, a masked
// text frame, reading the echo, the closing handshake — and prints each step with the bytes
// that cross the wire. Frames are encoded and decoded with package ws's low-level codec
// (AppendHeader, ParseHeader, MaskBytes).
//
// For a real client, use ws.Dial.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/duplexio/duplex/ws"
)

func main() {
	rawURL := flag.String("url", "ws://127.0.0.1:3000/echo", "WebSocket URL to connect to (ws:// only)")
	message := flag.String("message", "Hello, WebSocket!", "text message to send")
	timeout := flag.Duration("timeout", 10*time.Second, "bound on the whole exchange")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, *rawURL, *message, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// run connects to rawURL, sends message as a text frame, reads the echo and closes, writing
// a commented trace to out. ctx bounds every step.
func run(ctx context.Context, rawURL, message string, out io.Writer) error {
	u, addr, err := parseURL(rawURL)
	if err != nil {
		return err
	}

	step(out, 1, "open a TCP connection to %s", addr)
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	fmt.Fprintf(out, "connected: %s -> %s\n", nc.LocalAddr(), nc.RemoteAddr())
	// From here on ctx bounds every read and write: its deadline becomes the connection's,
	// and cancelling it moves the deadline into the past.
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	stopWatch := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stopWatch()

	err = exchange(nc, u, message, out)
	if err != nil {
		if ctxErr := contextErr(ctx); ctxErr != nil {
			return fmt.Errorf("%w (%v)", ctxErr, err)
		}
	}
	return err
}

// contextErr returns ctx's error, counting a deadline that has passed even before ctx's own
// timer has fired: the connection's deadline, copied from ctx, may expire first.
func contextErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// exchange runs the WebSocket conversation on an open TCP connection.
func exchange(nc net.Conn, u *url.URL, message string, out io.Writer) error {
	step(out, 2, "send the opening handshake: an HTTP/1.1 GET asking to upgrade")
	key := newKey()
	if err := sendRequest(nc, u, key, out); err != nil {
		return err
	}

	step(out, 3, "read the server's answer: it must be 101 Switching Protocols")
	br, err := readResponse(nc, key, out)
	if err != nil {
		return err
	}

	step(out, 4, "send %q as one masked text frame", message)
	if err := sendFrame(nc, ws.OpText, []byte(message), out); err != nil {
		return err
	}

	step(out, 5, "read the echo")
	op, echo, err := readMessage(nc, br, out)
	if err != nil {
		return err
	}
	if op != ws.OpText || !bytes.Equal(echo, []byte(message)) {
		return fmt.Errorf("echo is %v %q, want text %q", op, echo, message)
	}
	fmt.Fprintf(out, "echo received: %q (matches what we sent)\n", echo)

	step(out, 6, "closing handshake: send close 1000, wait for the server's close")
	return closeHandshake(nc, br, out)
}

// parseURL checks a ws:// URL and returns it with the host:port to dial.
func parseURL(rawURL string) (*url.URL, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", err
	}
	if u.Scheme != "ws" {
		return nil, "", fmt.Errorf("scheme %q: this client speaks plain ws:// only (wss:// needs TLS; use ws.Dial)", u.Scheme)
	}
	if u.Host == "" {
		return nil, "", errors.New("URL has no host")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return u, addr, nil
}

// step prints the heading of a step.
func step(out io.Writer, n int, format string, args ...any) {
	fmt.Fprintf(out, "\n== %d. %s\n", n, fmt.Sprintf(format, args...))
}
