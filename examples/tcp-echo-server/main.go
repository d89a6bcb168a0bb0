// Command tcp-echo-server is a WebSocket echo server written on a bare net.Listener, with no
// HTTP server: it reads the upgrade request itself, answers 101, then decodes and encodes
// every frame with package ws's low-level codec (ParseHeader, MaskBytes, AppendHeader),
// logging what it sees on the wire.
//
// It teaches the protocol; it is not a production server. For the real thing on a raw
// connection, use ws.Upgrader.UpgradeConn.
package main

import (
	"bufio"
	"context"
	"flag"
	"io"
	"log"
	"math"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
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
	logger := log.New(os.Stderr, "", log.Ltime|log.Lmicroseconds|log.Lmsgprefix)
	logger.Printf("listening: ws://%s%s (Ctrl-C to stop)", ln.Addr(), echoPath)
	if err := serve(ctx, ln, logger); err != nil {
		log.Fatal(err)
	}
}

// serve accepts connections on ln and runs each on its own goroutine until ctx is done. It
// then closes ln, sends 1001 (going away) on every open connection and returns once all of
// them have ended.
func serve(ctx context.Context, ln net.Listener, logger *log.Logger) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutting down
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			handleConn(ctx, nc, logger)
		}()
	}
}

// handleConn runs one connection: the opening handshake over HTTP/1.1, then WebSocket frames
// on the same TCP connection.
func handleConn(ctx context.Context, nc net.Conn, logger *log.Logger) {
	defer nc.Close()
	logger = log.New(logger.Writer(), logger.Prefix()+"["+nc.RemoteAddr().String()+"] ", logger.Flags())

	// The handshake is bounded in time (one deadline for the whole request head) ...
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	// ... and a shutdown interrupts any wait for the client by moving the read deadline into
	// the past. (Registered after the deadline above, so that it wins.)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	// ... and in size: the reader cannot pull more than maxHeaderBytes from the socket until
	// the handshake is done. The same bufio.Reader is then used for frames, because it may
	// already hold the client's first frame bytes, sent right after the request.
	limited := &io.LimitedReader{R: nc, N: maxHeaderBytes}
	br := bufio.NewReader(limited)
	if !handshake(nc, br, limited, logger) {
		return
	}
	limited.N = math.MaxInt64 // lift the handshake limit; frames have their own
	_ = nc.SetDeadline(time.Time{})

	s := &session{nc: nc, br: br, log: logger}
	s.run(ctx)
}
