// Command echoserver runs one WebSocket (or raw TCP) echo server:
//
//	echoserver -impl duplex|duplex-raw|duplex-evented|duplex-raw-evented|gorilla|gws|tcp|duplex-deflate|gorilla-deflate|gws-deflate|gws-deflate-ctx -addr 127.0.0.1:PORT
//
// Port 0 picks a free port. Once listening it prints "listening ADDR" on
// stdout. SIGINT/SIGTERM stop it (and flush -cpuprofile / -memprofile).
package main

import (
	"flag"
	"log"
	"strings"

	"github.com/duplexio/duplex/bench/internal/servermain"
	"github.com/duplexio/duplex/bench/internal/servers"
)

func main() {
	var f servermain.Flags
	f.AddFlags(flag.CommandLine)
	impl := flag.String("impl", "tcp", "implementation: "+strings.Join(servers.Names(), "|"))
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("echoserver: ")

	ln, err := f.Listen()
	if err != nil {
		log.Fatal(err)
	}
	srv, err := servers.Start(*impl, ln)
	if err != nil {
		log.Fatal(err)
	}
	if err := f.Serve(ln, srv.Close); err != nil {
		log.Fatal(err)
	}
}
