package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// endpoint returns http://HOST:PORT/PATH/ of the server whose echo URL startServe returned.
func endpoint(echoURL, path string) string {
	return "http://" + strings.TrimSuffix(strings.TrimPrefix(echoURL, "ws://"), "/echo") + path
}

// origin is the Origin header of a cross-origin browser page.
var origin = http.Header{"Origin": {"http://example.test"}}

// pollingHandshake opens a polling session from a cross-origin page and returns the answer,
// which must be 200.
func pollingHandshake(t *testing.T, c *eiotest.Client) eiotest.Reply {
	t.Helper()
	r, err := c.Do(http.MethodGet, "EIO=4&transport=polling", nil, origin)
	if err != nil {
		t.Fatalf("polling handshake: %v", err)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("polling handshake: %v, want 200 and an open packet", r)
	}
	return r
}

func TestServeFixtureAnswersTheEngineIOHandshakeAndEchoes(t *testing.T) {
	echoURL, stop := startServe(t, "--fixture")
	c := eiotest.NewClient(t, endpoint(echoURL, "/engine.io/"))

	r := pollingHandshake(t, c)
	// The suite's configuration.
	eiotest.CheckOpen(t, r.Body, []string{"websocket"}, 300*time.Millisecond, 200*time.Millisecond, 1_000_000)
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want *", got)
	}

	sid := eiotest.SIDOf(t, r.Body)
	const sent = "4hello\x1ebAQIDBA=="
	if r := c.Push(t, sid, sent); r.Status != http.StatusOK || r.Body != "ok" {
		t.Fatalf("POST: %v, want 200 \"ok\"", r)
	}
	// With a 300 ms ping interval a ping may come first on a slow machine: PollPackets
	// answers it and polls again (a bounded number of times).
	if got := strings.Join(c.PollPackets(t, sid, 2), "\x1e"); got != sent {
		t.Fatalf("echo: %q, want %q", got, sent)
	}

	// /echo is still served.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws1, _, err := ws.Dial(ctx, echoURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws1.CloseNow()
	if err := ws1.WriteMessage(ctx, ws.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, m, err := ws1.ReadMessage(ctx); err != nil || string(m) != "still here" {
		t.Fatalf("/echo: %q, %v", m, err)
	}
	ws1.Close(ws.StatusNormalClosure, "")

	// A long poll in progress does not hold the shutdown up.
	polled := make(chan int, 1)
	go func() {
		r, err := c.Do(http.MethodGet, eiotest.PollQuery(sid), nil, nil)
		if err != nil {
			polled <- -1
			return
		}
		polled <- r.Status
	}()
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
	select {
	case s := <-polled:
		t.Logf("poll pending at shutdown answered: %d", s)
	case <-time.After(10 * time.Second):
		t.Fatal("the poll pending at shutdown was never answered")
	}
}

func TestServeFixtureFlagsOverrideTheSuiteConfiguration(t *testing.T) {
	echoURL, stop := startServe(t, "--fixture", "--ping-interval", "2s", "--ping-timeout", "1500ms", "--max-payload", "5000")
	c := eiotest.NewClient(t, endpoint(echoURL, "/engine.io/"))
	r := pollingHandshake(t, c)
	eiotest.CheckOpen(t, r.Body, []string{"websocket"}, 2*time.Second, 1500*time.Millisecond, 5000)
	if r := c.Push(t, eiotest.SIDOf(t, r.Body), "4"+strings.Repeat("x", 5000)); r.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("POST over --max-payload: %d, want 413", r.Status)
	}
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}

func TestServeWithoutFixtureServesNoEngineIO(t *testing.T) {
	echoURL, stop := startServe(t)
	c := eiotest.NewClient(t, endpoint(echoURL, "/engine.io/"))
	if r := c.MustDo(t, http.MethodGet, "EIO=4&transport=polling", nil); r.Status != http.StatusNotFound {
		t.Errorf("GET /engine.io/ without --fixture: %d, want 404", r.Status)
	}
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}

func TestServeRefusesNegativeEngineIOSettings(t *testing.T) {
	for _, args := range [][]string{
		{"--ping-interval", "-1s"}, {"--ping-timeout", "-1ms"}, {"--max-payload", "-5"},
	} {
		var stdout, stderr strings.Builder
		argv := append([]string{"serve", "--addr", "127.0.0.1:0", "--fixture"}, args...)
		if s := run(context.Background(), argv, strings.NewReader(""), &stdout, &stderr); s != 1 {
			t.Errorf("%q: status %d, want 1 (stderr %q)", args, s, stderr.String())
		}
	}
}
