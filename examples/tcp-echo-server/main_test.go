package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/examples/internal/echotest"
	"github.com/duplexio/duplex/ws"
)

func TestEcho(t *testing.T) {
	addr, logs, stop := echotest.StartServer(t, serve)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c := echotest.Dial(t, ctx, addr)

	echotest.Echo(t, ctx, c, ws.MessageText, []byte("hello"))
	echotest.Echo(t, ctx, c, ws.MessageBinary, []byte{0, 1, 2, 0xFF})
	echotest.Echo(t, ctx, c, ws.MessageText, bytes.Repeat([]byte("x"), 200)) // 16-bit length
	big := make([]byte, 70000)                                               // 64-bit length
	rand.Read(big)
	echotest.Echo(t, ctx, c, ws.MessageBinary, big)

	// A message in three frames: text FIN=0, continuation FIN=0, continuation FIN=1 (empty).
	echotest.Fragmented(t, ctx, c)

	// A ping is answered by a pong with the same payload, seen while reading.
	echotest.PingPong(t, ctx, c, "are you there")

	// Close with a code: the server echoes it; a read in progress sees it.
	echotest.CloseWithCode(t, ctx, c, 4001, "done")
	stop()

	out := logs.String()
	for _, want := range []string{
		"handshake: GET /echo HTTP/1.1",
		"handshake:   Sec-Websocket-Key: ",
		"handshake: answered 101 Switching Protocols",
		"recv frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=text(0x1) MASK=1 len=5 (7-bit) key=",
		"send frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=text(0x1) MASK=0 len=5 (7-bit) [81 05]",
		"opcode=binary(0x2) MASK=1 len=4 (7-bit)",
		"opcode=text(0x1) MASK=1 len=200 (16-bit)",
		"recv frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=binary(0x2) MASK=1 len=70000 (64-bit)",
		"send frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=binary(0x2) MASK=0 len=70000 (64-bit) [82 7f 00 00 00 00 00 01 11 70]",
		"recv frame: FIN=0 RSV1=0 RSV2=0 RSV3=0 opcode=text(0x1) MASK=1 len=4",
		"recv frame: FIN=0 RSV1=0 RSV2=0 RSV3=0 opcode=continuation(0x0) MASK=1 len=6",
		"recv frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=continuation(0x0) MASK=1 len=0",
		"message: text, 10 bytes in 3 frame(s)",
		"recv frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=ping(0x9) MASK=1 len=13",
		"send frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=pong(0xA) MASK=0 len=13",
		`close received: code=4001 reason="done"`,
		"send frame: FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=close(0x8) MASK=0 len=2 (7-bit) [88 02]",
		"closed: close handshake complete",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	echotest.ShutdownSendsGoingAway(t, serve)
}

// rawConn opens a TCP connection with a bounded lifetime.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(3 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return nc
}

const goodRequest = "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

