// Command eioserver runs duplex's Engine.IO v4 echo server (engineio.Server
// at /engine.io/, every message sent back as it came), the Go side of the
// Engine.IO comparison with Node's engine.io (node/eioserver.js):
//
//	eioserver -addr 127.0.0.1:PORT [-ping-interval 5m -ping-timeout 5m]
//
// Port 0 picks a free port. Once listening it prints "listening ADDR" on
// stdout. SIGINT/SIGTERM stop it (and flush -cpuprofile / -memprofile).
package main

import (
	"flag"
	"log"

	"github.com/duplexio/duplex/bench/internal/eioecho"
	"github.com/duplexio/duplex/bench/internal/servermain"
)

func main() {
	var f servermain.Flags
	f.AddFlags(flag.CommandLine)
	pingInterval, pingTimeout := servermain.PingFlags(flag.CommandLine)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("eioserver: ")

	ln, err := f.Listen()
	if err != nil {
		log.Fatal(err)
	}
	srv := eioecho.Start(ln, *pingInterval, *pingTimeout)
	if err := f.Serve(ln, srv.Close); err != nil {
		log.Fatal(err)
	}
}
