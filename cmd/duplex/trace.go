package main

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/ws"
)

const traceUsage = `usage: duplex trace --listen ADDR --upstream URL [flags]

A proxy for learning and debugging the protocols: point a client at --listen and it relays
everything to --upstream unchanged, printing what goes by on stdout:

  - WebSocket: the opening handshake (request and response headers, the Sec-WebSocket-Accept
    checked against the key, the permessage-deflate parameters agreed), then every frame of
    each direction: its header field by field and bit by bit (FIN, RSV1-3, opcode, MASK,
    the payload length and which of the 7-bit, 16-bit (126) and 64-bit (127) encodings
    carried it, the masking key), its payload unmasked (text, or a hex dump for binary
    data), whole messages put back together from their fragments and inflated when
    compressed, close codes and reasons;
  - Engine.IO and Socket.IO (requests with EIO= in the query): the packets each message
    carries, over WebSocket and over HTTP long-polling (request and response bodies,
    gzip or deflate response bodies decoded for printing): type, namespace, ack id, event
    name, arguments and binary attachments.

Each line starts with the connection number, the direction (c→s: client to server, s→c:
server to client) and the time. --json prints one JSON object per line instead (a frame,
an HTTP request or response, ...), for tools. Protocol violations are printed as warnings;
a stream that cannot be decoded at all is reported once and relayed as it is.

The Host header is rewritten to the upstream's (unless --keep-host); the path and query of
each request are kept, the path of --upstream is not used.

flags:
`

// traceConfig holds the parsed flags of "duplex trace".
type traceConfig struct {
	listen     string
	upstream   *url.URL
	json       bool
	timestamps bool
	color      string
	maxShow    int
	maxMessage int64
	decode     string
	keepHost   bool
	insecure   bool
}

func parseTraceFlags(args []string, stderr io.Writer) (*traceConfig, error) {
	cfg := &traceConfig{}
	fs := flag.NewFlagSet("trace", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, traceUsage)
		fs.PrintDefaults()
	}
	upstream := ""
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "`address` to accept clients on (host:port)")
	fs.StringVar(&upstream, "upstream", "", "`URL` of the server to relay to: ws://, wss://, http:// or https://host:port")
	fs.BoolVar(&cfg.json, "json", false, "print one JSON object per frame, request or response, for tools")
	fs.BoolVar(&cfg.timestamps, "timestamps", true, "print the time on every line")
	fs.StringVar(&cfg.color, "color", "auto", "colour the output: auto (on a terminal only), always or never")
	fs.IntVar(&cfg.maxShow, "max-payload-bytes", 256, "show at most this many bytes of each payload (the rest is flagged as truncated)")
	fs.Int64Var(&cfg.maxMessage, "max-message-bytes", 16<<20, "decode (inflate, parse) messages and bodies up to this many bytes; larger ones are only shown in part")
	fs.StringVar(&cfg.decode, "decode", "auto", "what to decode in the messages: auto (Engine.IO when the query has EIO=, Socket.IO too\nwhen the path holds socket.io), ws (frames only), engineio or socketio")
	fs.BoolVar(&cfg.keepHost, "keep-host", false, "send the client's Host header upstream as it is (for servers that check Origin against Host)")
	fs.BoolVar(&cfg.insecure, "insecure", false, "for wss:// and https:// upstreams, accept any certificate")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if upstream == "" {
		return nil, errors.New("--upstream is required")
	}
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("--upstream: %v", err)
	}
	switch u.Scheme {
	case "ws", "http":
		u.Scheme = "http"
	case "wss", "https":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("--upstream %q: want a ws://, wss://, http:// or https:// URL", upstream)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("--upstream %q has no host", upstream)
	}
	cfg.upstream = u
	switch cfg.color {
	case "auto", "always", "never":
	default:
		return nil, fmt.Errorf("--color %q: want auto, always or never", cfg.color)
	}
	switch cfg.decode {
	case "auto", "ws", "engineio", "socketio":
	default:
		return nil, fmt.Errorf("--decode %q: want auto, ws, engineio or socketio", cfg.decode)
	}
	if cfg.maxShow < 0 || cfg.maxMessage < 0 {
		return nil, errors.New("--max-payload-bytes and --max-message-bytes cannot be negative")
	}
	return cfg, nil
}

