package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/ws"
)

// The command lines of README.md's dial, "Socket.IO from the terminal" and "Load" sections,
// run against "duplex serve" as the README runs them (on its own port instead of 3000).
func TestREADMEDialAndBenchCommandLinesRun(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	echoURL, stop := startServe(t)
	defer stop()
	addr := strings.TrimSuffix(strings.TrimPrefix(echoURL, "ws://"), "/echo")
	for _, tc := range []struct {
		stdin, args, redirect string // stdin as printf writes it
		want                  []string
	}{
		{`emit echo "hi" {"n":1}\nemit join room1\nemit join "room1"\n`,
			`dial --sio --ack --timestamps=false http://127.0.0.1:3000`, " 2>&1",
			[]string{"auth [{}]\n", `ack ["hi",{"n":1}]` + "\n", "ack []\n"}},
		{`hello\n/close 4001 bye\n`,
			`dial --timestamps=false ws://127.0.0.1:3000/echo`, "",
			[]string{"< text: hello\n", `closed: 4001 "bye" by us`}},
		{"", `bench --mode ws-echo --connections 10 --in-flight 4 --duration 1s ws://127.0.0.1:3000/echo`, "",
			[]string{"mode         ws-echo\n", "errors       0\n"}},
		{"", `bench --mode sio-broadcast --connections 10 --rate 1000 --duration 1s --json http://127.0.0.1:3000`, "",
			[]string{`{"mode":"sio-broadcast",`, `"errors":0}`}},
	} {
		line := "$ go run ./cmd/duplex " + tc.args + tc.redirect + "\n"
		if tc.stdin != "" {
			line = "$ printf '" + tc.stdin + "' | go run ./cmd/duplex " + tc.args + tc.redirect + "\n"
		}
		if !strings.Contains(string(readme), line) {
			t.Errorf("README.md does not show %q", line)
			continue
		}
		args := strings.Fields(strings.ReplaceAll(tc.args, "127.0.0.1:3000", addr))
		var stdout, stderr strings.Builder
		status := run(context.Background(), args, strings.NewReader(strings.ReplaceAll(tc.stdin, `\n`, "\n")), &stdout, &stderr)
		if status != 0 {
			t.Errorf("%s: status %d; stderr %q", tc.args, status, stderr.String())
		}
		out := stdout.String() + stderr.String() // as a terminal shows them
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output %q lacks %q", tc.args, out, w)
			}
		}
	}
}

// readmeCommands are the command lines README.md shows and the test that runs each.
var readmeCommands = map[string]string{
	"go run ./cmd/duplex serve": "TestREADMEServeRunsWithNoConfiguration",
	"./scripts/test":            "TestREADMETestCommandIsWhatCIRuns",
	`printf 'hello\n/close 4001 bye\n' | go run ./cmd/duplex dial --timestamps=false ws://127.0.0.1:3000/echo`:                                                   "TestREADMEDialAndBenchCommandLinesRun",
	`printf 'emit echo "hi" {"n":1}\nemit join room1\nemit join "room1"\n' | go run ./cmd/duplex dial --sio --ack --timestamps=false http://127.0.0.1:3000 2>&1`: "TestREADMEDialAndBenchCommandLinesRun",
	"go run ./cmd/duplex bench --mode ws-echo --connections 10 --in-flight 4 --duration 1s ws://127.0.0.1:3000/echo":                                             "TestREADMEDialAndBenchCommandLinesRun",
	"go run ./cmd/duplex bench --mode sio-broadcast --connections 10 --rate 1000 --duration 1s --json http://127.0.0.1:3000":                                     "TestREADMEDialAndBenchCommandLinesRun",
	"redis-server --port 6379 --save ''":                                                                                        "TestREADMEScaleOutCommandLinesRun",
	"go run ./cmd/duplex serve --addr 127.0.0.1:3001 --redis redis://127.0.0.1:6379":                                            "TestREADMEScaleOutCommandLinesRun",
	"go run ./cmd/duplex serve --addr 127.0.0.1:3002 --redis redis://127.0.0.1:6379":                                            "TestREADMEScaleOutCommandLinesRun",
	`printf 'emit join "room1"\n' | go run ./cmd/duplex dial --sio --ack --wait 3s --timestamps=false http://127.0.0.1:3002`:    "TestREADMEScaleOutCommandLinesRun",
	`printf 'emit broadcast "room1" "hello"\n' | go run ./cmd/duplex dial --sio --ack --timestamps=false http://127.0.0.1:3001`: "TestREADMEScaleOutCommandLinesRun",
	"go run ./cmd/duplex trace --timestamps=false --listen 127.0.0.1:8080 --upstream ws://127.0.0.1:3000":                       "TestREADMETraceShowsTheFramesItRelays",
}

