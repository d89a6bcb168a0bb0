// Command sioclientload drives event+ack round trips at a Socket.IO server
// with duplex's Go Socket.IO client (internal/sioclientload), the Go peer of
// node/sioclient.js in cmd/sioclientcompare, and prints one JSON result line
// on stdout (internal/load.Result; a human summary goes to stderr):
//
//	sioclientload -url http://127.0.0.1:PORT -clients 50 -inflight 1 -size 1024 -duration 5s -warmup 1s [-server-pid PID]
//
// Each client is a socketio.ClientSocket on its own Manager, over WebSocket
// only, running -inflight loops of EmitWithAck("echo", text), each checking
// its ack. It exits 1 if any ack was wrong or missing.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"

	"github.com/duplexio/duplex/bench/internal/proc"
	"github.com/duplexio/duplex/bench/internal/sioclientload"
)

func main() {
	var cfg sioclientload.Config
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the Socket.IO server (its main namespace)")
	flag.IntVar(&cfg.Clients, "clients", 1, "clients, each on its own connection")
	flag.IntVar(&cfg.InFlight, "inflight", 1, "event+ack loops per client (events in flight per client)")
	flag.IntVar(&cfg.Payload, "size", 1024, "characters of the echo's string argument")
	flag.DurationVar(&cfg.Duration, "duration", 5*time.Second, "measured window")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "traffic before the window, not measured")
	flag.DurationVar(&cfg.Grace, "grace", 5*time.Second, "wait for the last acks after the window")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "sample this process's CPU time and system calls over the window")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	traceFile := flag.String("trace", "", "write an execution trace (go tool trace) of -trace-window, starting 1s into the measured window, to this file")
	traceWindow := flag.Duration("trace-window", time.Second, "length of the -trace window")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("sioclientload: ")

	if _, err := proc.RaiseNoFile(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	if *traceFile != "" {
		f, err := os.Create(*traceFile)
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			time.Sleep(cfg.Warmup + time.Second)
			if err := trace.Start(f); err != nil {
				log.Fatal(err)
			}
			time.Sleep(*traceWindow)
			trace.Stop()
			f.Close()
		}()
	}
	res, err := sioclientload.Run(context.Background(), cfg)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		log.Fatal(err)
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	log.Printf("%d clients × %d in flight × %d characters: %.0f round trips/s, p50 %.1f µs, p99 %.1f µs, %d verified, %d errors",
		res.Conns, res.InFlight, res.Payload, res.MsgsPerSec, res.P50us, res.P99us, res.Verified, res.Errors)
	if res.Errors > 0 {
		log.Printf("first error: %s", res.FirstError)
		os.Exit(1)
	}
}
