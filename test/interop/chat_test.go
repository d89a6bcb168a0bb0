package interop

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
)

// chatShown is what a tab of the chat page shows (shown() in chat-browser.js).
type chatShown struct {
	Status   string   `json:"status"`
	State    string   `json:"state"`
	Room     string   `json:"room"`
	Members  []string `json:"members"`
	Typing   string   `json:"typing"`
	Messages []struct {
		Nick string `json:"nick"`
		Text string `json:"text"`
		Mine bool   `json:"mine"`
	} `json:"messages"`
	System []string `json:"system"`
	Empty  bool     `json:"empty"`
	Input  string   `json:"input"`
}

// chatStep is one checkpoint line of chat-browser.js.
type chatStep struct {
	Op      string    `json:"op"`
	Alice   chatShown `json:"alice"`
	Bob     chatShown `json:"bob"`
	Errors  []string  `json:"errors"`
	Message string    `json:"message"`
}

// The chat page that "duplex serve" serves at / works in Chromium with nothing but the
// server: two tabs pick nicknames, join #lobby, see each other online, see the other typing,
// exchange a message and see a leave; then the server restarts on the same port, and later
// freezes: each time the page shows the loss and reconnects by itself, back in its room. In
// both serving modes (--event-loop).
func TestChatPageInChromium(t *testing.T) {
	requireChromium(t)
	start := time.Now()
	bin := buildDuplex(t)
	t.Logf("%6.2fs duplex built", time.Since(start).Seconds())
	eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) { testChatPageInChromium(t, bin, mode) })
}

func testChatPageInChromium(t *testing.T, bin string, mode eiotest.Mode) {
	start := time.Now()
	p := startNode(t, 60*time.Second, "chat-browser.js")
	// Pings every second (the page answers them all along), a silent server noticed in 2 s.
	flags := []string{"--ping-interval", "1s", "--ping-timeout", "1s"}
	if mode == eiotest.Evented {
		flags = append(flags, "--event-loop")
	}
	srv := startServeBinary(t, bin, "127.0.0.1:0", flags...)
	writeLine(t, p, srv.url+"/")
	next := func(op string) chatStep {
		t.Helper()
		line, ok := p.nextLine(t, 30*time.Second, nil)
		if !ok {
			t.Fatalf("chat-browser.js: no %s within 30s; stderr:\n%s", op, p.stderr.String())
		}
		st := decodeLine[chatStep](t, p.name, line)
		if st.Op == "error" {
			t.Fatalf("chat-browser.js: %s\nstderr:\n%s", st.Message, p.stderr.String())
		}
		if st.Op != op {
			t.Fatalf("chat-browser.js: %s, want %s", line, op)
		}
		t.Logf("%6.2fs %s", time.Since(start).Seconds(), op)
		return st
	}

	st := next("connected")
	if st.Alice.Status != "Connected" || st.Bob.Status != "Connected" {
		t.Errorf("status before joining: %q and %q, want Connected", st.Alice.Status, st.Bob.Status)
	}

	st = next("joined")
	for _, tab := range []chatShown{st.Alice, st.Bob} {
		if tab.Room != "#lobby" || !slices.Equal(tab.Members, []string{"alice", "bob"}) {
			t.Errorf("after both joined: room %q, online %q; want #lobby, [alice bob]", tab.Room, tab.Members)
		}
	}
	if want := []string{"You joined #lobby as alice.", "bob joined."}; !slices.Equal(st.Alice.System, want) {
		t.Errorf("alice's system lines %q, want %q", st.Alice.System, want)
	}

	st = next("typing")
	if st.Alice.Typing != "bob is typing…" || st.Bob.Typing != "" {
		t.Errorf("typing indicators: alice sees %q, bob %q; want %q and nothing", st.Alice.Typing, st.Bob.Typing, "bob is typing…")
	}

	st = next("message")
	for _, tab := range []struct {
		name  string
		shown chatShown
		mine  bool
	}{{"alice", st.Alice, false}, {"bob", st.Bob, true}} {
		m := tab.shown.Messages
		if len(m) != 1 || m[0].Nick != "bob" || m[0].Text != "hello alice" || m[0].Mine != tab.mine {
			t.Errorf("%s's messages %+v, want bob: hello alice (mine %v)", tab.name, m, tab.mine)
		}
	}
	if st.Alice.Typing != "" {
		t.Errorf("alice still sees %q after bob's message", st.Alice.Typing)
	}
	if st.Bob.Input != "" {
		t.Errorf("bob's message box holds %q after sending", st.Bob.Input)
	}

	st = next("left")
	if !slices.Equal(st.Alice.Members, []string{"alice"}) || !slices.Contains(st.Alice.System, "bob left.") {
		t.Errorf("after bob left alice sees online %q, system lines %q", st.Alice.Members, st.Alice.System)
	}
	if !st.Bob.Empty || st.Bob.Room != "No room" || len(st.Bob.Members) != 0 {
		t.Errorf("bob after leaving: empty %v, room %q, online %q", st.Bob.Empty, st.Bob.Room, st.Bob.Members)
	}

	next("stop-server")
	srv.stop(t)
	writeLine(t, p, "stopped")
	st = next("offline")
	if !strings.HasPrefix(st.Alice.Status, "Connection lost") && !strings.HasPrefix(st.Alice.Status, "Reconnecting in") {
		t.Errorf("alice's status with the server down: %q", st.Alice.Status)
	}
	if !slices.Contains(st.Alice.System, "Connection lost. Reconnecting…") || len(st.Alice.Members) != 0 {
		t.Errorf("alice with the server down: system lines %q, online %q", st.Alice.System, st.Alice.Members)
	}
	srv = startServeBinary(t, bin, strings.TrimPrefix(srv.url, "http://"), flags...)
	writeLine(t, p, "restarted")
	st = next("reconnected")
	if st.Alice.Status != "Connected" || !slices.Contains(st.Alice.System, "Reconnected.") || st.Alice.Room != "#lobby" {
		t.Errorf("alice after the restart: status %q, room %q, system lines %q", st.Alice.Status, st.Alice.Room, st.Alice.System)
	}

	// Frozen, the server sends no ping: the page takes it for gone after pingInterval +
	// pingTimeout (2 s here), and connects again once it answers.
	next("freeze-server")
	srv.signal(t, syscall.SIGSTOP)
	writeLine(t, p, "frozen")
	st = next("silent")
	if !slices.Contains(st.Alice.System, "Connection lost. Reconnecting…") {
		t.Errorf("alice with the server frozen: status %q, system lines %q", st.Alice.Status, st.Alice.System)
	}
	next("thaw-server")
	srv.signal(t, syscall.SIGCONT)
	writeLine(t, p, "thawed")
	st = next("back")
	if st.Alice.Status != "Connected" || st.Alice.Room != "#lobby" {
		t.Errorf("alice after the thaw: status %q, room %q", st.Alice.Status, st.Alice.Room)
	}

	st = next("done")
	for _, e := range st.Errors {
		t.Errorf("page error: %s", e)
	}
}

