package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// sizes are the payload sizes of every echo matrix: both edges of the 7-bit,
// 16-bit and 64-bit length encodings, and a 16 MiB message.
var sizes = []int{0, 125, 126, 65535, 65536, 16 << 20}

var msgTypes = []string{"text", "binary"}

// needPeer skips (or fails, when DUPLEX_INTEROP=required) if a peer is missing.
func needPeer(t testing.TB, what string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("DUPLEX_INTEROP") == "required" {
		t.Fatalf("interop peer missing: %s (DUPLEX_INTEROP=required)", what)
	}
	t.Skipf("interop peer missing: %s (run npm ci in test/interop; set DUPLEX_INTEROP=required to fail instead)", what)
}

func requireNode(t testing.TB) {
	t.Helper()
	_, err := exec.LookPath("node")
	needPeer(t, "node on PATH", err == nil)
	for _, mod := range []string{"ws", "websocket", "playwright-core"} {
		_, err := os.Stat("node_modules/" + mod + "/package.json")
		needPeer(t, "node_modules/"+mod, err == nil)
	}
}

const chromiumPath = "/usr/bin/chromium"

func requireChromium(t testing.TB) {
	t.Helper()
	requireNode(t)
	st, err := os.Stat(chromiumPath)
	needPeer(t, chromiumPath, err == nil && st.Mode()&0o111 != 0)
}

// patternText and patternBinary must match pattern.js byte for byte.
func patternText(n int) []byte {
	const unit = "duplex é€𝄞" // 16 bytes: 1-, 2-, 3- and 4-byte characters
	b := make([]byte, 0, n)
	b = append(b, strings.Repeat(unit, n/16)...)
	chars := []rune(unit)
	for i, left := 0, n%16; left > 0; i++ {
		r := chars[i%len(chars)]
		if utf8.RuneLen(r) > left {
			r = '.'
		}
		b = utf8.AppendRune(b, r)
		left -= utf8.RuneLen(r)
	}
	return b
}

func patternBinary(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>11)
	}
	return b
}

func pattern(typ string, n int) []byte {
	if typ == "text" {
		return patternText(n)
	}
	return patternBinary(n)
}

var shaCache sync.Map // "type/size" -> hex sha256

