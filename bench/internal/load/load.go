package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one load run.
type Config struct {
	Addr      string
	Path      string        // request path for the upgrade; "" → "/"
	WebSocket bool          // false: raw TCP, the payload bytes without framing
	Conns     int           // concurrent connections
	Payload   int           // bytes per message
	InFlight  int           // messages outstanding per connection (1 = closed loop)
	Warmup    time.Duration // traffic before the measured window
	Duration  time.Duration // measured window
	MaxMsgs   int64         // per-connection cap on messages sent; 0 → no cap beyond time
	Grace     time.Duration // wait for outstanding echoes after the window; 0 → 5 s
	ServerPID int           // if > 0, CPU time of this process is sampled at the window edges
	// Deflate, when not empty, is a permessage-deflate offer sent with every
	// upgrade (e.g. "permessage-deflate; client_max_window_bits"). The server
	// must accept it; messages are then JSON-like text (see appendJSON), sent
	// compressed, and the echoes are inflated and compared byte for byte.
	Deflate string
	// Sources spreads the connections over that many loopback source
	// addresses (SourceAddr); 0 or 1: the kernel's choice.
	Sources int
}

// Result is what one run measured. Latencies are per message round trip:
// from just before the message's bytes are written to when its whole echo
// has been read and verified.
type Result struct {
	Conns    int `json:"conns"`
	Payload  int `json:"payload"`
	InFlight int `json:"inflight"`

	Msgs       uint64  `json:"msgs"` // round trips completed inside the window
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	P50us      float64 `json:"p50_us"`
	P90us      float64 `json:"p90_us"`
	P99us      float64 `json:"p99_us"`

	Verified   uint64 `json:"verified"` // echoes checked, warmup and drain included
	Errors     int64  `json:"errors"`   // connections that saw a wrong, missing or failed echo
	FirstError string `json:"first_error,omitempty"`

	// Server CPU (utime+stime) spent inside the window; -1 when not sampled.
	ServerCPUSeconds  float64 `json:"server_cpu_s"`
	ServerCPUPerMsgUs float64 `json:"server_cpu_per_msg_us"`
	// Server read+write system calls per round trip inside the window; -1
	// when not sampled.
	ServerSyscallsPerMsg float64 `json:"server_syscalls_per_msg"`
	// The load generator's own CPU time inside the window (its one core is
	// the bottleneck when this approaches the window length); -1 when
	// /proc is not readable.
	LoadCPUSeconds float64 `json:"load_cpu_s"`
	// The load generator's own read+write system calls per round trip
	// inside the window; -1 when not sampled.
	LoadSyscallsPerMsg float64 `json:"load_syscalls_per_msg"`

	// With Config.Deflate: the first connection's Sec-WebSocket-Extensions
	// response, how many verified echoes came compressed (RSV1), and the
	// payload bytes on the wire both ways over all verified messages.
	Negotiated    string `json:"negotiated,omitempty"`
	Compressed    uint64 `json:"compressed,omitempty"`
	SentWireBytes uint64 `json:"sent_wire_bytes,omitempty"`
	EchoWireBytes uint64 `json:"echo_wire_bytes,omitempty"`
}

// Run opens cfg.Conns connections and drives echo traffic through them for
// cfg.Warmup+cfg.Duration. An error is returned only when the run could not
// start; echo failures are counted in Result.Errors.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Path == "" {
		cfg.Path = "/"
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.MaxMsgs <= 0 {
		cfg.MaxMsgs = 1 << 40
	}
	if cfg.Conns < 1 || cfg.Payload < 1 || cfg.InFlight < 1 || cfg.Duration <= 0 {
		return Result{}, fmt.Errorf("load: need conns, payload, inflight and duration > 0")
	}
	res := newResult(cfg.Conns, cfg.Payload, cfg.InFlight)
	if cfg.Deflate != "" && !cfg.WebSocket {
		return res, fmt.Errorf("load: permessage-deflate needs WebSocket")
	}

	readBuf := max(4096, min(cfg.Payload+16, 64<<10+16))
	conns, err := DialMany(ctx, cfg.Conns, cfg.Sources, cfg.Addr, cfg.Path, cfg.WebSocket, readBuf, cfg.Deflate)
	if err != nil {
		return res, err
	}
	if conns[0].Deflate != nil {
		res.Negotiated = conns[0].Deflate.Response
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	base := time.Now()
	tm := timing{base: base, warmEnd: cfg.Warmup, end: cfg.Warmup + cfg.Duration}
	workers := make([]*worker, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		w := newWorker(i, c, cfg, tm)
		workers[i] = w
		wg.Add(2)
		go func() { defer wg.Done(); w.writeLoop() }()
		go func() { defer wg.Done(); w.readLoop() }()
	}

	win := sampleWindow(ctx, tm, cfg.ServerPID)
	wg.Wait() // every loop is bounded by end+grace deadlines

	var h Histogram
	for _, w := range workers {
		res.add(&h, &w.tally, "conn", w.id)
		if w.dfl != nil {
			res.Compressed += w.dfl.compressed
			res.SentWireBytes += w.dfl.sentWire
			res.EchoWireBytes += w.dfl.echoWire
		}
	}
	res.finish(cfg.Duration, &h, win)
	return res, ctx.Err()
}

