package ws

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// acceptingServer returns a URL and a channel of the server side of each connection made.
func acceptingServer(t testing.TB, u *Upgrader) (string, <-chan *Conn) {
	conns := make(chan *Conn, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := u.Upgrade(w, r); err == nil {
			conns <- c
		}
	}))
	t.Cleanup(srv.Close)
	return wsURL(srv), conns
}

func TestPreparedMessageReachesEveryKindOfConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url, accepted := acceptingServer(t, &Upgrader{Compression: &CompressionOptions{}})
	clientOpts := []*DialOptions{
		nil, // no compression
		{Compression: &CompressionOptions{ServerNoContextTakeover: true}},
		{Compression: &CompressionOptions{ServerNoContextTakeover: true}},
		{Compression: &CompressionOptions{ServerNoContextTakeover: true, ServerMaxWindowBits: 10}},
		{Compression: &CompressionOptions{}}, // context takeover: encoded per connection
	}
	var clients, servers []*Conn
	for _, o := range clientOpts {
		c, _, err := Dial(ctx, url, o)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		s := <-accepted
		defer s.CloseNow()
		clients, servers = append(clients, c), append(servers, s)
	}
	for round, size := range []int{10, 5000, 300000} {
		msg := jsonLike(size, round)
		pm, err := NewPreparedMessage(MessageText, msg)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if err := s.WritePreparedMessage(ctx, pm); err != nil {
				t.Fatal(err)
			}
		}
		for i, c := range clients {
			typ, got, err := c.ReadMessage(ctx)
			if err != nil || typ != MessageText || !bytes.Equal(got, msg) {
				t.Fatalf("size %d, client %d: %v %d bytes %v", size, i, typ, len(got), err)
			}
		}
		// Shared frames: one uncompressed (or compressed below the threshold), and for
		// compressed sizes one per window size in use without takeover.
		want := 1
		if size >= defaultThreshold {
			want = 3 // uncompressed, 15-bit, 10-bit
		}
		if len(pm.frames) != want {
			t.Errorf("size %d: %d frames encoded, want %d", size, len(pm.frames), want)
		}
	}
	// A client writes a prepared message masked, like any message.
	pm, _ := NewPreparedMessage(MessageBinary, []byte{1, 2, 3})
	if err := clients[0].WritePreparedMessage(ctx, pm); err != nil {
		t.Fatal(err)
	}
	if _, got, err := servers[0].ReadMessage(ctx); err != nil || !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatalf("%v %v", got, err)
	}
}

// BenchmarkBroadcast writes one 4 KiB message to 100 server connections, prepared once or
// encoded per connection, with compression without context takeover.
func BenchmarkBroadcast(b *testing.B) {
	url, accepted := acceptingServer(b, &Upgrader{Compression: &CompressionOptions{ServerNoContextTakeover: true}})
	var servers []*Conn
	for i := 0; i < 100; i++ {
		c, _, err := Dial(context.Background(), url, &DialOptions{Compression: &CompressionOptions{}})
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		go func() { // drain
			var buf []byte
			for {
				var err error
				if _, buf, err = c.AppendMessage(context.Background(), buf[:0]); err != nil {
					return
				}
			}
		}()
		s := <-accepted
		defer s.CloseNow()
		servers = append(servers, s)
	}
	msg := jsonLike(4096, 1)
	for _, prepared := range []bool{false, true} {
		name := "WriteMessage"
		if prepared {
			name = "WritePreparedMessage"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				pm, _ := NewPreparedMessage(MessageText, msg)
				for _, s := range servers {
					var err error
					if prepared {
						err = s.WritePreparedMessage(context.Background(), pm)
					} else {
						err = s.WriteMessage(context.Background(), MessageText, msg)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