// traceCmd runs "duplex trace" until ctx is done and returns the exit status.
func traceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseTraceFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "duplex trace:", err)
		fmt.Fprintln(stderr, `run "duplex trace -h" for usage`)
		return 2
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		fmt.Fprintln(stderr, "duplex trace:", err)
		return 1
	}
	out := &tracePrinter{w: stdout, json: cfg.json, timestamps: cfg.timestamps, maxShow: cfg.maxShow,
		color: cfg.color == "always" || cfg.color == "auto" && !cfg.json && isTerminal(stdout)}
	t := newTracer(cfg, out)
	fmt.Fprintf(stderr, "duplex trace: listening on %s, relaying to %s\n", ln.Addr(), cfg.upstream.Host)
	if p := cfg.upstream.Path; p != "" && p != "/" {
		fmt.Fprintf(stderr, "duplex trace: the path %s of --upstream is not used: requests keep their own\n", p)
	}
	if err := t.serve(ctx, ln); err != nil {
		fmt.Fprintln(stderr, "duplex trace:", err)
		return 1
	}
	return 0
}

// tracer is the proxy: an HTTP server whose handler relays WebSocket upgrades byte for byte
// (decoding a copy of the bytes) and other requests through a reverse proxy (decoding
// Engine.IO polling bodies).
type tracer struct {
	cfg       *traceConfig
	out       *tracePrinter
	limits    decodeLimits
	transport *http.Transport
	proxy     *httputil.ReverseProxy
	nextConn  atomic.Int64

	// stop is closed when the tracer shuts down: relayed connections close.
	stop chan struct{}

	mu       sync.Mutex
	closing  bool
	handlers sync.WaitGroup // running handlers, relays included

	sessions sync.Map // Engine.IO sid → *pollSession
	nsess    atomic.Int64
}

// connIDKey is the context key of the connection number of an HTTP request.
type connIDKey struct{}

func newTracer(cfg *traceConfig, out *tracePrinter) *tracer {
	t := &tracer{cfg: cfg, out: out, stop: make(chan struct{}),
		limits: decodeLimits{maxShow: cfg.maxShow, maxMessage: cfg.maxMessage}}
	t.transport = &http.Transport{
		Proxy:               nil, // straight to the upstream, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		DisableCompression:  true, // relay Accept-Encoding as the client sent it, no more
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: cfg.insecure},
	}
	t.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = cfg.upstream.Scheme
			pr.Out.URL.Host = cfg.upstream.Host
			if cfg.keepHost {
				pr.Out.Host = pr.In.Host
			} else {
				pr.Out.Host = cfg.upstream.Host
			}
		},
		Transport:      t.transport,
		ModifyResponse: t.traceResponse,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			t.out.emit(&traceEvent{Conn: connID(r), Dir: dirS2C, Time: time.Now(), Kind: "error", Note: "upstream: " + err.Error()})
			w.WriteHeader(http.StatusBadGateway)
		},
		ErrorLog: nilLogger(), // its errors are reported by ErrorHandler, or are clients hanging up
	}
	return t
}

// connID is the number of the client connection r came on (numbered from 1 as accepted).
func connID(r *http.Request) int {
	id, _ := r.Context().Value(connIDKey{}).(int)
	return id
}

// serve accepts clients on ln until ctx is done, then closes every connection and waits for
// the handlers to end.
func (t *tracer) serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           t,
		ReadHeaderTimeout: 30 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connIDKey{}, int(t.nextConn.Add(1)))
		},
		ErrorLog: nilLogger(),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	t.mu.Lock()
	t.closing = true
	close(t.stop)
	t.mu.Unlock()
	srv.Close()
	if err == nil {
		if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
			err = e
		}
	}
	t.handlers.Wait()
	t.transport.CloseIdleConnections()
	return err
}

// ServeHTTP relays one request.
func (t *tracer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		http.Error(w, "duplex trace is shutting down", http.StatusServiceUnavailable)
		return
	}
	t.handlers.Add(1)
	t.mu.Unlock()
	defer t.handlers.Done()
	mode := t.modeFor(r)
	if headerHasToken(r.Header, "Upgrade", "websocket") && headerHasToken(r.Header, "Connection", "upgrade") {
		t.relayWebSocket(w, r, mode)
		return
	}
	t.relayHTTP(w, r, mode)
}

