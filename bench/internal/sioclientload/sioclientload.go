// Package sioclientload is the Go side of the Socket.IO client comparison
// (cmd/sioclientload, cmd/sioclientcompare): duplex's own Socket.IO client
// driving event+ack round trips at a Socket.IO server, measured the way
// node/sioclient.js measures Node's socket.io-client, with the same result
// (internal/load.Result).
//
// Unlike internal/load, whose clients are written by hand so that they cost
// the same whatever server is measured, here the client is what is measured:
// each client is a socketio.ClientSocket on its own Manager (socketio.Dial), over WebSocket
// only, with no reconnection, every other option the default.
package sioclientload

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/socketio"

	"github.com/duplexio/duplex/bench/internal/load"
)

// Config describes a run: Clients clients, each running InFlight independent
// loops of EmitWithAck("echo", text), each loop checking that the ack holds
// exactly the text it sent before it emits the next. text is Payload
// characters: "<client>.<sequence in hex>:" then a fixed pattern from that
// position on, so that every event of the run is distinct.
type Config struct {
	URL       string // the server, such as "http://127.0.0.1:PORT" (main namespace)
	Clients   int
	InFlight  int // loops per client; 0 → 1
	Payload   int // characters of the echo's string argument
	Warmup    time.Duration
	Duration  time.Duration
	Grace     time.Duration // wait for the last acks after the window; 0 → 5 s
	ServerPID int           // if > 0, CPU time and syscalls of this process are sampled over the window
}

// client is what a run needs of a Socket.IO client.
type client interface {
	EmitWithAck(ctx context.Context, event string, args ...any) (socketio.Args, error)
	Close() // disconnects and ends the client's connection
}

const patternChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// loop is one in-flight loop of a client and what it counted. Only its own
// goroutine touches it until the run's WaitGroup is done.
type loop struct {
	client   int
	hist     load.Histogram // round trips completed inside the window
	msgs     uint64
	verified uint64
	err      error
}

// Run connects cfg.Clients clients (all of them before any traffic), runs
// their loops for cfg.Warmup+cfg.Duration and returns what the window
// measured. A round trip counts when its ack arrives inside the window; its
// latency is from just before EmitWithAck to its return. After the window no
// loop emits again. An error is returned only when the run could not start;
// a wrong or missing ack fails its client, counted in Result.Errors.
func Run(ctx context.Context, cfg Config) (load.Result, error) {
	cfg.InFlight = max(cfg.InFlight, 1)
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	res := load.NewResult(cfg.Clients, cfg.Payload, cfg.InFlight)
	if cfg.Clients < 1 || cfg.Payload < 1 || cfg.Duration <= 0 {
		return res, fmt.Errorf("sioclientload: need clients, payload and duration > 0")
	}
	clients := make([]client, cfg.Clients)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, cfg.Clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			clients[i], errs[i] = dial(dctx, cfg.URL)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return res, fmt.Errorf("client %d: connect: %w", i, err)
		}
	}

	pattern := make([]byte, cfg.Payload)
	for k := range pattern {
		pattern[k] = patternChars[k%len(patternChars)]
	}
	base := time.Now()
	warmEnd, end := cfg.Warmup, cfg.Warmup+cfg.Duration
	// Every EmitWithAck ends by the grace deadline: a missing ack fails.
	actx, cancel := context.WithDeadline(ctx, base.Add(end+cfg.Grace))
	defer cancel()
	loops := make([]*loop, 0, cfg.Clients*cfg.InFlight)
	for i, c := range clients {
		seq := new(atomic.Uint64) // shared by the client's loops
		next := func() uint64 { return seq.Add(1) - 1 }
		for range cfg.InFlight {
			l := &loop{client: i}
			loops = append(loops, l)
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.run(actx, c, next, string(pattern), base, warmEnd, end)
			}()
		}
	}
	w := load.MeasureWindow(ctx, base, cfg.Warmup, cfg.Duration, cfg.ServerPID)
	wg.Wait()

	var h load.Histogram
	failed := map[int]bool{}
	for _, l := range loops {
		h.Merge(&l.hist)
		res.Msgs += l.msgs
		res.Verified += l.verified
		if l.err != nil && !failed[l.client] {
			failed[l.client] = true
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("client %d: %v", l.client, l.err)
			}
		}
	}
	res.Finish(cfg.Duration, &h, w)
	return res, ctx.Err()
}

// run emits and checks until the window ends or an ack is wrong or missing.
func (l *loop) run(ctx context.Context, c client, next func() uint64, pattern string, base time.Time, warmEnd, end time.Duration) {
	var prefix []byte
	for time.Since(base) < end {
		prefix = strconv.AppendInt(prefix[:0], int64(l.client), 10)
		prefix = append(prefix, '.')
		prefix = strconv.AppendUint(prefix, next(), 16)
		prefix = append(prefix, ':')
		text := string(prefix)
		if len(prefix) < len(pattern) {
			text += pattern[len(prefix):]
		}
		sent := time.Now()
		args, err := c.EmitWithAck(ctx, "echo", text)
		done := time.Now()
		if err != nil {
			l.err = fmt.Errorf("emit %q…: %w", prefix, err)
			return
		}
		var got string
		if args.Len() != 1 {
			l.err = fmt.Errorf("ack of %q… has %d arguments, want 1", prefix, args.Len())
			return
		}
		if err := args.Decode(0, &got); err != nil || got != text {
			l.err = fmt.Errorf("ack of %q… is %.80s (%v)", prefix, args.Raw(0), err)
			return
		}
		l.verified++
		if at := done.Sub(base); at >= warmEnd && at < end {
			l.msgs++
			l.hist.Record(done.Sub(sent))
		}
	}
}
