package main

import (
	"context"
	"crypto/rand"
	"net/http"
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
	big := make([]byte, 70000) // sent with a 64-bit length
	rand.Read(big)
	echotest.Echo(t, ctx, c, ws.MessageBinary, big)

	// A message in three frames: text FIN=0, continuation FIN=0, continuation FIN=1 (empty).
	echotest.Fragmented(t, ctx, c)

	// The server's reader answers pings.
	echotest.PingPong(t, ctx, c, "ping?")

	// The server echoes our close code.
	echotest.CloseWithCode(t, ctx, c, 4001, "done")
	stop()

	out := logs.String()
	for _, want := range []string{
		"connected to /echo",
		"message: text, 5 bytes",
		"message: binary, 4 bytes",
		"message: binary, 70000 bytes",
		"message: text, 10 bytes",
		"message: text, 14 bytes",
		"closed: code 4001",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestShutdownSendsGoingAway(t *testing.T) {
	logs := echotest.ShutdownSendsGoingAway(t, serve)
	if !strings.Contains(logs.String(), "closed: code 1001") {
		t.Errorf("log lacks the 1001 close:\n%s", logs)
	}
}

func TestPlainGETIsRefused(t *testing.T) {
	addr, logs, _ := echotest.StartServer(t, serve)
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + addr + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "handshake refused") {
		t.Errorf("log lacks the refusal:\n%s", logs)
	}
}