// headerHasToken reports whether a comma-separated header list holds token (any case).
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// modeFor tells how far up the layers the traffic of r is decoded.
func (t *tracer) modeFor(r *http.Request) traceMode {
	switch t.cfg.decode {
	case "ws":
		return modeWebSocket
	case "engineio":
		return modeEngineIO
	case "socketio":
		return modeSocketIO
	}
	if r.URL.Query().Get("EIO") == "" {
		return modeWebSocket
	}
	if strings.Contains(r.URL.Path, "socket.io") {
		return modeSocketIO
	}
	return modeEngineIO
}

// upstreamHost is the Host header sent upstream for r.
func (t *tracer) upstreamHost(r *http.Request) string {
	if t.cfg.keepHost {
		return r.Host
	}
	return t.cfg.upstream.Host
}

// requestRecord describes r's head.
func (t *tracer) requestRecord(r *http.Request) *httpRecord {
	h := &httpRecord{Method: r.Method, Target: r.RequestURI, Proto: r.Proto}
	h.Headers = append(h.Headers, headerField{"Host", r.Host})
	h.Headers = appendHeaders(h.Headers, r.Header)
	if host := t.upstreamHost(r); host != r.Host {
		h.HostRewrite = host
	}
	return h
}

// appendHeaders adds the fields of hdr, sorted by name as http.Header.Write sends them.
// net/http spells names in its canonical form ("Sec-Websocket-Key"); the WebSocket ones are
// shown as RFC 6455 spells them.
func appendHeaders(dst []headerField, hdr http.Header) []headerField {
	var b bytes.Buffer
	_ = hdr.Write(&b)
	return appendRawHeaders(dst, b.String(), true)
}

// appendRawHeaders adds the fields of a header block as they are written in it (an HTTP head
// without its first line, or header lines only).
func appendRawHeaders(dst []headerField, block string, respell bool) []headerField {
	for l := range strings.SplitSeq(block, "\n") {
		name, value, ok := strings.Cut(strings.TrimSuffix(l, "\r"), ":")
		if !ok {
			continue
		}
		if respell && strings.HasPrefix(name, "Sec-Websocket-") {
			name = "Sec-WebSocket-" + strings.TrimPrefix(name, "Sec-Websocket-")
		}
		dst = append(dst, headerField{name, strings.TrimSpace(value)})
	}
	return dst
}

// dialUpstream opens a connection to the upstream server.
func (t *tracer) dialUpstream(ctx context.Context) (net.Conn, error) {
	u := t.cfg.upstream
	addr := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	if u.Scheme != "https" {
		return d.DialContext(ctx, "tcp", addr)
	}
	td := &tls.Dialer{NetDialer: d, Config: &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: t.cfg.insecure, NextProtos: []string{"http/1.1"}}}
	return td.DialContext(ctx, "tcp", addr)
}

// maxResponseHead bounds the upstream's handshake response head.
const maxResponseHead = 64 << 10

