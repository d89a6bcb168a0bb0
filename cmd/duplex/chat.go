package main

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/duplexio/duplex/socketio"
)

// The chat demo that "duplex serve" serves at "/": the page and its scripts (web/, embedded
// in the binary, no CDN) and the events of the default Socket.IO namespace they use.
//
// The chat's events (client → server, each answered by an ack):
//
//	"chat:join"    {room, nick}  → ack {room, you, members} | {error}
//	"chat:leave"   {room}        → ack {ok: true} | {error}
//	"chat:message" {room, text}  → ack {ok: true, id} | {error}
//	"chat:typing"  {room, typing} (no ack needed; an ack, if asked, is {ok: true} | {error})
//
// and what the server sends:
//
//	"chat:presence" {room, members, change: "joined"|"left"|"disconnected", member}
//	                to the other members of the room, after every change
//	"chat:message"  {room, id, member, nick, text, time} to every member, the sender included
//	"chat:typing"   {room, member, nick, typing} to the other members
//
// members is [{id, nick}] sorted by nickname; member and id name a socket (its id); time is
// the server's clock in milliseconds since the Unix epoch; id is the message's number, one
// sequence per server. Everything the client sends is checked: rooms are 1–32 characters of
// a–z, 0–9, "-" and "_" (upper case is folded), nicknames 1–24 characters without control or
// formatting characters, messages 1–500 characters (surrounding spaces trimmed), at most 10
// rooms per socket and 100 members per room; a socket may send a burst of 10 messages, then
// one every 2 s, and a burst of 5 typing events, then 2 a second. Rooms are public: anyone
// may join any room.

// Limits of the chat.
const (
	maxRoomLen        = 32
	maxNickLen        = 24
	maxTextLen        = 500
	maxRoomsPerSocket = 10
	maxRoomMembers    = 100
	messageBurst      = 10                     // messages a socket may send at once
	messageRefill     = 2 * time.Second        // … and one more per this much time
	typingBurst       = 5                      // typing events a socket may send at once
	typingRefill      = 500 * time.Millisecond // … and one more per this much time
)

// chatRoomPrefix keeps the chat's rooms apart from the other demo events' rooms ("join",
// "broadcast") and from the room of each socket's own id (ids have no ':').
const chatRoomPrefix = "chat:"

//go:embed web
var webFiles embed.FS

// chatPage serves the chat page and its assets from the embedded web directory.
func chatPage() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the directory is embedded at build time: cannot happen
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		// Only the page's own scripts, styles and same-origin WebSocket.
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// chatMember is one member of a room as the page sees it.
type chatMember struct {
	ID   string `json:"id"`
	Nick string `json:"nick"`
}

// chatPresence is the payload of "chat:presence".
type chatPresence struct {
	Room    string       `json:"room"`
	Members []chatMember `json:"members"`
	Change  string       `json:"change"`
	Member  chatMember   `json:"member"`
}

// chatMessage is the payload of "chat:message" sent by the server.
type chatMessage struct {
	Room   string `json:"room"`
	ID     uint64 `json:"id"`
	Member string `json:"member"`
	Nick   string `json:"nick"`
	Text   string `json:"text"`
	Time   int64  `json:"time"`
}

// chatTyping is the payload of "chat:typing" sent by the server.
type chatTyping struct {
	Room   string `json:"room"`
	Member string `json:"member"`
	Nick   string `json:"nick"`
	Typing bool   `json:"typing"`
}

// chatError is the ack of a refused request.
type chatError struct {
	Error string `json:"error"`
}

// chatServer is the chat's state: who is in which room under which nickname.
//
// Concurrency: the handlers of many sockets call its methods at once; mu guards rooms and
// seq and is held while the resulting event is queued (queuing never blocks), so that every
// member sees the presence lists and messages of a room in the order they changed.
type chatServer struct {
	nsp   *socketio.Namespace
	now   func() time.Time
	mu    sync.Mutex
	rooms map[string]map[string]string // room → socket id → nickname
	seq   uint64                       // the last message id
}

// addChatHandlers gives the main namespace of srv the chat's events.
func addChatHandlers(srv *socketio.Server) {
	c := &chatServer{nsp: srv.Of("/"), now: time.Now, rooms: map[string]map[string]string{}}
	srv.OnConnection(c.connected)
}

