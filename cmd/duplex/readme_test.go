package main

import (
	"context"
	"os"
	"strings"
	"testing"
)

// The command lines of README.md's "Socket.IO from the terminal" and "Load" sections, run
// against "duplex serve" as the README runs them (on its own port instead of 3000).
func TestREADMEDialSIOAndBenchCommandLinesRun(t *testing.T) {
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
		for _, w := range tc.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%s: stdout %q lacks %q", tc.args, stdout.String(), w)
			}
		}
	}
}
