package socketio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// Reading one packet: the text of an Engine.IO message, here an event on namespace /chat
// that asks for an ack.
// A chat server: every message goes to the other sockets of the sender's room, and the
// sender gets an acknowledgement. A raw client (Engine.IO over WebSocket, Socket.IO packets
// written by hand) stands in for socket.io-client.
func ExampleNewServer() {
	srv := socketio.NewServer(nil)
	srv.OnConnection(func(s *socketio.Socket) {
		s.Join("lobby")
		s.On("chat", func(args socketio.Args, ack socketio.AckFunc) {
			var text string
			if args.Decode(0, &text) != nil {
				return
			}
			_ = s.To("lobby").Emit("chat", text) // everyone in the lobby but the sender
			if ack != nil {
				_ = ack("delivered")
			}
		})
	})
	mux := http.NewServeMux()
	mux.Handle(socketio.DefaultPath, srv)
	web := httptest.NewServer(mux) // http.ListenAndServe(":3000", mux) in a real program
	defer web.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(web.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	read := func() string {
		_, m, _ := c.ReadMessage(ctx)
		return string(m)
	}
	read()                                                              // Engine.IO open packet
	_ = c.WriteMessage(ctx, ws.MessageText, []byte("40"))               // CONNECT to "/"
	fmt.Println(strings.HasPrefix(read(), `40{"sid":`))                 // the CONNECT answer
	_ = c.WriteMessage(ctx, ws.MessageText, []byte(`421["chat","hi"]`)) // EVENT with ack id 1
	fmt.Println(read())                                                 // the ACK
	// Output:
	// true
	// 431["delivered"]
}

func ExampleParsePacket() {
	p, err := socketio.ParsePacket([]byte(`2/chat,12["message","hi"]`), 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Type, p.Namespace, p.ID, p.HasID, string(p.Data))

	// Malformed packets are errors that say what is wrong.
	_, err = socketio.ParsePacket([]byte(`2["disconnect"]`), 0)
	fmt.Println(err)
	fmt.Println(errors.Is(err, socketio.ErrInvalidPacket))
	// Output:
	// EVENT /chat 12 true ["message","hi"]
	// socketio: invalid packet at byte 2: reserved event name "disconnect"
	// true
}

// Sending an event with binary data: AppendArgs takes the []byte values out, the packet
// announces them, and each follows as an Engine.IO binary message.
func ExampleAppendArgs() {
	file := []byte{0x89, 'P', 'N', 'G'}
	data, attachments, err := socketio.AppendArgs(nil, "upload", []any{
		map[string]any{"name": "a.png", "data": file},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := socketio.Packet{Type: socketio.Event, Namespace: "/files", ID: 3, HasID: true, Data: data}
	if len(attachments) > 0 {
		p.Type = socketio.BinaryEvent
		p.Attachments = len(attachments)
	}
	fmt.Printf("text:   %s\n", socketio.AppendPacket(nil, &p))
	for _, a := range attachments {
		fmt.Printf("binary: % x\n", a)
	}
	// Output:
	// text:   51-/files,3["upload",{"data":{"_placeholder":true,"num":0},"name":"a.png"}]
	// binary: 89 50 4e 47
}

// Receiving: a Decoder gets every Engine.IO message of a connection in order, and returns a
// binary event once its attachments have arrived. Args decode each argument into the type
// the handler wants; a []byte field receives the attachment.
func ExampleDecoder() {
	var d socketio.Decoder
	messages := []struct {
		data   string
		binary bool
	}{
		{`51-["upload",{"name":"a.png","data":{"_placeholder":true,"num":0}}]`, false},
		{"\x89PNG", true},
	}
	for _, msg := range messages {
		m, err := d.Add([]byte(msg.data), msg.binary)
		if err != nil {
			fmt.Println("close the connection:", err)
			return
		}
		if m == nil {
			fmt.Println("waiting for attachments")
			continue
		}
		name, args, err := socketio.EventArgs(m)
		if err != nil {
			fmt.Println(err)
			return
		}
		var file struct {
			Name string `json:"name"`
			Data []byte `json:"data"`
		}
		if err := args.Decode(0, &file); err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: %s, % x\n", name, file.Name, file.Data)
	}
	// Output:
	// waiting for attachments
	// upload: a.png, 89 50 4e 47
}

// Values decodes arguments whose shape the handler does not know in advance; binary
// values come back as []byte.
func ExampleArgs_Values() {
	var d socketio.Decoder
	d.Add([]byte(`62-7[1,{"a":[{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":0}]`), false)
	d.Add([]byte{1, 2}, true)
	m, _ := d.Add([]byte{3}, true)

	args, _ := socketio.AckArgs(m)
	vals, err := args.Values()
	fmt.Println(vals, err)
	// Output:
	// [1 map[a:[[3]]] [1 2]] <nil>
}

// The Go client: Dial connects to the namespace in the URL's path on a Manager of its own,
// and the socket then emits, asks for acknowledgements and handles the server's events
// (on a goroutine of the socket's own, in order). The server is an in-process Server.
func ExampleDial() {
	srv := socketio.NewServer(nil)
	srv.Of("/chat").OnConnection(func(s *socketio.Socket) {
		s.On("hello", func(args socketio.Args, ack socketio.AckFunc) {
			var name string
			_ = args.Decode(0, &name)
			_ = ack("hi " + name)
			_ = s.Emit("news", "you are connected to "+s.Namespace().Name())
		})
	})
	web := httptest.NewServer(srv)
	defer web.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sock, err := socketio.Dial(ctx, web.URL+"/chat", nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sock.Manager().Close()
	news := make(chan string, 1)
	sock.On("news", func(args socketio.Args, _ socketio.AckFunc) {
		var text string
		_ = args.Decode(0, &text)
		news <- text
	})

	answer, err := sock.EmitWithAck(ctx, "hello", "gopher")
	if err != nil {
		fmt.Println(err)
		return
	}
	var reply string
	_ = answer.Decode(0, &reply)
	fmt.Println(reply)
	fmt.Println(<-news)
	// Output:
	// hi gopher
	// you are connected to /chat
}

// A server whose WebSocket clients are served by an event loop (ws.EventLoop): an idle client
// holds no goroutine and no read buffer. Handlers, rooms and acks work as without it.
func ExampleOptions_eventLoop() {
	loop, err := ws.NewEventLoop(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer loop.Close() // after the server's Shutdown, deferred below
	srv := socketio.NewServer(&socketio.Options{EventLoop: loop})
	srv.OnConnection(func(s *socketio.Socket) {
		s.On("double", func(args socketio.Args, ack socketio.AckFunc) {
			var n int
			_ = args.Decode(0, &n)
			_ = ack(2 * n)
		})
	})
	web := httptest.NewServer(srv)
	defer web.Close()
	defer srv.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sock, err := socketio.Dial(ctx, web.URL, &socketio.ManagerOptions{Engine: engineio.ClientOptions{Transports: []string{engineio.TransportWebSocket}}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sock.Manager().Close()
	answer, err := sock.EmitWithAck(ctx, "double", 21)
	if err != nil {
		fmt.Println(err)
		return
	}
	var n int
	_ = answer.Decode(0, &n)
	fmt.Println(n)
	// Output: 42
}