// relayWebSocket relays a WebSocket opening handshake, then the connection's bytes both
// ways, decoding a copy of them.
func (t *tracer) relayWebSocket(w http.ResponseWriter, r *http.Request, mode traceMode) {
	id := connID(r)
	reqEv := &traceEvent{Conn: id, Dir: dirC2S, Time: time.Now(), Kind: "request", HTTP: t.requestRecord(r)}
	t.out.emit(reqEv)

	// Whatever happens from here, shutting down closes the connections. (Not r.Context():
	// the connection is taken over from the HTTP server.)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-t.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	up, err := t.dialUpstream(ctx)
	if err != nil {
		t.out.emit(&traceEvent{Conn: id, Dir: dirS2C, Time: time.Now(), Kind: "error", Note: "cannot reach the upstream: " + err.Error()})
		http.Error(w, "duplex trace: cannot reach the upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		up.Close()
		http.Error(w, "duplex trace: cannot take over the connection", http.StatusInternalServerError)
		return
	}
	client, crw, err := hj.Hijack()
	if err != nil {
		up.Close()
		return
	}
	stopClosing := context.AfterFunc(ctx, func() {
		client.Close()
		up.Close()
	})
	defer stopClosing()

	// The request as the client sent it (http.Server keeps the header fields, not their
	// order), with the upstream's Host.
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.RequestURI, t.upstreamHost(r))
	_ = r.Header.Write(&head)
	head.WriteString("\r\n")
	ubr := bufio.NewReaderSize(up, 32<<10)
	_ = up.SetDeadline(time.Now().Add(30 * time.Second))
	var raw []byte
	if _, err = up.Write(head.Bytes()); err == nil {
		raw, err = readResponseHead(ubr)
	}
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), r)
	}
	if err != nil {
		t.out.emit(&traceEvent{Conn: id, Dir: dirS2C, Time: time.Now(), Kind: "error", Note: "upstream handshake: " + err.Error()})
		_, _ = io.WriteString(client, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
		client.Close()
		up.Close()
		return
	}
	_ = up.SetDeadline(time.Time{})
	respEv := &traceEvent{Conn: id, Dir: dirS2C, Time: time.Now(), Kind: "response", HTTP: responseRecord(resp)}
	// This response is relayed as it came: show its fields as written, in order.
	_, fields, _ := strings.Cut(string(raw), "\n")
	respEv.HTTP.Headers = appendRawHeaders(nil, fields, false)
	var deflate *deflateRecord
	if resp.StatusCode == http.StatusSwitchingProtocols {
		key := r.Header.Get("Sec-WebSocket-Key")
		got := resp.Header.Get("Sec-WebSocket-Accept")
		respEv.HTTP.Accept = &acceptCheck{Key: key, Expected: ws.AcceptKey(key), Got: got, OK: got == ws.AcceptKey(key)}
		params, ok, err := ws.ParseDeflateParams(resp.Header.Values("Sec-WebSocket-Extensions"))
		switch {
		case err != nil:
			respEv.Problems = append(respEv.Problems, "Sec-WebSocket-Extensions: "+err.Error()+"; compressed messages will not be inflated")
		case ok:
			deflate = &deflateRecord{
				C2S: deflateDirection{params.ClientMaxWindowBits, !params.ClientNoContextTakeover},
				S2C: deflateDirection{params.ServerMaxWindowBits, !params.ServerNoContextTakeover},
			}
			respEv.HTTP.Deflate = deflate
		}
	} else if n := resp.ContentLength; n > 0 && n <= maxResponseHead {
		// A refusal: show its body (the reason, usually).
		body := make([]byte, n)
		if k, _ := io.ReadFull(ubr, body); k > 0 {
			raw = append(raw, body[:k]...)
			respEv.HTTP.Body = makePayload(body[:k], n, isTextual(resp.Header.Get("Content-Type"), body[:k]), t.limits.maxShow)
		}
	}
	t.out.emit(respEv)
	if _, err := client.Write(raw); err != nil {
		client.Close()
		up.Close()
		return
	}
	// Not switching to WebSocket: whatever else comes is relayed without decoding.
	t.relay(id, client, crw.Reader, up, ubr, resp.StatusCode == http.StatusSwitchingProtocols, mode, deflate)
}

// readResponseHead reads an HTTP response head, up to and including its empty line.
func readResponseHead(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	for {
		l, err := br.ReadSlice('\n')
		raw = append(raw, l...)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		if len(raw) > maxResponseHead {
			return nil, errors.New("response head over 64 KiB")
		}
		if err == nil && (string(l) == "\r\n" || string(l) == "\n") {
			return raw, nil
		}
	}
}

// responseRecord describes resp's head.
func responseRecord(resp *http.Response) *httpRecord {
	reason := strings.TrimSpace(strings.TrimPrefix(resp.Status, strconv.Itoa(resp.StatusCode)))
	h := &httpRecord{Proto: resp.Proto, Status: resp.StatusCode, Reason: reason}
	h.Headers = appendHeaders(h.Headers, resp.Header)
	return h
}

