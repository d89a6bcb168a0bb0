package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

const benchUsage = `usage: duplex bench [flags] URL

Generates load against a server and reports throughput and latency. Modes:

  ws-echo           WebSocket round trips against an echo endpoint (ws://host:3000/echo of
                    "duplex serve"): each connection keeps --in-flight text messages of
                    --size bytes outstanding; latency from the write to the echo
  sio-echo          Socket.IO round trips (http://host:3000): "echo" emitted with a string of
                    --size bytes, acknowledged by the server with the same argument (the
                    contract of "duplex serve"); latency from the emit to the ack
  sio-broadcast     every connection joins a room ("join" with ack); the first one emits
                    "broadcast" [room, payload] (--in-flight at a time, each acknowledged);
                    the server sends "msg" [payload] to the others; latency from the emit
                    to each delivery (the payload carries the send time); messages counts
                    deliveries
  idle-connections  opens the connections and holds them for --duration: reports how many
                    stayed up and the handshake latency (WebSocket for a ws:// or wss://
                    URL, Socket.IO for http:// or https://)

The connections open first (64 at a time, each bounded by --timeout); --duration is the
measured window that follows. A connection that fails to open or drops is counted (errors,
"failed", "dropped") and the run goes on without it; the run fails (exit 1) only when no
connection opens, and stops early when all have dropped. Only round trips completed within
the window count. --rate spreads the messages evenly over the connections (and their
in-flight slots); latency is measured from the actual send.

Latency percentiles come from a log-linear histogram: 512 buckets per power of two, so
each percentile is within 0.1% of the exact sample value; max is exact. On a terminal a
progress line is shown on stderr. The report goes to stdout: a table, or one JSON object
with --json. Exit status: 0 after a run, 1 when no connection opened, 2 for usage errors.

flags:
`

// benchConfig holds the parsed flags of "duplex bench".
type benchConfig struct {
	url         string
	mode        string
	connections int
	inFlight    int
	size        int
	duration    time.Duration
	rate        float64
	json        bool
	transport   string
	timeout     time.Duration
	headers     stringList
	insecure    bool
}

var benchModes = []string{"ws-echo", "sio-echo", "sio-broadcast", "idle-connections"}

// parseBenchFlags parses the command line of "duplex bench"; flags may follow the URL.
func parseBenchFlags(args []string, stderr io.Writer) (*benchConfig, error) {
	cfg := &benchConfig{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.mode, "mode", "ws-echo", "`mode`: "+strings.Join(benchModes, ", "))
	fs.IntVar(&cfg.connections, "connections", 10, "connections to open (at least 2 for sio-broadcast: a sender and receivers)")
	fs.IntVar(&cfg.inFlight, "in-flight", 1, "messages outstanding at a time per connection (echo modes) or at the sender (sio-broadcast)")
	fs.IntVar(&cfg.size, "size", 64, "message `bytes` (the payload string for sio modes; with sio-broadcast at least the send time it carries)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured window, after the connections are open")
	fs.Float64Var(&cfg.rate, "rate", 0, "messages per second in total (sio-broadcast: broadcasts); 0: as fast as the in-flight bound allows")
	fs.BoolVar(&cfg.json, "json", false, "print the report as one JSON object")
	fs.StringVar(&cfg.transport, "transport", "", "for Socket.IO, `polling` or websocket only (default: polling, then upgrade to websocket)")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "bound for opening each connection")
	fs.Var(&cfg.headers, "H", "add a handshake request `header`, given as 'Name: value' (repeatable)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "for wss:// and https://, accept any server certificate")

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if len(positional) != 1 {
		return nil, fmt.Errorf("want one URL, got %d arguments", len(positional))
	}
	cfg.url = positional[0]
	u, err := url.Parse(cfg.url)
	if err != nil {
		return nil, err
	}
	isWS := u.Scheme == "ws" || u.Scheme == "wss"
	isHTTP := u.Scheme == "http" || u.Scheme == "https"
	switch cfg.mode {
	case "ws-echo":
		if !isWS {
			return nil, fmt.Errorf("--mode ws-echo wants a ws:// or wss:// URL, not %q", cfg.url)
		}
	case "sio-echo", "sio-broadcast":
		if !isWS && !isHTTP {
			return nil, fmt.Errorf("--mode %s wants an http://, https://, ws:// or wss:// URL, not %q", cfg.mode, cfg.url)
		}
	case "idle-connections":
		if !isWS && !isHTTP {
			return nil, fmt.Errorf("--mode idle-connections wants a ws:// (WebSocket) or http:// (Socket.IO) URL, not %q", cfg.url)
		}
	default:
		return nil, fmt.Errorf("--mode %q: want one of %s", cfg.mode, strings.Join(benchModes, ", "))
	}
	switch cfg.transport {
	case "", "polling", "websocket":
	default:
		return nil, fmt.Errorf("--transport %q: want polling or websocket", cfg.transport)
	}
	if cfg.transport != "" && !cfg.socketIO() {
		return nil, errors.New("--transport is for the Socket.IO modes")
	}
	switch {
	case cfg.connections < 1 || cfg.connections > 1_000_000:
		return nil, errors.New("--connections must be between 1 and 1000000")
	case cfg.mode == "sio-broadcast" && cfg.connections < 2:
		return nil, errors.New("--mode sio-broadcast needs --connections 2 or more (a sender and receivers)")
	case cfg.inFlight < 1 || cfg.inFlight > 100_000:
		return nil, errors.New("--in-flight must be between 1 and 100000")
	case cfg.size < 0 || cfg.size > 64<<20:
		return nil, errors.New("--size must be between 0 and 64 MiB")
	case cfg.duration <= 0:
		return nil, errors.New("--duration must be positive")
	case cfg.rate < 0 || math.IsNaN(cfg.rate) || math.IsInf(cfg.rate, 0):
		return nil, errors.New("--rate must be 0 or positive")
	case cfg.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	}
	for _, h := range cfg.headers {
		name, _, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
	}
	return cfg, nil
}

