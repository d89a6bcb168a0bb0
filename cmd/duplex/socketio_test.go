package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// sioClient is a raw Socket.IO client over one Engine.IO WebSocket session to the
// /socket.io/ endpoint of "duplex serve": it writes packets as text and reads them, answering
// heartbeat pings.
type sioClient struct {
	t    *testing.T
	c    *ws.Conn
	open eiotest.Open
}

// dialSocketIO opens an Engine.IO session over WebSocket and reads its open packet.
func dialSocketIO(t *testing.T, echoURL string) *sioClient {
	t.Helper()
	c := eiotest.NewClient(t, endpoint(echoURL, "/socket.io/")).MustDial(t, "EIO=4&transport=websocket")
	return &sioClient{t: t, c: c, open: eiotest.DecodeOpen(t, eiotest.ReadText(t, c))}
}

// connect joins nsp ("" for the main namespace) with auth ("" for none) and returns the
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
	eiotest.Send(sc.t, sc.c, s)
}

func (sc *sioClient) write(typ ws.MessageType, b []byte) {
	sc.t.Helper()
	eiotest.SendMessage(sc.t, sc.c, typ, b)
}

// read returns the next text message that is not a ping.
func (sc *sioClient) read() string {
	sc.t.Helper()
	return eiotest.ReadText(sc.t, sc.c)
}

// readBinary returns the next message that is not a ping, which must be binary.
func (sc *sioClient) readBinary() string {
	sc.t.Helper()
	return eiotest.ReadBinary(sc.t, sc.c)
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

// awaitClose reads (answering pings) until the server ends the connection.
func (sc *sioClient) awaitClose() {
	sc.t.Helper()
	if got := eiotest.AwaitWSClose(sc.t, sc.c, true); len(got) > 0 {
		sc.t.Logf("before the close: %q", got)
	}
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
	r := pollingHandshake(t, eiotest.NewClient(t, endpoint(echoURL, "/socket.io/")))
	eiotest.CheckOpen(t, r.Body, []string{"websocket"}, 300*time.Millisecond, 200*time.Millisecond, 1_000_000)
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "*" {
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
	c := eiotest.NewClient(t, endpoint(echoURL, "/engine.io/"))
	sid := eiotest.SIDOf(t, pollingHandshake(t, c).Body)
	if r := c.Push(t, sid, "4hello"); r.Status != http.StatusOK || r.Body != "ok" {
		t.Fatalf("POST to /engine.io/: %v", r)
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