// maxBatchBytes bounds one pipelined write.
const maxBatchBytes = 64 << 10

type worker struct {
	id  int
	c   *Conn
	cfg Config
	tm  timing

	out     []byte // batch copies of one outgoing message: frame header + masked payload, or raw payload
	flen    int    // length of one message in out
	off     int    // offset of the payload in a message
	batch   int    // most messages sent in one write
	mask    [4]byte
	pattern []byte // expected echo, except the sequence number in its first bytes
	rbuf    []byte

	sendAt   []atomic.Int64 // send time of seq, at seq % InFlight
	tokens   chan struct{}  // window: a token per message that may be outstanding
	failed   chan struct{}
	failOnce sync.Once
	finished atomic.Bool // writer saw every sent message echoed

	tally // the reader's until wg.Wait, but err, which fail sets under errMu
	errMu sync.Mutex

	dfl *deflateWorker // nil unless permessage-deflate was negotiated
}

// deflateWorker is a worker's permessage-deflate state.
type deflateWorker struct {
	comp *compressor // writer's
	infl *inflater   // reader's
	sent []sentMsg   // message seq in slot seq % InFlight, until its echo is verified
	out  []byte      // writer's: the frames of one write
	cbuf []byte      // reader's: the compressed payload of one echo
	tmp  []byte      // writer's: the compressed payload of one message
	pbuf []byte      // reader's: the inflated echo

	compressed, echoWire uint64 // reader's
	sentWire             uint64 // writer's
}

// sentMsg holds one sent message until its echo is checked. The writer fills
// a slot only after the reader has released it (a token), so the lock is
// never contended; it orders the two goroutines for the race detector, which
// does not see the socket between them.
type sentMsg struct {
	mu sync.Mutex
	b  []byte
}

// maxCompressed bounds a compressed echo of an n-byte message: DEFLATE's
// stored blocks add 5 bytes per 64 KiB, and a fixed-Huffman block at most
// 9 bits per literal byte.
func maxCompressed(n int) int { return n + n/8 + 1024 }

func newWorker(id int, c *Conn, cfg Config, tm timing) *worker {
	r := rand.New(rand.NewSource(int64(id)*7919 + 1))
	w := &worker{id: id, c: c, cfg: cfg, tm: tm,
		tally:   tally{hist: new(Histogram)},
		pattern: make([]byte, cfg.Payload),
		rbuf:    make([]byte, cfg.Payload),
		sendAt:  make([]atomic.Int64, cfg.InFlight),
		tokens:  make(chan struct{}, cfg.InFlight),
		failed:  make(chan struct{}),
	}
	for i := range w.pattern {
		w.pattern[i] = byte(r.Intn(256))
	}
	for i := range w.mask {
		w.mask[i] = byte(1 + r.Intn(255)) // never zero, so masking really happens
	}
	if cfg.WebSocket && c.Deflate != nil {
		takeover := !c.Deflate.ClientNoContextTakeover && !strings.Contains(cfg.Deflate, "client_no_context_takeover")
		d := &deflateWorker{
			comp: newCompressor(takeover),
			infl: newInflater(!c.Deflate.ServerNoContextTakeover),
			sent: make([]sentMsg, cfg.InFlight),
			cbuf: make([]byte, 0, maxCompressed(cfg.Payload)+len(inflateTail)),
			pbuf: make([]byte, 0, cfg.Payload+1),
		}
		w.dfl = d
		w.batch = max(1, min(cfg.InFlight, maxBatchBytes/cfg.Payload))
		for i := 0; i < cfg.InFlight; i++ {
			w.tokens <- struct{}{}
		}
		return w
	}
	var one []byte
	if cfg.WebSocket {
		one = appendClientFrame(nil, w.mask, w.pattern)
	} else {
		one = append([]byte(nil), w.pattern...)
	}
	w.flen, w.off = len(one), len(one)-cfg.Payload
	w.batch = max(1, min(cfg.InFlight, maxBatchBytes/w.flen))
	for i := 0; i < w.batch; i++ {
		w.out = append(w.out, one...)
	}
	for i := 0; i < cfg.InFlight; i++ {
		w.tokens <- struct{}{}
	}
	return w
}

