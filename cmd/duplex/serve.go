package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/fixture"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// serveConfig is the command line of "duplex serve".
type serveConfig struct {
	addr            string
	path            string // of Socket.IO
	readLimit       int64
	compress        bool
	fixture         bool
	eo              fixture.Options // ping interval and timeout, max payload (0: the defaults)
	origins         originList
	tlsCert, tlsKey string
	logLevel        string
	logFormat       string
	shutdownTimeout time.Duration
	eventLoop       bool
	cluster         clusterConfig // --redis, --redis-key, --relay
}

func parseServeFlags(args []string, stderr io.Writer) (*serveConfig, error) {
	c := &serveConfig{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:3000", "address to listen on (host:port)")
	fs.StringVar(&c.path, "path", socketio.DefaultPath, "URL path of Socket.IO")
	fs.Int64Var(&c.readLimit, "read-limit", ws.DefaultReadLimit, "largest WebSocket message accepted on /echo, in bytes")
	fs.BoolVar(&c.compress, "compress", false, "accept permessage-deflate compression on /echo from clients that offer it")
	fs.BoolVar(&c.fixture, "fixture", false, "serve the conformance fixtures the official protocol test suites expect: Engine.IO at /engine.io/\n(every message echoed) and Socket.IO at --path (connect timeout 1s); both with ping interval 300ms,\nping timeout 200ms, max payload 1000000, CORS for any origin (unless --cors-origin is given)")
	fs.DurationVar(&c.eo.PingInterval, "ping-interval", 0, "Engine.IO ping interval of Socket.IO and /engine.io/ (default 25s, 300ms with --fixture)")
	fs.DurationVar(&c.eo.PingTimeout, "ping-timeout", 0, "Engine.IO ping timeout of Socket.IO and /engine.io/ (default 20s, 200ms with --fixture)")
	fs.Int64Var(&c.eo.MaxPayload, "max-payload", 0, "largest Engine.IO POST body or WebSocket message of Socket.IO and /engine.io/, in bytes (default 1000000)")
	fs.Var(&c.origins, "cors-origin", "`origin` allowed besides the server's own, e.g. https://app.example.com, https://*.example.com or *;\nrepeatable or comma-separated. Applies to the CORS headers of Engine.IO polling and to the Origin check\nof WebSocket handshakes (/echo and Engine.IO). Default: same-origin pages and clients that send no Origin")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate (chain) `file`: serve HTTPS and WSS (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&c.logLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format on stderr: text or json")
	fs.BoolVar(&c.eventLoop, "event-loop", false, "serve the WebSockets (/echo, Engine.IO, Socket.IO) on an event loop: no goroutine and no read buffer\nper idle connection (epoll on Linux; elsewhere one goroutine each, as without it)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGINT or SIGTERM, how long connections get to close before they are cut")
	c.cluster.addFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := c.cluster.check(c.fixture); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.eo.PingInterval < 0 || c.eo.PingTimeout < 0 || c.eo.MaxPayload < 0 {
		return nil, errors.New("--ping-interval, --ping-timeout and --max-payload must not be negative")
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if !strings.HasPrefix(c.path, "/") {
		c.path = "/" + c.path
	}
	if !strings.HasSuffix(c.path, "/") {
		c.path += "/"
	}
	switch {
	case c.path == "/":
		return nil, errors.New("--path must not be / (the demo page)")
	case c.fixture && c.path == engineio.DefaultPath:
		return nil, fmt.Errorf("--path must not be %s with --fixture (the Engine.IO fixture)", engineio.DefaultPath)
	}
	return c, nil
}

// newLogger returns the logger of --log-level and --log-format, writing to w.
func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "info":
		l = slog.LevelInfo
	case "warn", "warning":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// serve runs the demo server until ctx is done, then shuts it down gracefully: /healthz
// answers 503, Engine.IO and Socket.IO sessions are closed, WebSocket peers get a close
// frame with 1001 (going away), and the HTTP server stops once its requests are answered.
// It prints where to open the browser on stdout and logs on stderr.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseServeFlags(args, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(c.logLevel, c.logFormat, stderr)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return err
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	m := newMetrics()
	c.eo.Logger, c.eo.Observer = logger, broadcastObserver{m}

	upgrader := &ws.Upgrader{ReadLimit: c.readLimit, AllowedOrigins: c.origins}
	if c.compress {
		upgrader.Compression = &ws.CompressionOptions{}
	}
	var loop *ws.EventLoop
	if c.eventLoop {
		if loop, err = ws.NewEventLoop(nil); err != nil {
			return err
		}
		defer loop.Close() // after the shutdown below has closed its connections
		c.eo.EventLoop = loop
	}
	cl, err := c.cluster.connect(ctx, logger)
	if err != nil {
		return err
	}
	defer cl.close()
	var engine *engineio.Server // the Engine.IO fixture, with --fixture
	var sio *socketio.Server
	if c.fixture {
		engine = fixture.Engine(c.eo)
		sio = fixture.SocketIO(c.eo)
	} else {
		sio = socketio.NewServer(&socketio.Options{
			Engine: &engineio.Server{
				PingInterval:      c.eo.PingInterval,
				PingTimeout:       c.eo.PingTimeout,
				MaxHTTPBufferSize: c.eo.MaxPayload,
				Logger:            logger,
			},
			EventLoop:  loop,
			Logger:     logger,
			Observer:   broadcastObserver{m},
			NewAdapter: cl.newAdapter(),
		})
	}
	if err := cl.relay(ctx, sio.Engine(), logger); err != nil {
		return err
	}
	sio.Engine().Path = c.path
	engines := []*engineio.Server{sio.Engine()}
	if engine != nil {
		engines = append(engines, engine)
	}
	for _, e := range engines {
		e.Observer = engineObserver{m}
		// The fixture allows every origin unless told otherwise.
		if !c.fixture || len(c.origins) > 0 {
			c.origins.applyTo(e)
		}
	}
	fixture.AddHandlers(sio)
	addDemoHandlers(sio)
	addChatHandlers(sio)

	var draining atomic.Bool
	mux := http.NewServeMux()
	mux.Handle("/", chatPage())
	mux.Handle("/echo", echoHandler(upgrader, loop, logger, m))
	mux.Handle(c.path, sio)
	if engine != nil {
		mux.Handle(engineio.DefaultPath, engine)
	}
	mux.Handle("/healthz", healthHandler(&draining))
	mux.Handle("/metrics", m.handler(logger))

	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
		// HTTP/1.1 only, also over TLS: WebSocket handshakes take over the connection
		// (RFC 6455), which HTTP/2 has no way to do.
		Protocols: new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	printURLs(stdout, ln.Addr(), tlsConfig != nil, c, sio, engine)
	cl.print(stdout)
	logger.Info("duplex serve listening", "addr", ln.Addr().String(), "tls", tlsConfig != nil, "socketio", c.path, "adapter", cl.adapterName(), "fixture", c.fixture)

	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
			return
		}
		errc <- srv.Serve(ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("duplex serve shutting down", "timeout", c.shutdownTimeout.String())
	draining.Store(true)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	// Engine.IO, Socket.IO and the echo's WebSockets first, side by side, while the listener
	// still answers (503 to new sessions and on /healthz): they answer the pending long
	// polls, which http.Server.Shutdown would otherwise wait for, and send close frames to
	// the WebSockets, which it does not track.
	// With --redis, the polls relayed through this node to the sessions of other nodes are
	// released at once (their owners answer them now), so that those sessions live on.
	shutdowns := []func(context.Context) error{sio.Shutdown, upgrader.Shutdown, cl.drain}
	if engine != nil {
		shutdowns = append(shutdowns, engine.Shutdown)
	}
	errs := make([]error, len(shutdowns))
	var wg sync.WaitGroup
	for i, f := range shutdowns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(shutdownCtx)
		}()
	}
	wg.Wait()
	err = errors.Join(append(errs, srv.Shutdown(shutdownCtx))...)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: connections still open after --shutdown-timeout %v were cut: %w", c.shutdownTimeout, err)
	}
	if err == nil {
		logger.Info("duplex serve stopped")
	}
	return err
}

