package engineio_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// An echo server: every message goes back to its sender as it came, text or binary.
func ExampleServer() {
	closed := make(chan engineio.CloseReason, 1)
	srv := &engineio.Server{
		OnConnection: func(s *engineio.Session) {
			s.OnMessage = func(data []byte, binary bool) {
				flags := engineio.Text
				if binary {
					flags = engineio.Binary
				}
				// data is only valid during the call; Send keeps its argument.
				_ = s.Send(append([]byte(nil), data...), flags)
			}
			s.OnClose = func(reason engineio.CloseReason, err error) {
				closed <- reason
			}
		},
	}
	mux := http.NewServeMux()
	mux.Handle(engineio.DefaultPath, srv)
	web := httptest.NewServer(mux) // http.ListenAndServe(":3000", mux) in a real program
	defer web.Close()

	// A polling client, by hand: handshake, one message, one poll for the echo.
	url := web.URL + "/engine.io/?EIO=4&transport=polling"
	resp, _ := http.Get(url)
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hs, _ := engineio.ParseHandshake(open[1:])
	fmt.Println("upgrades:", hs.Upgrades)

	resp, _ = http.Post(url+"&sid="+hs.SID, "text/plain;charset=UTF-8", strings.NewReader("4hello"))
	resp.Body.Close()
	resp, _ = http.Get(url + "&sid=" + hs.SID)
	echo, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("echo: %q\n", echo)

	// Shutdown answers the client's next poll with a close packet, then returns.
	shutdown := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}()
	resp, _ = http.Get(url + "&sid=" + hs.SID)
	last, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("last poll: %q\n", last)
	fmt.Println("shutdown:", <-shutdown)
	fmt.Println("closed:", <-closed)
	// Output:
	// upgrades: [websocket]
	// echo: "4hello"
	// last poll: "1"
	// shutdown: <nil>
	// closed: server shutting down
}

// Encoding a polling response and reading a client's POST body.
func Example() {
	// Server → client: the body of a long-poll response.
	body := engineio.AppendPayload(nil, []engineio.Packet{
		{Type: engineio.Message, Data: []byte("hello")},
		{Type: engineio.Message, Data: []byte{1, 2, 3, 4}, Binary: true},
		{Type: engineio.Ping},
	})
	fmt.Printf("%q\n", body)

	// Client → server: a POST body, at most 16 packets.
	packets, err := engineio.ParsePayload([]byte("4héllo\x1e3\x1ebAQID"), 16)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range packets {
		if p.Binary {
			fmt.Printf("%v binary % x\n", p.Type, p.Data)
		} else {
			fmt.Printf("%v %q\n", p.Type, p.Data)
		}
	}

	// A malformed body is refused with the reason and the place.
	_, err = engineio.ParsePayload([]byte("4ok\x1e9oops"), 16)
	fmt.Println(errors.Is(err, engineio.ErrInvalidPacket), err)
	// Output:
	// "4hello\x1ebAQIDBA==\x1e2"
	// message "héllo"
	// pong ""
	// message binary 01 02 03
	// true engineio: invalid packet 1 at byte 4 of payload: unknown packet type '9'
}

// One packet per WebSocket message: WebSocketBinary says which frame type to send.
func ExampleAppendPacket() {
	for _, p := range []engineio.Packet{
		{Type: engineio.Pong, Data: []byte("probe")},
		{Type: engineio.Message, Data: []byte{0xca, 0xfe}, Binary: true},
	} {
		frame := engineio.AppendPacket(nil, p)
		fmt.Printf("binary frame: %v, data: %q\n", p.WebSocketBinary(), frame)

		back, _ := engineio.ParsePacket(frame, p.WebSocketBinary())
		fmt.Println(back.Type, back.Binary)
	}
	// Output:
	// binary frame: false, data: "3probe"
	// pong false
	// binary frame: true, data: "\xca\xfe"
	// message true
}

// The Open packet of a new polling session.
func ExampleHandshake() {
	h := engineio.Handshake{
		SID:          "lv_VI97HAXpY6yYWAAAC",
		Upgrades:     []string{"websocket"},
		PingInterval: 25000,
		PingTimeout:  20000,
		MaxPayload:   1000000,
	}
	fmt.Printf("%s\n", engineio.AppendPacket(nil, h.Packet()))
	// Output:
	// 0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}
}

// The answer to a request for a session that does not exist.
func ExampleAppendErrorJSON() {
	code := engineio.ErrorSessionIDUnknown
	fmt.Println(code.HTTPStatus(), string(engineio.AppendErrorJSON(nil, code, "")))
	// Output:
	// 400 {"code":1,"message":"Session ID unknown"}
}

// Reading a POST body one packet at a time, with a scanner reused across requests.
func ExamplePayloadScanner() {
	var s engineio.PayloadScanner
	for _, body := range []string{"4a\x1e4b", "2\x1ex"} {
		s.Reset([]byte(body), 16)
		for s.Scan() {
			p := s.Packet()
			fmt.Printf("%v %q\n", p.Type, p.Data)
		}
		if err := s.Err(); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// message "a"
	// message "b"
	// ping ""
	// engineio: invalid packet 1 at byte 2 of payload: unknown packet type 'x'
}
