package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
)

const dialSIOUsage = `
With --sio, dial speaks Socket.IO (http://, https://, ws:// or wss:// URL of the server; its
path, when there is one, is the namespace unless --namespace is given). Each stdin line is
a command:

  emit EVENT [ARG...]   emit EVENT with the arguments, JSON values separated by spaces;
                        EVENT may be a JSON string ("my event") when it has spaces
  disconnect            leave the namespace and end the session

Incoming events and, with --ack, the acknowledgements print on stdout, one per line:

  [15:04:05.000] news ["hello",{"n":1}]
  [15:04:05.000] ack ["hello"]

The arguments are a JSON array; a binary argument (also nested) reads {"$binary":"<base64>"},
and an emit argument written so is sent as binary. An event whose name is "ack" or is not
a single word prints with its name as a JSON string. With --ack, each emit waits for its
ack (at most --ack-timeout) before the next line is read, so acks print in line order
(events print as they come: one that came before an ack may print just after it).
A malformed line is reported on stderr and skipped. Connection events (connected,
connect_error, disconnect, reconnection attempts) print on stderr. When stdin ends,
incoming events print for --wait longer, then the socket disconnects. Exit status: 0 after
stdin ended, a disconnect command, an interrupt or a disconnect by the server; 1 when
connecting fails (connect_error, dial error, --timeout) or the connection is lost for
good; 2 for usage errors. The flags --subprotocol, --binary, --base64, --ping,
--close-code, --close-reason and --verbose are for WebSocket only.
`

// sioConfig holds the flags of "duplex dial" that belong to --sio.
type sioConfig struct {
	enabled     bool
	ack         bool
	ackTimeout  time.Duration
	namespace   string
	auth        string
	transport   string
	path        string
	noReconnect bool
	attempts    int
}

// addFlags registers the --sio flags on the flag set of "duplex dial".
func (c *sioConfig) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.enabled, "sio", false, "speak Socket.IO instead of plain WebSocket (see above)")
	fs.BoolVar(&c.ack, "ack", false, "with --sio, ask for an acknowledgement of each emit and print it")
	fs.DurationVar(&c.ackTimeout, "ack-timeout", 10*time.Second, "with --sio --ack, how long to wait for each ack")
	fs.StringVar(&c.namespace, "namespace", "/", "with --sio, the `namespace` to connect to")
	fs.StringVar(&c.auth, "auth", "", "with --sio, the auth payload of the CONNECT packet, a JSON `object`")
	fs.StringVar(&c.transport, "transport", "", "with --sio, `polling` or websocket only (default: polling, then upgrade to websocket)")
	fs.StringVar(&c.path, "path", socketio.DefaultPath, "with --sio, the server's Engine.IO `path`")
	fs.BoolVar(&c.noReconnect, "no-reconnect", false, "with --sio, end the session when the connection is lost instead of reconnecting")
	fs.IntVar(&c.attempts, "reconnect-attempts", 0, "with --sio, give up after this many reconnection attempts in a row (0: never)")
}

// check validates the flags once parsed; set holds the names of the flags given.
func (c *sioConfig) check(cfg *dialConfig, set map[string]bool) error {
	if !c.enabled {
		for _, name := range []string{"ack", "ack-timeout", "namespace", "auth", "transport", "path", "no-reconnect", "reconnect-attempts"} {
			if set[name] {
				return fmt.Errorf("--%s needs --sio", name)
			}
		}
		return nil
	}
	for _, name := range []string{"subprotocol", "binary", "base64", "ping", "close-code", "close-reason", "verbose"} {
		if set[name] {
			return fmt.Errorf("--%s is for WebSocket, not --sio", name)
		}
	}
	u, err := url.Parse(cfg.url)
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "http", "https", "ws", "wss":
	default:
		return fmt.Errorf("--sio wants an http://, https://, ws:// or wss:// URL, not %q", cfg.url)
	}
	if !set["namespace"] && u.Path != "" && u.Path != "/" {
		c.namespace = u.Path
	}
	if !strings.HasPrefix(c.namespace, "/") {
		c.namespace = "/" + c.namespace
	}
	if c.auth != "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(c.auth), &obj); err != nil || obj == nil {
			return fmt.Errorf("--auth %s: want a JSON object", c.auth)
		}
	}
	switch c.transport {
	case "", "polling", "websocket":
	default:
		return fmt.Errorf("--transport %q: want polling or websocket", c.transport)
	}
	if c.ackTimeout <= 0 || c.attempts < 0 {
		return errors.New("--ack-timeout must be positive and --reconnect-attempts not negative")
	}
	return nil
}

