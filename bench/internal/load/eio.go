package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Engine.IO v4 load: raw sessions over the two transports, written here on
// plain TCP connections (the WebSocket framing above, a minimal HTTP/1.1
// client with keep-alive for polling) so that the client costs the same
// whichever server is measured and depends on no Engine.IO implementation.

// The two Engine.IO transports.
const (
	EIOWebSocket = "websocket"
	EIOPolling   = "polling"
)

// EIOConfig describes one Engine.IO echo run: Sessions sessions, each a
// closed loop that sends a text message and waits for its echo.
type EIOConfig struct {
	Addr       string
	Path       string // "" → "/engine.io/"
	Transport  string // EIOWebSocket or EIOPolling
	Sessions   int
	Payload    int // characters of each message's text (the packet adds the type digit)
	Warmup     time.Duration
	Duration   time.Duration
	MaxMsgs    int64         // per-session cap on messages; 0 → time only
	Grace      time.Duration // wait for the last echo after the window; 0 → 5 s
	ServerPID  int           // if > 0, CPU time and syscalls of this process are sampled over the window
	ReadBuffer int           // bytes of each connection's read buffer; 0 → sized from Payload
	Sources    int           // loopback source addresses the sessions are spread over (SourceAddr); 0 or 1: the kernel's choice
}

// eioOpen is the part of the open packet the load needs.
type eioOpen struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// eioSession is one Engine.IO session of the load. Only its own goroutine
// uses it until the run's WaitGroup is done.
type eioSession struct {
	id  int
	cfg EIOConfig
	tm  timing

	sid  string
	text []byte // "4" + message text; the sequence number is in text[1:1+seqDigits]
	rbuf []byte

	// websocket
	ws    *Conn
	mask  [4]byte
	frame []byte

	// polling: one keep-alive connection for the long-poll GETs, one for POSTs
	get, post  *Conn
	getReq     []byte
	postHead   string // POST request line and headers up to Content-Length's value
	postBuf    []byte
	getPending bool

	tally // its hist allocated by RunEIO only: idle sessions stay small
}

// eioSeqDigits is how many leading characters of a message's text hold its
// sequence number (hexadecimal); fewer when the text is shorter.
const eioSeqDigits = 16

// eioChars are the characters of message text: printable ASCII, never the
// polling separator 0x1E.
const eioChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func newEIOSession(id int, cfg EIOConfig, tm timing) *eioSession {
	r := rand.New(rand.NewSource(int64(id)*7919 + 3))
	s := &eioSession{id: id, cfg: cfg, tm: tm, text: make([]byte, 1+cfg.Payload)}
	s.text[0] = '4'
	for i := 1; i < len(s.text); i++ {
		s.text[i] = eioChars[r.Intn(len(eioChars))]
	}
	for i := range s.mask {
		s.mask[i] = byte(1 + r.Intn(255))
	}
	s.rbuf = make([]byte, 0, max(len(s.text), 128))
	return s
}

// setSeq writes seq into the message text, hexadecimal, low digits last.
func (s *eioSession) setSeq(seq int64) {
	n := min(eioSeqDigits, len(s.text)-1)
	v := uint64(seq)
	for i := n; i >= 1; i-- {
		s.text[i] = "0123456789abcdef"[v&0xF]
		v >>= 4
	}
}

func eioPath(cfg EIOConfig, transport, sid string) string {
	p := cfg.Path
	if p == "" {
		p = "/engine.io/"
	}
	q := "EIO=4&transport=" + transport
	if sid != "" {
		q += "&sid=" + url.QueryEscape(sid)
	}
	return p + "?" + q
}

func parseOpen(pkt []byte) (eioOpen, error) {
	var o eioOpen
	if len(pkt) == 0 || pkt[0] != '0' {
		return o, fmt.Errorf("first packet %q is not an open packet", truncate(pkt))
	}
	if err := json.Unmarshal(pkt[1:], &o); err != nil {
		return o, fmt.Errorf("open packet %q: %w", truncate(pkt), err)
	}
	if o.SID == "" {
		return o, fmt.Errorf("open packet %q has no sid", truncate(pkt))
	}
	return o, nil
}

func truncate(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}

// openWebSocket dials a new WebSocket session and reads its open packet.
func (s *eioSession) openWebSocket(ctx context.Context) error {
	c, err := Dial(ctx, SourceAddr(s.id, s.cfg.Sources), s.cfg.Addr, eioPath(s.cfg, EIOWebSocket, ""), true, s.readBuf(), "")
	if err != nil {
		return err
	}
	s.ws = c
	_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	pkt, err := s.readWSText()
	if err != nil {
		return fmt.Errorf("open packet: %w", err)
	}
	o, err := parseOpen(pkt)
	if err != nil {
		return err
	}
	s.sid = o.SID
	return c.nc.SetReadDeadline(time.Time{})
}

