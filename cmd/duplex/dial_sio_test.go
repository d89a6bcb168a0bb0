package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/socketio"
)

// sioTestServer serves, on a loopback httptest server, a Socket.IO server with the demo
// handlers of "duplex serve" (echo acknowledged with its arguments, join, broadcast) and a
// "welcome" event sent to each socket as it connects, with the X-Token header of its
// handshake and a binary argument. With a token, a middleware refuses the sockets whose
// auth does not hold it. It returns the server's http:// URL; the server is shut down at
// the end of the test.
func sioTestServer(t *testing.T, token string) string {
	t.Helper()
	srv := socketio.NewServer(nil)
	if token != "" {
		srv.Use(func(s *socketio.Socket) error {
			var auth struct {
				Token string `json:"token"`
			}
			_ = json.Unmarshal(s.Handshake().Auth, &auth)
			if auth.Token != token {
				return &socketio.ConnectError{Message: "bad token", Data: map[string]int{"code": 4001}}
			}
			return nil
		})
	}
	srv.OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("welcome", s.Handshake().Headers.Get("X-Token"), []byte{0, 1, 0xff})
	})
	addDemoHandlers(srv)
	web := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		web.Close()
	})
	return web.URL
}

// outputLines returns the lines of out, sorted: events and acks print from different
// goroutines, so their order is not fixed.
func outputLines(out string) []string {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	slices.Sort(lines)
	return lines
}

func TestDialSIOEmitsWithAckAndPrintsServerEvents(t *testing.T) {
	before := goleak.IgnoreCurrent()
	for _, tc := range []struct {
		transport string // the --transport flag; "" for the default
		connected string // the transport stderr reports at the connection
	}{
		{"", "transport "}, // polling, or websocket when the upgrade was quick
		{"polling", "transport polling"},
		{"websocket", "transport websocket"},
	} {
		t.Run("transport="+tc.transport, func(t *testing.T) {
			url := sioTestServer(t, "")
			args := []string{"--sio", "--ack", "--timestamps=false", "--wait", "0", "-H", "X-Token: t0k"}
			if tc.transport != "" {
				args = append(args, "--transport", tc.transport)
			}
			stdin := strings.NewReader(`emit echo "hi" 1 {"a":[true,null]}` + "\n" +
				"emit echo {oops\n" + // malformed: reported, and the session goes on
				`emit echo {"$binary":"AAH/"} [{"$binary":""}] 12345678901234567890` + "\n" +
				"emit join room1\n" + // not JSON: skipped too
				"emit echo\n")
			r := runDial(t, context.Background(), stdin, append(args, url)...)
			want := []string{
				`ack ["hi",1,{"a":[true,null]}]`,
				`ack [{"$binary":"AAH/"},[{"$binary":""}],12345678901234567890]`,
				`ack []`,
				`welcome ["t0k",{"$binary":"AAH/"}]`,
			}
			slices.Sort(want)
			if got := outputLines(r.stdout); r.status != 0 || !slices.Equal(got, want) {
				t.Fatalf("status %d, stdout lines %q, want 0 and %q; stderr: %s", r.status, got, want, r.stderr)
			}
			for _, s := range []string{
				"connected: id ", tc.connected,
				`skipping line "emit echo {oops": argument 1: invalid character`,
				`skipping line "emit join room1": argument 1: invalid character`,
				"disconnect: io client disconnect",
			} {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr %q lacks %q", r.stderr, s)
				}
			}
		})
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines left: %v", err)
	}
}

func TestDialSIOWithoutAckOnlyEmits(t *testing.T) {
	url := sioTestServer(t, "")
	// Without --ack the echo handler has nothing to answer: only the welcome prints.
	r := runDial(t, context.Background(), strings.NewReader("emit echo 1\n"), "--sio", "--timestamps=false", "--wait", "200ms", url)
	if want := `welcome ["",{"$binary":"AAH/"}]` + "\n"; r.status != 0 || r.stdout != want {
		t.Fatalf("status %d, stdout %q, want 0 and %q; stderr: %s", r.status, r.stdout, want, r.stderr)
	}
}

