// Package eioecho is the duplex Engine.IO echo server of the Engine.IO
// comparison (cmd/eioserver, cmd/eiocompare), apart from package servers so
// that the WebSocket benchmarks build whatever state engineio is in.
package eioecho

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// Server is a running Engine.IO echo server.
type Server struct {
	eio  *engineio.Server
	http *http.Server
}

// Start serves an Engine.IO v4 echo on ln at engineio.DefaultPath
// (/engine.io/), written the plain, documented way: an engineio.Server
// under net/http whose OnConnection sets each session's OnMessage to send
// the message back with the same type. OnMessage's data is valid only
// during the call and Send keeps what it is given, so the echo sends a copy.
// Every other option is the default (as Node's: maxHttpBufferSize 1e6, both
// transports and upgrades, no permessage-deflate), except the logger, which
// drops the per-session INFO lines (thousands of sessions closing at the end
// of a run) and keeps warnings and errors.
func Start(ln net.Listener, pingInterval, pingTimeout time.Duration) *Server {
	eio := &engineio.Server{
		PingInterval: pingInterval,
		PingTimeout:  pingTimeout,
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		OnConnection: func(s *engineio.Session) {
			s.OnMessage = func(data []byte, binary bool) {
				flags := engineio.Text
				if binary {
					flags = engineio.Binary
				}
				_ = s.Send(append([]byte(nil), data...), flags)
			}
		},
	}
	srv := &http.Server{Handler: eio, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &Server{eio: eio, http: srv}
}

// SessionCount is the number of open sessions.
func (s *Server) SessionCount() int { return s.eio.SessionCount() }

// Close ends every session, waiting at most 1 s for them to go, and closes
// the listener. (A polling session whose client left without a pending GET
// cannot be told it is closing, and engineio.Server.Shutdown waits for it
// until its context ends; Node's close() drops such sessions at once.)
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.eio.Shutdown(ctx)
	return s.http.Close()
}