// printURLs prints where the servers answer; the first line names the page to open in a
// browser and the echo's URL.
func printURLs(w io.Writer, addr net.Addr, secure bool, c *serveConfig, sio *socketio.Server, engine *engineio.Server) {
	scheme, wsScheme := "http", "ws"
	if secure {
		scheme, wsScheme = "https", "wss"
	}
	host := browserHost(addr)
	base := scheme + "://" + host
	fmt.Fprintf(w, "duplex serving: open %s/ in a browser (WebSocket echo at %s://%s/echo)\n", base, wsScheme, host)
	what := "Socket.IO"
	if c.fixture {
		what = "Socket.IO fixture"
	}
	e := sio.Engine()
	fmt.Fprintf(w, "%s at %s%s (ping interval %v, ping timeout %v, max payload %d)\n",
		what, base, c.path, durationOr(e.PingInterval, engineio.DefaultPingInterval),
		durationOr(e.PingTimeout, engineio.DefaultPingTimeout), int64Or(e.MaxHTTPBufferSize, engineio.DefaultMaxHTTPBufferSize))
	if engine != nil {
		fmt.Fprintf(w, "Engine.IO fixture at %s%s (ping interval %v, ping timeout %v, max payload %d)\n",
			base, engineio.DefaultPath, engine.PingInterval, engine.PingTimeout, engine.MaxHTTPBufferSize)
	}
	fmt.Fprintf(w, "health at %s/healthz, Prometheus metrics at %s/metrics\n", base, base)
}

// browserHost returns the host:port a browser on this machine reaches addr at: the
// loopback address for a listener on every address.
func browserHost(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		ip := "127.0.0.1"
		if ta.IP.To4() == nil {
			ip = "::1"
		}
		return net.JoinHostPort(ip, fmt.Sprint(ta.Port))
	}
	return addr.String()
}