func TestDialSIOTimestampsByDefault(t *testing.T) {
	url := sioTestServer(t, "")
	// The ack comes after the welcome: both are printed when dial returns.
	r := runDial(t, context.Background(), strings.NewReader("emit echo\n"), "--sio", "--ack", "--wait", "0", url)
	stamp := regexp.MustCompile(`^\[\d\d:\d\d:\d\d\.\d{3}\] `)
	var got []string
	for _, l := range outputLines(r.stdout) {
		if !stamp.MatchString(l) {
			t.Fatalf("line %q has no timestamp", l)
		}
		got = append(got, stamp.ReplaceAllString(l, ""))
	}
	slices.Sort(got)
	if want := []string{`ack []`, `welcome ["",{"$binary":"AAH/"}]`}; r.status != 0 || !slices.Equal(got, want) {
		t.Fatalf("status %d, stdout %q, want %q; stderr: %s", r.status, r.stdout, want, r.stderr)
	}
}

func TestDialSIORefusedByMiddlewareExitsWithOne(t *testing.T) {
	url := sioTestServer(t, "secret")
	for _, transport := range []string{"polling", "websocket"} {
		r := runDial(t, context.Background(), strings.NewReader("emit echo 1\n"),
			"--sio", "--transport", transport, "--auth", `{"token":"wrong"}`, url)
		if r.status != 1 || r.stdout != "" || !strings.Contains(r.stderr, `connect_error: bad token {"code":4001}`) {
			t.Fatalf("%s: status %d, stdout %q, stderr %q; want 1 and the refusal", transport, r.status, r.stdout, r.stderr)
		}
	}
	// The right token connects.
	r := runDial(t, context.Background(), strings.NewReader("emit echo 1\n"),
		"--sio", "--ack", "--timestamps=false", "--wait", "0", "--auth", `{"token":"secret"}`, url)
	if r.status != 0 || !strings.Contains(r.stdout, "ack [1]\n") {
		t.Fatalf("status %d, stdout %q; stderr: %s", r.status, r.stdout, r.stderr)
	}
}

func TestDialSIOUnreachableServerExitsWithOne(t *testing.T) {
	web := httptest.NewServer(nil)
	url := web.URL
	web.Close() // nothing listens there any more
	r := runDial(t, context.Background(), strings.NewReader(""), "--sio", url)
	if r.status != 1 || !strings.Contains(r.stderr, "connect_error: ") {
		t.Fatalf("status %d, stderr %q; want 1 and the dial error", r.status, r.stderr)
	}
}

func TestDialSIONamespaceFromTheURLOrTheFlag(t *testing.T) {
	srv := socketio.NewServer(nil)
	srv.Of("/admin").OnConnection(func(s *socketio.Socket) {
		_ = s.Emit("where", s.Namespace().Name())
		s.On("ping", func(_ socketio.Args, ack socketio.AckFunc) { _ = ack() })
	})
	web := httptest.NewServer(srv)
	defer web.Close()
	defer srv.Shutdown(context.Background())
	for _, args := range [][]string{{web.URL + "/admin"}, {"--namespace", "/admin", web.URL}, {"--namespace", "admin", web.URL + "/"}} {
		// The ack of ping comes after the event where.
		r := runDial(t, context.Background(), strings.NewReader("emit ping\n"), append([]string{"--sio", "--ack", "--timestamps=false", "--wait", "0"}, args...)...)
		if got := outputLines(r.stdout); r.status != 0 || !slices.Equal(got, []string{`ack []`, `where ["/admin"]`}) || !strings.Contains(r.stderr, "namespace /admin") {
			t.Fatalf("%q: status %d, stdout %q; stderr: %s", args, r.status, r.stdout, r.stderr)
		}
	}
	// An unknown namespace is refused by the server.
	r := runDial(t, context.Background(), strings.NewReader(""), "--sio", web.URL+"/nope")
	if r.status != 1 || !strings.Contains(r.stderr, "connect_error: Invalid namespace") {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
}

func TestDialSIOServerDisconnectEndsTheSession(t *testing.T) {
	srv := socketio.NewServer(nil)
	srv.OnConnection(func(s *socketio.Socket) {
		s.On("bye", func(socketio.Args, socketio.AckFunc) { s.Disconnect(false) })
	})
	web := httptest.NewServer(srv)
	defer web.Close()
	defer srv.Shutdown(context.Background())
	pr, pw := io.Pipe() // stdin stays open: the server ends the session
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("emit bye\n")) }()
	r := runDial(t, context.Background(), pr, "--sio", web.URL)
	if r.status != 0 || !strings.Contains(r.stderr, "disconnect: io server disconnect") {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
}