// isTextual guesses whether a body of that content type is text to print as such.
func isTextual(contentType string, body []byte) bool {
	ct := strings.ToLower(contentType)
	if strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "javascript") || strings.Contains(ct, "xml") {
		return true
	}
	return ct == "" && utf8.Valid(body)
}

// relay copies bytes both ways until a side closes, then closes the other. A copy of what
// each side sends is decoded on a goroutine of its own (one per connection, so that what is
// printed keeps the order in which the bytes went by); the copying never waits for it,
// beyond the buffering that tapQueue bounds. Without decode the bytes are only relayed.
func (t *tracer) relay(id int, client net.Conn, fromClient io.Reader, up net.Conn, fromUp io.Reader, decode bool, mode traceMode, deflate *deflateRecord) {
	start := time.Now()
	var q *tapQueue
	decoded := make(chan [2]*frameStream, 1)
	if decode {
		t.out.emit(&traceEvent{Conn: id, Time: start, Kind: "open",
			Note: fmt.Sprintf("WebSocket %s ⇄ %s ⇄ %s", client.RemoteAddr(), client.LocalAddr(), up.RemoteAddr())})
		q = newTapQueue(64 << 20)
		c2s := newFrameStream(id, dirC2S, t.out, t.limits, mode, deflate)
		s2c := newFrameStream(id, dirS2C, t.out, t.limits, mode, deflate)
		go func() {
			for {
				c, ok := q.pop()
				if !ok {
					break
				}
				s := c2s
				if c.dir == dirS2C {
					s = s2c
				}
				if !s.failed {
					s.feed(c.data, c.at)
				}
			}
			decoded <- [2]*frameStream{c2s, s2c}
		}()
	}

	type ended struct {
		dir traceDir
		err error
	}
	done := make(chan ended, 2)
	go func() { done <- ended{dirC2S, copyTapped(up, fromClient, q, dirC2S)} }()
	go func() { done <- ended{dirS2C, copyTapped(client, fromUp, q, dirS2C)} }()

	// The first side to close (or fail) closes the other: for WebSocket, the close frames
	// have gone by by then.
	first := <-done
	why := "the client closed"
	if first.dir == dirS2C {
		why = "the server closed"
	}
	if first.err != nil {
		why = fmt.Sprintf("relaying %s failed (%v)", first.dir.arrow(), first.err)
	}
	client.Close()
	up.Close()
	<-done
	if q == nil {
		return
	}
	q.close()
	streams := <-decoded
	t.out.emit(&traceEvent{Conn: id, Time: time.Now(), Kind: "closed",
		Note: fmt.Sprintf("%s after %v; c→s %s, %d B; s→c %s, %d B", why, time.Since(start).Round(100*time.Microsecond),
			plural(streams[0].frames, "frame"), streams[0].bytes, plural(streams[1].frames, "frame"), streams[1].bytes)})
}

// copyTapped copies src to dst, handing q (when not nil) a copy of each read before writing
// it on, so that the decoder sees the bytes before the peer can answer them. It returns nil
// at the end of src, or the error that stopped it.
func copyTapped(dst io.Writer, src io.Reader, q *tapQueue, dir traceDir) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if q != nil {
				q.push(dir, buf[:n], time.Now())
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// tapChunk is a copy of one read of one direction.
type tapChunk struct {
	dir  traceDir
	data []byte
	at   time.Time
}

// tapQueue hands copies of the relayed bytes from the copying goroutines to the decoding
// one. It holds up to limit bytes; past that, push waits for the decoder (printing is far
// behind), which is the only way the decoding can slow the relay.
type tapQueue struct {
	mu     sync.Mutex
	cond   sync.Cond
	chunks []tapChunk
	size   int
	limit  int
	closed bool
}

func newTapQueue(limit int) *tapQueue {
	q := &tapQueue{limit: limit}
	q.cond.L = &q.mu
	return q
}

func (q *tapQueue) push(dir traceDir, b []byte, at time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.size > q.limit && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return
	}
	q.chunks = append(q.chunks, tapChunk{dir, append([]byte(nil), b...), at})
	q.size += len(b)
	q.cond.Broadcast()
}

