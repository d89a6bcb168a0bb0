package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// dialResult is what one "duplex dial" run returned and printed.
type dialResult struct {
	status         int
	stdout, stderr string
}

// runDial runs "duplex dial args..." in-process with stdin, bounded in time.
func runDial(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) dialResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"dial"}, args...), stdin, &stdout, &stderr) }()
	select {
	case s := <-done:
		return dialResult{s, stdout.String(), stderr.String()}
	case <-time.After(20 * time.Second):
		t.Fatalf("duplex dial %q did not return", args)
		return dialResult{}
	}
}

// wsServer serves handler (given the upgraded connection) on a loopback httptest server and
// returns its ws:// URL.
func wsServer(t *testing.T, upgrader *ws.Upgrader, handler func(*ws.Conn, *http.Request)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			return
		}
		defer c.CloseNow()
		handler(c, r)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// readUntilClosed reads until the connection ends, bounded.
func readUntilClosed(c *ws.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.ReadMessage(ctx); err != nil {
			return
		}
	}
}

// assertStdinReaderGone checks that dial, having returned, no longer reads the stdin pipe pw
// feeds and that its stdin goroutine has ended.
func assertStdinReaderGone(t *testing.T, pw *io.PipeWriter) {
	t.Helper()
	if _, err := pw.Write([]byte("x\n")); err != io.ErrClosedPipe {
		t.Fatalf("stdin still read after dial returned: write error %v", err)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "main.readLines") {
		t.Fatalf("the stdin goroutine outlived dial:\n%s", stacks)
	}
}

func TestDialPrintsTheEchoOfEachLine(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	r := runDial(t, context.Background(), strings.NewReader("hello\r\nwörld\n\nlast without newline"),
		"--timestamps=false", "--wait", "0", url)
	want := "< text: hello\n< text: wörld\n< text: \n< text: last without newline\n"
	if r.status != 0 || r.stdout != want {
		t.Fatalf("status %d, stdout %q, want 0 and %q; stderr: %s", r.status, r.stdout, want, r.stderr)
	}
	if !strings.Contains(r.stderr, "closed: 1000 by us") {
		t.Fatalf("stderr %q does not say how the connection ended", r.stderr)
	}
}

func TestDialTimestampsIncomingMessagesByDefault(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	r := runDial(t, context.Background(), strings.NewReader("hi\n"), "--wait", "0", url)
	if ok, _ := regexp.MatchString(`^< \[\d\d:\d\d:\d\d\.\d{3}\] text: hi\n$`, r.stdout); r.status != 0 || !ok {
		t.Fatalf("status %d, stdout %q; stderr: %s", r.status, r.stdout, r.stderr)
	}
}

func TestDialBinaryLinesAreDecodedAndBadOnesSkipped(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	for _, tc := range []struct {
		name  string
		flags []string
		input string
	}{
		{"hex", []string{"--binary"}, "zz\n0001ff\n"},
		{"base64", []string{"--binary", "--base64"}, "!!!\nAAH/\n"},
		{"base64 alone implies binary", []string{"--base64"}, "AAH/\n%%%\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.flags, "--timestamps=false", "--wait", "0", url)
			r := runDial(t, context.Background(), strings.NewReader(tc.input), args...)
			if r.status != 0 || r.stdout != "< binary (3 bytes): 0001ff\n" {
				t.Fatalf("status %d, stdout %q; stderr: %s", r.status, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "skipping line") {
				t.Fatalf("stderr %q does not report the bad line", r.stderr)
			}
		})
	}
}

