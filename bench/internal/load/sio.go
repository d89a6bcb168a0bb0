package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/bench/internal/monoclock"
)

// Socket.IO v5 load: raw Socket.IO packets in raw Engine.IO v4 WebSocket
// sessions (the Engine.IO load above), written by hand so that the client
// costs the same whichever server is measured and depends on no Socket.IO
// implementation. Every client connects to the main namespace ("40", then
// the server's "40{"sid":...}") and speaks only text packets.

// SIOConfig describes a Socket.IO event+ack run: Clients clients, each a
// closed loop that emits 42<id>["echo","<text>"] and waits for the ack
// 43<id>["<text>"], compared byte for byte. With InFlight k > 1 a client
// writes k such events (consecutive ack ids) in one write, then waits for
// the k acks, in order, before the next k.
type SIOConfig struct {
	Addr      string
	Path      string // "" → "/socket.io/"
	Clients   int
	Payload   int // characters of the echo's string argument
	InFlight  int // events written together and awaited together; 0 → 1
	Warmup    time.Duration
	Duration  time.Duration
	MaxMsgs   int64         // per-client cap on round trips; 0 → time only
	Grace     time.Duration // wait for the last ack after the window; 0 → 5 s
	ServerPID int           // if > 0, CPU time and syscalls of this process are sampled over the window
	Sources   int           // loopback source addresses the clients are spread over (SourceAddr); 0 or 1: the kernel's choice
}

// SIOBroadcastConfig describes a broadcast run: Clients clients join Room,
// then a control client (not in the room) asks the server, with the event
// "bcast", to emit messages of Size characters to the room, three times: a
// warmup of WarmupMessages back to back, the burst of Messages back to back,
// and PacedMessages one every Interval. Each client checks every message
// (order, index, length, content) and records its latency: its arrival time
// minus the server's CLOCK_MONOTONIC timestamp in it.
type SIOBroadcastConfig struct {
	Addr           string
	Path           string // "" → "/socket.io/"
	Clients        int
	Room           string // "" → "bench"
	Size           int
	WarmupMessages int
	Messages       int
	PacedMessages  int
	Interval       time.Duration // between paced messages
	PhaseTimeout   time.Duration // bound on each phase's deliveries; 0 → 2 min
	ServerPID      int           // if > 0, CPU time and syscalls of this process are sampled per phase
}