// appendClientFrame appends one final binary frame carrying payload, masked
// with key, as a client must send it.
func appendClientFrame(dst []byte, key [4]byte, payload []byte) []byte {
	return appendClientFrameRSV(dst, key, 0, payload)
}

// appendClientFrameRSV is appendClientFrame with reserved bits rsv (0x40 is
// RSV1, "compressed" under permessage-deflate) in the first byte.
func appendClientFrameRSV(dst []byte, key [4]byte, rsv byte, payload []byte) []byte {
	return appendClientFrameOp(dst, key, 0x80|rsv|0x2, payload) // FIN, RSV, binary
}

// appendClientFrameOp appends one frame whose first header byte (FIN, RSV,
// opcode) is b0, carrying payload masked with key.
func appendClientFrameOp(dst []byte, key [4]byte, b0 byte, payload []byte) []byte {
	dst = append(dst, b0)
	switch n := len(payload); {
	case n <= 125:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	dst = append(dst, key[:]...)
	for i, b := range payload {
		dst = append(dst, b^key[i&3])
	}
	return dst
}

func (w *worker) fail(err error) {
	w.failOnce.Do(func() {
		w.errMu.Lock()
		w.err = err
		w.errMu.Unlock()
		close(w.failed)
		w.c.nc.Close() // unblocks the other loop
	})
}

func (w *worker) seqLen() int { return min(8, w.cfg.Payload) }

// setSeq writes seq into the first payload bytes of message slot of w.out.
func (w *worker) setSeq(slot int, seq int64) {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seq))
	p := w.out[slot*w.flen+w.off:]
	for i := 0; i < w.seqLen(); i++ {
		if w.cfg.WebSocket {
			p[i] = s[i] ^ w.mask[i&3]
		} else {
			p[i] = s[i]
		}
	}
}

func (w *worker) check(p []byte, seq int64) error {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seq))
	k := w.seqLen()
	if !bytes.Equal(p[:k], s[:k]) || !bytes.Equal(p[k:], w.pattern[k:]) {
		return fmt.Errorf("echo of message %d has wrong bytes", seq)
	}
	return nil
}

func (w *worker) writeLoop() {
	nc := w.c.nc
	endAt := w.tm.base.Add(w.tm.end)
	_ = nc.SetWriteDeadline(endAt.Add(w.cfg.Grace))
	stop := time.NewTimer(time.Until(endAt))
	defer stop.Stop()
	win := int64(w.cfg.InFlight)
	held := 0
	for seq := int64(0); seq < w.cfg.MaxMsgs; {
		select {
		case <-w.tokens:
			held = 1
		case <-stop.C:
		case <-w.failed:
			return
		}
		if held == 0 || time.Since(w.tm.base) >= w.tm.end {
			break
		}
		// Take every other free slot too and send those messages in one
		// write, as a pipelining client would.
	more:
		for held < w.batch && seq+int64(held) < w.cfg.MaxMsgs {
			select {
			case <-w.tokens:
				held++
			default:
				break more
			}
		}
		var buf []byte
		if w.dfl != nil {
			b, err := w.deflateFrames(seq, held)
			if err != nil {
				w.fail(err)
				return
			}
			buf = b
		} else {
			for i := 0; i < held; i++ {
				w.setSeq(i, seq+int64(i))
				w.sendAt[(seq+int64(i))%win].Store(int64(time.Since(w.tm.base)))
			}
			buf = w.out[:held*w.flen]
		}
		n := held
		held = 0
		if _, err := nc.Write(buf); err != nil {
			w.fail(fmt.Errorf("write: %w", err))
			return
		}
		seq += int64(n)
	}
	// Wait for every outstanding echo: all tokens back.
	grace := time.NewTimer(w.cfg.Grace)
	defer grace.Stop()
	for got := held; got < w.cfg.InFlight; got++ {
		select {
		case <-w.tokens:
		case <-grace.C:
			w.fail(fmt.Errorf("%d echoes still missing %v after the window", w.cfg.InFlight-got, w.cfg.Grace))
			return
		case <-w.failed:
			return
		}
	}
	w.finished.Store(true)
	_ = nc.SetReadDeadline(time.Now()) // wake the reader, which then sees finished
}