// openPolling does the polling handshake on a new connection, which then
// carries the long-poll GETs. With post it opens the POST connection too.
func (s *eioSession) openPolling(ctx context.Context, post bool) error {
	g, err := Dial(ctx, SourceAddr(s.id, s.cfg.Sources), s.cfg.Addr, "", false, s.readBuf(), "")
	if err != nil {
		return err
	}
	s.get = g
	_ = g.nc.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + eioPath(s.cfg, EIOPolling, "") + " HTTP/1.1\r\nHost: " + s.cfg.Addr + "\r\n\r\n"
	if _, err := g.nc.Write([]byte(req)); err != nil {
		return fmt.Errorf("handshake write: %w", err)
	}
	body, err := s.readHTTP(g.br, "handshake")
	if err != nil {
		return err
	}
	first, _, _ := bytes.Cut(body, []byte{0x1E})
	o, err := parseOpen(first)
	if err != nil {
		return err
	}
	s.sid = o.SID
	if err := g.nc.SetDeadline(time.Time{}); err != nil {
		return err
	}
	path := eioPath(s.cfg, EIOPolling, s.sid)
	s.getReq = []byte("GET " + path + " HTTP/1.1\r\nHost: " + s.cfg.Addr + "\r\n\r\n")
	s.postHead = "POST " + path + " HTTP/1.1\r\nHost: " + s.cfg.Addr + "\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: "
	if post {
		if s.post, err = Dial(ctx, SourceAddr(s.id, s.cfg.Sources), s.cfg.Addr, "", false, s.readBuf(), ""); err != nil {
			return err
		}
	}
	return nil
}

// readBuf sizes a connection's read buffer: small for idle sessions, room
// for a few whole echoes otherwise.
func (s *eioSession) readBuf() int {
	if s.cfg.ReadBuffer > 0 {
		return s.cfg.ReadBuffer
	}
	return max(512, min(s.cfg.Payload+512, 64<<10))
}

func (s *eioSession) close() {
	for _, c := range []*Conn{s.ws, s.get, s.post} {
		if c != nil {
			c.Close()
		}
	}
}

// readWSText reads one server frame, which must be a whole text frame, into
// s.rbuf.
func (s *eioSession) readWSText() ([]byte, error) {
	br := s.ws.br
	fin, op, rsv, length, err := readServerHeader(br)
	if err != nil {
		return nil, err
	}
	if !fin || op != 0x1 || rsv != 0 {
		return nil, fmt.Errorf("frame fin=%v opcode %#x rsv %#x, want one whole text frame per packet", fin, op, rsv)
	}
	if length > 1<<20 {
		return nil, fmt.Errorf("frame of %d bytes", length)
	}
	if int(length) > cap(s.rbuf) {
		s.rbuf = make([]byte, 0, length)
	}
	p := s.rbuf[:length]
	_, err = io.ReadFull(br, p)
	return p, err
}

// writeWSText writes p as one masked text frame.
func (s *eioSession) writeWSText(p []byte) error {
	s.frame = appendClientFrameOp(s.frame[:0], s.mask, 0x81, p)
	_, err := s.ws.nc.Write(s.frame)
	return err
}

// roundTripWS sends the message and waits for its echo, answering pings.
func (s *eioSession) roundTripWS() error {
	if err := s.writeWSText(s.text); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	for i := 0; i < 64; i++ { // a few pings at most before the echo
		p, err := s.readWSText()
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		switch {
		case len(p) == 1 && p[0] == '2':
			if err := s.writeWSText([]byte{'3'}); err != nil {
				return fmt.Errorf("pong: %w", err)
			}
		case len(p) > 0 && p[0] == '4':
			if !bytes.Equal(p, s.text) {
				return fmt.Errorf("echo %q, want %q", truncate(p), truncate(s.text))
			}
			return nil
		default:
			return fmt.Errorf("unexpected packet %q", truncate(p))
		}
	}
	return fmt.Errorf("no echo among 64 packets")
}

// postPacket POSTs one packet and checks the "ok" answer.
func (s *eioSession) postPacket(pkt []byte) error {
	s.postBuf = append(s.postBuf[:0], s.postHead...)
	s.postBuf = strconv.AppendInt(s.postBuf, int64(len(pkt)), 10)
	s.postBuf = append(s.postBuf, "\r\n\r\n"...)
	s.postBuf = append(s.postBuf, pkt...)
	if _, err := s.post.nc.Write(s.postBuf); err != nil {
		return fmt.Errorf("POST write: %w", err)
	}
	body, err := s.readHTTP(s.post.br, "POST")
	if err != nil {
		return err
	}
	if string(body) != "ok" {
		return fmt.Errorf("POST answered %q, want ok", truncate(body))
	}
	return nil
}