// BroadcastPhase is what one phase of a broadcast run measured.
type BroadcastPhase struct {
	Name       string  `json:"name"`
	Messages   int     `json:"messages"`
	IntervalUs int64   `json:"interval_us"`
	Deliveries uint64  `json:"deliveries"` // messages received, over all clients
	Seconds    float64 `json:"seconds"`    // from the trigger's write to the last delivery
	PerSec     float64 `json:"deliveries_per_sec"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	MaxUs      float64 `json:"max_us"`
	// EmitSeconds is the time from the trigger's write to its ack, which the
	// server sends once its emit loop has returned.
	EmitSeconds float64 `json:"emit_seconds"`
	// Server CPU (utime+stime) and read+write system calls over Seconds; -1
	// when not sampled.
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	ServerSyscalls   int64   `json:"server_syscalls"`
	LoadCPUSeconds   float64 `json:"load_cpu_s"`
	// The server's heap allocation over the phase (Go's runtime counters, from
	// the "stats" event); -1 when the server does not report them.
	ServerAllocBytes int64 `json:"server_alloc_bytes"`
	ServerMallocs    int64 `json:"server_mallocs"`
}

// BroadcastResult is what a broadcast run measured.
type BroadcastResult struct {
	Clients    int              `json:"clients"`
	Size       int              `json:"size"`
	Phases     []BroadcastPhase `json:"phases"` // burst, then paced (the warmup is not reported)
	Errors     int64            `json:"errors"` // clients that saw a wrong, missing or late message
	FirstError string           `json:"first_error,omitempty"`
}

// sioClient is one Socket.IO client of the load, over one Engine.IO session,
// whose tally holds what the client's loop counts. Only its own goroutine
// uses it until the run's WaitGroup is done.
type sioClient struct {
	*eioSession
	nextAck uint64
	arg     []byte // the echo's string argument (characters without quotes)
	out     []byte // outgoing Engine.IO packet
	want    []byte // the expected ack, without the Engine.IO type

	// broadcast
	lat  [][]time.Duration // per phase
	last []int64           // per phase: monoclock of the last delivery
}

func sioEIOConfig(addr, path string, payload, readBuffer int) EIOConfig {
	if path == "" {
		path = "/socket.io/"
	}
	return EIOConfig{Addr: addr, Path: path, Transport: EIOWebSocket, Sessions: 1, Payload: payload, ReadBuffer: readBuffer}
}

// openSIO opens the WebSocket session and connects to the main namespace.
func openSIO(ctx context.Context, id int, cfg EIOConfig) (*sioClient, error) {
	c := &sioClient{eioSession: newEIOSession(id, cfg, timing{})}
	if err := c.openWebSocket(ctx); err != nil {
		c.close()
		return nil, err
	}
	_ = c.ws.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.writeWSText([]byte("40")); err != nil {
		c.close()
		return nil, fmt.Errorf("CONNECT: %w", err)
	}
	p, err := c.readSIO()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("CONNECT answer: %w", err)
	}
	if !bytes.HasPrefix(p, []byte(`0{"sid":"`)) {
		c.close()
		return nil, fmt.Errorf("CONNECT answered %q", truncate(p))
	}
	if err := c.ws.nc.SetDeadline(time.Time{}); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// readSIO reads Engine.IO packets until a message and returns its text, the
// Socket.IO packet. Pings are answered and noops skipped, at most 64 of them.
func (c *sioClient) readSIO() ([]byte, error) {
	for i := 0; i < 64; i++ {
		p, err := c.readWSText()
		if err != nil {
			return nil, err
		}
		switch {
		case len(p) > 0 && p[0] == '4':
			return p[1:], nil
		case len(p) == 1 && p[0] == '2':
			if err := c.writeWSText([]byte{'3'}); err != nil {
				return nil, fmt.Errorf("pong: %w", err)
			}
		case len(p) == 1 && p[0] == '6':
		default:
			return nil, fmt.Errorf("unexpected Engine.IO packet %q", truncate(p))
		}
	}
	return nil, fmt.Errorf("64 packets without a message")
}

// emitAck emits the event with the JSON arguments args (a comma-separated
// list, or empty), asking for an ack, and returns the ack's JSON array. Any
// other packet in between is an error: control clients are in no room.
func (c *sioClient) emitAck(event, args string) ([]byte, error) {
	id := c.nextAck
	c.nextAck++
	c.out = append(c.out[:0], "42"...)
	c.out = strconv.AppendUint(c.out, id, 10)
	c.out = append(c.out, `["`...)
	c.out = append(c.out, event...)
	c.out = append(c.out, '"')
	if args != "" {
		c.out = append(c.out, ',')
		c.out = append(c.out, args...)
	}
	c.out = append(c.out, ']')
	if err := c.writeWSText(c.out); err != nil {
		return nil, fmt.Errorf("emit %s: %w", event, err)
	}
	p, err := c.readSIO()
	if err != nil {
		return nil, fmt.Errorf("ack of %s: %w", event, err)
	}
	head := strconv.AppendUint([]byte("3"), id, 10)
	if !bytes.HasPrefix(p, head) || len(p) == len(head) || p[len(head)] != '[' {
		return nil, fmt.Errorf("%s: got %q, want its ack %s[...]", event, truncate(p), head)
	}
	return p[len(head):], nil
}

// roundTrip emits "echo" with the client's text k times (consecutive ack
// ids, one write) and waits for the k acks, in order.
func (c *sioClient) roundTrip(k int) error {
	first := c.nextAck
	c.frame = c.frame[:0]
	for j := 0; j < k; j++ {
		c.out = append(c.out[:0], "42"...)
		c.out = strconv.AppendUint(c.out, first+uint64(j), 10)
		c.out = append(c.out, `["echo","`...)
		c.out = append(c.out, c.arg...)
		c.out = append(c.out, `"]`...)
		c.frame = appendClientFrameOp(c.frame, c.mask, 0x81, c.out)
	}
	c.nextAck += uint64(k)
	if _, err := c.ws.nc.Write(c.frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for j := 0; j < k; j++ {
		c.want = append(c.want[:0], '3')
		c.want = strconv.AppendUint(c.want, first+uint64(j), 10)
		c.want = append(c.want, `["`...)
		c.want = append(c.want, c.arg...)
		c.want = append(c.want, `"]`...)
		p, err := c.readSIO()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if !bytes.Equal(p, c.want) {
			return fmt.Errorf("ack %q, want %q", truncate(p), truncate(c.want))
		}
	}
	return nil
}

// setSeq writes seq into the first characters of the echo text, hexadecimal.
func (c *sioClient) setSeq(seq int64) {
	n := min(eioSeqDigits, len(c.arg))
	v := uint64(seq)
	for i := n - 1; i >= 0; i-- {
		c.arg[i] = "0123456789abcdef"[v&0xF]
		v >>= 4
	}
}

// echoLoop runs the closed loop until the window ends, a cap is reached or
// an error occurs.
func (c *sioClient) echoLoop(cfg SIOConfig, tm timing) {
	_ = c.ws.nc.SetDeadline(tm.base.Add(tm.end + cfg.Grace))
	k := max(cfg.InFlight, 1)
	for seq := int64(0); seq < cfg.MaxMsgs; seq += int64(k) {
		sent := time.Since(tm.base)
		if sent >= tm.end {
			return
		}
		c.setSeq(seq)
		if err := c.roundTrip(k); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("server closed the connection after %d acks: %w", seq, err)
			}
			c.err = fmt.Errorf("round trips from %d: %w", seq, err)
			return
		}
		now := time.Since(tm.base)
		c.verified += uint64(k)
		if now >= tm.warmEnd && now < tm.end {
			for j := 0; j < k; j++ {
				c.hist.Record(now - sent)
			}
			c.msgs += uint64(k)
		}
	}
}