// connected registers the chat's handlers of one socket. The handlers of a socket run one at
// a time on its own goroutine, so joined and the rate limiter need no lock.
func (c *chatServer) connected(s *socketio.Socket) {
	joined := map[string]bool{} // the rooms this socket is in
	messages := newTokenBucket(messageBurst, messageRefill, c.now())
	typings := newTokenBucket(typingBurst, typingRefill, c.now())

	s.On("chat:join", func(args socketio.Args, ack socketio.AckFunc) {
		var req struct {
			Room string `json:"room"`
			Nick string `json:"nick"`
		}
		if args.Decode(0, &req) != nil {
			answer(ack, chatError{"chat:join takes {room, nick}"})
			return
		}
		room, err := cleanRoom(req.Room)
		nick := ""
		if err == "" {
			nick, err = cleanNick(req.Nick)
		}
		if err == "" && !joined[room] && len(joined) >= maxRoomsPerSocket {
			err = "you are in too many rooms already"
		}
		if err == "" {
			err = c.join(s, room, nick, ack)
		}
		if err != "" {
			answer(ack, chatError{err})
			return
		}
		joined[room] = true
	})

	s.On("chat:leave", func(args socketio.Args, ack socketio.AckFunc) {
		room, err := c.roomOf(args, joined)
		if err != "" {
			answer(ack, chatError{err})
			return
		}
		delete(joined, room)
		c.leave(s, room, "left")
		answer(ack, map[string]bool{"ok": true})
	})

	s.On("chat:message", func(args socketio.Args, ack socketio.AckFunc) {
		room, err := c.roomOf(args, joined)
		if err != "" {
			answer(ack, chatError{err})
			return
		}
		var req struct {
			Text string `json:"text"`
		}
		_ = args.Decode(0, &req) // roomOf decoded the same object
		text := strings.TrimSpace(req.Text)
		switch {
		case text == "":
			answer(ack, chatError{"the message is empty"})
		case utf8.RuneCountInString(text) > maxTextLen:
			answer(ack, chatError{fmt.Sprintf("the message is too long (at most %d characters)", maxTextLen)})
		case !messages.take(c.now()):
			answer(ack, chatError{"slow down: too many messages"})
		default:
			answer(ack, map[string]any{"ok": true, "id": c.message(s, room, text)})
		}
	})

	s.On("chat:typing", func(args socketio.Args, ack socketio.AckFunc) {
		room, err := c.roomOf(args, joined)
		if err != "" {
			answer(ack, chatError{err})
			return
		}
		var req struct {
			Typing bool `json:"typing"`
		}
		_ = args.Decode(0, &req)
		if !typings.take(c.now()) {
			answer(ack, chatError{"slow down: too many typing events"})
			return
		}
		c.typing(s, room, req.Typing)
		answer(ack, map[string]bool{"ok": true})
	})

	s.OnDisconnect(func(string) {
		for room := range joined {
			c.leave(s, room, "disconnected")
		}
		clear(joined)
	})
}

// roomOf reads the room named by the {room} object of an event and checks that the socket
// is in it; err is the reason to refuse, "" when none.
func (c *chatServer) roomOf(args socketio.Args, joined map[string]bool) (room, err string) {
	var req struct {
		Room string `json:"room"`
	}
	if args.Decode(0, &req) != nil {
		return "", "expected an object with a room"
	}
	room, err = cleanRoom(req.Room)
	if err != "" {
		return "", err
	}
	if !joined[room] {
		return "", "you are not in #" + room
	}
	return room, ""
}

// join puts s in room as nick (again, under a new nickname, when it is there already), acks
// the member list and tells the others. It returns why it refused, or "".
func (c *chatServer) join(s *socketio.Socket, room, nick string, ack socketio.AckFunc) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !s.Connected() {
		return "disconnected" // its OnDisconnect may have run: it must not stay a member
	}
	members := c.rooms[room]
	if members == nil {
		members = map[string]string{}
		c.rooms[room] = members
	} else if _, in := members[s.ID()]; !in && len(members) >= maxRoomMembers {
		return "#" + room + " is full"
	}
	members[s.ID()] = nick
	s.Join(socketio.Room(chatRoomPrefix + room))
	list := memberList(members)
	answer(ack, map[string]any{"room": room, "you": s.ID(), "members": list})
	_ = s.To(socketio.Room(chatRoomPrefix+room)).Emit("chat:presence", chatPresence{
		Room: room, Members: list, Change: "joined", Member: chatMember{s.ID(), nick},
	})
	return ""
}

