// Package sioecho is the duplex Socket.IO server of the Socket.IO comparison
// (cmd/sioserver, cmd/siocompare); node/sioserver.js is its Node twin. The
// main namespace answers:
//
//   - "echo": acknowledged with the same arguments;
//   - "join" (room): the socket joins the room, then an empty ack;
//   - "bcast" ({"room","n","size","start","interval_us"}): the server emits n
//     events "m" to the room, one after the other, interval_us apart (0: back
//     to back), then acks. Message i (start ≤ i < start+n) has one string
//     argument of size characters: the server's CLOCK_MONOTONIC in
//     nanoseconds when it emitted it, ':', i, ':', then Pattern from that
//     position on;
//   - "stats": acked with the Go runtime's allocation counters (Node acks {}).
package sioecho

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"

	"github.com/duplexio/duplex/bench/internal/monoclock"
)

// Limits on one "bcast" request, so that a bad request cannot run away.
const (
	MaxBroadcastMessages = 1_000_000
	MaxBroadcastSize     = 1 << 20
	MaxBroadcastInterval = time.Second
)

// Pattern is the text that fills broadcast messages: character k of a message
// is Pattern[k] (after the timestamp and index it starts with). The load
// generator checks it.
const patternChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// PatternAt returns the pattern character at position k.
func PatternAt(k int) byte { return patternChars[k%len(patternChars)] }

// Pattern returns the first n pattern characters.
func Pattern(n int) string {
	b := make([]byte, n)
	for k := range b {
		b[k] = PatternAt(k)
	}
	return string(b)
}

// EchoMode is how the "echo" handler builds its ack.
type EchoMode string

const (
	// EchoRaw acks with each argument's JSON as it came (Args.Raw as a
	// json.RawMessage; binary arguments as their []byte): no decoding.
	EchoRaw EchoMode = "raw"
	// EchoValues decodes the arguments (Args.Values) and acks with the values,
	// as Node's handler does with what socket.io-parser gives it.
	EchoValues EchoMode = "values"
)

// Server is a running Socket.IO bench server.
type Server struct {
	sio  *socketio.Server
	http *http.Server
}

// Start serves Socket.IO on ln at /socket.io/, written the plain, documented
// way: a socketio.Server over an engineio.Server under net/http, every
// option the default but the ping interval and timeout and the loggers, which
// keep warnings and errors only.
func Start(ln net.Listener, pingInterval, pingTimeout time.Duration, mode EchoMode) *Server {
	return StartWith(ln, pingInterval, pingTimeout, mode, nil, nil)
}

// StartWith is Start with the namespaces' adapter made by newAdapter (nil:
// socketio's default, in memory), such as redisadapter.New's: then "bcast"
// reaches the room's members on every server of the cluster; and, when loop
// is not nil, the clients' WebSocket connections served by that event loop
// (socketio.Options.EventLoop) instead of a goroutine each. The caller closes
// loop after the server.
func StartWith(ln net.Listener, pingInterval, pingTimeout time.Duration, mode EchoMode, newAdapter socketio.NewAdapterFunc, loop *ws.EventLoop) *Server {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv := socketio.NewServer(&socketio.Options{
		Engine:     &engineio.Server{PingInterval: pingInterval, PingTimeout: pingTimeout, Logger: logger},
		Logger:     logger,
		NewAdapter: newAdapter,
		EventLoop:  loop,
	})
	pattern := Pattern(MaxBroadcastSize)
	srv.OnConnection(func(s *socketio.Socket) {
		s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
			if ack == nil {
				return
			}
			if mode == EchoValues {
				vals, err := args.Values()
				if err != nil {
					return
				}
				_ = ack(vals...)
				return
			}
			out := make([]any, args.Len())
			for i := range out {
				if b, ok := args.Binary(i); ok {
					out[i] = b
				} else {
					out[i] = args.Raw(i)
				}
			}
			_ = ack(out...)
		})
		s.On("join", func(args socketio.Args, ack socketio.AckFunc) {
			var room string
			if err := args.Decode(0, &room); err != nil {
				return
			}
			s.Join(socketio.Room(room))
			if ack != nil {
				_ = ack()
			}
		})
		s.On("bcast", func(args socketio.Args, ack socketio.AckFunc) {
			var req struct {
				Room       string `json:"room"`
				N          int    `json:"n"`
				Size       int    `json:"size"`
				Start      int64  `json:"start"`
				IntervalUS int64  `json:"interval_us"`
			}
			if err := args.Decode(0, &req); err != nil || req.N < 0 || req.N > MaxBroadcastMessages ||
				req.Size < 0 || req.Size > MaxBroadcastSize || req.IntervalUS < 0 || req.IntervalUS > MaxBroadcastInterval.Microseconds() {
				if ack != nil {
					_ = ack(fmt.Sprintf("bad bcast request %s", args.Raw(0)))
				}
				return
			}
			to := srv.To(socketio.Room(req.Room))
			interval := time.Duration(req.IntervalUS) * time.Microsecond
			began := time.Now()
			var prefix []byte
			for i := 0; i < req.N; i++ { // bounded by MaxBroadcastMessages
				if interval > 0 {
					time.Sleep(time.Until(began.Add(time.Duration(i) * interval)))
				}
				prefix = strconv.AppendInt(prefix[:0], monoclock.Now(), 10)
				prefix = append(prefix, ':')
				prefix = strconv.AppendInt(prefix, req.Start+int64(i), 10)
				prefix = append(prefix, ':')
				msg := string(prefix)
				if len(prefix) < req.Size {
					msg += pattern[len(prefix):req.Size]
				}
				_ = to.Emit("m", msg)
			}
			if ack != nil {
				_ = ack()
			}
		})
		s.On("stats", func(_ socketio.Args, ack socketio.AckFunc) {
			if ack == nil {
				return
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b, _ := json.Marshal(map[string]uint64{"total_alloc": ms.TotalAlloc, "mallocs": ms.Mallocs, "num_gc": uint64(ms.NumGC)})
			_ = ack(json.RawMessage(b))
		})
	})
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return &Server{sio: srv, http: hs}
}

// SocketCount is the number of sockets connected to the main namespace.
func (s *Server) SocketCount() int { return s.sio.Of("/").SocketCount() }

// Close disconnects every socket, waiting at most 1 s, and closes the
// listener.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.sio.Shutdown(ctx)
	return s.http.Close()
}