// deflateFrames builds the frames of messages seq..seq+n-1: each one's JSON
// text is generated into its slot, its send time taken, then it is
// compressed and framed with RSV1. Latency so includes the client's
// compression and, on the way back, its inflating and checking.
func (w *worker) deflateFrames(seq int64, n int) ([]byte, error) {
	d := w.dfl
	win := int64(w.cfg.InFlight)
	d.out = d.out[:0]
	for i := int64(0); i < int64(n); i++ {
		s := &d.sent[(seq+i)%win]
		s.mu.Lock()
		s.b = appendJSON(s.b[:0], w.id, seq+i, w.cfg.Payload)
		w.sendAt[(seq+i)%win].Store(int64(time.Since(w.tm.base)))
		var err error
		d.tmp, err = d.comp.compress(d.tmp[:0], s.b)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		d.sentWire += uint64(len(d.tmp))
		d.out = appendClientFrameRSV(d.out, w.mask, 0x40, d.tmp)
	}
	return d.out, nil
}

func (w *worker) readLoop() {
	nc := w.c.nc
	_ = nc.SetReadDeadline(w.tm.base.Add(w.tm.end + w.cfg.Grace))
	win := int64(w.cfg.InFlight)
	for seq := int64(0); seq < w.cfg.MaxMsgs; seq++ {
		p, err := w.readEcho()
		if err != nil {
			if w.finished.Load() {
				return
			}
			select {
			case <-w.failed: // the writer failed first and closed the conn
			default:
				if errors.Is(err, io.EOF) {
					err = fmt.Errorf("server closed the connection after %d echoes", seq)
				}
				w.fail(fmt.Errorf("read: %w", err))
			}
			return
		}
		now := time.Since(w.tm.base)
		if w.dfl != nil {
			err = w.checkDeflate(p, seq)
		} else {
			err = w.check(p, seq)
		}
		if err != nil {
			w.fail(err)
			return
		}
		w.verified++
		if now >= w.tm.warmEnd && now < w.tm.end {
			w.hist.Record(now - time.Duration(w.sendAt[seq%win].Load()))
			w.msgs++
		}
		select {
		case w.tokens <- struct{}{}:
		default:
			w.fail(fmt.Errorf("echo %d arrived but was never sent", seq))
			return
		}
	}
}