// socketIO reports whether the run speaks Socket.IO.
func (cfg *benchConfig) socketIO() bool {
	if cfg.mode == "idle-connections" {
		return !strings.HasPrefix(cfg.url, "ws:") && !strings.HasPrefix(cfg.url, "wss:")
	}
	return strings.HasPrefix(cfg.mode, "sio-")
}

func (cfg *benchConfig) header() http.Header {
	h := http.Header{}
	for _, line := range cfg.headers {
		name, value, _ := strings.Cut(line, ":")
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h
}

func (cfg *benchConfig) tlsConfig() *tls.Config {
	if cfg.insecure {
		return &tls.Config{InsecureSkipVerify: true}
	}
	return nil
}

// bench runs "duplex bench" and returns the exit status.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseBenchFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "duplex bench:", err)
		fmt.Fprintln(stderr, `run "duplex bench -h" for usage`)
		return 2
	}
	r := newBenchRun(cfg)
	stopProgress := r.showProgress(stderr)
	err = r.run(ctx)
	stopProgress()
	if err != nil {
		fmt.Fprintln(stderr, "duplex bench:", err)
		return 1
	}
	rep := r.report()
	if len(rep.ErrorSamples) > 0 {
		fmt.Fprintf(stderr, "duplex bench: %d errors; the first kinds:\n", rep.Errors)
		for _, e := range rep.ErrorSamples {
			fmt.Fprintln(stderr, "  "+e)
		}
	}
	if cfg.json {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(rep)
	} else {
		rep.writeTable(stdout)
	}
	return 0
}

// benchRun is the state of one run, shared by its goroutines.
type benchRun struct {
	cfg   *benchConfig
	epoch time.Time // for the send times carried in broadcast payloads

	latency   histogram // round trip or delivery latency (handshake in idle-connections)
	handshake histogram // opening latency of each connection

	opened   atomic.Int64 // connections opened
	failed   atomic.Int64 // connections that did not open
	dropped  atomic.Int64 // connections that ended before the end of the run
	alive    atomic.Int64 // connections open now
	messages atomic.Int64 // round trips or deliveries within the window
	sent     atomic.Int64 // broadcasts acknowledged (sio-broadcast)
	errors   atomic.Int64

	// The measured window: start is set when the connections are open; stopping when the
	// window is over (what happens after is not counted).
	start    atomic.Int64 // UnixNano; 0 before the window
	end      atomic.Int64 // UnixNano; 0 while the window lasts
	stopping atomic.Bool
	stopRun  context.CancelFunc // ends the window early (all connections dropped)
	phase    atomic.Value       // string: what the progress line says

	errMu      sync.Mutex
	errSamples []string // the first distinct error texts
}

