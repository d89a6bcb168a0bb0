// Command echoserver runs one WebSocket (or raw TCP) echo server:
//
//	echoserver -impl duplex|duplex-raw|gorilla|gws|tcp|duplex-deflate|gorilla-deflate|gws-deflate|gws-deflate-ctx -addr 127.0.0.1:PORT
//
// Port 0 picks a free port. Once listening it prints "listening ADDR" on
// stdout. SIGINT/SIGTERM stop it (and flush -cpuprofile / -memprofile).
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/duplexio/duplex/bench/internal/proc"
	"github.com/duplexio/duplex/bench/internal/servers"
)

func main() {
	impl := flag.String("impl", "tcp", "implementation: "+strings.Join(servers.Names(), "|"))
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file on exit")
	memprofile := flag.String("memprofile", "", "write an allocation profile to this file on exit")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("echoserver: ")

	if _, err := proc.RaiseNoFile(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 4096
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv, err := servers.Start(*impl, ln)
	if err != nil {
		log.Fatal(err)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("listening %s\n", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	srv.Close()
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
}