func TestDialSIOEventNamesThatNeedQuotes(t *testing.T) {
	for _, tc := range []struct{ name, printed string }{
		{"news", "news"}, {"ack", `"ack"`}, {"two words", `"two words"`}, {"", `""`}, {`"q`, `"\"q"`},
	} {
		if got := printableEvent(tc.name); got != tc.printed {
			t.Errorf("printableEvent(%q) = %s, want %s", tc.name, got, tc.printed)
		}
	}
	for _, tc := range []struct {
		line, event string
		args        []any
		err         string
	}{
		{`news`, "news", nil, ""},
		{`"two words" 1 "x"`, "two words", []any{json.Number("1"), "x"}, ""},
		{`"unterminated`, "", nil, "event name"},
		{`"ab"1`, "", nil, "want a space"},
		{``, "", nil, "no event name"},
		{`e {"$binary":"!!"}`, "", nil, "$binary"},
		{`e {"$binary":"AA==","other":1}`, "e", []any{map[string]any{"$binary": "AA==", "other": json.Number("1")}}, ""},
		{`e [{"$binary":"AAE="}]`, "e", []any{[]any{[]byte{0, 1}}}, ""},
		{`e 1 2 x`, "", nil, "argument 3"},
	} {
		event, args, err := parseEmit(tc.line)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseEmit(%q): error %v, want one about %q", tc.line, err, tc.err)
			}
			continue
		}
		gotJSON, _ := json.Marshal(args)
		wantJSON, _ := json.Marshal(tc.args)
		if err != nil || event != tc.event || string(gotJSON) != string(wantJSON) {
			t.Errorf("parseEmit(%q) = %q %s %v, want %q %s", tc.line, event, gotJSON, err, tc.event, wantJSON)
		}
	}
}

func TestDialSIOUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--sio", "--transport", "carrier-pigeon", "http://localhost:1"},
		{"--sio", "--auth", "[1]", "http://localhost:1"},
		{"--sio", "--auth", "{", "http://localhost:1"},
		{"--sio", "--binary", "http://localhost:1"},
		{"--sio", "--close-code", "1000", "http://localhost:1"},
		{"--sio", "ftp://localhost:1"},
		{"--ack", "ws://localhost:1"},
		{"--namespace", "/x", "ws://localhost:1"},
	} {
		if r := runDial(t, context.Background(), strings.NewReader(""), args...); r.status != 2 {
			t.Errorf("%q: status %d, want 2; stderr: %s", args, r.status, r.stderr)
		}
	}
}

// killListener remembers the connections it accepted, to cut them all.
type killListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *killListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *killListener) killAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

func TestDialSIOReportsALostConnectionAndReconnects(t *testing.T) {
	srv := socketio.NewServer(nil)
	web := httptest.NewUnstartedServer(srv)
	ln := &killListener{Listener: web.Listener}
	web.Listener = ln
	web.Start()
	defer web.Close()
	defer srv.Shutdown(context.Background())
	addDemoHandlers(srv)
	srv.OnConnection(func(s *socketio.Socket) {
		s.On("drop", func(socketio.Args, socketio.AckFunc) { ln.killAll() })
	})
	// (The lost connection reads "transport error" or "transport close" depending on how
	// ws reports the end of the TCP connection.)
	// "drop" is never acknowledged: its EmitWithAck fails when the connection is lost, and
	// the next emit waits in the socket's buffer for the new connection.
	stdin := strings.NewReader("emit echo 1\nemit drop\nemit echo 2\n")
	r := runDial(t, context.Background(), stdin, "--sio", "--ack", "--transport", "websocket", "--timestamps=false", "--wait", "0", web.URL)
	if r.status != 0 || r.stdout != "ack [1]\nack [2]\n" {
		t.Fatalf("status %d, stdout %q; stderr: %s", r.status, r.stdout, r.stderr)
	}
	for _, s := range []string{"emit drop: socketio: socket disconnected", "disconnect: transport ", "reconnecting: attempt 1", "reconnected after 1 attempt(s)"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr %q lacks %q", r.stderr, s)
		}
	}
	if n := strings.Count(r.stderr, "connected: id "); n != 2 {
		t.Errorf("stderr %q reports %d connections, want 2", r.stderr, n)
	}
}
