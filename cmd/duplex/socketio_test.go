package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// sioWait bounds every wait of these tests; an upper bound for slow machines, never a
// measure of speed.
const sioWait = 5 * time.Second

// sioClient is a raw Socket.IO client over one Engine.IO WebSocket session to the
// /socket.io/ endpoint of "duplex serve": it writes packets as text and reads them, answering
// heartbeat pings.
type sioClient struct {
	t    *testing.T
	c    *ws.Conn
	open struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		PingTimeout  int      `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}
}

// socketIOBase returns http://HOST:PORT/socket.io/ for the echo URL startServe returns.
func socketIOBase(echoURL string) string {
	return "http://" + strings.TrimSuffix(strings.TrimPrefix(echoURL, "ws://"), "/echo") + "/socket.io/"
}

// dialSocketIO opens an Engine.IO session over WebSocket and reads its open packet.
func dialSocketIO(t *testing.T, echoURL string) *sioClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sioWait)
	defer cancel()
	u := "ws" + strings.TrimPrefix(socketIOBase(echoURL), "http") + "?EIO=4&transport=websocket"
	c, _, err := ws.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	sc := &sioClient{t: t, c: c}
	open := sc.read()
	if !strings.HasPrefix(open, "0") {
		t.Fatalf("first message %q, want the open packet", open)
	}
	if err := json.Unmarshal([]byte(open[1:]), &sc.open); err != nil || sc.open.SID == "" {
		t.Fatalf("open packet %q: %v", open, err)
	}
	return sc
}

// connect joins nsp ("" for the main namespace) with auth (nil for none) and returns the
// socket id of the CONNECT answer; the "auth" event that follows is checked.
func (sc *sioClient) connect(nsp, auth string) string {
	sc.t.Helper()
	prefix := "40"
	if nsp != "" {
		prefix += nsp + ","
	}
	sc.send(prefix + auth)
	answer := sc.read()
	var v struct {
		SID string `json:"sid"`
	}
	if !strings.HasPrefix(answer, prefix) || json.Unmarshal([]byte(answer[len(prefix):]), &v) != nil || v.SID == "" {
		sc.t.Fatalf("CONNECT answer %q, want %s{\"sid\":...}", answer, prefix)
	}
	if auth == "" {
		auth = "{}"
	}
	eventPrefix := "42"
	if nsp != "" {
		eventPrefix += nsp + ","
	}
	if got, want := sc.read(), eventPrefix+`["auth",`+auth+`]`; got != want {
		sc.t.Fatalf("after the CONNECT answer: %q, want %q", got, want)
	}
	return v.SID
}

func (sc *sioClient) send(s string) {
	sc.t.Helper()
	sc.write(ws.MessageText, []byte(s))
}

func (sc *sioClient) write(typ ws.MessageType, b []byte) {
	sc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sioWait)
	defer cancel()
	if err := sc.c.WriteMessage(ctx, typ, b); err != nil {
		sc.t.Fatalf("write %q: %v", b, err)
	}
}

// next reads the next message that is not a heartbeat ping (those are answered).
func (sc *sioClient) next() (ws.MessageType, string, error) {
	for i := 0; i < 100; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), sioWait)
		typ, b, err := sc.c.ReadMessage(ctx)
		cancel()
		if err != nil {
			return 0, "", err
		}
		if typ == ws.MessageText && string(b) == "2" {
			ctx, cancel := context.WithTimeout(context.Background(), sioWait)
			_ = sc.c.WriteMessage(ctx, ws.MessageText, []byte("3"))
			cancel()
			continue
		}
		return typ, string(b), nil
	}
	return 0, "", errors.New("100 pings in a row")
}

// read returns the next text message that is not a ping.
func (sc *sioClient) read() string {
	sc.t.Helper()
	typ, s, err := sc.next()
	if err != nil {
		sc.t.Fatalf("read: %v", err)
	}
	if typ != ws.MessageText {
		sc.t.Fatalf("got a %v message % x, want text", typ, s)
	}
	return s
}

// readBinary returns the next message, which must be binary.
func (sc *sioClient) readBinary() string {
	sc.t.Helper()
	typ, s, err := sc.next()
	if err != nil {
		sc.t.Fatalf("read: %v", err)
	}
	if typ != ws.MessageBinary {
		sc.t.Fatalf("got a %v message %q, want binary", typ, s)
	}
	return s
}

// expect reads the next text message and checks it.
func (sc *sioClient) expect(want string) {
	sc.t.Helper()
	if got := sc.read(); got != want {
		sc.t.Fatalf("got %q, want %q", got, want)
	}
}

// call sends an event with ack id and expects the ack.
func (sc *sioClient) call(id int, event, want string) {
	sc.t.Helper()
	sc.send(fmt.Sprintf("42%d%s", id, event))
	sc.expect(fmt.Sprintf("43%d%s", id, want))
}

// awaitClose reads until the server ends the connection.
func (sc *sioClient) awaitClose() {
	sc.t.Helper()
	for i := 0; i < 100; i++ {
		if _, s, err := sc.next(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				sc.t.Fatalf("connection still open after %v", sioWait)
			}
			return
		} else if s != "" {
			sc.t.Logf("before the close: %q", s)
		}
	}
	sc.t.Fatal("connection still open after 100 messages")
}

func TestServeSocketIOAnswersEchoJoinLeaveAndBroadcast(t *testing.T) {
	echoURL, stop := startServe(t)
	a, b, c := dialSocketIO(t, echoURL), dialSocketIO(t, echoURL), dialSocketIO(t, echoURL)
	if o := a.open; o.PingInterval != 25000 || o.PingTimeout != 20000 || o.MaxPayload != 1000000 {
		t.Errorf("open packet %+v, want the defaults (25000, 20000, 1000000)", o)
	}
	for _, sc := range []*sioClient{a, b, c} {
		sc.connect("", "")
	}

	// echo: an ack with the same arguments, binary ones as attachments.
	a.call(1, `["echo","hi",{"n":[1,2.5,true,null]}]`, `["hi",{"n":[1,2.5,true,null]}]`)
	a.send(`452-2["echo","bin",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]`)
	a.write(ws.MessageBinary, []byte{1, 2, 3})
	a.write(ws.MessageBinary, []byte{})
	a.expect(`462-2["bin",{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]`)
	if got := a.readBinary(); got != "\x01\x02\x03" {
		t.Fatalf("attachment 0: % x, want 01 02 03", got)
	}
	if got := a.readBinary(); got != "" {
		t.Fatalf("attachment 1: % x, want nothing", got)
	}

	// join, broadcast: the room but the sender. Each client's echo afterwards shows what it
	// got before: the broadcast is queued for every recipient before its ack is sent.
	a.call(3, `["join","r"]`, `[]`)
	b.call(1, `["join","r"]`, `[]`)
	a.call(4, `["broadcast","r",{"text":"hello"}]`, `[]`)
	b.expect(`42["msg",{"text":"hello"}]`)
	for _, sc := range []*sioClient{a, b, c} {
		sc.call(9, `["echo","sync"]`, `["sync"]`) // a and c got no msg
	}

	// leave: b gets nothing more.
	b.call(2, `["leave","r"]`, `[]`)
	c.call(1, `["join","r"]`, `[]`)
	a.call(5, `["broadcast","r","second"]`, `[]`)
	c.expect(`42["msg","second"]`)
	b.call(10, `["echo","sync"]`, `["sync"]`)

	// The fixture's events are answered too.
	b.send(`42["message",1,"2"]`)
	b.expect(`42["message-back",1,"2"]`)

	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
	for _, sc := range []*sioClient{a, b, c} {
		sc.awaitClose()
	}
}

func TestServeSocketIOFlagsApply(t *testing.T) {
	echoURL, stop := startServe(t, "--ping-interval", "2s", "--ping-timeout", "1500ms", "--max-payload", "5000")
	sc := dialSocketIO(t, echoURL)
	if o := sc.open; o.PingInterval != 2000 || o.PingTimeout != 1500 || o.MaxPayload != 5000 {
		t.Errorf("open packet %+v, want pingInterval 2000, pingTimeout 1500, maxPayload 5000", o)
	}
	sc.connect("", "")
	sc.send(`42["echo","` + strings.Repeat("x", 5000) + `"]`)
	sc.awaitClose() // over --max-payload
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}

func TestServeFixtureServesTheSocketIOSuiteFixture(t *testing.T) {
	echoURL, stop := startServe(t, "--fixture")

	// The handshake over polling: the suite's configuration, CORS for any origin.
	client := &http.Client{Transport: &http.Transport{}, Timeout: sioWait}
	defer client.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, socketIOBase(echoURL)+"?EIO=4&transport=polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "http://example.test")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var open struct {
		SID          string   `json:"sid"`
		Upgrades     []string `json:"upgrades"`
		PingInterval int      `json:"pingInterval"`
		PingTimeout  int      `json:"pingTimeout"`
		MaxPayload   int      `json:"maxPayload"`
	}
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "0") || json.Unmarshal(body[1:], &open) != nil {
		t.Fatalf("polling handshake: %d %q", res.StatusCode, body)
	}
	if open.PingInterval != 300 || open.PingTimeout != 200 || open.MaxPayload != 1000000 ||
		len(open.Upgrades) != 1 || open.Upgrades[0] != "websocket" {
		t.Errorf("open packet %+v, want the suite's configuration (300, 200, 1000000, [websocket])", open)
	}
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want *", got)
	}

	// The suite's exchanges.
	sc := dialSocketIO(t, echoURL)
	sc.connect("", `{"token":"123"}`)
	sc.connect("/custom", `{"token":"abc"}`)
	sc.send("40/random")
	sc.expect(`44/random,{"message":"Invalid namespace"}`)
	sc.send(`42["message",1,"2",{"3":[true]}]`)
	sc.expect(`42["message-back",1,"2",{"3":[true]}]`)
	sc.send(`42456["message-with-ack",1,"2",{"3":[false]}]`)
	sc.expect(`43456[1,"2",{"3":[false]}]`)
	sc.send(`452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	sc.write(ws.MessageBinary, []byte{1, 2, 3})
	sc.write(ws.MessageBinary, []byte{4, 5, 6})
	sc.expect(`462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	if a, b := sc.readBinary(), sc.readBinary(); a != "\x01\x02\x03" || b != "\x04\x05\x06" {
		t.Fatalf("attachments % x, % x, want 01 02 03, 04 05 06", a, b)
	}

	// A connection that joins no namespace is closed after the connect timeout (1 s).
	idle := dialSocketIO(t, echoURL)
	idle.awaitClose()

	// The Engine.IO fixture is still at /engine.io/.
	c := newEngineClient(t, echoURL)
	eo, _ := c.handshake()
	q := "EIO=4&transport=polling&sid=" + eo.SID
	if status, _, body := c.do(http.MethodPost, q, "4hello"); status != http.StatusOK || body != "ok" {
		t.Fatalf("POST to /engine.io/: %d %q", status, body)
	}

	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
	sc.awaitClose()
}

func TestServeFixtureFlagsApplyToSocketIO(t *testing.T) {
	echoURL, stop := startServe(t, "--fixture", "--ping-interval", "2s", "--ping-timeout", "1500ms", "--max-payload", "5000")
	sc := dialSocketIO(t, echoURL)
	if o := sc.open; o.PingInterval != 2000 || o.PingTimeout != 1500 || o.MaxPayload != 5000 {
		t.Errorf("open packet %+v, want pingInterval 2000, pingTimeout 1500, maxPayload 5000", o)
	}
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}