// Every command line of README.md ("$ " lines and the lines of its sh blocks) is one that a
// test runs.
func TestREADMEShowsOnlyCommandsThatTestsRun(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	inSh := false
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
			continue
		case strings.HasPrefix(line, "```"):
			inSh = false
			continue
		}
		cmd, isPrompt := strings.CutPrefix(line, "$ ")
		if !isPrompt && !(inSh && (strings.HasPrefix(line, "go ") || strings.HasPrefix(line, "./"))) {
			continue
		}
		if _, ok := readmeCommands[cmd]; !ok {
			t.Errorf("README.md shows %q, which no test runs (add it to readmeCommands with its test)", cmd)
		}
	}
}

// "go run ./cmd/duplex serve" with no flag serves on 127.0.0.1:3000 (when that port is free
// on the machine running the test).
func TestREADMEServeRunsWithNoConfiguration(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:3000")
	if err != nil {
		t.Skip("127.0.0.1:3000 is taken on this machine:", err)
	}
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	status := make(chan int, 1)
	stdout := &syncBuffer{}
	go func() { status <- run(ctx, []string{"serve"}, strings.NewReader(""), stdout, io.Discard) }()
	defer func() {
		cancel()
		if s := <-status; s != 0 {
			t.Errorf("serve ended with status %d", s)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "http://127.0.0.1:3000/") {
		if time.Now().After(deadline) {
			t.Fatalf("serve printed %q", stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := http.Get("http://127.0.0.1:3000/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", res.Status)
	}
}

// The README's test command is the one CI runs.
func TestREADMETestCommandIsWhatCIRuns(t *testing.T) {
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "exec ./scripts/test\n") {
		t.Fatalf(".ci/run does not run ./scripts/test:\n%s", ci)
	}
	if _, err := os.Stat("../../scripts/test"); err != nil {
		t.Fatal(err)
	}
}

// The trace command of the README, in front of "duplex serve", shows the frames of an echo
// as the README does.
func TestREADMETraceShowsTheFramesItRelays(t *testing.T) {
	echoURL, stop := startServe(t)
	defer stop()
	addr := strings.TrimSuffix(strings.TrimPrefix(echoURL, "ws://"), "/echo")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	status := make(chan int, 1)
	go func() {
		status <- run(ctx, []string{"trace", "--timestamps=false", "--listen", listen, "--upstream", "ws://" + addr}, strings.NewReader(""), out, io.Discard)
	}()
	defer func() {
		cancel()
		<-status
	}()
	var c *ws.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, err = ws.Dial(context.Background(), "ws://"+listen+"/echo", nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.WriteMessage(context.Background(), ws.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = c.Close(ws.StatusNormalClosure, "")
	want := []string{
		`c→s  payload  text, unmasked, 5 B: "hello"`,
		`s→c  frame    text         fin=1 rsv=000 op=0x1 mask=0 len=5       (7-bit)`,
		`s→c  payload  text, 5 B: "hello"`,
		`c→s  close    code 1000 (normal closure)`,
	}
	for _, w := range want {
		for !strings.Contains(out.String(), w) {
			if time.Now().After(deadline) {
				t.Fatalf("trace output lacks %q:\n%s", w, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
