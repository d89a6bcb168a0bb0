package ws_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/duplexio/duplex/ws"
)

// upperEcho answers each message with its text in upper case.
type upperEcho struct{}

func (upperEcho) OnOpen(c *ws.Conn) {}

func (upperEcho) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	// data is valid during the call only; WriteMessage queues a copy and never blocks here.
	_ = c.WriteMessage(context.Background(), typ, []byte(strings.ToUpper(string(data))))
}

func (upperEcho) OnClose(c *ws.Conn, err error) {}

// A server whose connections are served by an event loop: the HTTP handler returns as soon
// as the connection is handed over, and no goroutine waits for an idle connection.
func ExampleEventLoop() {
	loop, err := ws.NewEventLoop(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer loop.Close()
	upgrader := &ws.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			return
		}
		if err := loop.Serve(c, upperEcho{}); err != nil {
			c.CloseNow() // the loop is closed
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.WriteMessage(ctx, ws.MessageText, []byte("hello, loop")); err != nil {
		log.Fatal(err)
	}
	_, answer, err := c.ReadMessage(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (served: %d)\n", answer, loop.Len())
	// Output: HELLO, LOOP (served: 1)
}