func checkSIO(clients int) error {
	if clients < 1 {
		return fmt.Errorf("load: need clients > 0")
	}
	return nil
}

// openSIOClients opens n clients with at most 64 handshakes in flight; init,
// when not nil, runs on each client once it is connected (a join, say).
func openSIOClients(ctx context.Context, n int, cfg EIOConfig, init func(c *sioClient) error) ([]*sioClient, error) {
	cs := make([]*sioClient, n)
	err := parallel(ctx, n, 64, "session", func(ctx context.Context, i int) error {
		c, err := openSIO(ctx, i, cfg)
		if err != nil {
			return err
		}
		cs[i] = c
		if init != nil {
			return init(c)
		}
		return nil
	})
	if err != nil {
		closeSIO(cs)
		return nil, err
	}
	return cs, nil
}

func closeSIO(cs []*sioClient) {
	for _, c := range cs {
		if c != nil {
			c.close()
		}
	}
}

// RunSIO opens cfg.Clients Socket.IO clients and runs a closed event+ack loop
// in each for cfg.Warmup+cfg.Duration. An error is returned only when the run
// could not start; failures are counted in Result.Errors.
func RunSIO(ctx context.Context, cfg SIOConfig) (Result, error) {
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.MaxMsgs <= 0 {
		cfg.MaxMsgs = 1 << 40
	}
	res := newResult(cfg.Clients, cfg.Payload, max(cfg.InFlight, 1))
	if err := checkSIO(cfg.Clients); err != nil {
		return res, err
	}
	if cfg.Payload < 1 || cfg.Duration <= 0 {
		return res, fmt.Errorf("load: need payload and duration > 0")
	}
	// An ack is about Payload+24 bytes; the read buffer holds the acks of a
	// batch (up to 64 KiB).
	ecfg := sioEIOConfig(cfg.Addr, cfg.Path, cfg.Payload, max(512, min(max(cfg.InFlight, 1)*(cfg.Payload+64), 64<<10)))
	cs, err := openSIOClients(ctx, cfg.Clients, ecfg, nil)
	if err != nil {
		return res, err
	}
	defer closeSIO(cs)

	tm := timing{base: time.Now(), warmEnd: cfg.Warmup, end: cfg.Warmup + cfg.Duration}
	var wg sync.WaitGroup
	for _, c := range cs {
		c.arg = c.text[1 : 1+cfg.Payload] // the session's random characters, no JSON escapes
		c.hist = new(Histogram)
		wg.Add(1)
		go func() { defer wg.Done(); c.echoLoop(cfg, tm) }()
	}
	w := sampleWindow(ctx, tm, cfg.ServerPID)
	wg.Wait() // every loop is bounded by the end+grace deadline on its connection

	var h Histogram
	for _, c := range cs {
		res.add(&h, &c.tally, "client", c.id)
	}
	res.finish(cfg.Duration, &h, w)
	return res, ctx.Err()
}

