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
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/duplexio/duplex/bench/internal/proc"
	"github.com/duplexio/duplex/bench/internal/sioecho"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (loopback)")
	pingInterval := flag.Duration("ping-interval", 5*time.Minute, "Engine.IO pingInterval (large, so heartbeats do not weigh on the measurements)")
	pingTimeout := flag.Duration("ping-timeout", 5*time.Minute, "Engine.IO pingTimeout")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file on exit")
	memprofile := flag.String("memprofile", "", "write an allocation profile to this file on exit")
	echo := flag.String("echo", string(sioecho.EchoRaw), "how \"echo\" builds its ack: raw (each argument's JSON as it came) or values (decoded with Args.Values, re-encoded)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sioserver: ")

	if _, err := proc.RaiseNoFile(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 4096
	}
	mode := sioecho.EchoMode(*echo)
	if mode != sioecho.EchoRaw && mode != sioecho.EchoValues {
		log.Fatalf("-echo must be raw or values")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := sioecho.Start(ln, *pingInterval, *pingTimeout, mode)
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
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	srv.Close()
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
