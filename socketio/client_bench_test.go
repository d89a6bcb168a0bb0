package socketio_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
)

// BenchmarkClientEmitWithAck measures the Go client's event+ack round trip against an
// in-process Server over loopback WebSocket, as bench/cmd/sioclientload does: one op is
// one EmitWithAck("echo", text) answered with the same argument, decoded into a string.
// "inflight=K" runs K goroutines on one socket; allocs/op include the server's side.
func BenchmarkClientEmitWithAck(b *testing.B) {
	srv := socketio.NewServer(&socketio.Options{Logger: quietLogger})
	srv.OnConnection(func(s *socketio.Socket) {
		s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
			if ack != nil {
				_ = ack(json.RawMessage(args.Raw(0)))
			}
		})
	})
	hs := httptest.NewServer(srv)
	b.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		hs.Close()
	})
	for _, size := range []int{32, 1024} {
		for _, inflight := range []int{1, 16} {
			name := "size=" + itoa(size) + "/inflight=" + itoa(inflight)
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				s, err := socketio.Dial(ctx, hs.URL, &socketio.ManagerOptions{
					Engine:      engineio.ClientOptions{Transports: []string{"websocket"}},
					NoReconnect: true,
					Logger:      quietLogger,
				}, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Manager().Close()
				text := strings.Repeat("x", size)
				b.ReportAllocs()
				b.SetBytes(int64(size))
				var wg sync.WaitGroup
				var next sync.Mutex
				n := b.N
				b.ResetTimer()
				for range inflight {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							next.Lock()
							if n == 0 {
								next.Unlock()
								return
							}
							n--
							next.Unlock()
							args, err := s.EmitWithAck(ctx, "echo", text)
							if err != nil {
								b.Error(err)
								return
							}
							var got string
							if err := args.Decode(0, &got); err != nil || got != text {
								b.Errorf("ack %q, %v", got, err)
								return
							}
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
