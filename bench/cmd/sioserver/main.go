// Command sioserver runs duplex's Socket.IO bench server (socketio.Server at
// /socket.io/; the events echo, join, bcast and stats of package sioecho),
// the Go side of the Socket.IO comparison with Node's socket.io
// (node/sioserver.js):
//
//	sioserver -addr 127.0.0.1:PORT [-ping-interval 5m -ping-timeout 5m -echo raw|values] [-redis HOST:PORT] [-evented]
//
// With -evented, the clients' WebSocket connections are served by a
// ws.EventLoop (socketio.Options.EventLoop, default loop options): no
// goroutine and no read buffer per idle client.
//
// With -redis, the namespaces' adapter is redisadapter.New over a go-redis
// client of that server (classic pub/sub, every option the default), so that
// several sioserver processes form one cluster (cmd/rediscompare); it
// prints its "listening" line once the adapter's subscriptions are
// confirmed.
//
// Port 0 picks a free port. Once listening it prints "listening ADDR" on
// stdout. SIGINT/SIGTERM stop it (and flush -cpuprofile / -memprofile).
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"

	"github.com/duplexio/duplex/bench/internal/servermain"
	"github.com/duplexio/duplex/bench/internal/sioecho"
)

func main() {
	var f servermain.Flags
	f.AddFlags(flag.CommandLine)
	pingInterval, pingTimeout := servermain.PingFlags(flag.CommandLine)
	echo := flag.String("echo", string(sioecho.EchoRaw), "how \"echo\" builds its ack: raw (each argument's JSON as it came) or values (decoded with Args.Values, re-encoded)")
	evented := flag.Bool("evented", false, "serve the WebSocket connections with a ws.EventLoop (socketio.Options.EventLoop)")
	redisAddr := flag.String("redis", "", "Redis HOST:PORT: use the Redis adapter (a cluster with the other servers on it); \"\" = in memory")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sioserver: ")

	mode := sioecho.EchoMode(*echo)
	if mode != sioecho.EchoRaw && mode != sioecho.EchoValues {
		log.Fatalf("-echo must be raw or values")
	}
	var newAdapter socketio.NewAdapterFunc
	if *redisAddr != "" {
		client := redis.NewClient(&redis.Options{Addr: *redisAddr})
		defer client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := client.Ping(ctx).Err()
		cancel()
		if err != nil {
			log.Fatalf("redis %s: %v", *redisAddr, err)
		}
		newAdapter = redisadapter.New(client, nil)
	}
	ln, err := f.Listen()
	if err != nil {
		log.Fatal(err)
	}
	var loop *ws.EventLoop
	if *evented {
		if loop, err = ws.NewEventLoop(nil); err != nil {
			log.Fatal(err)
		}
	}
	srv := sioecho.StartWith(ln, *pingInterval, *pingTimeout, mode, newAdapter, loop)
	closeAll := func() error {
		err := srv.Close()
		if loop != nil {
			err = errors.Join(err, loop.Close())
		}
		return err
	}
	if err := f.Serve(ln, closeAll); err != nil {
		log.Fatal(err)
	}
}