func patternSHA(typ string, n int) string {
	key := fmt.Sprintf("%s/%d", typ, n)
	if v, ok := shaCache.Load(key); ok {
		return v.(string)
	}
	s := sha256Hex(pattern(typ, n))
	shaCache.Store(key, s)
	return s
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// event is one JSON line printed by a Node peer (fields by op; see the scripts).
type event struct {
	Op         string `json:"op"`
	ID         string `json:"id"`
	Type       string `json:"type"`
	GotType    string `json:"gotType"`
	Size       int    `json:"size"`
	Len        int    `json:"len"`
	Match      bool   `json:"match"`
	SHA256     string `json:"sha256"`
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	WasClean   bool   `json:"wasClean"`
	Opened     bool   `json:"opened"`
	Errored    bool   `json:"errored"`
	Protocol   string `json:"protocol"`
	Extensions string `json:"extensions"`
	Negotiated string `json:"negotiated"` // ws peers: the Sec-WebSocket-Extensions answered
	Port       int    `json:"port"`
	Data       string `json:"data"`
	Message    string `json:"message"`
}

// step is one scenario step for ws-client.js and websocket-client.js.
type step struct {
	Op        string `json:"op"` // echo, send, close, awaitClose
	Type      string `json:"type,omitempty"`
	Size      int    `json:"size"`
	Hex       string `json:"hex,omitempty"` // send: these bytes instead of the pattern
	Fragments int    `json:"fragments,omitempty"`
	Data      string `json:"data,omitempty"`     // payload generator (payload, pattern.js); "" = pattern
	Compress  *bool  `json:"compress,omitempty"` // ws-client.js: send's per-message compress option
	Code      int    `json:"code,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// clientArgs is the JSON argument of ws-client.js and websocket-client.js.
type clientArgs struct {
	Protocols         []string `json:"protocols,omitempty"`
	PerMessageDeflate any      `json:"perMessageDeflate,omitempty"` // bool or ws's perMessageDeflate options
	Steps             []step   `json:"steps"`
	TimeoutMs         int      `json:"timeoutMs"`
}

// echoSteps is one echo step per type and size, sizes up to max bytes.
func echoSteps(max int) []step {
	var steps []step
	for _, typ := range msgTypes {
		for _, n := range sizes {
			if n <= max {
				steps = append(steps, step{Op: "echo", Type: typ, Size: n})
			}
		}
	}
	return steps
}

// lockedBuffer collects a child's stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil // keep the first MiB only
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// nodeProc is a Node script started by a test; its stdout lines arrive on lines.
type nodeProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer
	lines  chan []byte   // closed at stdout EOF
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's result, valid after exited
	cancel context.CancelFunc
}

// spawnNode starts `node script args...` in this directory, bounded by timeout.
// The caller must stop it (stop or t.Cleanup in startNode).
func spawnNode(timeout time.Duration, script string, args ...string) (*nodeProc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, "node", append([]string{script}, args...)...)
	// On timeout or stop: SIGTERM first (lets playwright close its browser),
	// SIGKILL after WaitDelay.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	p := &nodeProc{name: script, cmd: cmd, lines: make(chan []byte, 1024), exited: make(chan struct{}), cancel: cancel}
	cmd.Stderr = &p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, err
	}
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			p.lines <- bytes.Clone(sc.Bytes())
		}
		_, _ = io.Copy(io.Discard, stdout) // an over-long line: drain so the child never blocks
	}()
	go func() {
		<-scanDone // Wait closes stdout: read it all first
		p.err = cmd.Wait()
		cancel()
		close(p.exited)
	}()
	return p, nil
}

// stop asks the child to exit (stdin EOF), then signals it, and waits.
func (p *nodeProc) stop(grace time.Duration) {
	_ = p.stdin.Close()
	select {
	case <-p.exited:
		return
	case <-time.After(grace):
	}
	p.cancel() // SIGTERM, then SIGKILL after WaitDelay
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
	}
}

// startNode starts a Node peer for the test and stops it when the test ends.
func startNode(t testing.TB, timeout time.Duration, script string, args ...string) *nodeProc {
	t.Helper()
	requireNode(t)
	p, err := spawnNode(timeout, script, args...)
	if err != nil {
		t.Fatalf("start node %s: %v", script, err)
	}
	t.Cleanup(func() { p.stop(0) })
	return p
}

// nextLine returns the next line p printed, or false when none came within timeout. It fails
// the test if p exits first; seen (nil: nothing) tells what came before, for the message.
func (p *nodeProc) nextLine(t testing.TB, timeout time.Duration, seen func() string) ([]byte, bool) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.exited
			before := ""
			if seen != nil {
				before = "; " + seen()
			}
			t.Fatalf("%s exited (%v) before the expected output%s\nstderr:\n%s", p.name, p.err, before, p.stderr.String())
		}
		return line, true
	case <-timer.C:
		return nil, false
	}
}

// decodeLine decodes a line a Node script printed, failing the test if it is not JSON.
func decodeLine[E any](t testing.TB, script string, line []byte) E {
	t.Helper()
	var ev E
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatalf("%s printed a non-JSON line %q: %v", script, line, err)
	}
	return ev
}

// next returns the next event, failing the test on timeout, exit or an "error" line.
func (p *nodeProc) next(t testing.TB, timeout time.Duration) event {
	t.Helper()
	line, ok := p.nextLine(t, timeout, nil)
	if !ok {
		t.Fatalf("%s: no output within %v; stderr:\n%s", p.name, timeout, p.stderr.String())
	}
	ev := decodeLine[event](t, p.name, line)
	if ev.Op == "error" {
		t.Fatalf("%s failed: %s\nstderr:\n%s", p.name, ev.Message, p.stderr.String())
	}
	return ev
}

// waitFor skips events until one satisfies match (at most 10000 events).
func (p *nodeProc) waitFor(t testing.TB, timeout time.Duration, match func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for range 10000 {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		if ev := p.next(t, left); match(ev) {
			return ev
		}
	}
	t.Fatalf("%s: expected event not seen within %v", p.name, timeout)
	panic("unreachable")
}

// runClient runs a client peer script to completion and returns its events.
func runClient(t testing.TB, script, url string, args clientArgs) []event {
	t.Helper()
	if args.TimeoutMs == 0 {
		args.TimeoutMs = 60000
	}
	js, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	p := startNode(t, time.Duration(args.TimeoutMs)*time.Millisecond+10*time.Second, script, url, string(js))
	var events []event
	for line := range p.lines {
		events = append(events, decodeLine[event](t, script, line))
	}
	<-p.exited
	for _, ev := range events {
		if ev.Op == "socketError" {
			t.Logf("%s: socket error after the handshake: %s", script, ev.Message)
		}
		if ev.Op == "error" {
			t.Fatalf("%s %s failed: %s\nstderr:\n%s", script, url, ev.Message, p.stderr.String())
		}
	}
	if p.err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", script, url, p.err, p.stderr.String())
	}
	if len(events) == 0 || events[0].Op != "open" {
		t.Fatalf("%s %s: no open event in %+v", script, url, events)
	}
	return events
}

// checkEchoEvents checks the peer's echo results against the steps, one subtest each.
func checkEchoEvents(t *testing.T, steps []step, events []event) {
	t.Helper()
	var echoes []event
	for _, ev := range events {
		if ev.Op == "echo" {
			echoes = append(echoes, ev)
		}
	}
	if len(echoes) != len(steps) {
		t.Fatalf("got %d echo results for %d steps: %+v", len(echoes), len(steps), events)
	}
	for i, st := range steps {
		t.Run(fmt.Sprintf("%s/%d", st.Type, st.Size), func(t *testing.T) {
			ev := echoes[i]
			if ev.Type != st.Type || ev.Size != st.Size {
				t.Fatalf("result %d is for %s/%d", i, ev.Type, ev.Size)
			}
			if ev.GotType != st.Type || ev.Len != st.Size || !ev.Match {
				t.Errorf("echo came back as %s of %d bytes, identical=%v", ev.GotType, ev.Len, ev.Match)
			}
			if want := payloadSHA(st.Data, st.Type, st.Size); ev.SHA256 != want {
				t.Errorf("echo sha256 %s, want %s", ev.SHA256, want)
			}
		})
	}
}

// streamStats are the counts a client script reports of a stream of numbered messages
// ("seq", "nums" and "stream" events of eio-client.js and sio-client.js).
type streamStats struct {
	Sent           int    `json:"sent"`
	SentBefore     int    `json:"sentBefore"`
	Received       int    `json:"received"`
	ReceivedBefore int    `json:"receivedBefore"`
	ServerTotal    int    `json:"serverTotal"`
	Ordered        bool   `json:"ordered"`
	FirstBad       int    `json:"firstBad"`
	Got            string `json:"got"`
	Upgraded       bool   `json:"upgraded"`
}

// streamSent is what the server's side of a stream across the upgrade sent: n numbered
// messages, then its end marker, unless err.
type streamSent struct {
	n   int
	err error
}

// checkClientStream checks the client's report of a stream across the upgrade against the
// server's side: the server's stream ended well, and the client upgraded, received in order
// all that the server sent (as the server's end marker says) and sent what the server
// received.
func checkClientStream(t testing.TB, ev streamStats, server streamSent, serverReceived int) {
	t.Helper()
	if server.err != nil {
		t.Errorf("server stream: %v", server.err)
	}
	t.Logf("client: sent %d (%d before the upgrade event), received %d (%d before), server total %d",
		ev.Sent, ev.SentBefore, ev.Received, ev.ReceivedBefore, ev.ServerTotal)
	if !ev.Upgraded {
		t.Errorf("client not upgraded")
	}
	if !ev.Ordered || ev.Received != server.n || ev.ServerTotal != server.n {
		t.Errorf("client received %d in order=%v (first bad %d: %s), server sent %d (its end marker says %d)",
			ev.Received, ev.Ordered, ev.FirstBad, ev.Got, server.n, ev.ServerTotal)
	}
	if ev.Sent != serverReceived {
		t.Errorf("client sent %d, server received %d", ev.Sent, serverReceived)
	}
}

// checkClientCount checks the client's report of count numbered messages sent at once.
func checkClientCount(t testing.TB, ev streamStats, count int) {
	t.Helper()
	if ev.Received != count || !ev.Ordered {
		t.Errorf("client received %d of %d, in order %v (first bad %d: %s)", ev.Received, count, ev.Ordered, ev.FirstBad, ev.Got)
	}
}

// sendAll calls send with 0 to count-1 and returns the first error, with its number.
func sendAll(count int, what string, send func(i int) error) error {
	var first error
	for i := range count {
		if err := send(i); err != nil && first == nil {
			first = fmt.Errorf("%s %d: %w", what, i, err)
		}
	}
	return first
}

// stopTestServer shuts a test server down at the end of its test: shutdown (the Engine.IO
// or Socket.IO server), then the httptest.Server and the goroutines the test started for it
// (wait), each bounded; the server's log is shown if the test failed.
func stopTestServer(t *testing.T, shutdown func(context.Context) error, ts *httptest.Server, wait func(), logs *lockedBuffer) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	done := make(chan struct{})
	go func() { ts.Close(); wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Errorf("httptest server or test goroutines still running 15s after Shutdown")
	}
	if t.Failed() {
		t.Logf("server log:\n%s", logs.String())
	}
}