// checkDeflate compares an inflated echo with the message sent as seq.
func (w *worker) checkDeflate(p []byte, seq int64) error {
	s := &w.dfl.sent[seq%int64(w.cfg.InFlight)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bytes.Equal(p, s.b) {
		return fmt.Errorf("echo of message %d has wrong bytes (%d bytes, sent %d)", seq, len(p), len(s.b))
	}
	return nil
}

// readEcho reads one echoed message into w.rbuf. WebSocket messages may come
// in several frames; any control frame, reserved bit, mask or opcode other
// than binary is an error, as is a message longer than the one sent. With
// permessage-deflate, RSV1 on the first frame marks a compressed message,
// which is read into the compressed buffer and inflated.
func (w *worker) readEcho() ([]byte, error) {
	br := w.c.br
	n := w.cfg.Payload
	if !w.cfg.WebSocket {
		_, err := io.ReadFull(br, w.rbuf[:n])
		return w.rbuf[:n], err
	}
	got, buf, limit, compressed := 0, w.rbuf, n, false
	for frame := 0; ; frame++ {
		fin, op, rsv, length, err := readServerHeader(br)
		if err != nil {
			return nil, err
		}
		switch {
		case frame == 0 && rsv == 0x40 && w.dfl != nil:
			compressed = true
			buf = w.dfl.cbuf[:cap(w.dfl.cbuf)-len(inflateTail)]
			limit = len(buf)
		case rsv != 0:
			return nil, fmt.Errorf("frame %d of an echo sets reserved bits %#x", frame, rsv)
		}
		wantOp := byte(0x0)
		if frame == 0 {
			wantOp = 0x2
		}
		if op != wantOp {
			return nil, fmt.Errorf("frame %d of an echo has opcode %#x, want %#x", frame, op, wantOp)
		}
		if length > int64(limit-got) {
			if compressed {
				return nil, fmt.Errorf("compressed echo longer than %d bytes", limit)
			}
			return nil, fmt.Errorf("echo longer than the %d bytes sent", n)
		}
		if _, err := io.ReadFull(br, buf[got:got+int(length)]); err != nil {
			return nil, err
		}
		got += int(length)
		if fin {
			break
		}
		if frame > n { // empty continuation frames cannot go on forever
			return nil, fmt.Errorf("echo split into too many frames")
		}
	}
	if compressed {
		w.dfl.compressed++
		w.dfl.echoWire += uint64(got)
		p, err := w.dfl.infl.inflate(w.dfl.pbuf, buf[:got], n)
		if err != nil {
			return nil, err
		}
		w.dfl.pbuf = p
		if len(p) != n {
			return nil, fmt.Errorf("echo inflates to %d bytes, want %d", len(p), n)
		}
		return p, nil
	}
	if w.dfl != nil {
		w.dfl.echoWire += uint64(got)
	}
	if got != n {
		return nil, fmt.Errorf("echo of %d bytes, want %d", got, n)
	}
	return w.rbuf[:n], nil
}

// readServerHeader reads one server frame header. It peeks into br rather
// than reading into a local array, so it never allocates.
// The caller checks the reserved bits, rsv.
func readServerHeader(br *bufio.Reader) (fin bool, op, rsv byte, length int64, err error) {
	h, err := br.Peek(2)
	if err != nil {
		return false, 0, 0, 0, err
	}
	fin, op, rsv = h[0]&0x80 != 0, h[0]&0x0F, h[0]&0x70
	if h[1]&0x80 != 0 {
		return fin, op, rsv, 0, fmt.Errorf("server frame is masked")
	}
	if op >= 0x8 {
		return fin, op, rsv, 0, fmt.Errorf("unexpected control frame, opcode %#x", op)
	}
	hl := 2
	switch h[1] & 0x7F {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if h, err = br.Peek(hl); err != nil {
		return fin, op, rsv, 0, err
	}
	switch hl {
	case 2:
		length = int64(h[1] & 0x7F)
	case 4:
		length = int64(binary.BigEndian.Uint16(h[2:]))
	case 10:
		length = int64(binary.BigEndian.Uint64(h[2:]))
		if length < 0 {
			return fin, op, rsv, 0, fmt.Errorf("frame length overflows")
		}
	}
	_, err = br.Discard(hl)
	return fin, op, rsv, length, err
}

// Idle opens n connections and keeps them open until ctx ends or hold
// passes. ready is called once all are upgraded.
// offer is a permessage-deflate offer as in Config.Deflate, or "". With
// message, each connection sends one message and reads its echo first, so
// that the server has read from every connection once. sources is as in
// Config.Sources.
func Idle(ctx context.Context, addr, path string, websocket bool, offer string, n, sources int, message bool, hold time.Duration, ready func()) error {
	conns, err := DialMany(ctx, n, sources, addr, path, websocket, 512, offer)
	if err != nil {
		return err
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if message {
		cfg := Config{WebSocket: websocket, Payload: 16, InFlight: 1}
		err := parallel(ctx, n, 64, "conn", func(_ context.Context, i int) error {
			_ = conns[i].nc.SetDeadline(time.Now().Add(10 * time.Second))
			if err := NewClient(conns[i], cfg.Payload, websocket).RoundTrip(1); err != nil {
				return err
			}
			return conns[i].nc.SetDeadline(time.Time{})
		})
		if err != nil {
			return err
		}
	}
	ready()
	sleepUntil(ctx, time.Now().Add(hold))
	return nil
}

// Client is a synchronous echo client for in-process benchmarks: each
// RoundTrip writes one message and reads and verifies its echo. It does not
// allocate per message.
type Client struct{ w *worker }

// NewClient wraps c (from Dial) to send payload-byte messages.
func NewClient(c *Conn, payload int, websocket bool) *Client {
	cfg := Config{WebSocket: websocket, Payload: payload, InFlight: 1}
	return &Client{w: newWorker(0, c, cfg, timing{})}
}

// RoundTrip sends message seq and checks its echo.
func (cl *Client) RoundTrip(seq int64) error {
	w := cl.w
	w.setSeq(0, seq)
	if _, err := w.c.nc.Write(w.out[:w.flen]); err != nil {
		return err
	}
	p, err := w.readEcho()
	if err != nil {
		return err
	}
	return w.check(p, seq)
}
