// Command sioserver runs duplex's Socket.IO bench server (socketio.Server at
// /socket.io/; the events echo, join, bcast and stats of package sioecho),
// the Go side of the Socket.IO comparison with Node's socket.io
// (node/sioserver.js):
//
//	sioserver -addr 127.0.0.1:PORT [-ping-interval 5m -ping-timeout 5m -echo raw|values]
//
// Port 0 picks a free port. Once listening it prints "listening ADDR" on
// stdout. SIGINT/SIGTERM stop it (and flush -cpuprofile / -memprofile).
package main

import (
	"flag"
	"log"

	"github.com/duplexio/duplex/bench/internal/servermain"
	"github.com/duplexio/duplex/bench/internal/sioecho"
)

func main() {
	var f servermain.Flags
	f.AddFlags(flag.CommandLine)
	pingInterval, pingTimeout := servermain.PingFlags(flag.CommandLine)
	echo := flag.String("echo", string(sioecho.EchoRaw), "how \"echo\" builds its ack: raw (each argument's JSON as it came) or values (decoded with Args.Values, re-encoded)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sioserver: ")

	mode := sioecho.EchoMode(*echo)
	if mode != sioecho.EchoRaw && mode != sioecho.EchoValues {
		log.Fatalf("-echo must be raw or values")
	}
	ln, err := f.Listen()
	if err != nil {
		log.Fatal(err)
	}
	srv := sioecho.Start(ln, *pingInterval, *pingTimeout, mode)
	if err := f.Serve(ln, srv.Close); err != nil {
		log.Fatal(err)
	}
}