// managerURL returns the URL given without its path (which names the namespace).
func (c *sioConfig) managerURL(raw string) string {
	u, _ := url.Parse(raw) // checked by check
	u.Path, u.RawPath = "", ""
	return u.String()
}

// transports returns the engineio.ClientOptions.Transports of --transport.
func (c *sioConfig) transports() []string {
	if c.transport == "" {
		return nil // polling, then the upgrade
	}
	return []string{c.transport}
}

// sioOut prints the lines of a --sio session. It is safe for concurrent use; once closed
// (the session is over) it prints nothing more, so that a handler running late cannot
// write after dial returned.
type sioOut struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	timestamps     bool
	closed         bool
}

// line prints one line on stdout, after the time with --timestamps.
func (o *sioOut) line(text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	if o.timestamps {
		fmt.Fprintf(o.stdout, "[%s] %s\n", time.Now().Format("15:04:05.000"), text)
	} else {
		fmt.Fprintln(o.stdout, text)
	}
}

// info prints one line on stderr.
func (o *sioOut) info(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.closed {
		fmt.Fprintf(o.stderr, format+"\n", args...)
	}
}

func (o *sioOut) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// sioSession is one "duplex dial --sio" session.
type sioSession struct {
	cfg  *dialConfig
	m    *socketio.Manager
	sock *socketio.ClientSocket
	out  *sioOut

	connectedOnce atomic.Bool
	firstErr      chan error    // a connection error before the first connection
	ended         chan int      // the exit status, when the connection ends for good
	disconnected  chan struct{} // OnDisconnect with "io client disconnect" ran
	closing       atomic.Bool   // disconnect has begun
	managerClosed chan struct{} // the Manager's OnClose ran after disconnect began
}

// end reports that the session is over with status; the first report wins.
func (s *sioSession) end(status int) {
	select {
	case s.ended <- status:
	default:
	}
}

// dialSIO runs "duplex dial --sio" and returns the exit status.
func dialSIO(ctx context.Context, cfg *dialConfig, stdin io.Reader, stdout, stderr io.Writer) int {
	out := &sioOut{stdout: stdout, stderr: stderr, timestamps: cfg.timestamps}
	wsOpts := cfg.dialOptions() // -H, --origin and --insecure, as for WebSocket
	mopts := &socketio.ManagerOptions{
		Engine: engineio.ClientOptions{
			Path:        cfg.sio.path,
			Transports:  cfg.sio.transports(),
			Header:      wsOpts.Header,
			TLSConfig:   wsOpts.TLSConfig,
			Compression: cfg.compress,
		},
		NoReconnect:          cfg.sio.noReconnect,
		ReconnectionAttempts: cfg.sio.attempts,
		Timeout:              cfg.timeout,
		Logger:               slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	sopts := &socketio.ClientSocketOptions{}
	if cfg.sio.auth != "" {
		sopts.Auth = json.RawMessage(cfg.sio.auth)
	}
	m := socketio.NewManager(cfg.sio.managerURL(cfg.url), mopts)
	s := &sioSession{
		cfg:           cfg,
		m:             m,
		sock:          m.Socket(cfg.sio.namespace, sopts),
		out:           out,
		firstErr:      make(chan error, 1),
		ended:         make(chan int, 1),
		disconnected:  make(chan struct{}),
		managerClosed: make(chan struct{}),
	}
	s.handle()
	defer out.close()
	if err := s.connect(ctx); err != nil {
		out.info("connect_error: %s", describeConnectError(err))
		m.Close()
		return 1
	}
	s.printConnected()
	return s.run(ctx, stdin)
}

// handle registers the handlers that print what happens.
func (s *sioSession) handle() {
	var once sync.Once
	var connects atomic.Int64
	s.sock.OnConnect(func() {
		if connects.Add(1) > 1 { // the first is printed by dialSIO, once Connect returned
			s.printConnected()
		}
	})
	s.sock.OnConnectError(func(err error) {
		if !s.connectedOnce.Load() {
			// connect reports it, before dial returns.
			select {
			case s.firstErr <- err:
			default:
			}
			return
		}
		s.out.info("connect_error: %s", describeConnectError(err))
		var ce *socketio.ConnectError
		if errors.As(err, &ce) {
			s.end(1) // refused by the server: no retry
		}
	})
	s.sock.OnDisconnect(func(reason string) {
		s.out.info("disconnect: %s", reason)
		switch {
		case reason == socketio.ReasonIOClientDisconnect:
			once.Do(func() { close(s.disconnected) })
		case reason == socketio.ReasonIOServerDisconnect:
			s.end(0)
		case s.cfg.sio.noReconnect:
			s.end(1)
		}
	})
	s.sock.OnAny(func(event string, args socketio.Args) {
		s.out.line(printableEvent(event) + " " + renderArgs(args))
	})
	var closeOnce sync.Once
	s.m.OnClose(func(string, error) {
		if s.closing.Load() {
			closeOnce.Do(func() { close(s.managerClosed) })
		}
	})
	s.m.OnReconnectAttempt(func(n int) { s.out.info("reconnecting: attempt %d", n) })
	s.m.OnReconnect(func(n int) { s.out.info("reconnected after %d attempt(s)", n) })
	s.m.OnReconnectFailed(func() {
		s.out.info("reconnection failed: %d attempts in a row, giving up", s.cfg.sio.attempts)
		s.end(1)
	})
}

// printConnected reports the socket's connection on stderr.
func (s *sioSession) printConnected() {
	transport := "none"
	if e := s.m.Engine(); e != nil {
		transport = e.Transport()
	}
	s.out.info("connected: id %s, namespace %s, transport %s", s.sock.ID(), s.sock.Namespace(), transport)
}

// connect connects the socket for the first time. Unlike later reconnections, a first
// connection that fails in any way ends the session.
func (s *sioSession) connect(ctx context.Context) error {
	cctx, cancel := context.WithCancel(ctx)
	if s.cfg.timeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, s.cfg.timeout)
	}
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.sock.Connect(cctx) }()
	var err error
	select {
	case err = <-done:
	case err = <-s.firstErr:
		cancel()
		<-done
	}
	switch {
	case err == nil:
		s.connectedOnce.Store(true)
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("not connected after %v (--timeout)", s.cfg.timeout)
	}
	return err
}