const maxErrorSamples = 5

func newBenchRun(cfg *benchConfig) *benchRun {
	r := &benchRun{cfg: cfg, epoch: time.Now()}
	r.phase.Store("connecting")
	return r
}

// fail counts an error and keeps its text when it is one of the first kinds.
func (r *benchRun) fail(err error) {
	r.errors.Add(1)
	text := err.Error()
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if len(r.errSamples) >= maxErrorSamples {
		return
	}
	for _, s := range r.errSamples {
		if s == text {
			return
		}
	}
	r.errSamples = append(r.errSamples, text)
}

// inWindow reports whether the measured window is still on.
func (r *benchRun) inWindow() bool { return !r.stopping.Load() }

// record counts one message of latency d, when the window is still on.
func (r *benchRun) record(d time.Duration) {
	if r.inWindow() {
		r.latency.record(d)
		r.messages.Add(1)
	}
}

// connDropped counts a connection lost before the end of the window; when none is left
// the window ends early.
func (r *benchRun) connDropped(err error) {
	if r.stopping.Load() {
		return
	}
	r.dropped.Add(1)
	if err != nil {
		r.fail(err)
	}
	if r.start.Load() != 0 && r.alive.Add(-1) == 0 {
		r.stopRun()
	}
}

// run opens the connections, runs the mode for the window and closes them.
func (r *benchRun) run(ctx context.Context) error {
	var m benchMode
	switch r.cfg.mode {
	case "ws-echo":
		m = &wsEchoMode{r: r}
	case "sio-echo":
		m = &sioEchoMode{r: r}
	case "sio-broadcast":
		m = &sioBroadcastMode{r: r}
	case "idle-connections":
		if r.cfg.socketIO() {
			m = &sioIdleMode{r: r}
		} else {
			m = &wsIdleMode{r: r}
		}
	}
	m.open(ctx)
	if r.opened.Load() == 0 || ctx.Err() != nil {
		m.close()
		if err := ctx.Err(); err != nil {
			return err
		}
		r.errMu.Lock()
		defer r.errMu.Unlock()
		if len(r.errSamples) > 0 {
			return fmt.Errorf("no connection opened (%d failed): %s", r.failed.Load(), r.errSamples[0])
		}
		return fmt.Errorf("no connection opened (%d failed)", r.failed.Load())
	}
	r.alive.Store(r.opened.Load() - r.dropped.Load())
	runCtx, cancel := context.WithTimeout(ctx, r.cfg.duration)
	defer cancel()
	r.stopRun = cancel
	// The window ends when runCtx does: from then on nothing is counted, and the errors
	// of connections being closed are not errors.
	stopped := make(chan struct{})
	context.AfterFunc(runCtx, func() {
		r.end.Store(time.Now().UnixNano())
		r.stopping.Store(true)
		close(stopped)
	})
	r.phase.Store("running")
	r.start.Store(time.Now().UnixNano())
	m.start(runCtx)
	<-stopped
	r.phase.Store("closing")
	m.close()
	return nil
}

// benchMode is the work of one mode. Its goroutines end their work when the window does
// (the context given to start is done).
type benchMode interface {
	// open opens the connections, counting opened and failed ones.
	open(ctx context.Context)
	// start starts loading the connections until ctx is done.
	start(ctx context.Context)
	// close closes every connection and returns once all goroutines of the mode ended.
	close()
}

