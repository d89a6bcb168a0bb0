package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/examples/internal/echotest"
	"github.com/duplexio/duplex/ws"
)

// echoServer starts a ws.Upgrader echo server on loopback. The channel receives how each
// connection ended, as the server saw it.
func echoServer(t *testing.T) (url string, ended <-chan error) {
	t.Helper()
	echotest.CheckGoroutines(t)
	endc := make(chan error, 10)
	upgrader := &ws.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		for {
			typ, msg, err := c.ReadMessage(ctx)
			if err != nil {
				endc <- err
				return
			}
			if err := c.WriteMessage(ctx, typ, msg); err != nil {
				endc <- err
				return
			}
		}
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		upgrader.Shutdown(ctx)
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/echo", endc
}

func runClient(t *testing.T, url, message string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var out bytes.Buffer
	err := run(ctx, url, message, &out)
	if err != nil || t.Failed() {
		t.Logf("output:\n%s", out.String())
	}
	return out.String(), err
}

func TestAgainstEchoServer(t *testing.T) {
	url, ended := echoServer(t)
	out, err := runClient(t, url, "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"== 1. open a TCP connection",
		"-> GET /echo HTTP/1.1\\r\\n",
		"-> Sec-WebSocket-Version: 13\\r\\n",
		"<- HTTP/1.1 101 Switching Protocols\\r\\n",
		"server sent the same value: the connection is now a WebSocket",
		"-> frame header: 81 85 ",
		"byte 0 = 10000001: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=text(0x1)",
		"byte 1 = 10000101: MASK=1 length field=5",
		"   payload:        68 65 6c 6c 6f\n",
		"<- frame header: 81 05\n",
		`echo received: "hello"`,
		"-> frame header: 88 85 ",
		"   payload:        03 e8 62 79 65\n", // 1000 "bye"
		`server answered close: code 1000 reason ""`,
		"server closed TCP (EOF). Done.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// The server, which checks masking and framing, saw a clean close with our code.
	select {
	case err := <-ended:
		var ce *ws.CloseError
		if !errors.As(err, &ce) || ce.Code != 1000 || ce.Reason != "bye" || !ce.Remote {
			t.Errorf("server saw %v, want the client's close 1000 bye", err)
		}
	case <-time.After(2 * time.Second):
		t.Error("server connection did not end")
	}
}

func TestLongerMessagesUseExtendedLengths(t *testing.T) {
	url, _ := echoServer(t)
	out, err := runClient(t, url, strings.Repeat("é", 100)) // 200 bytes of UTF-8
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"-> frame header: 81 fe 00 c8 ", // MASK|126, then 200 in 16 bits
		"length field=126 -> 16-bit length in the next 2 bytes: 200",
		"<- frame header: 81 7e 00 c8\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// rawServer answers the first connection's request head with response, then holds the
// connection until the test ends.
func rawServer(t *testing.T, response string) string {
	t.Helper()
	echotest.CheckGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 4096)
		var head []byte
		for !bytes.Contains(head, []byte("\r\n\r\n")) {
			n, err := nc.Read(buf)
			if err != nil {
				return
			}
			head = append(head, buf[:n]...)
		}
		if response != "" {
			io.WriteString(nc, response)
		}
		io.Copy(io.Discard, nc) // until the client hangs up
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "ws://" + ln.Addr().String() + "/echo"
}

func TestRefusesBadResponses(t *testing.T) {
	tests := []struct{ name, response, wantErr string }{
		{"not 101", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", `did not switch protocols: "HTTP/1.1 404 Not Found"`},
		{"wrong accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n", "Sec-WebSocket-Accept is"},
		{"no Upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n", "Upgrade is"},
		{"unoffered extension", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", "did not offer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runClient(t, rawServer(t, tt.response), "hi")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSilentServerIsBoundedByContext(t *testing.T) {
	url := rawServer(t, "") // reads the request, never answers
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := run(ctx, url, "hi", io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("run took %v after a 200ms deadline", d)
	}
}

func TestOnlyPlainWS(t *testing.T) {
	for _, u := range []string{"wss://127.0.0.1:1/echo", "http://127.0.0.1:1/", "ws:///echo"} {
		if err := run(context.Background(), u, "hi", io.Discard); err == nil {
			t.Errorf("%s: no error", u)
		}
	}
}
