package ws_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/duplexio/duplex/ws"
)

// An echo server over net/http, and a client talking to it.
func ExampleUpgrader_Upgrade() {
	upgrader := &ws.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			return // the request was answered with the matching status
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.ReadMessage(context.Background())
			if err != nil {
				return
			}
			if err := c.WriteMessage(context.Background(), typ, msg); err != nil {
				return
			}
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ws.StatusNormalClosure, "")
	if err := c.WriteMessage(ctx, ws.MessageText, []byte("hello")); err != nil {
		log.Fatal(err)
	}
	typ, msg, err := c.ReadMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(typ, string(msg))
	// Output: text hello
}

// A WebSocket server on a bare TCP listener, with no HTTP server.
func ExampleUpgrader_UpgradeConn() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	upgrader := &ws.Upgrader{}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c, req, err := upgrader.UpgradeConn(nc)
				if err != nil {
					return // answered and closed
				}
				defer c.CloseNow()
				c.WriteMessage(context.Background(), ws.MessageText, []byte("you asked for "+req.URL.Path))
				c.Close(ws.StatusNormalClosure, "done")
			}()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws://"+ln.Addr().String()+"/raw", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	_, msg, _ := c.ReadMessage(ctx)
	fmt.Println(string(msg))
	_, _, err = c.ReadMessage(ctx)
	fmt.Println(ws.CloseStatus(err))
	// Output:
	// you asked for /raw
	// 1000
}

// Decoding a frame header from bytes, as a protocol inspector would.
func ExampleParseHeader() {
	frame := []byte{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}
	h, n, err := ws.ParseHeader(frame)
	if err != nil {
		log.Fatal(err)
	}
	payload := frame[n : n+int(h.Length)]
	ws.MaskBytes(h.Mask, 0, payload)
	fmt.Printf("fin=%v opcode=%v masked=%v length=%d payload=%q\n", h.Fin, h.Opcode, h.Masked, h.Length, payload)
	// Output: fin=true opcode=text masked=true length=5 payload="Hello"
}

// Inflating the compressed messages of one direction of a connection, as a protocol
// inspector would: the server's response settles the window and context takeover, and the
// second message refers to the first.
func ExampleMessageInflater() {
	params, ok, err := ws.ParseDeflateParams([]string{"permessage-deflate; client_max_window_bits=10"})
	if err != nil || !ok {
		log.Fatal("no permessage-deflate: ", err)
	}
	fromClient := ws.NewMessageInflater(params.ClientMaxWindowBits, !params.ClientNoContextTakeover)
	for _, payload := range [][]byte{
		{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, // "Hello"
		{0xf2, 0x00, 0x11, 0x00, 0x00},             // "Hello" again, as a reference to the first
	} {
		msg, err := fromClient.Inflate(nil, payload, 1<<20)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d bytes → %q\n", len(payload), msg)
	}
	// Output:
	// 7 bytes → "Hello"
	// 5 bytes → "Hello"
}
