package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// chatAck is every field an ack of the chat's events may hold.
type chatAck struct {
	Room    string       `json:"room"`
	You     string       `json:"you"`
	Members []chatMember `json:"members"`
	OK      bool         `json:"ok"`
	ID      uint64       `json:"id"`
	Error   string       `json:"error"`
}

// request sends event with arg (JSON) under ack id and decodes the first argument of the
// ack, which must be the next packet.
func (sc *sioClient) request(id int, event, arg string) chatAck {
	sc.t.Helper()
	sc.send(fmt.Sprintf(`42%d["%s",%s]`, id, event, arg))
	return sc.ackOf(id)
}

// ackOf reads the next packet, which must be the ack id, and decodes its first argument.
func (sc *sioClient) ackOf(id int) chatAck {
	sc.t.Helper()
	got := sc.read()
	prefix := fmt.Sprintf("43%d", id)
	var args []chatAck
	if !strings.HasPrefix(got, prefix) || json.Unmarshal([]byte(got[len(prefix):]), &args) != nil || len(args) != 1 {
		sc.t.Fatalf("got %q, want ack %d with one object", got, id)
	}
	return args[0]
}

// readEvent reads the next packet, which must be the event name with one argument, and
// decodes that argument into v.
func (sc *sioClient) readEvent(name string, v any) {
	sc.t.Helper()
	got := sc.read()
	var args []json.RawMessage
	if !strings.HasPrefix(got, "42") || json.Unmarshal([]byte(got[2:]), &args) != nil || len(args) != 2 || string(args[0]) != `"`+name+`"` {
		sc.t.Fatalf("got %q, want event %s with one argument", got, name)
	}
	if err := json.Unmarshal(args[1], v); err != nil {
		sc.t.Fatalf("event %s: %v", got, err)
	}
}

// sync shows that nothing came before: the echo's ack is the next packet.
func (sc *sioClient) sync() {
	sc.t.Helper()
	sc.call(999, `["echo","sync"]`, `["sync"]`)
}