// writeLine writes one line to a Node script's stdin.
func writeLine(t *testing.T, p *nodeProc, line string) {
	t.Helper()
	if _, err := fmt.Fprintln(p.stdin, line); err != nil {
		t.Fatalf("write to %s: %v", p.name, err)
	}
}

// buildDuplex builds the duplex command into a temporary directory (with the race detector
// when this test binary has it) and returns its path.
func buildDuplex(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build duplex: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "duplex")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	cmd := exec.Command(goTool, append(args, "github.com/duplexio/duplex/cmd/duplex")...)
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build duplex: %v\n%s", err, out)
	}
	return bin
}

// serveProc is a "duplex serve" process.
type serveProc struct {
	cmd    *exec.Cmd
	url    string // http://HOST:PORT
	output lockedBuffer
	done   chan struct{}
}

var serveURL = regexp.MustCompile(`https?://[^\s()]+`)

// startServeBinary runs "bin serve --addr addr flags..." and waits for the address it prints;
// the process is stopped at the end of the test if it still runs.
func startServeBinary(t *testing.T, bin, addr string, flags ...string) *serveProc {
	t.Helper()
	s := &serveProc{cmd: exec.Command(bin, append([]string{"serve", "--addr", addr}, flags...)...), done: make(chan struct{})}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = &s.output
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start duplex serve: %v", err)
	}
	found := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			fmt.Fprintln(&s.output, sc.Text())
			if u := serveURL.FindString(sc.Text()); u != "" {
				select {
				case found <- strings.TrimSuffix(u, "/"):
				default:
				}
			}
		}
		_ = s.cmd.Wait()
	}()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("duplex serve output:\n%s", s.output.String())
		}
	})
	select {
	case s.url = <-found:
		return s
	case <-s.done:
		t.Fatalf("duplex serve exited: %s", s.output.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("duplex serve printed no address within 20s: %s", s.output.String())
	}
	return nil
}

// signal sends sig to the server.
func (s *serveProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to duplex serve: %v", sig, err)
	}
}

// stop ends the server as Ctrl-C would (SIGINT: a graceful shutdown), SIGKILL if it lingers.
func (s *serveProc) stop(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // in case the test froze it
	_ = s.cmd.Process.Signal(os.Interrupt)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	select {
	case <-s.done:
	case <-ctx.Done():
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
		t.Errorf("duplex serve did not stop within 15s of SIGINT")
	}
}