// roundTripPolling POSTs the message and long-polls until its echo arrives,
// keeping one GET pending, answering pings and skipping noops.
func (s *eioSession) roundTripPolling() error {
	if !s.getPending {
		if _, err := s.get.nc.Write(s.getReq); err != nil {
			return fmt.Errorf("GET write: %w", err)
		}
		s.getPending = true
	}
	if err := s.postPacket(s.text); err != nil {
		return err
	}
	for i := 0; i < 64; i++ {
		body, err := s.readHTTP(s.get.br, "GET")
		if err != nil {
			return err
		}
		s.getPending = false
		echoed, pong := false, false
		for len(body) > 0 {
			var pkt []byte
			pkt, body, _ = bytes.Cut(body, []byte{0x1E})
			switch {
			case len(pkt) == 1 && pkt[0] == '2':
				pong = true
			case len(pkt) == 1 && pkt[0] == '6':
			case len(pkt) > 0 && pkt[0] == '4' && !echoed:
				if !bytes.Equal(pkt, s.text) {
					return fmt.Errorf("echo %q, want %q", truncate(pkt), truncate(s.text))
				}
				echoed = true
			default:
				return fmt.Errorf("unexpected packet %q", truncate(pkt))
			}
		}
		if pong {
			if err := s.postPacket([]byte{'3'}); err != nil {
				return err
			}
		}
		if echoed {
			return nil
		}
		if _, err := s.get.nc.Write(s.getReq); err != nil {
			return fmt.Errorf("GET write: %w", err)
		}
		s.getPending = true
	}
	return fmt.Errorf("no echo in 64 polls")
}

// readHTTP reads one HTTP/1.1 response that must be 200 with a body of at
// most 1 MiB (Content-Length or chunked) and keep the connection open. The
// body is returned in s.rbuf.
func (s *eioSession) readHTTP(br *bufio.Reader, what string) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("%s response: %w", what, err)
	}
	status := 0
	if len(line) >= 12 && bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		status, _ = strconv.Atoi(string(line[9:12]))
	}
	if status == 0 {
		return nil, fmt.Errorf("%s response: status line %q", what, truncate(line))
	}
	length, chunked, closing := -1, false, false
	for n := 0; ; n++ {
		h, err := br.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("%s response headers: %w", what, err)
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		if n > 100 {
			return nil, fmt.Errorf("%s response: too many headers", what)
		}
		k, v, ok := bytes.Cut(h, []byte{':'})
		if !ok {
			return nil, fmt.Errorf("%s response: header line %q", what, truncate(h))
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil || length < 0 {
				return nil, fmt.Errorf("%s response: Content-Length %q", what, v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
			if !chunked {
				return nil, fmt.Errorf("%s response: Transfer-Encoding %q", what, v)
			}
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	body := s.rbuf[:0]
	switch {
	case chunked:
		for n := 0; ; n++ {
			l, err := br.ReadSlice('\n')
			if err != nil {
				return nil, fmt.Errorf("%s response chunk: %w", what, err)
			}
			l, _, _ = bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte{';'})
			size, err := strconv.ParseInt(string(l), 16, 32)
			if err != nil || size < 0 || len(body)+int(size) > 1<<20 || n > 1<<16 {
				return nil, fmt.Errorf("%s response: chunk size %q", what, l)
			}
			if size == 0 {
				if _, err := br.ReadSlice('\n'); err != nil { // no trailers expected
					return nil, fmt.Errorf("%s response trailer: %w", what, err)
				}
				break
			}
			start := len(body)
			body = append(body, make([]byte, size)...)
			if _, err := io.ReadFull(br, body[start:]); err != nil {
				return nil, fmt.Errorf("%s response chunk: %w", what, err)
			}
			if _, err := br.Discard(2); err != nil {
				return nil, fmt.Errorf("%s response chunk end: %w", what, err)
			}
		}
	case length >= 0:
		if length > 1<<20 {
			return nil, fmt.Errorf("%s response: body of %d bytes", what, length)
		}
		if length > cap(body) {
			body = make([]byte, 0, length)
		}
		body = body[:length]
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, fmt.Errorf("%s response body: %w", what, err)
		}
	default:
		return nil, fmt.Errorf("%s response: neither Content-Length nor chunked", what)
	}
	s.rbuf = body[:0]
	if status != 200 {
		return nil, fmt.Errorf("%s response: status %d: %q", what, status, truncate(body))
	}
	if closing {
		return nil, fmt.Errorf("%s response: Connection: close", what)
	}
	return body, nil
}

// loop runs the closed loop until the window ends, a cap is reached or an
// error occurs.
func (s *eioSession) loop() {
	deadline := s.tm.base.Add(s.tm.end + s.cfg.Grace)
	for _, c := range []*Conn{s.ws, s.get, s.post} {
		if c != nil {
			_ = c.nc.SetDeadline(deadline)
		}
	}
	for seq := int64(0); seq < s.cfg.MaxMsgs; seq++ {
		sent := time.Since(s.tm.base)
		if sent >= s.tm.end {
			return
		}
		s.setSeq(seq)
		var err error
		if s.ws != nil {
			err = s.roundTripWS()
		} else {
			err = s.roundTripPolling()
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("server closed the connection after %d echoes: %w", seq, err)
			}
			s.err = fmt.Errorf("message %d: %w", seq, err)
			return
		}
		now := time.Since(s.tm.base)
		s.verified++
		if now >= s.tm.warmEnd && now < s.tm.end {
			s.hist.Record(now - sent)
			s.msgs++
		}
	}
}