func TestDialCloseCommandClosesWithItsCode(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	r := runDial(t, context.Background(), strings.NewReader("first\n/close 4001 bye now\nnever sent\n"),
		"--timestamps=false", url)
	if r.status != 0 || r.stdout != "< text: first\n" {
		t.Fatalf("status %d, stdout %q; stderr: %s", r.status, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, `closed: 4001 "bye now" by us`) {
		t.Fatalf("stderr %q lacks the close code", r.stderr)
	}
}

func TestDialCloseFlagsApplyAtTheEndOfStdin(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	r := runDial(t, context.Background(), strings.NewReader(""),
		"--wait", "0", "--close-code", "3000", "--close-reason", "done", url)
	if r.status != 0 || !strings.Contains(r.stderr, `closed: 3000 "done" by us`) {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
}

func TestDialVerboseShowsOutgoingPingsAndPongs(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	r := runDial(t, context.Background(), strings.NewReader("/ping hi\n//close is text\n"),
		"--timestamps=false", "--verbose", "--wait", "0", url)
	for _, want := range []string{"> ping: \"hi\"\n", "< pong: \"hi\"\n", "> text: /close is text\n", "< text: /close is text\n", "> close: 1000\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("stdout %q lacks %q; stderr: %s", r.stdout, want, r.stderr)
		}
	}
	if r.status != 0 {
		t.Fatalf("status %d; stderr: %s", r.status, r.stderr)
	}
}

func TestDialCompressNegotiatesPermessageDeflate(t *testing.T) {
	url, stop := startServe(t, "--compress")
	defer stop()
	long := strings.Repeat("compressible ", 200) // over the 512-byte threshold: sent compressed
	r := runDial(t, context.Background(), strings.NewReader(long+"\nshort\n"),
		"--compress", "--timestamps=false", "--wait", "0", url)
	if want := "< text: " + long + "\n< text: short\n"; r.status != 0 || r.stdout != want {
		t.Fatalf("status %d, stdout %q; stderr: %s", r.status, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "permessage-deflate") {
		t.Fatalf("stderr %q does not report the compression agreed", r.stderr)
	}
}

func TestDialSendsHeadersOriginAndSubprotocols(t *testing.T) {
	upgrader := &ws.Upgrader{Subprotocols: []string{"v2.chat"}, CheckOrigin: func(*http.Request) bool { return true }}
	url := wsServer(t, upgrader, func(c *ws.Conn, r *http.Request) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		msg := fmt.Sprintf("token=%s more=%q origin=%s protocol=%s", r.Header.Get("X-Token"),
			r.Header.Values("X-More"), r.Header.Get("Origin"), c.Subprotocol())
		if c.WriteMessage(ctx, ws.MessageText, []byte(msg)) == nil {
			_ = c.Close(ws.StatusNormalClosure, "that is all")
		}
	})
	// stdin ends at once, and --wait outlasts the server's close: the peer ends the session.
	r := runDial(t, context.Background(), strings.NewReader(""), "--timestamps=false", "--wait", "10s",
		"-H", "X-Token: abc", "-H", "X-More: 1", "-H", "X-More:2", "--origin", "http://elsewhere.test",
		"--subprotocol", "v1.chat", "--subprotocol", "v2.chat", url)
	want := "< text: token=abc more=[\"1\" \"2\"] origin=http://elsewhere.test protocol=v2.chat\n"
	if r.status != 0 || r.stdout != want {
		t.Fatalf("status %d, stdout %q, want %q; stderr: %s", r.status, r.stdout, want, r.stderr)
	}
	for _, s := range []string{`subprotocol "v2.chat"`, `closed: 1000 "that is all" by peer`} {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr %q lacks %q", r.stderr, s)
		}
	}
}

func TestDialReportsARefusedHandshake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no entry without a token", http.StatusForbidden)
	}))
	defer srv.Close()
	r := runDial(t, context.Background(), strings.NewReader("never sent\n"), "ws"+strings.TrimPrefix(srv.URL, "http"))
	if r.status != 1 {
		t.Fatalf("status %d, want 1; stderr: %s", r.status, r.stderr)
	}
	for _, s := range []string{"403 Forbidden", "no entry without a token"} {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr %q lacks %q", r.stderr, s)
		}
	}
}

