package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/bench/internal/monoclock"
	"github.com/duplexio/duplex/bench/internal/proc"
)

// Broadcast across a cluster: the clients of a room spread over several
// Socket.IO servers that share a room through an adapter (Redis), one sender
// on the first server. The clients are the raw Socket.IO clients of the
// broadcast load above, and the messages those of the "bcast" event.

// SIOClusterConfig describes a cluster broadcast run. Client i connects to
// Addrs[i % len(Addrs)] and joins Room; a control client in no room, on
// Addrs[0] (the sender's node), then triggers broadcasts ("bcast", Batch
// messages back to back each) as fast as the flow control lets it, for
// Warmup+Duration: before triggering batch b it waits until every client
// has received batch b-InFlightBatches, so that at most InFlightBatches
// batches are in flight and queues stay bounded. Then it sends PacedMessages
// more, one every PacedInterval, for latency at a moderate rate. Every
// client checks every message (order, index, length, content) and times it:
// its arrival minus the sender node's CLOCK_MONOTONIC timestamp in it.
type SIOClusterConfig struct {
	Addrs           []string
	Path            string // "" → "/socket.io/"
	Clients         int
	Room            string // "" → "bench"
	Size            int
	Batch           int // messages per trigger; 0 → 10
	InFlightBatches int // 0 → 4
	Warmup          time.Duration
	Duration        time.Duration
	MaxMessages     int64 // bound on the messages of the throughput phase; 0 → 10,000,000
	PacedMessages   int
	PacedInterval   time.Duration
	Grace           time.Duration // bound on each wait for deliveries; 0 → 30 s
	PIDs            []int         // processes whose CPU time is sampled over the window (the servers, Redis)
}

// ClusterGroup is what the clients of one server received.
type ClusterGroup struct {
	Addr       string  `json:"addr"`
	Clients    int     `json:"clients"`
	Deliveries uint64  `json:"deliveries"` // in the window
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	// The paced phase's latency.
	PacedDeliveries uint64  `json:"paced_deliveries"`
	PacedP50us      float64 `json:"paced_p50_us"`
	PacedP99us      float64 `json:"paced_p99_us"`
	PacedMaxUs      float64 `json:"paced_max_us"`
}

// ClusterResult is what a cluster broadcast run measured.
type ClusterResult struct {
	Clients         int     `json:"clients"`
	Size            int     `json:"size"`
	Batch           int     `json:"batch"`
	InFlightBatches int     `json:"inflight_batches"`
	Messages        int64   `json:"messages"` // broadcasts of the throughput phase (warmup, window and drain)
	Deliveries      uint64  `json:"deliveries"`
	Seconds         float64 `json:"seconds"`
	PerSec          float64 `json:"deliveries_per_sec"`
	P50us           float64 `json:"p50_us"`
	P99us           float64 `json:"p99_us"`
	// Groups: one per server, in Addrs order; the first is the sender's.
	Groups []ClusterGroup `json:"groups"`
	// CPUSeconds holds, for each of PIDs, its CPU time (utime+stime) over
	// the window, -1 when unknown.
	CPUSeconds     []float64 `json:"cpu_s"`
	LoadCPUSeconds float64   `json:"load_cpu_s"`
	Errors         int64     `json:"errors"`
	FirstError     string    `json:"first_error,omitempty"`
}

// clusterClient is one client of the room. Only its own goroutine uses it
// until the run's WaitGroup is done.
type clusterClient struct {
	c        *sioClient
	group    int
	received atomic.Int64 // messages received and checked
	hist     Histogram    // deliveries in the window
	paced    Histogram    // deliveries of the paced phase
	inWindow uint64
	err      error
}

// clusterRun is the state the clients and the sender share.
type clusterRun struct {
	clients    int64
	batch      int64
	w0, w1     int64        // the window, monoclock
	pacedStart atomic.Int64 // first index of the paced phase
	batchDone  []atomic.Int64
	highest    atomic.Int64 // highest batch every client has received, -1 at first
	failed     atomic.Bool
	signal     chan struct{} // a batch completed or a client failed
}

func (r *clusterRun) notify() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// batchReceived counts batch j as received by one more client.
func (r *clusterRun) batchReceived(j int64) {
	slot := &r.batchDone[j%int64(len(r.batchDone))]
	if slot.Add(1) == r.clients {
		for { // raise highest to j unless it is already higher
			h := r.highest.Load()
			if h >= j || r.highest.CompareAndSwap(h, j) {
				break
			}
		}
		r.notify()
	}
}