// leave takes s out of room and tells the members left; change says why ("left" or
// "disconnected"). A room without members is forgotten.
func (c *chatServer) leave(s *socketio.Socket, room, change string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	members := c.rooms[room]
	nick, in := members[s.ID()]
	if !in {
		return
	}
	delete(members, s.ID())
	s.Leave(socketio.Room(chatRoomPrefix + room))
	if len(members) == 0 {
		delete(c.rooms, room)
		return
	}
	// Through the namespace: s may be gone already (it left the room above in any case).
	_ = c.nsp.To(socketio.Room(chatRoomPrefix+room)).Emit("chat:presence", chatPresence{
		Room: room, Members: memberList(members), Change: change, Member: chatMember{s.ID(), nick},
	})
}

// message sends text from s to every member of room, s included, and returns its id.
func (c *chatServer) message(s *socketio.Socket, room, text string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	_ = c.nsp.To(socketio.Room(chatRoomPrefix+room)).Emit("chat:message", chatMessage{
		Room: room, ID: c.seq, Member: s.ID(), Nick: c.rooms[room][s.ID()], Text: text, Time: c.now().UnixMilli(),
	})
	return c.seq
}

// typing tells the other members of room whether s is typing. It is not volatile: a
// dropped "stopped typing" would leave the indicator up until the page's own timeout, and
// the rate limit keeps these events few.
func (c *chatServer) typing(s *socketio.Socket, room string, typing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = s.To(socketio.Room(chatRoomPrefix+room)).Emit("chat:typing", chatTyping{
		Room: room, Member: s.ID(), Nick: c.rooms[room][s.ID()], Typing: typing,
	})
}

// memberList returns the members of a room sorted by nickname (case folded), then id.
func memberList(members map[string]string) []chatMember {
	list := make([]chatMember, 0, len(members))
	for id, nick := range members {
		list = append(list, chatMember{ID: id, Nick: nick})
	}
	slices.SortFunc(list, func(a, b chatMember) int {
		if c := strings.Compare(strings.ToLower(a.Nick), strings.ToLower(b.Nick)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list
}

// cleanRoom returns the room name in its canonical form (lower case, no surrounding
// spaces), or why it is not a valid name.
func cleanRoom(name string) (room, err string) {
	room = strings.ToLower(strings.TrimSpace(name))
	switch {
	case room == "":
		return "", "a room needs a name"
	case len(room) > maxRoomLen:
		return "", fmt.Sprintf("room names have at most %d characters", maxRoomLen)
	}
	for _, r := range room {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", "room names use only letters a–z, digits, - and _"
		}
	}
	return room, ""
}

// cleanNick returns the nickname without surrounding spaces, or why it is not valid.
func cleanNick(name string) (nick, err string) {
	nick = strings.TrimSpace(name)
	switch {
	case nick == "":
		return "", "pick a nickname"
	case utf8.RuneCountInString(nick) > maxNickLen:
		return "", fmt.Sprintf("nicknames have at most %d characters", maxNickLen)
	}
	for _, r := range nick {
		// Control characters, and formatting ones (bidirectional overrides, zero-width
		// joiners) that could make a nickname look like another or garble the page.
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", "nicknames cannot hold control or formatting characters"
		}
	}
	return nick, ""
}

// tokenBucket limits the events of one kind from one socket: a burst, then one per refill
// period. It is used by one goroutine only.
type tokenBucket struct {
	burst, tokens float64
	refill        time.Duration
	last          time.Time
}

func newTokenBucket(burst int, refill time.Duration, now time.Time) *tokenBucket {
	return &tokenBucket{burst: float64(burst), tokens: float64(burst), refill: refill, last: now}
}

// take reports whether an event may go now, and counts it if so.
func (b *tokenBucket) take(now time.Time) bool {
	b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.refill))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