// pop returns the next chunk, waiting for one; ok is false once the queue is closed and
// empty.
func (q *tapQueue) pop() (c tapChunk, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.chunks) == 0 && !q.closed {
		q.cond.Wait()
	}
	if len(q.chunks) == 0 {
		return tapChunk{}, false
	}
	c = q.chunks[0]
	q.chunks[0] = tapChunk{}
	q.chunks = q.chunks[1:]
	q.size -= len(c.data)
	q.cond.Broadcast()
	return c, true
}

// close lets the decoder finish what is queued and end.
func (q *tapQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// pollSession is the Socket.IO decoding state of an Engine.IO polling session, shared by
// its requests.
type pollSession struct {
	mu       sync.Mutex
	c2s, s2c *sioStream
}

// maxSessions bounds the polling sessions remembered; past it they are all forgotten.
const maxSessions = 4096

func (t *tracer) session(sid string) *pollSession {
	if sid == "" {
		return &pollSession{c2s: newSIOStream(t.limits), s2c: newSIOStream(t.limits)}
	}
	if s, ok := t.sessions.Load(sid); ok {
		return s.(*pollSession)
	}
	if t.nsess.Add(1) > maxSessions {
		t.sessions.Clear()
		t.nsess.Store(1)
	}
	s, _ := t.sessions.LoadOrStore(sid, &pollSession{c2s: newSIOStream(t.limits), s2c: newSIOStream(t.limits)})
	return s.(*pollSession)
}

// isPolling reports whether r is an Engine.IO polling request.
func isPolling(r *http.Request, mode traceMode) bool {
	return mode >= modeEngineIO && r.URL.Query().Get("transport") == "polling"
}

// relayHTTP relays a plain HTTP request through the reverse proxy, printing its head and,
// for Engine.IO polling, the packets of its body.
func (t *tracer) relayHTTP(w http.ResponseWriter, r *http.Request, mode traceMode) {
	ev := &traceEvent{Conn: connID(r), Dir: dirC2S, Time: time.Now(), Kind: "request", HTTP: t.requestRecord(r)}
	if r.Body != nil && r.Body != http.NoBody {
		// The body is read here, then sent on: all of it (up to the limit) when it is to be
		// decoded, else what is shown of it.
		decode := isPolling(r, mode) && r.Method == http.MethodPost
		limit := int64(t.limits.maxShow)
		if decode {
			limit = t.cfg.maxMessage
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
		complete := err == nil && int64(len(body)) <= limit
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
		if len(body) > 0 {
			size := int64(len(body))
			if !complete && r.ContentLength > size {
				size = r.ContentLength
			}
			// An Engine.IO payload is text, whatever the Content-Type says (browsers send
			// text/plain, other clients what they like).
			isText := isTextual(r.Header.Get("Content-Type"), body) || decode && utf8.Valid(body)
			ev.HTTP.Body = makePayload(body, size, isText, t.limits.maxShow)
			switch {
			case decode && complete:
				ev.EngineIO, ev.Problems = t.decodePayload(body, r, mode, dirC2S, ev.Problems)
			case decode:
				ev.Problems = append(ev.Problems, "body not decoded: over --max-message-bytes, or cut short")
			}
		}
	}
	t.out.emit(ev)
	t.proxy.ServeHTTP(w, r)
}

// decodePayload decodes an Engine.IO polling payload that went in direction dir.
// What is wrong with the payload is added to problems.
func (t *tracer) decodePayload(body []byte, r *http.Request, mode traceMode, dir traceDir, problems []string) ([]eioRecord, []string) {
	var sess *pollSession
	var sio *sioStream
	var recs []eioRecord
	var sc engineio.PayloadScanner
	sc.Reset(body, 0)
	for sc.Scan() {
		p := sc.Packet()
		if mode == modeSocketIO && sess == nil {
			sid := r.URL.Query().Get("sid")
			if sid == "" && p.Type == engineio.Open {
				if hs, err := engineio.ParseHandshake(p.Data); err == nil {
					sid = hs.SID
				}
			}
			sess = t.session(sid)
			sess.mu.Lock()
			defer sess.mu.Unlock()
			sio = sess.c2s
			if dir == dirS2C {
				sio = sess.s2c
			}
		}
		recs = append(recs, eioRecordOf(p, sio, t.limits))
		if p.Type == engineio.Close {
			t.sessions.Delete(r.URL.Query().Get("sid"))
		}
	}
	if err := sc.Err(); err != nil {
		problems = append(problems, "polling payload: "+err.Error())
	}
	return recs, problems
}

// traceResponse prints a response from the reverse proxy once its body has gone by.
func (t *tracer) traceResponse(resp *http.Response) error {
	r := resp.Request
	mode := t.modeFor(r)
	ev := &traceEvent{Conn: connID(r), Dir: dirS2C, Time: time.Now(), Kind: "response", HTTP: responseRecord(resp)}
	// The whole body (up to the limit) is kept when it is to be decoded, else what is shown.
	decode := isPolling(r, mode) && r.Method == http.MethodGet && resp.StatusCode == http.StatusOK
	limit := int64(t.limits.maxShow)
	if decode {
		limit = t.cfg.maxMessage
	}
	enc := strings.ToLower(resp.Header.Get("Content-Encoding"))
	if enc == "gzip" || enc == "deflate" {
		limit = t.cfg.maxMessage // to decode it for printing
	}
	resp.Body = &capturedBody{rc: resp.Body, limit: limit, done: func(body []byte, total int64, complete bool) {
		if total > 0 {
			shown := body
			isText := isTextual(resp.Header.Get("Content-Type"), body)
			if complete && (enc == "gzip" || enc == "deflate") {
				if dec, err := decodeBody(body, enc, t.cfg.maxMessage); err == nil {
					shown, total = dec, int64(len(dec))
					isText = isTextual(resp.Header.Get("Content-Type"), dec)
					ev.HTTP.BodyEncoding = enc
				} else {
					ev.Problems = append(ev.Problems, enc+" body: "+err.Error())
					complete, isText = false, false
				}
			} else if enc == "gzip" || enc == "deflate" {
				isText = false // shown as the compressed bytes it is
			}
			ev.HTTP.Body = makePayload(shown, total, isText, t.limits.maxShow)
			switch {
			case decode && complete:
				ev.EngineIO, ev.Problems = t.decodePayload(shown, r, mode, dirS2C, ev.Problems)
			case decode:
				ev.Problems = append(ev.Problems, "body not decoded: over --max-message-bytes, or cut short")
			}
		}
		ev.Time = time.Now()
		t.out.emit(ev)
	}}
	return nil
}

// decodeBody undoes a gzip or deflate Content-Encoding, up to limit bytes.
func decodeBody(body []byte, enc string, limit int64) ([]byte, error) {
	var r io.ReadCloser
	var err error
	if enc == "gzip" {
		r, err = gzip.NewReader(bytes.NewReader(body))
	} else {
		// HTTP's "deflate" is zlib; some servers send raw deflate.
		r, err = zlibOrRaw(body)
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, errors.New("decoded body over --max-message-bytes")
	}
	return out, nil
}

// capturedBody passes a response body through, keeping a copy of its first limit bytes, and
// calls done once at its end (complete: all of it was read and kept) or when it is closed.
type capturedBody struct {
	rc    io.ReadCloser
	limit int64
	buf   []byte
	total int64
	once  sync.Once
	done  func(body []byte, total int64, complete bool)
}

func (b *capturedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.total += int64(n)
		if keep := b.limit - int64(len(b.buf)); keep > 0 {
			b.buf = append(b.buf, p[:min(int64(n), keep)]...)
		}
	}
	if err == io.EOF {
		b.finish(b.total <= b.limit)
	}
	return n, err
}

func (b *capturedBody) Close() error {
	b.finish(false)
	return b.rc.Close()
}

func (b *capturedBody) finish(complete bool) {
	b.once.Do(func() { b.done(b.buf, b.total, complete) })
}

// nilLogger discards the http.Server's own logging (clients hanging up mid-request).
func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// zlibOrRaw opens an HTTP "deflate" body: zlib-wrapped as the RFC says, or raw deflate.
func zlibOrRaw(body []byte) (io.ReadCloser, error) {
	if zr, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
		return zr, nil
	}
	return flate.NewReader(bytes.NewReader(body)), nil
}

// plural writes n and the noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
