// Command load drives echo traffic at a server and prints one JSON result
// line on stdout (a human summary goes to stderr). It never depends on a
// WebSocket library: it upgrades and frames by itself.
//
//	load -addr 127.0.0.1:PORT -proto ws -conns 100 -size 1024 -inflight 16 -duration 3s -warmup 1s
//
// With -idle N it instead opens N upgraded connections (with -idle-message
// each first echoes one message), prints {"idle_conns":N} once all are up,
// and holds them until stdin closes or -hold passes. -sources K spreads the
// connections over K loopback source addresses (needed beyond ~28k). It exits 1 if any echo was wrong or missing.
//
// With -proto eio-websocket or eio-polling it speaks Engine.IO v4 instead
// (path default /engine.io/): -conns sessions, each a closed loop sending a
// -size character text message and waiting for its echo (-inflight is 1);
// with -idle, N idle sessions (polling ones each hold a pending long-poll GET).
//
// With -proto sio it speaks Socket.IO v5 over Engine.IO v4 WebSocket sessions
// (path default /socket.io/): -conns clients, each a closed loop emitting
// 42<id>["echo","<-size characters>"] and waiting for its ack (-inflight k:
// k events in one write, then their k acks); with -idle, N idle clients
// connected to the main namespace. With -proto sio-bcast,
// -conns clients join -room and a control client asks the server (event
// "bcast") for -warmup-messages, then -messages back to back, then
// -paced-messages one every -interval, each of -size characters; it prints
// one JSON line of deliveries/s and latencies. With -proto sio-cluster,
// -conns clients spread over the servers of -addrs (a Socket.IO cluster
// sharing rooms through an adapter) join -room, and a control client on the
// first server triggers broadcasts of -batch messages for -warmup+-duration,
// at most -inflight-batches batches in flight, then -paced-messages one every
// -interval; -pids lists processes (the servers, Redis) whose CPU time is
// sampled over the window.
//
// With -deflate OFFER it negotiates permessage-deflate (RFC 7692) with that
// offer, sends JSON-like text compressed with compress/flate, inflates the
// echoes and checks them byte for byte.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/proc"
)

