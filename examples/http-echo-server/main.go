// Command http-echo-server is a WebSocket echo server the production way: net/http serves
// the request, ws.Upgrader.Upgrade checks it and answers 101, and ws.Conn reads and writes
// whole messages — framing, masking, fragments, pings and the close handshake are the
// package's job.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/duplexio/duplex/ws"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:3000", "TCP address to listen on (host:port)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	logger := log.New(os.Stderr, "", log.Ltime|log.Lmicroseconds)
	logger.Printf("listening: ws://%s/echo (Ctrl-C to stop)", ln.Addr())
	if err := serve(ctx, ln, logger); err != nil {
		log.Fatal(err)
	}
}

// serve runs the echo endpoint at /echo on ln until ctx is done, then shuts down: the HTTP
// server stops accepting and every WebSocket peer gets a close frame with 1001 (going away).
func serve(ctx context.Context, ln net.Listener, logger *log.Logger) error {
	upgrader := &ws.Upgrader{} // same-origin policy by default; see AllowedOrigins
	echo := echoHandler(upgrader, logger)
	var handlers sync.WaitGroup // echo handlers still running
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		echo.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Hijacked (upgraded) connections are not the HTTP server's any more: the Upgrader
	// closes them.
	err := errors.Join(srv.Shutdown(shutdownCtx), upgrader.Shutdown(shutdownCtx))
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	// No handler starts after srv.Shutdown; the running ones end now that their
	// connections are closed.
	handlers.Wait()
	return err
}

// echoHandler upgrades the request and sends every message back with the same type.
func echoHandler(upgrader *ws.Upgrader, logger *log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			// Already answered with the right status (400, 403, 405, 426...).
			logger.Printf("[%s] handshake refused: %v", r.RemoteAddr, err)
			return
		}
		defer c.CloseNow()
		logger.Printf("[%s] connected to %s", r.RemoteAddr, r.URL.Path)

		// The connection lives until the close handshake, not until r's context ends.
		ctx := context.Background()
		// Ping every 30 s and drop the peer if no pong comes within 10 s. Pongs are seen by
		// the reading goroutine below; KeepAlive returns when the connection closes.
		go c.KeepAlive(ctx, 30*time.Second, 10*time.Second)
		for {
			typ, msg, err := c.ReadMessage(ctx)
			if err != nil {
				// A *ws.CloseError says who closed, with which code and why.
				logger.Printf("[%s] closed: code %d: %v", r.RemoteAddr, ws.CloseStatus(err), err)
				return
			}
			logger.Printf("[%s] message: %v, %d bytes", r.RemoteAddr, typ, len(msg))
			if err := write(c, typ, msg); err != nil {
				logger.Printf("[%s] write: %v", r.RemoteAddr, err)
				return
			}
		}
	})
}

// write sends one message, giving up (and failing the connection) after 10 s: a peer that
// does not read must not hold the handler forever.
func write(c *ws.Conn, typ ws.MessageType, msg []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.WriteMessage(ctx, typ, msg)
}
