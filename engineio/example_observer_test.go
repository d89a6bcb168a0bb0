package engineio_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// sessionCounter is an Observer that keeps the number of open sessions and of messages,
// as a metrics adapter would feed its gauges and counters.
type sessionCounter struct {
	open, messages atomic.Int64
}

func (c *sessionCounter) SessionOpened(string)                       { c.open.Add(1) }
func (c *sessionCounter) SessionUpgraded()                           {}
func (c *sessionCounter) SessionClosed(string, engineio.CloseReason) { c.open.Add(-1) }
func (c *sessionCounter) MessagesReceived(_ string, n, _ int)        { c.messages.Add(int64(n)) }
func (c *sessionCounter) MessagesSent(_ string, n, _ int)            { c.messages.Add(int64(n)) }
func (c *sessionCounter) RequestRefused(engineio.ErrorCode)          {}

// Counting sessions and messages with an Observer.
func ExampleObserver() {
	counter := &sessionCounter{}
	srv := &engineio.Server{
		Observer: counter,
		OnConnection: func(s *engineio.Session) {
			s.OnMessage = func(data []byte, _ bool) { _ = s.Send([]byte("got it"), engineio.Text) }
		},
	}
	web := httptest.NewServer(srv)
	defer web.Close()

	url := web.URL + "/engine.io/?EIO=4&transport=polling"
	resp, _ := http.Get(url)
	open, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	hs, _ := engineio.ParseHandshake(open[1:])
	resp, _ = http.Post(url+"&sid="+hs.SID, "text/plain;charset=UTF-8", strings.NewReader("4hello"))
	resp.Body.Close()
	resp, _ = http.Get(url + "&sid=" + hs.SID) // the answer
	resp.Body.Close()
	fmt.Println("open sessions:", counter.open.Load(), "messages:", counter.messages.Load())

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = srv.Shutdown(ctx) // the client polls no more: its session is closed when ctx ends
	fmt.Println("open sessions:", counter.open.Load())
	// Output:
	// open sessions: 1 messages: 2
	// open sessions: 0
}