// describeConnectError renders the error of a failed connection: the server's message and
// data for a refusal.
func describeConnectError(err error) string {
	var ce *socketio.ConnectError
	if !errors.As(err, &ce) {
		return err.Error()
	}
	msg := ce.Message
	if raw, ok := ce.Data.(json.RawMessage); ok && len(raw) > 0 {
		var b bytes.Buffer
		if json.Compact(&b, raw) == nil {
			msg += " " + b.String()
		}
	} else if ce.Data != nil {
		if j, err := json.Marshal(ce.Data); err == nil {
			msg += " " + string(j)
		}
	}
	return msg
}

// run relays stdin's commands until stdin ends, the session ends or ctx is done, then
// disconnects. It returns the exit status.
func (s *sioSession) run(ctx context.Context, stdin io.Reader) int {
	lines, stopStdin := watchStdin(stdin)
	defer stopStdin()

	var waitTimer <-chan time.Time
	for {
		select {
		case l := <-lines:
			if l.err != nil {
				lines = nil
				if l.err != io.EOF {
					s.out.info("duplex dial: reading stdin: %v", l.err)
				}
				if s.cfg.wait == 0 {
					return s.disconnect(0)
				}
				waitTimer = time.After(s.cfg.wait)
				continue
			}
			if status, done := s.handleLine(ctx, l.text); done {
				return status
			}
		case <-waitTimer:
			return s.disconnect(0)
		case status := <-s.ended:
			return s.disconnect(status)
		case <-ctx.Done():
			return s.disconnect(0)
		}
	}
}

// handleLine carries out one stdin line. It reports the exit status and true when the
// line ended the session.
func (s *sioSession) handleLine(ctx context.Context, line string) (int, bool) {
	cmd, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch cmd {
	case "":
		return 0, false
	case "disconnect":
		return s.disconnect(0), true
	case "emit":
	default:
		s.out.info("duplex dial: skipping line %q: want emit EVENT [JSON args...] or disconnect", line)
		return 0, false
	}
	event, args, err := parseEmit(rest)
	if err != nil {
		s.out.info("duplex dial: skipping line %q: %v", line, err)
		return 0, false
	}
	if !s.cfg.sio.ack {
		if err := s.sock.Emit(event, args...); err != nil {
			s.out.info("duplex dial: emit %s: %v", printableEvent(event), err)
		}
		return 0, false
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.sio.ackTimeout)
	defer cancel()
	answer := make(chan error, 1)
	var got socketio.Args
	go func() {
		var err error
		got, err = s.sock.EmitWithAck(actx, event, args...)
		answer <- err
	}()
	select {
	case err = <-answer:
	case status := <-s.ended:
		cancel()
		<-answer
		return s.disconnect(status), true
	}
	switch {
	case err == nil:
		s.out.line("ack " + renderArgs(got))
	case errors.Is(err, context.DeadlineExceeded):
		s.out.info("duplex dial: no ack for %s within %v", printableEvent(event), s.cfg.sio.ackTimeout)
	case ctx.Err() != nil:
		return s.disconnect(0), true
	default:
		s.out.info("duplex dial: emit %s: %v", printableEvent(event), err)
	}
	return 0, false
}

// disconnect leaves the namespace, closes the connection and returns status once the
// handlers have run (within 2 s).
func (s *sioSession) disconnect(status int) int {
	wasConnected, hadEngine := s.sock.Connected(), s.m.Engine() != nil
	s.closing.Store(true)
	s.m.Close()
	// The socket's handlers run in order, and so do the Manager's: OnDisconnect and OnClose
	// come after the ones queued before them (events, reconnection reports).
	timeout := time.After(2 * time.Second)
	if wasConnected {
		select {
		case <-s.disconnected:
		case <-timeout:
		}
	}
	if hadEngine {
		select {
		case <-s.managerClosed:
		case <-timeout:
		}
	}
	s.out.close()
	return status
}

// parseEmit parses what follows "emit": the event name, a word or a JSON string, then
// the arguments, JSON values separated by white space. {"$binary":"<base64>"} stands for
// a binary argument.
func parseEmit(rest string) (string, []any, error) {
	rest = strings.TrimSpace(rest)
	if rest == "" {
		return "", nil, errors.New("no event name")
	}
	var event string
	if rest[0] == '"' {
		dec := json.NewDecoder(strings.NewReader(rest))
		if err := dec.Decode(&event); err != nil {
			return "", nil, fmt.Errorf("event name: %v", err)
		}
		rest = rest[dec.InputOffset():]
		if rest != "" && !unicode.IsSpace(rune(rest[0])) {
			return "", nil, errors.New("event name: want a space after the JSON string")
		}
	} else {
		event, rest, _ = strings.Cut(rest, " ")
	}
	if event == "" {
		return "", nil, errors.New("empty event name")
	}
	dec := json.NewDecoder(strings.NewReader(rest))
	dec.UseNumber()
	var args []any
	for {
		var v any
		err := dec.Decode(&v)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("argument %d: %v", len(args)+1, err)
		}
		v, err = fromBinaryJSON(v)
		if err != nil {
			return "", nil, fmt.Errorf("argument %d: %v", len(args)+1, err)
		}
		args = append(args, v)
	}
	return event, args, nil
}

// fromBinaryJSON replaces each {"$binary":"<base64>"} in v with the bytes.
func fromBinaryJSON(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if b64, ok := x["$binary"].(string); ok && len(x) == 1 {
			b, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("$binary: %v", err)
			}
			return b, nil
		}
		for k, e := range x {
			e, err := fromBinaryJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
	case []any:
		for i, e := range x {
			e, err := fromBinaryJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
	}
	return v, nil
}

// toBinaryJSON replaces each []byte in v, as Args.Decode gives it, with {"$binary":...}.
func toBinaryJSON(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]string{"$binary": base64.StdEncoding.EncodeToString(x)}
	case map[string]any:
		for k, e := range x {
			x[k] = toBinaryJSON(e)
		}
	case []any:
		for i, e := range x {
			x[i] = toBinaryJSON(e)
		}
	}
	return v
}

var placeholderKey = []byte(`"_placeholder"`)

// renderArgs renders arguments as a JSON array on one line. An argument without binary
// values is printed as its JSON text (compacted); one with binary values is decoded, its
// binary values written as {"$binary":"<base64>"}, and encoded again (its numbers then
// pass through float64, as in JavaScript).
func renderArgs(args socketio.Args) string {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < args.Len(); i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if bin, ok := args.Binary(i); ok {
			b.WriteString(`{"$binary":"`)
			b.WriteString(base64.StdEncoding.EncodeToString(bin))
			b.WriteString(`"}`)
			continue
		}
		raw := args.Raw(i)
		if bytes.Contains(raw, placeholderKey) {
			var v any
			if args.Decode(i, &v) == nil {
				enc := json.NewEncoder(&b)
				enc.SetEscapeHTML(false)
				if enc.Encode(toBinaryJSON(v)) == nil {
					b.Truncate(b.Len() - 1) // Encode's newline
					continue
				}
			}
		}
		n := b.Len()
		if json.Compact(&b, raw) != nil {
			b.Truncate(n)
			b.WriteString(lineBreaks.Replace(string(raw)))
		}
	}
	b.WriteByte(']')
	return b.String()
}

// printableEvent returns an event name as printed: as it is when it is one word other
// than "ack" and does not start with a quote, else as a JSON string.
func printableEvent(name string) string {
	plain := name != "" && name != "ack" && name[0] != '"' && !strings.ContainsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	})
	if plain {
		return name
	}
	j, _ := json.Marshal(name)
	return string(j)
}