// openAll opens n connections with dial, at most 64 at a time, and returns the ones that
// opened (in no particular order). Each dial is bounded by --timeout; its duration goes
// into the handshake histogram.
func openAll[T any](ctx context.Context, r *benchRun, n int, dial func(ctx context.Context, i int) (T, error)) []T {
	var (
		mu    sync.Mutex
		conns []T
		wg    sync.WaitGroup
	)
	sem := make(chan struct{}, 64)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, r.cfg.timeout)
			defer cancel()
			t0 := time.Now()
			c, err := dial(dctx, i)
			if err != nil {
				r.failed.Add(1)
				r.fail(err)
				return
			}
			r.handshake.record(time.Since(t0))
			r.opened.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return conns
}

// pacer spaces the sends of one sender at a fixed interval (none when 0). A sender that
// falls behind catches up, but never by more than a second's worth of sends.
type pacer struct {
	interval time.Duration
	next     time.Time
}

// newPacer returns the pacer of one of senders senders sharing rate messages per second.
func newPacer(rate float64, senders int) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	interval := time.Duration(float64(time.Second) * float64(senders) / rate)
	if interval <= 0 {
		interval = 1
	}
	return &pacer{interval: interval, next: time.Now()}
}

// wait returns when the next send is due: true, or false when ctx ended first.
func (p *pacer) wait(ctx context.Context) bool {
	if p.interval == 0 {
		return ctx.Err() == nil
	}
	now := time.Now()
	if p.next.Before(now.Add(-time.Second)) {
		p.next = now
	}
	due := p.next
	p.next = p.next.Add(p.interval)
	if d := due.Sub(now); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// histogram counts durations in log-linear buckets: exact below 1,024 ns, then 512
// buckets for each power of two, so that a bucket's width is at most 1/512 of its values
// and its midpoint within 0.1% of any of them. Safe for concurrent use.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

const (
	histSubBits = 10                     // exact below 1<<histSubBits
	histHalf    = 1 << (histSubBits - 1) // buckets per power of two above that
	histBuckets = (1 << histSubBits) + (64-histSubBits)*histHalf
)

// histIndex returns the bucket of v.
func histIndex(v uint64) int {
	if v < 1<<histSubBits {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits
	top := v >> shift // in [histHalf, 2*histHalf)
	return 1<<histSubBits + (shift-1)*histHalf + int(top-histHalf)
}

// histValue returns the midpoint of bucket i.
func histValue(i int) uint64 {
	if i < 1<<histSubBits {
		return uint64(i)
	}
	i -= 1 << histSubBits
	shift := i/histHalf + 1
	low := uint64(i%histHalf+histHalf) << shift
	return low + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// percentiles returns the values at the quantiles qs (each in (0, 1]), in order, and the
// exact maximum; zeros when nothing was recorded. Call it once recording is over.
func (h *histogram) percentiles(qs ...float64) ([]time.Duration, time.Duration) {
	out := make([]time.Duration, len(qs))
	n := h.total.Load()
	if n == 0 {
		return out, 0
	}
	maxV := h.max.Load()
	for j, q := range qs {
		rank := uint64(math.Ceil(q * float64(n)))
		rank = min(max(rank, 1), n)
		var seen uint64
		for i := range h.counts {
			seen += h.counts[i].Load()
			if seen >= rank {
				out[j] = time.Duration(min(int64(histValue(i)), maxV))
				break
			}
		}
	}
	return out, time.Duration(maxV)
}

// benchReport is the outcome of a run, as --json prints it.
type benchReport struct {
	Mode        string  `json:"mode"`
	URL         string  `json:"url"`
	Transport   string  `json:"transport,omitempty"`
	Connections int     `json:"connections"`
	Opened      int64   `json:"opened"`
	Failed      int64   `json:"failed"`
	Dropped     int64   `json:"dropped"`
	StayedUp    int64   `json:"stayed_up"`
	Seconds     float64 `json:"duration_s"`
	Messages    int64   `json:"messages"`
	PerSecond   float64 `json:"messages_per_s"`
	Broadcasts  *int64  `json:"broadcasts,omitempty"`
	Latency     string  `json:"latency"`
	// Latencies in milliseconds.
	LatencyMS struct {
		P50 float64 `json:"p50"`
		P90 float64 `json:"p90"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	Errors       int64    `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`

	p50, p90, p99, max time.Duration
}

func (r *benchRun) report() *benchReport {
	rep := &benchReport{
		Mode:        r.cfg.mode,
		URL:         r.cfg.url,
		Connections: r.cfg.connections,
		Opened:      r.opened.Load(),
		Failed:      r.failed.Load(),
		Dropped:     r.dropped.Load(),
		Messages:    r.messages.Load(),
		Errors:      r.errors.Load(),
	}
	rep.StayedUp = rep.Opened - rep.Dropped
	if r.cfg.socketIO() {
		rep.Transport = r.cfg.transport
		if rep.Transport == "" {
			rep.Transport = "polling+upgrade"
		}
	}
	if start, end := r.start.Load(), r.end.Load(); start != 0 && end > start {
		rep.Seconds = time.Duration(end - start).Seconds()
	}
	if rep.Seconds > 0 {
		rep.PerSecond = float64(rep.Messages) / rep.Seconds
	}
	h := &r.latency
	switch r.cfg.mode {
	case "ws-echo":
		rep.Latency = "round trip (write to echo)"
	case "sio-echo":
		rep.Latency = "round trip (emit to ack)"
	case "sio-broadcast":
		rep.Latency = "delivery (broadcast emit to msg)"
		n := r.sent.Load()
		rep.Broadcasts = &n
	case "idle-connections":
		rep.Latency = "handshake"
		h = &r.handshake
	}
	ps, maxD := h.percentiles(0.50, 0.90, 0.99)
	rep.p50, rep.p90, rep.p99, rep.max = ps[0], ps[1], ps[2], maxD
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	rep.LatencyMS.P50, rep.LatencyMS.P90, rep.LatencyMS.P99, rep.LatencyMS.Max = ms(ps[0]), ms(ps[1]), ms(ps[2]), ms(maxD)
	r.errMu.Lock()
	rep.ErrorSamples = append([]string(nil), r.errSamples...)
	r.errMu.Unlock()
	return rep
}

// writeTable prints the report as a two-column table.
func (rep *benchReport) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("mode", "%s", rep.Mode)
	row("url", "%s", rep.URL)
	if rep.Transport != "" {
		row("transport", "%s", rep.Transport)
	}
	row("connections", "%d (opened %d, failed %d, dropped %d)", rep.Connections, rep.Opened, rep.Failed, rep.Dropped)
	if rep.Mode == "idle-connections" {
		row("stayed up", "%d", rep.StayedUp)
	}
	row("duration", "%.3fs", rep.Seconds)
	if rep.Broadcasts != nil {
		row("broadcasts", "%d", *rep.Broadcasts)
	}
	row("messages", "%d", rep.Messages)
	row("messages/s", "%.1f", rep.PerSecond)
	row("latency", "%s", rep.Latency)
	row("p50", "%s", fmtLatency(rep.p50))
	row("p90", "%s", fmtLatency(rep.p90))
	row("p99", "%s", fmtLatency(rep.p99))
	row("max", "%s", fmtLatency(rep.max))
	row("errors", "%d", rep.Errors)
	_ = tw.Flush()
}

// fmtLatency writes a duration with four significant digits at most.
func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3fs", d.Seconds())
	}
}

// showProgress prints a progress line on w every half second when w is a terminal; the
// function returned stops it and erases the line.
func (r *benchRun) showProgress(w io.Writer) func() {
	if !isTerminal(w) {
		return func() {}
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		var lastMsgs int64
		lastAt := time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(w, "\r\x1b[K")
				return
			case now := <-t.C:
				msgs := r.messages.Load()
				rate := float64(msgs-lastMsgs) / now.Sub(lastAt).Seconds()
				lastMsgs, lastAt = msgs, now
				elapsed := 0.0
				if s := r.start.Load(); s != 0 {
					elapsed = time.Duration(now.UnixNano() - s).Seconds()
				}
				up := r.alive.Load()
				if r.start.Load() == 0 {
					up = r.opened.Load()
				}
				fmt.Fprintf(w, "\r\x1b[K%s %s %.1fs/%s: %d up, %d failed, %d messages, %.0f/s, %d errors",
					r.cfg.mode, r.phase.Load(), elapsed, r.cfg.duration, up,
					r.failed.Load(), msgs, rate, r.errors.Load())
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}