func TestHandshakeRefusals(t *testing.T) {
	addr, _, _ := echotest.StartServer(t, serve)
	tests := []struct {
		name, request, status string
	}{
		{"not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "400"},
		{"POST", strings.Replace(goodRequest, "GET", "POST", 1), "405"},
		{"other path", strings.Replace(goodRequest, "/echo", "/nope", 1), "404"},
		{"HTTP/1.0", strings.Replace(goodRequest, "HTTP/1.1", "HTTP/1.0", 1), "400"},
		{"no Upgrade", strings.Replace(goodRequest, "Upgrade: websocket\r\n", "", 1), "400"},
		{"Connection: keep-alive", strings.Replace(goodRequest, "Connection: Upgrade", "Connection: keep-alive", 1), "400"},
		{"version 8", strings.Replace(goodRequest, "Version: 13", "Version: 8", 1), "426"},
		{"short key", strings.Replace(goodRequest, "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 1), "400"},
		{"space before colon", strings.Replace(goodRequest, "Host:", "Host :", 1), "400"},
		{"cross-site origin", strings.Replace(goodRequest, "Host: x\r\n", "Host: x\r\nOrigin: http://evil.example\r\n", 1), "403"},
		{"huge head", "GET /echo HTTP/1.1\r\nX-Pad: " + strings.Repeat("a", 10000) + "\r\n\r\n", "431"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := rawConn(t, addr)
			io.WriteString(nc, tt.request)
			line, err := bufio.NewReader(nc).ReadString('\n')
			if err != nil {
				t.Fatalf("reading the status line: %v", err)
			}
			if !strings.HasPrefix(line, "HTTP/1.1 "+tt.status+" ") {
				t.Fatalf("status line %q, want %s", line, tt.status)
			}
		})
	}
}

// TestFramingErrors sends bad frames after a good handshake: the server must answer with a
// close frame carrying the matching code, then close the connection.
func TestFramingErrors(t *testing.T) {
	addr, _, _ := echotest.StartServer(t, serve)
	masked := func(b0 byte, payload string) []byte {
		h := ws.Header{Fin: b0&0x80 != 0, Opcode: ws.Opcode(b0 & 0xF), Rsv: b0 >> 4 & 7, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: int64(len(payload))}
		p := []byte(payload)
		ws.MaskBytes(h.Mask, 0, p)
		return append(ws.AppendHeader(nil, h), p...)
	}
	tests := []struct {
		name  string
		frame []byte
		code  ws.StatusCode
	}{
		{"unmasked", []byte{0x81, 0x02, 'h', 'i'}, 1002},
		{"RSV1 without extension", masked(0xC1, "hi"), 1002},
		{"reserved opcode", masked(0x83, "hi"), 1002},
		{"continuation first", masked(0x80, "hi"), 1002},
		{"fragmented ping", masked(0x09, "hi"), 1002},
		{"ping over 125", masked(0x89, strings.Repeat("p", 126)), 1002},
		{"invalid UTF-8", masked(0x81, "\xff\xfe"), 1007},
		{"close payload of 1 byte", masked(0x88, "x"), 1002},
		{"close code 1005", masked(0x88, "\x03\xed"), 1002},
		{"claimed length 2^40", []byte{0x82, 0xFF, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 1009},
		{"length with top bit", []byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 1002},
		{"new message inside a message", append(masked(0x01, "a"), masked(0x81, "b")...), 1002},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := rawConn(t, addr)
			br := readResponseHead(t, nc, goodRequest)
			nc.Write(tt.frame)
			rest, err := io.ReadAll(br) // until the server closes TCP
			if err != nil {
				t.Fatalf("reading until EOF: %v", err)
			}
			h, n, err := ws.ParseHeader(rest)
			if err != nil || n == 0 || h.Opcode != ws.OpClose || h.Masked || len(rest) < n+2 {
				t.Fatalf("want an unmasked close frame, got % x", rest)
			}
			if code := ws.StatusCode(rest[n])<<8 | ws.StatusCode(rest[n+1]); code != tt.code {
				t.Fatalf("close code %d (%q), want %d", code, rest[n+2:], tt.code)
			}
		})
	}
}

// TestFirstFrameWithTheRequest sends a frame in the same write as the handshake: the bytes
// after the request head are the first frame, not to be lost with the HTTP reader.
func TestFirstFrameWithTheRequest(t *testing.T) {
	addr, _, _ := echotest.StartServer(t, serve)
	nc := rawConn(t, addr)
	br := readResponseHead(t, nc, goodRequest+"\x81\x82\x00\x00\x00\x00hi") // zero mask key: payload as is
	echo := make([]byte, 4)
	if _, err := io.ReadFull(br, echo); err != nil || string(echo) != "\x81\x02hi" {
		t.Fatalf("echo % x, %v; want 81 02 68 69", echo, err)
	}
}

// readResponseHead writes request and reads the response head, which must be a 101.
func readResponseHead(t *testing.T, nc net.Conn, request string) *bufio.Reader {
	t.Helper()
	io.WriteString(nc, request)
	br := bufio.NewReader(nc)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 101 ") {
		t.Fatalf("handshake: %q", line)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("response head: %v", err)
		}
		if line == "\r\n" {
			return br
		}
	}
}

// TestGarbageDoesNotPanic feeds random bytes after a good handshake.
func TestGarbageDoesNotPanic(t *testing.T) {
	addr, _, _ := echotest.StartServer(t, serve)
	for range 50 {
		nc := rawConn(t, addr)
		junk := make([]byte, 64)
		rand.Read(junk)
		io.WriteString(nc, goodRequest+string(junk))
		nc.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, nc)
		nc.Close()
	}
}