// IdleSIO opens cfg.Clients Socket.IO clients connected to the main namespace
// and keeps them until ctx ends or hold passes; ready is called once all are
// connected.
func IdleSIO(ctx context.Context, cfg SIOConfig, hold time.Duration, ready func()) error {
	if err := checkSIO(cfg.Clients); err != nil {
		return err
	}
	ecfg := sioEIOConfig(cfg.Addr, cfg.Path, 1, 0)
	ecfg.Sources = cfg.Sources
	cs, err := openSIOClients(ctx, cfg.Clients, ecfg, nil)
	if err != nil {
		return err
	}
	defer closeSIO(cs)
	ready()
	sleepUntil(ctx, time.Now().Add(hold))
	return nil
}

// phaseSync tells when every client has received a phase's messages (or
// failed).
type phaseSync struct {
	remaining atomic.Int64
	done      chan struct{}
}

func (p *phaseSync) finish() {
	if p.remaining.Add(-1) == 0 {
		close(p.done)
	}
}

// bcastPlan is the sequence of messages every client expects.
type bcastPlan struct {
	size   int
	starts []int64 // first message index of each phase; the last entry is the total
	syncs  []*phaseSync
}

// expectedText returns the length of message i's string argument given its
// prefix length: Size, or the prefix alone when it is longer.
func (p *bcastPlan) textLen(prefix int) int { return max(p.size, prefix) }

// receive reads the broadcast messages until every phase is done, checking
// and timing each.
func (c *sioClient) receive(plan *bcastPlan) {
	phase := 0
	defer func() {
		for ; phase < len(plan.syncs); phase++ {
			plan.syncs[phase].finish()
		}
	}()
	total := plan.starts[len(plan.starts)-1]
	for next := int64(0); next < total; next++ {
		for next == plan.starts[phase+1] { // empty phases too
			plan.syncs[phase].finish()
			phase++
		}
		p, err := c.readSIO()
		if err != nil {
			c.err = fmt.Errorf("message %d: %w", next, err)
			return
		}
		now := monoclock.Now()
		if err := plan.check(p, next); err != nil {
			c.err = err
			return
		}
		t, _ := parseUintPrefix(p[len(bcastHead):])
		c.lat[phase] = append(c.lat[phase], time.Duration(now-int64(t)))
		c.last[phase] = now
		c.verified++
	}
	for phase < len(plan.syncs) {
		plan.syncs[phase].finish()
		phase++
	}
}

const bcastHead = `2["m","`

// parseUintPrefix parses the decimal digits at the start of b and returns the
// value and the number of digits (0 when there are none or they overflow).
func parseUintPrefix(b []byte) (uint64, int) {
	var v uint64
	n := 0
	for n < len(b) && n < 19 && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + uint64(b[n]-'0')
		n++
	}
	return v, n
}