// healthHandler answers 200 "ok" while the server serves and 503 once it is shutting down.
func healthHandler(draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok")
	})
}

// originList is the value of --cors-origin: origins or patterns, from repeated flags or
// comma-separated lists.
type originList []string

func (l *originList) String() string { return strings.Join(*l, ",") }

func (l *originList) Set(v string) error {
	for o := range strings.SplitSeq(v, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if _, err := path.Match(strings.ToLower(o), ""); err != nil {
			return fmt.Errorf("bad origin pattern %q: %v", o, err)
		}
		*l = append(*l, o)
	}
	return nil
}

// matches reports whether origin is one of the list, with the patterns of
// ws.Upgrader.AllowedOrigins (path.Match, case-insensitive; "*" for any).
func (l originList) matches(origin string) bool {
	lower := strings.ToLower(origin)
	for _, p := range l {
		if p == "*" {
			return true
		}
		if ok, _ := path.Match(strings.ToLower(p), lower); ok {
			return true
		}
	}
	return false
}

// allows reports whether a handshake request may proceed: it has no Origin (not a
// browser), comes from the server's own origin, or from one of the list, the policy of
// ws.Upgrader with AllowedOrigins.
func (l originList) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return l.matches(origin)
}

var errOriginNotAllowed = errors.New("origin not allowed")

// applyTo gives an Engine.IO server the origin policy: CORS headers for the listed origins,
// and handshakes (polling and WebSocket) refused with 403 from other origins.
func (l originList) applyTo(e *engineio.Server) {
	switch {
	case len(l) == 0:
		e.CORS = nil
	case l.matches("*"):
		e.CORS = &engineio.CORSOptions{Origins: []string{"*"}}
		e.AllowRequest = nil
		return
	default:
		e.CORS = &engineio.CORSOptions{AllowOrigin: l.matches}
	}
	e.AllowRequest = func(r *http.Request) error {
		if !l.allows(r) {
			return errOriginNotAllowed
		}
		return nil
	}
}

// echoHandler answers every WebSocket message with the same type and payload, counting
// connections, messages and closes in m. With a loop, the connections are served on it.
func echoHandler(upgrader *ws.Upgrader, loop *ws.EventLoop, logger *slog.Logger, m *metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			m.echoRefused(err)
			logger.Info("echo: handshake refused", "peer", r.RemoteAddr, "err", err)
			return
		}
		e := &echoEvents{logger: logger, m: m, peer: r.RemoteAddr}
		if loop != nil {
			if err := loop.Serve(c, e); err != nil {
				c.CloseNow() // the loop is closed: the server is shutting down
			}
			return
		}
		defer c.CloseNow()
		e.OnOpen(c)
		// The connection outlives r.Context's usefulness: ending it is the close handshake's job.
		ctx := context.Background()
		var buf []byte
		for {
			typ, msg, err := c.AppendMessage(ctx, buf[:0])
			if err == nil {
				err = e.echo(c, typ, msg)
			}
			if err != nil {
				e.OnClose(c, err)
				return
			}
			buf = msg
		}
	})
}

// echoEvents is one echo connection's events: what the goroutine of echoHandler does with
// each, and the ws.EventHandler of a connection served by an event loop.
type echoEvents struct {
	logger *slog.Logger
	m      *metrics
	peer   string
}

// OnOpen counts the connection.
func (e *echoEvents) OnOpen(*ws.Conn) {
	e.m.echo.connections.Inc()
	e.logger.Debug("echo: connected", "peer", e.peer)
}

// OnMessage sends the message back; a failed write ends the connection (OnClose reports it).
func (e *echoEvents) OnMessage(c *ws.Conn, typ ws.MessageType, msg []byte) {
	if e.echo(c, typ, msg) != nil {
		c.CloseNow()
	}
}

// echo sends msg back, counting it both ways.
func (e *echoEvents) echo(c *ws.Conn, typ ws.MessageType, msg []byte) error {
	t := &e.m.echo
	t.messagesIn.Inc()
	t.bytesIn.Add(float64(len(msg)))
	if err := c.WriteMessage(context.Background(), typ, msg); err != nil {
		return err
	}
	t.messagesOut.Inc()
	t.bytesOut.Add(float64(len(msg)))
	return nil
}

// OnClose counts and logs how the connection ended.
func (e *echoEvents) OnClose(_ *ws.Conn, err error) {
	e.m.echo.connections.Dec()
	e.m.echoClosed(err)
	if code := ws.CloseStatus(err); code != ws.StatusNormalClosure && code != ws.StatusGoingAway {
		e.logger.Info("echo: connection ended", "peer", e.peer, "err", err)
	} else {
		e.logger.Debug("echo: connection closed", "peer", e.peer, "code", int(code))
	}
}

// durationOr returns d, or def when d is 0 (a server option left at its default).
func durationOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// int64Or returns n, or def when n is 0.
func int64Or(n, def int64) int64 {
	if n == 0 {
		return def
	}
	return n
}
