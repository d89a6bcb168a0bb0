package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/fixture"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// serve runs the demo server until ctx is done, then shuts it down gracefully: WebSocket
// peers get a close frame with 1001 (going away), Engine.IO sessions are closed.
func serve(ctx context.Context, args []string, logger *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "address to listen on (host:port)")
	readLimit := fs.Int64("read-limit", ws.DefaultReadLimit, "largest WebSocket message accepted, in bytes")
	compress := fs.Bool("compress", false, "accept permessage-deflate compression from clients that offer it")
	fixtureMode := fs.Bool("fixture", false, "serve the conformance fixtures the official protocol test suites expect: Engine.IO at /engine.io/\n(every message echoed) and Socket.IO at /socket.io/ (connect timeout 1s); both with ping interval 300ms,\nping timeout 200ms, max payload 1000000, CORS for any origin")
	eo := fixture.Options{Logger: logger}
	fs.DurationVar(&eo.PingInterval, "ping-interval", 0, "Engine.IO ping interval of /socket.io/ and /engine.io/ (default 25s, 300ms with --fixture)")
	fs.DurationVar(&eo.PingTimeout, "ping-timeout", 0, "Engine.IO ping timeout of /socket.io/ and /engine.io/ (default 20s, 200ms with --fixture)")
	fs.Int64Var(&eo.MaxPayload, "max-payload", 0, "largest Engine.IO POST body or WebSocket message of /socket.io/ and /engine.io/, in bytes (default 1000000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if eo.PingInterval < 0 || eo.PingTimeout < 0 || eo.MaxPayload < 0 {
		return errors.New("--ping-interval, --ping-timeout and --max-payload must not be negative")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	upgrader := &ws.Upgrader{ReadLimit: *readLimit}
	if *compress {
		upgrader.Compression = &ws.CompressionOptions{}
	}
	mux := http.NewServeMux()
	mux.Handle("/", chatPage())
	mux.Handle("/echo", echoHandler(upgrader, logger))
	var engine *engineio.Server
	var sio *socketio.Server
	if *fixtureMode {
		engine = fixture.Engine(eo)
		mux.Handle(engineio.DefaultPath, engine)
		sio = fixture.SocketIO(eo)
	} else {
		sio = socketio.NewServer(&socketio.Options{
			Engine: &engineio.Server{
				PingInterval:      eo.PingInterval,
				PingTimeout:       eo.PingTimeout,
				MaxHTTPBufferSize: eo.MaxPayload,
				Logger:            logger,
			},
			Logger: logger,
		})
	}
	fixture.AddHandlers(sio)
	addDemoHandlers(sio)
	addChatHandlers(sio)
	mux.Handle(socketio.DefaultPath, sio)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "duplex serving on http://%s (WebSocket echo at ws://%s/echo)\n", ln.Addr(), ln.Addr())
	what := "Socket.IO"
	if *fixtureMode {
		what = "Socket.IO fixture"
	}
	fmt.Fprintf(stdout, "%s at http://%s%s (ping interval %v, ping timeout %v, max payload %d)\n",
		what, ln.Addr(), socketio.DefaultPath, durationOr(sio.Engine().PingInterval, engineio.DefaultPingInterval),
		durationOr(sio.Engine().PingTimeout, engineio.DefaultPingTimeout), int64Or(sio.Engine().MaxHTTPBufferSize, engineio.DefaultMaxHTTPBufferSize))
	if engine != nil {
		fmt.Fprintf(stdout, "Engine.IO fixture at http://%s%s (ping interval %v, ping timeout %v, max payload %d)\n",
			ln.Addr(), engineio.DefaultPath, engine.PingInterval, engine.PingTimeout, engine.MaxHTTPBufferSize)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Engine.IO and Socket.IO first: they answer the pending long polls, which
	// http.Server.Shutdown would otherwise wait for.
	err = sio.Shutdown(shutdownCtx)
	if engine != nil {
		err = errors.Join(err, engine.Shutdown(shutdownCtx))
	}
	err = errors.Join(err, srv.Shutdown(shutdownCtx), upgrader.Shutdown(shutdownCtx))
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// echoHandler answers every WebSocket message with the same type and payload.
func echoHandler(upgrader *ws.Upgrader, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			logger.Info("echo: handshake refused", "peer", r.RemoteAddr, "err", err)
			return
		}
		defer c.CloseNow()
		// The connection outlives r.Context's usefulness: ending it is the close handshake's job.
		ctx := context.Background()
		var buf []byte
		for {
			typ, msg, err := c.AppendMessage(ctx, buf[:0])
			if err != nil {
				if code := ws.CloseStatus(err); code != ws.StatusNormalClosure && code != ws.StatusGoingAway {
					logger.Info("echo: connection ended", "peer", r.RemoteAddr, "err", err)
				}
				return
			}
			buf = msg
			if err := c.WriteMessage(ctx, typ, msg); err != nil {
				return
			}
		}
	})
}

// durationOr returns d, or def when d is 0 (a server option left at its default).
func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// int64Or returns n, or def when n is 0.
func int64Or(n, def int64) int64 {
	if n == 0 {
		return def
	}
	return n
}