func TestChatJoinTypingMessageLeaveAndDisconnect(t *testing.T) {
	echoURL, stop := startServe(t)
	a, b, c := dialSocketIO(t, echoURL), dialSocketIO(t, echoURL), dialSocketIO(t, echoURL)
	idA, idB, idC := a.connect("", ""), b.connect("", ""), c.connect("", "")
	alice, bob, carol := chatMember{idA, "alice"}, chatMember{idB, "bob"}, chatMember{idC, "Carol"}

	// Joining acks the member list (sorted by nickname) and tells the others.
	if got, want := a.request(1, "chat:join", `{"room":"lobby","nick":"alice"}`), (chatAck{Room: "lobby", You: idA, Members: []chatMember{alice}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("alice's join: %+v, want %+v", got, want)
	}
	// Names are cleaned: the room folded to lower case, spaces around both trimmed.
	if got, want := b.request(1, "chat:join", `{"room":" Lobby ","nick":" bob "}`), (chatAck{Room: "lobby", You: idB, Members: []chatMember{alice, bob}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("bob's join: %+v, want %+v", got, want)
	}
	var p chatPresence
	a.readEvent("chat:presence", &p)
	if want := (chatPresence{Room: "lobby", Members: []chatMember{alice, bob}, Change: "joined", Member: bob}); !reflect.DeepEqual(p, want) {
		t.Fatalf("alice saw %+v, want %+v", p, want)
	}
	if got := c.request(1, "chat:join", `{"room":"lobby","nick":"Carol"}`); !reflect.DeepEqual(got.Members, []chatMember{alice, bob, carol}) {
		t.Fatalf("carol's join: %+v", got)
	}
	for _, sc := range []*sioClient{a, b} {
		sc.readEvent("chat:presence", &p)
		if p.Change != "joined" || p.Member != carol || len(p.Members) != 3 {
			t.Fatalf("carol's join seen as %+v", p)
		}
	}
	b.sync() // the joiner itself gets no presence event

	// Typing goes to the others only.
	if got := b.request(2, "chat:typing", `{"room":"lobby","typing":true}`); !got.OK {
		t.Fatalf("typing ack %+v", got)
	}
	for _, sc := range []*sioClient{a, c} {
		var ty chatTyping
		sc.readEvent("chat:typing", &ty)
		if want := (chatTyping{Room: "lobby", Member: idB, Nick: "bob", Typing: true}); ty != want {
			t.Fatalf("typing seen as %+v, want %+v", ty, want)
		}
	}
	b.sync()

	// A message goes to every member, the sender included, before the sender's ack.
	before := time.Now().UnixMilli()
	b.send(`423["chat:message",{"room":"lobby","text":"  hello, <b>world</b>  "}]`)
	var msgs []chatMessage
	for _, sc := range []*sioClient{a, b, c} {
		var m chatMessage
		sc.readEvent("chat:message", &m)
		msgs = append(msgs, m)
	}
	if ack := b.ackOf(3); !ack.OK || ack.ID != msgs[0].ID {
		t.Fatalf("message ack %+v, want ok with id %d", ack, msgs[0].ID)
	}
	m := msgs[0]
	if m.Room != "lobby" || m.Member != idB || m.Nick != "bob" || m.Text != "hello, <b>world</b>" || m.ID == 0 ||
		m.Time < before-1000 || m.Time > time.Now().UnixMilli()+1000 {
		t.Fatalf("message %+v", m)
	}
	if msgs[1] != m || msgs[2] != m {
		t.Fatalf("members saw different messages: %+v", msgs)
	}
	a.send(`422["chat:message",{"room":"lobby","text":"second"}]`)
	for _, sc := range []*sioClient{a, b, c} {
		var second chatMessage
		sc.readEvent("chat:message", &second)
		if second.Text != "second" || second.ID != m.ID+1 || second.Nick != "alice" {
			t.Fatalf("second message %+v, want id %d", second, m.ID+1)
		}
	}
	if ack := a.ackOf(2); ack.ID != m.ID+1 {
		t.Fatalf("second message ack %+v, want id %d", ack, m.ID+1)
	}

	// Leaving: the others see the new list, the leaver gets nothing more from the room.
	if got := b.request(4, "chat:leave", `{"room":"lobby"}`); !got.OK {
		t.Fatalf("leave ack %+v", got)
	}
	for _, sc := range []*sioClient{a, c} {
		sc.readEvent("chat:presence", &p)
		if want := (chatPresence{Room: "lobby", Members: []chatMember{alice, carol}, Change: "left", Member: bob}); !reflect.DeepEqual(p, want) {
			t.Fatalf("bob's leave seen as %+v, want %+v", p, want)
		}
	}
	if got := b.request(5, "chat:message", `{"room":"lobby","text":"still here?"}`); got.Error != "you are not in #lobby" {
		t.Fatalf("message after leaving: %+v", got)
	}
	a.sync()

	// A member that disconnects is gone from the list.
	c.send("41")
	a.readEvent("chat:presence", &p)
	if want := (chatPresence{Room: "lobby", Members: []chatMember{alice}, Change: "disconnected", Member: carol}); !reflect.DeepEqual(p, want) {
		t.Fatalf("carol's disconnection seen as %+v, want %+v", p, want)
	}
	// Joining again under another nickname updates the list.
	if got := b.request(6, "chat:join", `{"room":"lobby","nick":"robert"}`); len(got.Members) != 2 || got.Members[1] != (chatMember{idB, "robert"}) {
		t.Fatalf("bob's second join: %+v", got)
	}
	a.readEvent("chat:presence", &p)
	if p.Member.Nick != "robert" {
		t.Fatalf("bob's second join seen as %+v", p)
	}

	// The demo events still work beside the chat.
	a.call(3, `["join","lobby"]`, `[]`)
	a.call(4, `["broadcast","lobby","hi"]`, `[]`)
	b.sync() // the demo's room "lobby" is not the chat's

	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
	for _, sc := range []*sioClient{a, b, c} {
		sc.awaitClose()
	}
}

func TestChatRefusesBadInput(t *testing.T) {
	echoURL, stop := startServe(t)
	sc := dialSocketIO(t, echoURL)
	sc.connect("", "")
	if got := sc.request(1, "chat:join", `{"room":"ok","nick":"me"}`); got.Error != "" {
		t.Fatalf("join: %+v", got)
	}
	cases := []struct {
		name, event, arg, want string
	}{
		{"join without an object", "chat:join", `"lobby"`, "chat:join takes {room, nick}"},
		{"join without a room", "chat:join", `{"nick":"me"}`, "a room needs a name"},
		{"room with a space", "chat:join", `{"room":"a b","nick":"me"}`, "room names use only letters a–z, digits, - and _"},
		{"room with a colon", "chat:join", `{"room":"chat:x","nick":"me"}`, "room names use only letters a–z, digits, - and _"},
		{"room too long", "chat:join", `{"room":"` + strings.Repeat("r", 33) + `","nick":"me"}`, "room names have at most 32 characters"},
		{"room of the wrong type", "chat:join", `{"room":7,"nick":"me"}`, "chat:join takes {room, nick}"},
		{"blank nickname", "chat:join", `{"room":"x","nick":"  "}`, "pick a nickname"},
		{"nickname too long", "chat:join", `{"room":"x","nick":"` + strings.Repeat("é", 25) + `"}`, "nicknames have at most 24 characters"},
		{"nickname with a control character", "chat:join", `{"room":"x","nick":"a\u0007b"}`, "nicknames cannot hold control or formatting characters"},
		{"nickname with a bidi override", "chat:join", `{"room":"x","nick":"a\u202eb"}`, "nicknames cannot hold control or formatting characters"},
		{"message to a room not joined", "chat:message", `{"room":"other","text":"hi"}`, "you are not in #other"},
		{"empty message", "chat:message", `{"room":"ok","text":"  \n "}`, "the message is empty"},
		{"message too long", "chat:message", `{"room":"ok","text":"` + strings.Repeat("€", 501) + `"}`, "the message is too long (at most 500 characters)"},
		{"message without an object", "chat:message", `["ok","hi"]`, "expected an object with a room"},
		{"typing in a room not joined", "chat:typing", `{"room":"other","typing":true}`, "you are not in #other"},
		{"leaving a room not joined", "chat:leave", `{"room":"other"}`, "you are not in #other"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sc.t = t
			if got := sc.request(10+i, tc.event, tc.arg); got.Error != tc.want {
				t.Errorf("ack %+v, want error %q", got, tc.want)
			}
		})
	}
	sc.t = t
	// A message of exactly 500 characters is fine; a burst of 10 messages too, then the
	// socket must slow down (one more every 2 s).
	for i := range messageBurst {
		text := fmt.Sprint(i)
		if i == 0 {
			text = strings.Repeat("€", 500)
		}
		sc.send(fmt.Sprintf(`42%d["chat:message",{"room":"ok","text":"%s"}]`, 100+i, text))
		var m chatMessage
		sc.readEvent("chat:message", &m) // the sender gets its own message before the ack
		if ack := sc.ackOf(100 + i); !ack.OK || m.Text != text {
			t.Fatalf("message %d: ack %+v, message %+v", i, ack, m)
		}
	}
	if got := sc.request(200, "chat:message", `{"room":"ok","text":"one too many"}`); got.Error != "slow down: too many messages" {
		t.Fatalf("message past the burst: %+v", got)
	}
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}

func TestChatLimitsRoomsPerSocket(t *testing.T) {
	echoURL, stop := startServe(t)
	sc := dialSocketIO(t, echoURL)
	sc.connect("", "")
	for i := range maxRoomsPerSocket {
		if got := sc.request(i, "chat:join", fmt.Sprintf(`{"room":"r%d","nick":"me"}`, i)); got.Error != "" {
			t.Fatalf("join %d: %+v", i, got)
		}
	}
	if got := sc.request(50, "chat:join", `{"room":"one-more","nick":"me"}`); got.Error != "you are in too many rooms already" {
		t.Fatalf("join past the limit: %+v", got)
	}
	// Joining a room it is in already is not one more.
	if got := sc.request(51, "chat:join", `{"room":"r0","nick":"me"}`); got.Error != "" {
		t.Fatalf("join again: %+v", got)
	}
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}

func TestTokenBucketAllowsABurstThenTheRefillRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := newTokenBucket(3, time.Second, t0)
	for i := range 3 {
		if !b.take(t0) {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	if b.take(t0.Add(500 * time.Millisecond)) {
		t.Fatal("event past the burst allowed before a refill")
	}
	if !b.take(t0.Add(1000 * time.Millisecond)) {
		t.Fatal("event refused after one refill period")
	}
	if b.take(t0.Add(1100 * time.Millisecond)) {
		t.Fatal("second event allowed within the refill period")
	}
	// A long pause refills up to the burst only.
	late := t0.Add(time.Hour)
	for i := range 3 {
		if !b.take(late) {
			t.Fatalf("event %d after a pause refused", i)
		}
	}
	if b.take(late) {
		t.Fatal("more than the burst after a pause")
	}
}

func TestServeServesTheChatPage(t *testing.T) {
	echoURL, stop := startServe(t)
	base := "http" + strings.TrimSuffix(strings.TrimPrefix(echoURL, "ws"), "/echo")
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	resp, body := get("GET", "/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`src="duplex-client.js"`, `src="chat.js"`, `href="chat.css"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(body, "//") && strings.Contains(body, "https://") {
		t.Errorf("the page refers to another site")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for path, typ := range map[string]string{"/duplex-client.js": "text/javascript", "/chat.js": "text/javascript", "/chat.css": "text/css"} {
		if resp, body := get("GET", path); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), typ) || body == "" {
			t.Errorf("GET %s: %s %s, %d bytes", path, resp.Status, resp.Header.Get("Content-Type"), len(body))
		}
	}
	if resp, _ := get("GET", "/nope.js"); resp.StatusCode != 404 {
		t.Errorf("GET /nope.js: %s, want 404", resp.Status)
	}
	if resp, _ := get("POST", "/"); resp.StatusCode != 405 {
		t.Errorf("POST /: %s, want 405", resp.Status)
	}
	if s := stop(); s != 0 {
		t.Fatalf("serve exited with %d", s)
	}
}

func TestChatNamesAreCleaned(t *testing.T) {
	for _, tc := range []struct{ in, room, err string }{
		{"lobby", "lobby", ""},
		{"  Go-Lang_2 ", "go-lang_2", ""},
		{strings.Repeat("a", 32), strings.Repeat("a", 32), ""},
		{"", "", "a room needs a name"},
		{"café", "", "room names use only letters a–z, digits, - and _"},
		{"#lobby", "", "room names use only letters a–z, digits, - and _"},
	} {
		if room, err := cleanRoom(tc.in); room != tc.room || err != tc.err {
			t.Errorf("cleanRoom(%q) = %q, %q; want %q, %q", tc.in, room, err, tc.room, tc.err)
		}
	}
	for _, tc := range []struct{ in, nick, err string }{
		{"Zoë 🦊", "Zoë 🦊", ""},
		{" bob\t", "bob", ""},
		{strings.Repeat("ü", 24), strings.Repeat("ü", 24), ""},
		{"a\u200db", "", "nicknames cannot hold control or formatting characters"},
		{"a\nb", "", "nicknames cannot hold control or formatting characters"},
		{"\xff", "", "nicknames cannot hold control or formatting characters"},
	} {
		if nick, err := cleanNick(tc.in); nick != tc.nick || err != tc.err {
			t.Errorf("cleanNick(%q) = %q, %q; want %q, %q", tc.in, nick, err, tc.nick, tc.err)
		}
	}
	got := memberList(map[string]string{"3": "bob", "1": "Alice", "2": "alice", "0": "Bob"})
	want := []chatMember{{"1", "Alice"}, {"2", "alice"}, {"0", "Bob"}, {"3", "bob"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("memberList = %v, want %v", got, want)
	}
}