func TestDialExitsWithOneWhenThePeerClosesWithAnError(t *testing.T) {
	url := wsServer(t, &ws.Upgrader{}, func(c *ws.Conn, _ *http.Request) {
		_ = c.Close(ws.StatusInternalError, "boom")
	})
	pr, pw := io.Pipe() // stdin that never ends: the peer's close ends the session
	defer pw.Close()
	r := runDial(t, context.Background(), pr, url)
	if r.status != 1 || !strings.Contains(r.stderr, `closed: 1011 "boom" by peer`) {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
	assertStdinReaderGone(t, pw)
}

func TestDialCancelClosesWithGoingAwayAndStopsReadingStdin(t *testing.T) {
	gotCode := make(chan ws.StatusCode, 1)
	url := wsServer(t, &ws.Upgrader{}, func(c *ws.Conn, _ *http.Request) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			typ, msg, err := c.ReadMessage(ctx)
			if err != nil {
				gotCode <- ws.CloseStatus(err)
				return
			}
			_ = c.WriteMessage(ctx, typ, msg)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		// The line is taken once dial is connected and reading stdin; then interrupt.
		if _, err := pw.Write([]byte("hello\n")); err == nil {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	r := runDial(t, ctx, pr, url)
	if r.status != 0 || !strings.Contains(r.stderr, "closed: 1001 by us") {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
	select {
	case code := <-gotCode:
		if code != ws.StatusGoingAway {
			t.Fatalf("server saw close %d, want 1001", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server saw no close")
	}
	assertStdinReaderGone(t, pw)
}

func TestDialPingGivesUpOnAPeerThatDoesNotAnswer(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	url := wsServer(t, &ws.Upgrader{}, func(c *ws.Conn, _ *http.Request) {
		select { // never reads, so never answers a ping
		case <-release:
		case <-c.Done():
		}
	})
	r := runDial(t, context.Background(), strings.NewReader(""), "--ping", "50ms", "--wait", "10s", url)
	if r.status != 1 || !strings.Contains(r.stderr, "no pong within 50ms") {
		t.Fatalf("status %d, stderr %q", r.status, r.stderr)
	}
}

func TestDialPingPrintsPongsWhenVerbose(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	pr, pw := io.Pipe()
	defer pw.Close()
	// Wait for a pong through stdout, then close through stdin.
	outR, outW := io.Pipe()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(context.Background(), []string{"dial", "--ping", "20ms", "--verbose", "--timestamps=false", url}, pr, outW, &stderr)
		outW.Close()
	}()
	buf := make([]byte, 64)
	var got string
	for !strings.Contains(got, "< pong: \"\"") {
		n, err := outR.Read(buf)
		if err != nil {
			t.Fatalf("stdout ended without a pong: %q", got)
		}
		got += string(buf[:n])
	}
	go io.Copy(io.Discard, outR)
	if _, err := pw.Write([]byte("/close\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-done:
		if s != 0 {
			t.Fatalf("status %d; stderr: %s", s, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dial did not return")
	}
}

func TestDialInsecureAcceptsASelfSignedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&ws.Upgrader{}).Upgrade(w, r)
		if err != nil {
			return
		}
		defer c.CloseNow()
		readUntilClosed(c)
	}))
	defer srv.Close()
	url := "wss" + strings.TrimPrefix(srv.URL, "https")
	if r := runDial(t, context.Background(), strings.NewReader(""), "--wait", "0", url); r.status != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("without --insecure: status %d, stderr %q", r.status, r.stderr)
	}
	if r := runDial(t, context.Background(), strings.NewReader(""), "--insecure", "--wait", "0", url); r.status != 0 {
		t.Fatalf("with --insecure: status %d, stderr %q", r.status, r.stderr)
	}
}

func TestDialUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"ws://127.0.0.1:1/a", "ws://127.0.0.1:1/b"},
		{"-H", "no colon", "ws://127.0.0.1:1/"},
		{"--close-code", "1005", "ws://127.0.0.1:1/"},
		{"--no-such-flag", "ws://127.0.0.1:1/"},
	} {
		if r := runDial(t, context.Background(), strings.NewReader(""), args...); r.status != 2 {
			t.Errorf("dial %q: status %d, want 2; stderr: %s", args, r.status, r.stderr)
		}
	}
}

func TestDialFlagsMayFollowTheURL(t *testing.T) {
	url, stop := startServe(t)
	defer stop()
	r := runDial(t, context.Background(), strings.NewReader("x\n"), url, "--timestamps=false", "--wait", "0")
	if r.status != 0 || r.stdout != "< text: x\n" {
		t.Fatalf("status %d, stdout %q; stderr: %s", r.status, r.stdout, r.stderr)
	}
}