// waitBatch waits until every client has received batch j, a client failed,
// or timeout passes.
func (r *clusterRun) waitBatch(ctx context.Context, j int64, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for r.highest.Load() < j {
		if r.failed.Load() {
			return errors.New("a client failed")
		}
		select {
		case <-r.signal:
		case <-t.C:
			return fmt.Errorf("batch %d not received by every client within %v", j, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// receive reads and checks the broadcast messages until the connection ends.
func (cc *clusterClient) receive(run *clusterRun, plan *bcastPlan) {
	for next := int64(0); next < 1<<40; next++ { // ends when the connection is closed or its deadline passes
		p, err := cc.c.readSIO()
		if err != nil {
			cc.err = fmt.Errorf("message %d: %w", next, err)
			return
		}
		now := monoclock.Now()
		if err := plan.check(p, next); err != nil {
			cc.err = err
			run.failed.Store(true)
			run.notify()
			return
		}
		t, _ := parseUintPrefix(p[len(bcastHead):])
		lat := time.Duration(now - int64(t))
		if next >= run.pacedStart.Load() {
			cc.paced.Record(lat)
		} else {
			if now >= run.w0 && now < run.w1 {
				cc.hist.Record(lat)
				cc.inWindow++
			}
			if (next+1)%run.batch == 0 {
				run.batchReceived((next+1)/run.batch - 1)
			}
		}
		cc.received.Store(next + 1)
	}
}

// RunSIOCluster runs the cluster broadcast described at SIOClusterConfig. An
// error is returned only when the run could not start or a trigger failed;
// clients that saw a wrong or missing message are counted in Errors.
func RunSIOCluster(ctx context.Context, cfg SIOClusterConfig) (ClusterResult, error) {
	if cfg.Batch <= 0 {
		cfg.Batch = 10
	}
	if cfg.InFlightBatches <= 0 {
		cfg.InFlightBatches = 4
	}
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = 10_000_000
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 30 * time.Second
	}
	if cfg.Room == "" {
		cfg.Room = "bench"
	}
	res := ClusterResult{Clients: cfg.Clients, Size: cfg.Size, Batch: cfg.Batch, InFlightBatches: cfg.InFlightBatches, LoadCPUSeconds: -1}
	if len(cfg.Addrs) == 0 || cfg.Clients < len(cfg.Addrs) || cfg.Size < 0 || cfg.Duration <= 0 ||
		cfg.PacedMessages < 0 || (cfg.PacedMessages > 0 && cfg.PacedInterval <= 0) {
		return res, fmt.Errorf("load: need addresses, at least one client per address, size ≥ 0, a duration and an interval for paced messages")
	}
	room, _ := json.Marshal(cfg.Room)
	join := func(c *sioClient) error {
		_ = c.ws.nc.SetDeadline(time.Now().Add(10 * time.Second))
		ack, err := c.emitAck("join", string(room))
		if err != nil {
			return err
		}
		if string(ack) != "[]" {
			return fmt.Errorf("join acked with %q, want []", truncate(ack))
		}
		return c.ws.nc.SetDeadline(time.Time{})
	}
	var ccs []*clusterClient
	defer func() {
		for _, cc := range ccs {
			cc.c.close()
		}
	}()
	for g, addr := range cfg.Addrs {
		n := cfg.Clients / len(cfg.Addrs)
		if g < cfg.Clients%len(cfg.Addrs) {
			n++
		}
		cs, err := openSIOClients(ctx, n, sioEIOConfig(addr, cfg.Path, 1, 16<<10), join)
		if err != nil {
			return res, fmt.Errorf("clients of %s: %w", addr, err)
		}
		for _, c := range cs {
			ccs = append(ccs, &clusterClient{c: c, group: g})
		}
		res.Groups = append(res.Groups, ClusterGroup{Addr: addr, Clients: n})
	}
	ctl, err := openSIO(ctx, -1, sioEIOConfig(cfg.Addrs[0], cfg.Path, 1, 16<<10))
	if err != nil {
		return res, fmt.Errorf("control client: %w", err)
	}
	defer ctl.close()

	base := time.Now()
	mono := monoclock.Now()
	run := &clusterRun{clients: int64(len(ccs)), batch: int64(cfg.Batch),
		w0: mono + cfg.Warmup.Nanoseconds(), w1: mono + (cfg.Warmup + cfg.Duration).Nanoseconds(),
		batchDone: make([]atomic.Int64, cfg.InFlightBatches+2), signal: make(chan struct{}, 1)}
	run.pacedStart.Store(1 << 62)
	run.highest.Store(-1)
	plan := &bcastPlan{size: cfg.Size}
	pacedTime := cfg.PacedInterval * time.Duration(cfg.PacedMessages)
	deadline := base.Add(cfg.Warmup + cfg.Duration + pacedTime + 3*cfg.Grace)
	var wg sync.WaitGroup
	for _, cc := range ccs {
		_ = cc.c.ws.nc.SetDeadline(deadline)
		wg.Add(1)
		go func() { defer wg.Done(); cc.receive(run, plan) }()
	}
	_ = ctl.ws.nc.SetDeadline(deadline)
	stopped := false
	stop := func() { // ends the receivers still waiting
		if !stopped {
			stopped = true
			for _, cc := range ccs {
				cc.c.close()
			}
			wg.Wait()
		}
	}
	defer stop()

	// Sample CPU times at the window's edges while the sender runs.
	cpu0, cpu1 := make([]time.Duration, len(cfg.PIDs)), make([]time.Duration, len(cfg.PIDs))
	cpuErr := make([]error, len(cfg.PIDs))
	var own0, own1 time.Duration
	var ownErr error
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		sample := func(into []time.Duration, own *time.Duration) {
			for i, pid := range cfg.PIDs {
				var err error
				if into[i], err = proc.CPUTime(pid); err != nil && cpuErr[i] == nil {
					cpuErr[i] = err
				}
			}
			var err error
			if *own, err = proc.CPUTime(os.Getpid()); err != nil && ownErr == nil {
				ownErr = err
			}
		}
		sleepUntil(ctx, base.Add(cfg.Warmup))
		sample(cpu0, &own0)
		sleepUntil(ctx, base.Add(cfg.Warmup+cfg.Duration))
		sample(cpu1, &own1)
	}()

	trigger := func(start int64, n int) error {
		req := fmt.Sprintf(`{"room":%s,"n":%d,"size":%d,"start":%d,"interval_us":0}`, room, n, cfg.Size, start)
		ack, err := ctl.emitAck("bcast", req)
		if err != nil {
			return fmt.Errorf("trigger at message %d: %w", start, err)
		}
		if string(ack) != "[]" {
			return fmt.Errorf("trigger at message %d acked with %q, want []", start, truncate(ack))
		}
		return nil
	}
	var sent int64
	var runErr error
	end := cfg.Warmup + cfg.Duration
	for b := int64(0); time.Since(base) < end && sent+int64(cfg.Batch) <= cfg.MaxMessages; b++ {
		if b >= int64(cfg.InFlightBatches) {
			if runErr = run.waitBatch(ctx, b-int64(cfg.InFlightBatches), cfg.Grace); runErr != nil {
				break
			}
		}
		// Batch b counts in the slot of batch b-len(batchDone), which every
		// client has received (the wait above is for a later batch).
		run.batchDone[b%int64(len(run.batchDone))].Store(0)
		if runErr = trigger(sent, cfg.Batch); runErr != nil {
			break
		}
		sent += int64(cfg.Batch)
	}
	res.Messages = sent
	<-sampled
	if runErr == nil && sent > 0 {
		runErr = run.waitBatch(ctx, sent/int64(cfg.Batch)-1, cfg.Grace)
	}
	if runErr == nil && cfg.PacedMessages > 0 {
		run.pacedStart.Store(sent)
		began := time.Now()
		for k := 0; k < cfg.PacedMessages; k++ {
			sleepUntil(ctx, began.Add(time.Duration(k)*cfg.PacedInterval))
			if runErr = trigger(sent+int64(k), 1); runErr != nil {
				break
			}
		}
		total := sent + int64(cfg.PacedMessages)
		// Wait (bounded) for every client to receive the last paced message.
		waitEnd := time.Now().Add(cfg.Grace)
		for runErr == nil && time.Now().Before(waitEnd) && !run.failed.Load() {
			if allReceived(ccs, total) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		sent = total
	}
	stop()

	// Every client must have received every message; the error of one that
	// did is its connection's closing by stop.
	for _, cc := range ccs {
		if got := cc.received.Load(); got == sent {
			cc.err = nil
		} else if cc.err == nil || errors.Is(cc.err, net.ErrClosed) {
			cc.err = fmt.Errorf("received %d of %d messages", got, sent)
		}
		if cc.err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("client %d of %s: %v", cc.c.id, cfg.Addrs[cc.group], cc.err)
			}
		}
	}

	var all Histogram
	hists := make([]Histogram, len(cfg.Addrs))
	paced := make([]Histogram, len(cfg.Addrs))
	for _, cc := range ccs {
		hists[cc.group].Merge(&cc.hist)
		paced[cc.group].Merge(&cc.paced)
		all.Merge(&cc.hist)
		res.Groups[cc.group].Deliveries += cc.inWindow
		res.Deliveries += cc.inWindow
	}
	for g := range res.Groups {
		gr := &res.Groups[g]
		gr.P50us, gr.P99us = us(hists[g].Quantile(0.50)), us(hists[g].Quantile(0.99))
		gr.PacedDeliveries = paced[g].Count()
		gr.PacedP50us, gr.PacedP99us, gr.PacedMaxUs = us(paced[g].Quantile(0.50)), us(paced[g].Quantile(0.99)), us(paced[g].Quantile(1))
	}
	res.Seconds = cfg.Duration.Seconds()
	res.PerSec = float64(res.Deliveries) / res.Seconds
	res.P50us, res.P99us = us(all.Quantile(0.50)), us(all.Quantile(0.99))
	for i := range cfg.PIDs {
		v := -1.0
		if cpuErr[i] == nil {
			v = (cpu1[i] - cpu0[i]).Seconds()
		}
		res.CPUSeconds = append(res.CPUSeconds, v)
	}
	if ownErr == nil {
		res.LoadCPUSeconds = (own1 - own0).Seconds()
	}
	if runErr != nil {
		return res, runErr
	}
	return res, ctx.Err()
}

// allReceived reports whether every client has received n messages.
func allReceived(ccs []*clusterClient, n int64) bool {
	for _, cc := range ccs {
		if cc.received.Load() < n {
			return false
		}
	}
	return true
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }
