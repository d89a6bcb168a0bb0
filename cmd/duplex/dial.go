package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/duplexio/duplex/ws"
)

const dialUsage = `usage: duplex dial [flags] ws://host:port/path
       duplex dial --sio [flags] http://host:port[/namespace]

Connects to a WebSocket server. Each line read from stdin is sent as a text message (without
its newline); each message received is printed on stdout, one per line:

  < [15:04:05.000] text: hello
  < [15:04:05.000] binary (3 bytes): 0001ff

Newlines and carriage returns inside a text message are printed as \n and \r. Lines that
start with a slash are commands:

  /close [code [reason]]   close with that code (default 1000) and reason
  /ping [payload]          send a ping
  //...                    send the line without its first slash

When stdin ends, incoming messages are printed for --wait longer, then the connection is
closed with --close-code and --close-reason. Interrupting (Ctrl-C) closes with 1001 (going
away). How the connection ended is printed on stderr. Exit status: 0 after a normal close
(1000, 1001 or none from the peer, or a close this side asked for and the peer answered),
1 when the handshake fails or the connection ends otherwise, 2 for usage errors.
`

// dialConfig holds the parsed flags of "duplex dial".
type dialConfig struct {
	url          string
	headers      stringList
	subprotocols stringList
	origin       string
	binary       bool
	base64       bool
	compress     bool
	ping         time.Duration
	closeCode    int
	closeReason  string
	timeout      time.Duration
	wait         time.Duration
	insecure     bool
	timestamps   bool
	verbose      bool
	sio          sioConfig // --sio and its flags (dial_sio.go)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ", ") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// parseDialFlags parses the command line of "duplex dial". Flags may come before or after the
// URL; exactly one URL is required.
func parseDialFlags(args []string, stderr io.Writer) (*dialConfig, error) {
	cfg := &dialConfig{}
	fs := flag.NewFlagSet("dial", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, dialUsage+dialSIOUsage+"\nflags:\n")
		fs.PrintDefaults()
	}
	fs.Var(&cfg.headers, "H", "add a handshake request `header`, given as 'Name: value' (repeatable; the handshake's own headers and Host cannot be set)")
	fs.Var(&cfg.subprotocols, "subprotocol", "offer a `subprotocol` (repeatable, in order of preference)")
	fs.StringVar(&cfg.origin, "origin", "", "send this Origin header")
	fs.BoolVar(&cfg.binary, "binary", false, "stdin lines are hex, decoded and sent as binary messages")
	fs.BoolVar(&cfg.base64, "base64", false, "with --binary, stdin lines are standard base64 instead of hex (implies --binary)")
	fs.BoolVar(&cfg.compress, "compress", false, "offer permessage-deflate compression")
	fs.DurationVar(&cfg.ping, "ping", 0, "ping every `interval` and give up when no pong arrives within the same interval (0: never)")
	fs.IntVar(&cfg.closeCode, "close-code", int(ws.StatusNormalClosure), "close `code` sent when stdin ends")
	fs.StringVar(&cfg.closeReason, "close-reason", "", "close `reason` sent when stdin ends")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "bound for connecting and the opening handshake")
	fs.DurationVar(&cfg.wait, "wait", time.Second, "after stdin ends, keep printing incoming messages this long before closing")
	fs.BoolVar(&cfg.insecure, "insecure", false, "for wss://, accept any server certificate (self-signed ones included)")
	fs.BoolVar(&cfg.timestamps, "timestamps", true, "print the time of each message")
	fs.BoolVar(&cfg.verbose, "verbose", false, "also print outgoing messages, pings and pongs")
	cfg.sio.addFlags(fs)

	// The flag package stops at the first argument that is not a flag; parse again after
	// the URL so that flags may follow it.
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
	if cfg.base64 {
		cfg.binary = true
	}
	if !validCloseCode(cfg.closeCode) {
		return nil, fmt.Errorf("--close-code %d cannot be sent (want 1000-1003, 1007-1014 or 3000-4999)", cfg.closeCode)
	}
	for _, h := range cfg.headers {
		name, _, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
	}
	if cfg.ping < 0 || cfg.wait < 0 || cfg.timeout < 0 {
		return nil, errors.New("--ping, --wait and --timeout cannot be negative")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := cfg.sio.check(cfg, set); err != nil {
		return nil, err
	}
	return cfg, nil
}

// validCloseCode reports whether code may be sent in a close frame (RFC 6455 §7.4).
func validCloseCode(code int) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// dialOptions turns the flags into ws.DialOptions.
func (cfg *dialConfig) dialOptions() *ws.DialOptions {
	opts := &ws.DialOptions{
		Header:           http.Header{},
		Subprotocols:     cfg.subprotocols,
		HandshakeTimeout: cfg.timeout,
	}
	for _, h := range cfg.headers {
		name, value, _ := strings.Cut(h, ":")
		opts.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if cfg.origin != "" {
		opts.Header.Set("Origin", cfg.origin)
	}
	if cfg.compress {
		opts.Compression = &ws.CompressionOptions{}
	}
	if cfg.insecure {
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	return opts
}

// printer writes the session's lines to stdout and stderr; it is safe for concurrent use.
type printer struct {
	mu             sync.Mutex
	stdout, stderr io.Writer
	timestamps     bool
}

// message prints one line on stdout: dir is "<" (incoming) or ">" (outgoing).
func (p *printer) message(dir, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.timestamps {
		fmt.Fprintf(p.stdout, "%s [%s] %s\n", dir, time.Now().Format("15:04:05.000"), text)
	} else {
		fmt.Fprintf(p.stdout, "%s %s\n", dir, text)
	}
}

// errorf prints one line on stderr.
func (p *printer) errorf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.stderr, format+"\n", args...)
}

var lineBreaks = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// describe renders a data message as printed after the direction and time.
func describe(typ ws.MessageType, data []byte) string {
	if typ == ws.MessageText {
		return "text: " + lineBreaks.Replace(string(data))
	}
	return fmt.Sprintf("binary (%d bytes): %s", len(data), hex.EncodeToString(data))
}

// stdinLine is a line read from stdin, or the error that ended stdin.
type stdinLine struct {
	text string
	err  error
}

// readLines sends stdin's lines (without their line ending) on out, then the error that ended
// the input (io.EOF at its end). It returns as soon as done is closed, once its current read
// returns.
func readLines(stdin io.Reader, out chan<- stdinLine, done <-chan struct{}) {
	br := bufio.NewReader(stdin)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			select {
			case out <- stdinLine{text: line}:
			case <-done:
				return
			}
		}
		if err != nil {
			select {
			case out <- stdinLine{err: err}:
			case <-done:
			}
			return
		}
	}
}

// watchStdin reads stdin's lines on a goroutine of its own (see readLines). stop ends that
// goroutine: it interrupts a read in progress when stdin allows it (see interruptRead) and
// then waits at most a second for the goroutine; a read that cannot be interrupted ends
// the goroutine when it returns.
func watchStdin(stdin io.Reader) (lines chan stdinLine, stop func()) {
	lines = make(chan stdinLine)
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		readLines(stdin, lines, done)
	}()
	return lines, func() {
		close(done)
		select {
		case <-exited:
		default:
			if interruptRead(stdin) {
				select {
				case <-exited:
				case <-time.After(time.Second):
				}
			}
		}
	}
}

// interruptRead makes a read blocked on r return, when r allows it: by a read deadline in the
// past (pollable files, network connections) or else by closing it. It reports whether it
// could.
func interruptRead(r io.Reader) bool {
	if d, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Unix(1, 0)) == nil {
		return true
	}
	if c, ok := r.(io.Closer); ok {
		return c.Close() == nil
	}
	return false
}

// session is one connection of "duplex dial".
type session struct {
	cfg *dialConfig
	c   *ws.Conn
	out *printer

	// What this side sent in its close frame, once it decided to close.
	closing     bool
	closeCode   ws.StatusCode
	closeReason string

	// The --ping goroutine: its result (nil without --ping) and how to stop it.
	keepAliveDone chan error
	stopKeepAlive context.CancelFunc
}

// dial runs "duplex dial": it connects, relays stdin and the connection until one of them
// ends (or ctx is done), and returns the exit status.
//
// stdin is read on a goroutine of its own. When dial returns before stdin has ended (the peer
// closed, or ctx was cancelled), it interrupts the pending read (see interruptRead: a pipe
// from io.Pipe or a net.Conn is closed or timed out, and the goroutine is waited for). A
// reader that cannot be interrupted, such as a terminal on os.Stdin, keeps its goroutine
// until that read returns, which it then abandons; the command exits at that point anyway.
func dial(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := parseDialFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "duplex dial:", err)
		fmt.Fprintln(stderr, `run "duplex dial -h" for usage`)
		return 2
	}
	if cfg.sio.enabled {
		return dialSIO(ctx, cfg, stdin, stdout, stderr)
	}
	c, _, err := ws.Dial(ctx, cfg.url, cfg.dialOptions())
	if err != nil {
		fmt.Fprintln(stderr, "duplex dial:", err)
		var he *ws.HandshakeError
		if errors.As(err, &he) && len(he.Body) > 0 {
			fmt.Fprintf(stderr, "response body:\n%s\n", strings.TrimRight(string(he.Body), "\r\n"))
		}
		return 1
	}
	defer c.CloseNow()
	s := &session{cfg: cfg, c: c, out: &printer{stdout: stdout, stderr: stderr, timestamps: cfg.timestamps}}
	s.connected()
	return s.run(ctx, stdin)
}

// connected reports the handshake's outcome on stderr.
func (s *session) connected() {
	msg := "connected to " + s.cfg.url
	if p := s.c.Subprotocol(); p != "" {
		msg += fmt.Sprintf(" (subprotocol %q)", p)
	}
	if e := s.c.Compression(); e != "" {
		msg += fmt.Sprintf(" (compression %q)", e)
	}
	s.out.errorf("%s", msg)
}

// run relays until the connection ends and returns the exit status.
func (s *session) run(ctx context.Context, stdin io.Reader) int {
	if s.cfg.verbose {
		s.c.SetPongHandler(func(data []byte) { s.out.message("<", fmt.Sprintf("pong: %q", data)) })
	}

	// The reading goroutine prints every message and ends with the error that ended the
	// connection.
	readDone := make(chan error, 1)
	go func() {
		var buf []byte
		for {
			typ, msg, err := s.c.AppendMessage(context.Background(), buf[:0])
			if err != nil {
				readDone <- err
				return
			}
			buf = msg
			s.out.message("<", describe(typ, msg))
		}
	}()

	// KeepAlive closes the connection when the peer stops answering; the reading goroutine
	// then ends, and finish asks KeepAlive why.
	kaCtx, stopKeepAlive := context.WithCancel(context.Background())
	s.stopKeepAlive = stopKeepAlive
	defer stopKeepAlive()
	if s.cfg.ping > 0 {
		s.keepAliveDone = make(chan error, 1)
		go func() { s.keepAliveDone <- s.c.KeepAlive(kaCtx, s.cfg.ping, s.cfg.ping) }()
	}

	lines, stopStdin := watchStdin(stdin)
	defer stopStdin()

	var waitTimer <-chan time.Time
	for {
		select {
		case l := <-lines:
			if l.err != nil {
				lines = nil
				if l.err != io.EOF {
					s.out.errorf("duplex dial: reading stdin: %v", l.err)
				}
				if s.cfg.wait == 0 {
					s.close(ws.StatusCode(s.cfg.closeCode), s.cfg.closeReason)
					return s.finish(readDone)
				}
				waitTimer = time.After(s.cfg.wait)
				continue
			}
			if err := s.handleLine(ctx, l.text); err != nil {
				if errors.Is(err, errCloseRequested) {
					return s.finish(readDone)
				}
				s.out.errorf("duplex dial: %v", err)
				s.c.CloseNow()
				return s.finish(readDone)
			}
		case <-waitTimer:
			s.close(ws.StatusCode(s.cfg.closeCode), s.cfg.closeReason)
			return s.finish(readDone)
		case err := <-readDone:
			readDone <- err
			return s.finish(readDone)
		case <-ctx.Done():
			s.close(ws.StatusGoingAway, "")
			return s.finish(readDone)
		}
	}
}

// errCloseRequested is returned by handleLine after a /close command has closed the connection.
var errCloseRequested = errors.New("close requested")

