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

	"github.com/duplexio/duplex/ws"
)

// serve runs the demo server until ctx is done, then shuts it down gracefully: WebSocket
// peers get a close frame with 1001 (going away).
func serve(ctx context.Context, args []string, logger *slog.Logger, stdout io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:3000", "address to listen on (host:port)")
	readLimit := fs.Int64("read-limit", ws.DefaultReadLimit, "largest WebSocket message accepted, in bytes")
	compress := fs.Bool("compress", false, "accept permessage-deflate compression from clients that offer it")
	if err := fs.Parse(args); err != nil {
		return err
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
	mux.Handle("/echo", echoHandler(upgrader, logger))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "duplex serving on http://%s (WebSocket echo at ws://%s/echo)\n", ln.Addr(), ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(shutdownCtx), upgrader.Shutdown(shutdownCtx))
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