func openEIO(ctx context.Context, cfg EIOConfig, tm timing, post bool) ([]*eioSession, error) {
	ss := make([]*eioSession, cfg.Sessions)
	err := parallel(ctx, cfg.Sessions, 64, "session", func(ctx context.Context, i int) error {
		s := newEIOSession(i, cfg, tm)
		ss[i] = s
		if cfg.Transport == EIOWebSocket {
			return s.openWebSocket(ctx)
		}
		return s.openPolling(ctx, post)
	})
	if err != nil {
		for _, s := range ss {
			if s != nil {
				s.close()
			}
		}
		return nil, err
	}
	return ss, nil
}

func checkEIOConfig(cfg *EIOConfig) error {
	if cfg.Transport != EIOWebSocket && cfg.Transport != EIOPolling {
		return fmt.Errorf("load: transport %q, want %s or %s", cfg.Transport, EIOWebSocket, EIOPolling)
	}
	if cfg.Sessions < 1 {
		return fmt.Errorf("load: need sessions > 0")
	}
	return nil
}

// RunEIO opens cfg.Sessions Engine.IO sessions and runs a closed echo loop
// in each for cfg.Warmup+cfg.Duration. An error is returned only when the
// run could not start; echo failures are counted in Result.Errors.
func RunEIO(ctx context.Context, cfg EIOConfig) (Result, error) {
	if cfg.Grace <= 0 {
		cfg.Grace = 5 * time.Second
	}
	if cfg.MaxMsgs <= 0 {
		cfg.MaxMsgs = 1 << 40
	}
	res := newResult(cfg.Sessions, cfg.Payload, 1)
	if err := checkEIOConfig(&cfg); err != nil {
		return res, err
	}
	if cfg.Payload < 1 || cfg.Duration <= 0 {
		return res, fmt.Errorf("load: need payload and duration > 0")
	}
	ss, err := openEIO(ctx, cfg, timing{}, true)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, s := range ss {
			s.close()
		}
	}()

	tm := timing{base: time.Now(), warmEnd: cfg.Warmup, end: cfg.Warmup + cfg.Duration}
	var wg sync.WaitGroup
	for _, s := range ss {
		s.tm = tm
		s.hist = new(Histogram)
		wg.Add(1)
		go func() { defer wg.Done(); s.loop() }()
	}

	w := sampleWindow(ctx, tm, cfg.ServerPID)
	wg.Wait() // every loop is bounded by the end+grace deadline on its connections

	var h Histogram
	for _, s := range ss {
		res.add(&h, &s.tally, "session", s.id)
	}
	res.finish(cfg.Duration, &h, w)
	return res, ctx.Err()
}

// IdleEIO opens cfg.Sessions idle Engine.IO sessions and keeps them until
// ctx ends or hold passes; ready is called once all are open. A WebSocket
// session is one connection that has read its open packet; a polling session
// is one connection that did the handshake and then sent a long-poll GET,
// which the server holds.
func IdleEIO(ctx context.Context, cfg EIOConfig, hold time.Duration, ready func()) error {
	if err := checkEIOConfig(&cfg); err != nil {
		return err
	}
	if cfg.Payload < 1 {
		cfg.Payload = 1
	}
	ss, err := openEIO(ctx, cfg, timing{}, false)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range ss {
			s.close()
		}
	}()
	if cfg.Transport == EIOPolling {
		for i, s := range ss {
			if _, err := s.get.nc.Write(s.getReq); err != nil {
				return fmt.Errorf("session %d: long-poll GET: %w", i, err)
			}
		}
	}
	ready()
	sleepUntil(ctx, time.Now().Add(hold))
	return nil
}