// handleLine sends what a line of stdin asks for. A line that cannot be sent is reported on
// stderr and skipped; the error returned ends the session.
func (s *session) handleLine(ctx context.Context, line string) error {
	switch {
	case line == "/close" || strings.HasPrefix(line, "/close "):
		code, reason := ws.StatusNormalClosure, ""
		if f := strings.TrimSpace(strings.TrimPrefix(line, "/close")); f != "" {
			num, rest, _ := strings.Cut(f, " ")
			n, err := strconv.Atoi(num)
			if err != nil || !validCloseCode(n) {
				s.out.errorf("duplex dial: /close %s: want a code of 1000-1003, 1007-1014 or 3000-4999", num)
				return nil
			}
			code, reason = ws.StatusCode(n), rest
		}
		s.close(code, reason)
		return errCloseRequested
	case line == "/ping" || strings.HasPrefix(line, "/ping "):
		payload := strings.TrimPrefix(strings.TrimPrefix(line, "/ping"), " ")
		if len(payload) > 125 {
			s.out.errorf("duplex dial: /ping: payload of %d bytes, at most 125 fit in a ping", len(payload))
			return nil
		}
		if s.cfg.verbose {
			s.out.message(">", fmt.Sprintf("ping: %q", payload))
		}
		return s.c.Ping(ctx, []byte(payload))
	case strings.HasPrefix(line, "//"):
		line = line[1:]
	}

	typ, data := ws.MessageText, []byte(line)
	if s.cfg.binary {
		typ = ws.MessageBinary
		var err error
		if s.cfg.base64 {
			data, err = base64.StdEncoding.DecodeString(strings.TrimSpace(line))
		} else {
			data, err = hex.DecodeString(strings.TrimSpace(line))
		}
		if err != nil {
			enc := "hex"
			if s.cfg.base64 {
				enc = "base64"
			}
			s.out.errorf("duplex dial: skipping line %q: not %s: %v", line, enc, err)
			return nil
		}
	} else if !utf8.ValidString(line) {
		s.out.errorf("duplex dial: skipping line %q: a text message must be UTF-8 (use --binary for bytes)", line)
		return nil
	}
	if s.cfg.verbose {
		s.out.message(">", describe(typ, data))
	}
	return s.c.WriteMessage(ctx, typ, data)
}

// close starts the closing handshake with code and reason. The reading goroutine keeps
// printing what the peer sent before it saw our close (echoes of our last lines, typically),
// then receives the peer's close frame; ws bounds that wait.
func (s *session) close(code ws.StatusCode, reason string) {
	s.closing, s.closeCode, s.closeReason = true, code, reason
	if s.cfg.verbose {
		s.out.message(">", "close: "+closeText(code, reason))
	}
	if err := s.c.StartClose(code, reason); err != nil {
		s.c.CloseNow()
	}
}

// closeText renders a close code and its reason, when there is one.
func closeText(code ws.StatusCode, reason string) string {
	if reason == "" {
		return strconv.Itoa(int(code))
	}
	return fmt.Sprintf("%d %q", code, reason)
}

// finish waits for the reading goroutine's end (the connection is closed or closing, so it
// comes soon), reports how the connection ended on stderr and returns the exit status.
func (s *session) finish(readDone <-chan error) int {
	if !s.closing {
		s.c.CloseNow() // ends the read; after our close, the handshake ends it instead
	}
	err := <-readDone
	s.stopKeepAlive()
	keepAliveTimedOut := false
	if s.keepAliveDone != nil {
		keepAliveTimedOut = errors.Is(<-s.keepAliveDone, ws.ErrKeepAliveTimeout)
	}
	var ce *ws.CloseError
	isClose := errors.As(err, &ce)
	switch {
	case s.closing && isClose && ce.Remote:
		s.out.errorf("closed: %s by us", closeText(s.closeCode, s.closeReason))
		return 0
	case s.closing:
		s.out.errorf("closed: %s by us; the peer did not answer the close: %v", closeText(s.closeCode, s.closeReason), err)
		return 1
	case keepAliveTimedOut:
		s.out.errorf("closed: no pong within %v; the connection was dropped", s.cfg.ping)
		return 1
	case isClose && ce.Remote:
		s.out.errorf("closed: %s by peer", closeText(ce.Code, ce.Reason))
		switch ce.Code {
		case ws.StatusNormalClosure, ws.StatusGoingAway, ws.StatusNoStatusReceived:
			return 0
		}
		return 1
	case isClose && ce.Code == ws.StatusAbnormalClosure:
		s.out.errorf("closed: %s (abnormal closure)", closeText(ce.Code, ce.Reason))
		return 1
	case isClose:
		s.out.errorf("closed: %s by us", closeText(ce.Code, ce.Reason))
		return 1
	default:
		s.out.errorf("closed: %v", err)
		return 1
	}
}