func main() {
	var cfg load.Config
	proto := flag.String("proto", "ws", "ws (WebSocket, does the upgrade), tcp (same bytes, no framing), eio-websocket or eio-polling (Engine.IO v4 sessions), sio (Socket.IO event+ack), sio-bcast (Socket.IO broadcast) or sio-cluster (broadcast across servers)")
	flag.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server address (loopback)")
	flag.StringVar(&cfg.Path, "path", "", `request path for the upgrade (default "/"; Engine.IO: "/engine.io/"; Socket.IO: "/socket.io/")`)
	flag.IntVar(&cfg.Conns, "conns", 1, "connections")
	flag.IntVar(&cfg.Payload, "size", 16, "payload bytes per message")
	flag.IntVar(&cfg.InFlight, "inflight", 1, "messages in flight per connection (1 = closed loop)")
	flag.DurationVar(&cfg.Duration, "duration", 3*time.Second, "measured window")
	flag.DurationVar(&cfg.Warmup, "warmup", time.Second, "traffic before the window, not measured")
	flag.Int64Var(&cfg.MaxMsgs, "max-msgs", 0, "cap on messages per connection (0 = time only)")
	flag.IntVar(&cfg.ServerPID, "server-pid", 0, "sample this process's CPU time over the window")
	flag.StringVar(&cfg.Deflate, "deflate", "", `permessage-deflate offer, e.g. "permessage-deflate; client_max_window_bits" (JSON-like text messages, compressed; "" = off)`)
	room := flag.String("room", "bench", "with -proto sio-bcast: the room the clients join")
	messages := flag.Int("messages", 200, "with -proto sio-bcast: messages of the measured burst")
	warmupMessages := flag.Int("warmup-messages", 20, "with -proto sio-bcast: messages of the unmeasured first burst")
	pacedMessages := flag.Int("paced-messages", 50, "with -proto sio-bcast: messages of the paced phase (0 skips it)")
	interval := flag.Duration("interval", 20*time.Millisecond, "with -proto sio-bcast: time between paced messages")
	addrs := flag.String("addrs", "", "with -proto sio-cluster: the servers' addresses, comma-separated; the sender is on the first")
	pids := flag.String("pids", "", "with -proto sio-cluster: processes whose CPU time is sampled over the window, comma-separated")
	batch := flag.Int("batch", 10, "with -proto sio-cluster: messages per trigger")
	inflightBatches := flag.Int("inflight-batches", 4, "with -proto sio-cluster: batches in flight (not yet received by every client)")
	idle := flag.Int("idle", 0, "open this many idle connections instead of running traffic")
	idleMessage := flag.Bool("idle-message", false, "with -idle and -proto ws: one echo on each connection before holding it")
	flag.IntVar(&cfg.Sources, "sources", 1, "spread the connections over this many loopback source addresses 127.0.0.1, 127.0.0.2, … (each has ~28k ephemeral ports)")
	hold := flag.Duration("hold", 2*time.Minute, "with -idle: longest time to hold the connections")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("load: ")

	if _, err := proc.RaiseNoFile(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	ctx := context.Background()
	switch *proto {
	case "ws":
		cfg.WebSocket = true
	case "tcp":
	case "eio-websocket", "eio-polling":
		runEIO(ctx, cfg, strings.TrimPrefix(*proto, "eio-"), *idle, *hold)
		return
	case "sio":
		runSIO(ctx, cfg, *idle, *hold)
		return
	case "sio-bcast":
		bc := load.SIOBroadcastConfig{Addr: cfg.Addr, Path: cfg.Path, Clients: cfg.Conns, Room: *room, Size: cfg.Payload,
			WarmupMessages: *warmupMessages, Messages: *messages, PacedMessages: *pacedMessages, Interval: *interval, ServerPID: cfg.ServerPID}
		res, err := load.RunSIOBroadcast(ctx, bc)
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		for _, ph := range res.Phases {
			log.Printf("%s: %d clients × %d messages of %d characters: %.0f deliveries/s, p50 %.1f µs, p99 %.1f µs",
				ph.Name, res.Clients, ph.Messages, res.Size, ph.PerSec, ph.P50us, ph.P99us)
		}
		if err != nil {
			log.Fatal(err)
		}
		exitOnErrors(res.Errors, res.FirstError)
		return
	case "sio-cluster":
		var pidList []int
		if *pids != "" {
			var err error
			if pidList, err = intList(*pids); err != nil {
				log.Fatal(err)
			}
		}
		cc := load.SIOClusterConfig{Addrs: strings.Split(*addrs, ","), Path: cfg.Path, Clients: cfg.Conns, Room: *room, Size: cfg.Payload,
			Batch: *batch, InFlightBatches: *inflightBatches, Warmup: cfg.Warmup, Duration: cfg.Duration, MaxMessages: cfg.MaxMsgs,
			PacedMessages: *pacedMessages, PacedInterval: *interval, PIDs: pidList}
		res, err := load.RunSIOCluster(ctx, cc)
		b, _ := json.Marshal(res)
		fmt.Println(string(b))
		log.Printf("%d clients, %d broadcasts of %d characters: %.0f deliveries/s, p50 %.1f µs, p99 %.1f µs",
			res.Clients, res.Messages, res.Size, res.PerSec, res.P50us, res.P99us)
		for _, g := range res.Groups {
			log.Printf("  %s: %d clients, p50 %.1f µs, p99 %.1f µs; paced p50 %.1f µs, p99 %.1f µs", g.Addr, g.Clients, g.P50us, g.P99us, g.PacedP50us, g.PacedP99us)
		}
		if err != nil {
			log.Fatal(err)
		}
		exitOnErrors(res.Errors, res.FirstError)
		return
	default:
		log.Fatalf("-proto must be ws, tcp, eio-websocket, eio-polling, sio, sio-bcast or sio-cluster")
	}
	if cfg.Path == "" {
		cfg.Path = "/"
	}

	if *idle > 0 {
		holdIdle(ctx, "idle_conns", *idle, func(ctx context.Context, ready func()) error {
			return load.Idle(ctx, cfg.Addr, cfg.Path, cfg.WebSocket, cfg.Deflate, *idle, cfg.Sources, *idleMessage, *hold, ready)
		})
		return
	}

	res, err := load.Run(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	report(res)
	if cfg.Deflate != "" {
		log.Printf("negotiated %q; %d of %d echoes compressed; wire bytes per message: %.0f sent, %.0f echoed",
			res.Negotiated, res.Compressed, res.Verified, float64(res.SentWireBytes)/float64(max(res.Verified, 1)), float64(res.EchoWireBytes)/float64(max(res.Verified, 1)))
	}
	exitOnErrors(res.Errors, res.FirstError)
}

// report prints the JSON result line and a human summary.
func report(res load.Result) {
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
	log.Printf("%d conns × %d B × %d in flight: %.0f msgs/s, p50 %.1f µs, p99 %.1f µs, %d verified, %d errors",
		res.Conns, res.Payload, res.InFlight, res.MsgsPerSec, res.P50us, res.P99us, res.Verified, res.Errors)
}

// intList parses a comma-separated list of whole numbers.
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("bad number %q in %q", f, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// exitOnErrors logs the first error and exits 1 when a run had errors.
func exitOnErrors(failed int64, firstError string) {
	if failed > 0 {
		log.Printf("first error: %s", firstError)
		os.Exit(1)
	}
}

// holdIdle runs open, which opens n idle connections, calls ready once all
// are open and holds them until its context ends. ready prints {"KEY":n}
// (key names what is held: idle_conns, idle_sessions or idle_clients), the
// line cmd/compare waits for; stdin closing ends the hold early. An error is
// fatal.
func holdIdle(ctx context.Context, key string, n int, open func(ctx context.Context, ready func()) error) {
	ctx, cancel := context.WithCancel(ctx)
	go func() { // stdin closing ends the hold early
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	err := open(ctx, func() { fmt.Printf("{\"%s\":%d}\n", key, n) })
	if err != nil {
		log.Fatal(err)
	}
}

// runEIO is the Engine.IO mode: a closed echo loop per session, or idle
// sessions.
func runEIO(ctx context.Context, cfg load.Config, transport string, idle int, hold time.Duration) {
	ec := load.EIOConfig{Addr: cfg.Addr, Path: cfg.Path, Transport: transport, Sessions: cfg.Conns, Payload: cfg.Payload,
		Warmup: cfg.Warmup, Duration: cfg.Duration, MaxMsgs: cfg.MaxMsgs, ServerPID: cfg.ServerPID, Sources: cfg.Sources}
	if idle > 0 {
		ec.Sessions = idle
		holdIdle(ctx, "idle_sessions", idle, func(ctx context.Context, ready func()) error {
			return load.IdleEIO(ctx, ec, hold, ready)
		})
		return
	}
	res, err := load.RunEIO(ctx, ec)
	if err != nil {
		log.Fatal(err)
	}
	report(res)
	exitOnErrors(res.Errors, res.FirstError)
}

// runSIO is the Socket.IO event+ack mode: a closed loop per client, or idle
// clients.
func runSIO(ctx context.Context, cfg load.Config, idle int, hold time.Duration) {
	sc := load.SIOConfig{Addr: cfg.Addr, Path: cfg.Path, Clients: cfg.Conns, Payload: cfg.Payload, InFlight: cfg.InFlight,
		Warmup: cfg.Warmup, Duration: cfg.Duration, MaxMsgs: cfg.MaxMsgs, ServerPID: cfg.ServerPID, Sources: cfg.Sources}
	if idle > 0 {
		sc.Clients = idle
		holdIdle(ctx, "idle_clients", idle, func(ctx context.Context, ready func()) error {
			return load.IdleSIO(ctx, sc, hold, ready)
		})
		return
	}
	res, err := load.RunSIO(ctx, sc)
	if err != nil {
		log.Fatal(err)
	}
	report(res)
	exitOnErrors(res.Errors, res.FirstError)
}