// check verifies that p is the event 2["m","<t>:<i>:<pattern>"] for index i,
// its string argument of the plan's size.
func (plan *bcastPlan) check(p []byte, i int64) error {
	if !bytes.HasPrefix(p, []byte(bcastHead)) || !bytes.HasSuffix(p, []byte(`"]`)) || len(p) < len(bcastHead)+2 {
		return fmt.Errorf("message %d: got %q, want 2[\"m\",\"...\"]", i, truncate(p))
	}
	s := p[len(bcastHead) : len(p)-2]
	_, n := parseUintPrefix(s)
	if n == 0 || n >= len(s) || s[n] != ':' {
		return fmt.Errorf("message %d: no timestamp in %q", i, truncate(s))
	}
	rest := s[n+1:]
	got, m := parseUintPrefix(rest)
	if m == 0 || m >= len(rest) || rest[m] != ':' {
		return fmt.Errorf("message %d: no index in %q", i, truncate(s))
	}
	if int64(got) != i {
		return fmt.Errorf("message %d: got message %d (lost, repeated or reordered)", i, got)
	}
	prefix := n + 1 + m + 1
	if len(s) != plan.textLen(prefix) {
		return fmt.Errorf("message %d: %d characters, want %d", i, len(s), plan.textLen(prefix))
	}
	for k := prefix; k < len(s); k++ {
		if s[k] != eioChars[k%len(eioChars)] {
			return fmt.Errorf("message %d: character %d is %q, want %q", i, k, s[k], eioChars[k%len(eioChars)])
		}
	}
	return nil
}

// SIOPatternAt is the character at position k of a broadcast message, after
// its timestamp and index: what the bench servers fill messages with.
func SIOPatternAt(k int) byte { return eioChars[k%len(eioChars)] }

