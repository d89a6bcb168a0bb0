package ws_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/ws"
)

// TestEventLoopPollsDeflateConnections: connections that negotiated permessage-deflate
// (context takeover both ways) are polled like the others: with 200 of them open and idle
// after a compressed exchange, the process holds no goroutine per connection (the
// fallback would hold one each), and the echoes are right.
func TestEventLoopPollsDeflateConnections(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const conns, msgs = 200, 3
	loop, err := ws.NewEventLoop(&ws.EventLoopOptions{Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	comp := &ws.CompressionOptions{Threshold: -1} // every message compressed
	u := &ws.Upgrader{Compression: comp}
	closed := make(chan error, conns)
	h := handlerFuncs{
		onMessage: func(c *ws.Conn, typ ws.MessageType, data []byte) {
			_ = c.WriteMessage(context.Background(), typ, data)
		},
		onClose: func(c *ws.Conn, err error) { closed <- err },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		if c.Compression() == "" {
			t.Errorf("permessage-deflate not negotiated")
		}
		if err := loop.Serve(c, h); err != nil {
			c.CloseNow()
		}
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	before := runtime.NumGoroutine()
	clients := make([]*ws.Conn, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := ws.Dial(ctx, url, &ws.DialOptions{Compression: comp})
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
			for m := range msgs {
				// Repeats within and across messages: context takeover has work to do.
				msg := []byte(strings.Repeat(fmt.Sprintf("client %d message %d; ", i, m%2), 20+i%50))
				if err := c.WriteMessage(ctx, ws.MessageText, msg); err != nil {
					errs <- err
					return
				}
				if _, echo, err := c.ReadMessage(ctx); err != nil || !bytes.Equal(echo, msg) {
					errs <- fmt.Errorf("client %d echo %d: %d bytes, %v", i, m, len(echo), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every connection is open and idle now.
	if n := loop.Len(); n != conns {
		t.Fatalf("loop serves %d connections, want %d", n, conns)
	}
	var during int
	for range 50 { // the net/http goroutines that handed the connections over may linger
		if during = runtime.NumGoroutine(); during-before < conns/4 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d with %d idle deflate connections", before, during, conns)
	if during-before >= conns/4 {
		t.Errorf("%d more goroutines with %d idle deflate connections: they are not polled", during-before, conns)
	}
	for _, c := range clients {
		if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	for range conns {
		if err := waitClose(t, closed, 10*time.Second); ws.CloseStatus(err) != ws.StatusNormalClosure {
			t.Errorf("OnClose(%v), want the peer's 1000", err)
		}
	}
}
