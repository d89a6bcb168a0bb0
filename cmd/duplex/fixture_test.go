package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// engineClient talks Engine.IO long-polling to the fixture that "duplex serve --fixture"
// mounts beside the echo endpoint.
type engineClient struct {
	t      *testing.T
	base   string // http://HOST:PORT/engine.io/
	client *http.Client
}

func newEngineClient(t *testing.T, echoURL string) *engineClient {
	host := strings.TrimSuffix(strings.TrimPrefix(echoURL, "ws://"), "/echo")
	c := &engineClient{
		t:      t,
		base:   "http://" + host + "/engine.io/",
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
	}
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// do sends a request with the query and body ("" for none) and returns the status, headers
// and body of the answer.
func (c *engineClient) do(method, query, body string) (int, http.Header, string) {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+"?"+query, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Origin", "http://example.test")
	res, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s ?%s: %v", method, query, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s ?%s: %v", method, query, err)
	}
	return res.StatusCode, res.Header, string(b)
}

// handshake opens a polling session and returns its open packet.
func (c *engineClient) handshake() (open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}, header http.Header) {
	c.t.Helper()
	status, header, body := c.do(http.MethodGet, "EIO=4&transport=polling", "")
	if status != http.StatusOK || !strings.HasPrefix(body, "0") {
		c.t.Fatalf("handshake: %d %q, want 200 and an open packet", status, body)
	}
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil || open.SID == "" {
		c.t.Fatalf("open packet %q: %v", body, err)
	}
	return open, header
}

func TestServeFixtureAnswersTheEngineIOHandshakeAndEchoes(t *testing.T) {
	echoURL, stop := startServe(t, "--fixture")
	c := newEngineClient(t, echoURL)

	open, header := c.handshake()
	if open.PingInterval != 300 || open.PingTimeout != 200 || open.MaxPayload != 1000000 ||
		len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" {
		t.Errorf("open packet %+v, want the suite's configuration (300, 200, 1000000, [websocket])", open)
	}
	if got := header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want *", got)
	}

	q := "EIO=4&transport=polling&sid=" + open.SID
	const sent = "4hello\x1ebAQIDBA=="
	if status, _, body := c.do(http.MethodPost, q, sent); status != http.StatusOK || body != "ok" {
		t.Fatalf("POST: %d %q, want 200 \"ok\"", status, body)
	}
	// With a 300 ms ping interval a ping may come first on a slow machine: answer it and
	// poll again (a bounded number of times).
	var got []string
	for i := 0; i < 5 && len(got) < 2; i++ {
		status, _, body := c.do(http.MethodGet, q, "")
		if status != http.StatusOK {
			t.Fatalf("poll: %d %q, want 200", status, body)
		}
		for _, p := range strings.Split(body, "\x1e") {
			if p == "2" {
				c.do(http.MethodPost, q, "3")
				continue
			}
			got = append(got, p)
		}
	}
	if strings.Join(got, "\x1e") != sent {
		t.Fatalf("echo: %q, want %q", strings.Join(got, "\x1e"), sent)
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
		req, _ := http.NewRequest(http.MethodGet, c.base+"?"+q, nil)
		res, err := c.client.Do(req)
		if err != nil {
			polled <- -1
			return
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		polled <- res.StatusCode
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
	c := newEngineClient(t, echoURL)
	open, _ := c.handshake()
	if open.PingInterval != 2000 || open.PingTimeout != 1500 || open.MaxPayload != 5000 {
		t.Errorf("open packet %+v, want pingInterval 2000, pingTimeout 1500, maxPayload 5000", open)
	}
	q := "EIO=4&transport=polling&sid=" + open.SID
	if status, _, _ := c.do(http.MethodPost, q, "4"+strings.Repeat("x", 5000)); status != http.StatusRequestEntityTooLarge {
		t.Errorf("POST over --max-payload: %d, want 413", status)
	}
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}

func TestServeWithoutFixtureServesNoEngineIO(t *testing.T) {
	echoURL, stop := startServe(t)
	c := newEngineClient(t, echoURL)
	if status, _, _ := c.do(http.MethodGet, "EIO=4&transport=polling", ""); status != http.StatusNotFound {
		t.Errorf("GET /engine.io/ without --fixture: %d, want 404", status)
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