// RunSIOBroadcast runs the broadcast phases described at SIOBroadcastConfig.
// An error is returned only when the run could not start or a trigger failed;
// clients that saw a wrong or missing message are counted in Errors.
func RunSIOBroadcast(ctx context.Context, cfg SIOBroadcastConfig) (BroadcastResult, error) {
	res := BroadcastResult{Clients: cfg.Clients, Size: cfg.Size}
	if err := checkSIO(cfg.Clients); err != nil {
		return res, err
	}
	if cfg.Size < 0 || cfg.Messages < 1 || cfg.WarmupMessages < 0 || cfg.PacedMessages < 0 || (cfg.PacedMessages > 0 && cfg.Interval <= 0) {
		return res, fmt.Errorf("load: need size ≥ 0, messages ≥ 1, and an interval for paced messages")
	}
	if cfg.Room == "" {
		cfg.Room = "bench"
	}
	if cfg.PhaseTimeout <= 0 {
		cfg.PhaseTimeout = 2 * time.Minute
	}
	room, _ := json.Marshal(cfg.Room)
	ecfg := sioEIOConfig(cfg.Addr, cfg.Path, 1, 16<<10)
	cs, err := openSIOClients(ctx, cfg.Clients, ecfg, func(c *sioClient) error {
		_ = c.ws.nc.SetDeadline(time.Now().Add(10 * time.Second))
		ack, err := c.emitAck("join", string(room))
		if err != nil {
			return err
		}
		if string(ack) != "[]" {
			return fmt.Errorf("join acked with %q, want []", truncate(ack))
		}
		return c.ws.nc.SetDeadline(time.Time{})
	})
	if err != nil {
		return res, err
	}
	defer closeSIO(cs)
	ctl, err := openSIO(ctx, -1, ecfg)
	if err != nil {
		return res, fmt.Errorf("control client: %w", err)
	}
	defer ctl.close()

	type phaseDef struct {
		name     string
		n        int
		interval time.Duration
	}
	defs := []phaseDef{{"warmup", cfg.WarmupMessages, 0}, {"burst", cfg.Messages, 0}, {"paced", cfg.PacedMessages, cfg.Interval}}
	plan := &bcastPlan{size: cfg.Size, starts: []int64{0}}
	for _, d := range defs {
		plan.starts = append(plan.starts, plan.starts[len(plan.starts)-1]+int64(d.n))
		ps := &phaseSync{done: make(chan struct{})}
		ps.remaining.Store(int64(cfg.Clients))
		plan.syncs = append(plan.syncs, ps)
	}
	deadline := time.Now().Add(time.Duration(len(defs)) * (cfg.PhaseTimeout + cfg.Interval*time.Duration(cfg.PacedMessages)))
	var wg sync.WaitGroup
	for _, c := range cs {
		c.lat = make([][]time.Duration, len(defs))
		for p, d := range defs {
			c.lat[p] = make([]time.Duration, 0, d.n)
		}
		c.last = make([]int64, len(defs))
		_ = c.ws.nc.SetDeadline(deadline)
		wg.Add(1)
		go func() { defer wg.Done(); c.receive(plan) }()
	}
	_ = ctl.ws.nc.SetDeadline(deadline)
	defer func() {
		closeSIO(cs) // ends the receivers still waiting
		wg.Wait()
	}()

	for p, d := range defs {
		if d.n == 0 {
			continue
		}
		ph := BroadcastPhase{Name: d.name, Messages: d.n, IntervalUs: d.interval.Microseconds(), ServerAllocBytes: -1, ServerMallocs: -1, ServerCPUSeconds: -1, ServerSyscalls: -1, LoadCPUSeconds: -1}
		alloc0, mallocs0, statsOK := serverStats(ctl)
		var w window
		w.start(cfg.ServerPID)
		t0 := monoclock.Now()
		req := fmt.Sprintf(`{"room":%s,"n":%d,"size":%d,"start":%d,"interval_us":%d}`, room, d.n, cfg.Size, plan.starts[p], d.interval.Microseconds())
		ack, err := ctl.emitAck("bcast", req)
		if err != nil {
			return res, fmt.Errorf("%s trigger: %w", d.name, err)
		}
		if string(ack) != "[]" {
			return res, fmt.Errorf("%s trigger acked with %q, want []", d.name, truncate(ack))
		}
		ph.EmitSeconds = float64(monoclock.Now()-t0) / 1e9
		timer := time.NewTimer(cfg.PhaseTimeout + d.interval*time.Duration(d.n))
		select {
		case <-plan.syncs[p].done:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		w.stop()
		complete := false
		select {
		case <-plan.syncs[p].done:
			complete = true
		default:
		}
		if !complete { // stop every receiver before reading what they recorded
			closeSIO(cs)
			wg.Wait()
		}
		if statsOK {
			if alloc1, mallocs1, ok := serverStats(ctl); ok {
				ph.ServerAllocBytes, ph.ServerMallocs = alloc1-alloc0, mallocs1-mallocs0
			}
		}
		if p == 0 {
			continue // the warmup is not reported
		}
		var h Histogram
		var last int64
		for _, c := range cs {
			for _, l := range c.lat[p] {
				h.Record(l)
			}
			ph.Deliveries += uint64(len(c.lat[p]))
			last = max(last, c.last[p])
		}
		if last > t0 {
			ph.Seconds = float64(last-t0) / 1e9
			ph.PerSec = float64(ph.Deliveries) / ph.Seconds
		}
		ph.P50us = float64(h.Quantile(0.50)) / 1e3
		ph.P99us = float64(h.Quantile(0.99)) / 1e3
		ph.MaxUs = float64(h.Quantile(1)) / 1e3
		ph.ServerCPUSeconds, ph.ServerSyscalls, ph.LoadCPUSeconds = w.serverCPU(), w.serverSyscalls(), w.loadCPU()
		res.Phases = append(res.Phases, ph)
		if !complete {
			break
		}
	}
	// Every phase is done (or timed out): stop the stragglers and count them.
	closeSIO(cs)
	wg.Wait()
	for _, c := range cs {
		if c.err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("client %d: %v", c.id, c.err)
			}
		}
	}
	return res, ctx.Err()
}

// serverStats asks the server for its allocation counters; ok is false when
// it does not report them (Node).
func serverStats(ctl *sioClient) (alloc, mallocs int64, ok bool) {
	ack, err := ctl.emitAck("stats", "")
	if err != nil {
		return 0, 0, false
	}
	var st []struct {
		TotalAlloc *int64 `json:"total_alloc"`
		Mallocs    *int64 `json:"mallocs"`
	}
	if json.Unmarshal(ack, &st) != nil || len(st) != 1 || st[0].TotalAlloc == nil || st[0].Mallocs == nil {
		return 0, 0, false
	}
	return *st[0].TotalAlloc, *st[0].Mallocs, true
}
