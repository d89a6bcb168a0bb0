package main

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/internal/lbtest"
	"github.com/duplexio/duplex/internal/redistest"
	"github.com/duplexio/duplex/socketio"
)

// startNodesServing is startNodes returning the nodes, which the test may stop itself.
func startNodesServing(t *testing.T, n int, extra ...string) []*served {
	t.Helper()
	addr := redistest.Start(t)
	nodes := make([]*served, n)
	for i := range nodes {
		nodes[i] = startServing(t, append([]string{"--redis", "redis://" + addr, "--redis-key", "clustertest"}, extra...)...)
	}
	return nodes
}

// startNodes runs n "duplex serve --redis redis://ADDR --redis-key KEY" in-process on one
// Redis, stopped when the test ends, and returns their base URLs.
func startNodes(t *testing.T, n int, extra ...string) []string {
	t.Helper()
	addr := redistest.Start(t)
	bases := make([]string, n)
	for i := range bases {
		s := startServing(t, append([]string{"--redis", "redis://" + addr, "--redis-key", "clustertest"}, extra...)...)
		t.Cleanup(func() {
			if status := s.stop(); status != 0 {
				t.Errorf("node %d exited with %d; stderr:\n%s", i, status, s.stderr.String())
			}
		})
		bases[i] = s.base
	}
	return bases
}

// dialNode connects a Socket.IO client to base (no reconnection), closed when the test ends.
func dialNode(t *testing.T, base string, transports ...string) *socketio.ClientSocket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := socketio.Dial(ctx, base, &socketio.ManagerOptions{
		Engine:      engineio.ClientOptions{Transports: transports},
		NoReconnect: true,
	}, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", base, err)
	}
	t.Cleanup(s.Manager().Close)
	return s
}

func emitAck(t *testing.T, s *socketio.ClientSocket, event string, args ...any) socketio.Args {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := s.EmitWithAck(ctx, event, args...)
	if err != nil {
		t.Fatalf("%s: %v", event, err)
	}
	return ack
}

func TestServeRedisBroadcastReachesARoomMemberOnAnotherNode(t *testing.T) {
	bases := startNodes(t, 2)
	sender := dialNode(t, bases[0])
	member := dialNode(t, bases[1])
	msgs := make(chan string, 4)
	member.On("msg", func(args socketio.Args, _ socketio.AckFunc) {
		var s string
		_ = args.Decode(0, &s)
		msgs <- s
	})
	emitAck(t, member, "join", "room1")
	if ack := emitAck(t, sender, "broadcast", "room1", "hello from node 1"); ack.Len() != 0 {
		t.Fatalf("broadcast answered %s", ack.Raw(0))
	}
	select {
	case m := <-msgs:
		if m != "hello from node 1" {
			t.Fatalf("msg %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the room member on node 2 got no msg")
	}
}

func TestServeRedisRelaysPollingBetweenNodes(t *testing.T) {
	bases := startNodes(t, 2)
	front := lbtest.RoundRobin(t, bases...)
	s := dialNode(t, front.URL, engineio.TransportPolling)
	for i := range 50 {
		want := strings.Repeat("x", i)
		var got string
		if err := emitAck(t, s, "echo", want).Decode(0, &got); err != nil || got != want {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	if counts := front.Counts(); counts[0] < 20 || counts[1] < 20 {
		t.Errorf("requests per node %v: the front did not alternate", counts)
	}
}

func TestServeRedisFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redis", "redis://127.0.0.1:1", "--fixture"}, "--redis and --fixture do not go together"},
		{[]string{"--redis", "http://127.0.0.1:6379"}, "--redis:"},
		{[]string{"--redis", "redis://127.0.0.1:6379", "--redis-key", ""}, "--redis-key must not be empty"},
		{[]string{"--redis", "redis://127.0.0.1:1"}, "redis at redis://127.0.0.1:1"},
	} {
		var stdout, stderr strings.Builder
		status := run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...), strings.NewReader(""), &stdout, &stderr)
		if status != 1 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("serve %q: status %d, stderr %q; want 1 and %q", tc.args, status, stderr.String(), tc.want)
		}
	}
}

// The command lines of README.md's "Scale out" section, run as the README runs them (on a
// Redis and ports of the test's own).
func TestREADMEScaleOutCommandLinesRun(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const (
		node1  = "go run ./cmd/duplex serve --addr 127.0.0.1:3001 --redis redis://127.0.0.1:6379"
		node2  = "go run ./cmd/duplex serve --addr 127.0.0.1:3002 --redis redis://127.0.0.1:6379"
		member = `printf 'emit join "room1"\n' | go run ./cmd/duplex dial --sio --ack --wait 3s --timestamps=false http://127.0.0.1:3002`
		sender = `printf 'emit broadcast "room1" "hello"\n' | go run ./cmd/duplex dial --sio --ack --timestamps=false http://127.0.0.1:3001`
	)
	for _, line := range []string{node1, node2, member, sender} {
		if !strings.Contains(string(readme), "$ "+line+"\n") {
			t.Errorf("README.md does not show %q", line)
		}
	}
	bases := startNodes(t, 2) // node1 and node2, on ports of their own
	dialArgs := func(line string, base string) []string {
		_, cmd, _ := strings.Cut(line, "go run ./cmd/duplex ")
		args := strings.Fields(cmd)
		args[len(args)-1] = base
		return args
	}
	memberOut := &syncBuffer{}
	memberDone := make(chan int, 1)
	go func() {
		var stderr strings.Builder
		memberDone <- run(context.Background(), dialArgs(member, bases[1]), strings.NewReader("emit join \"room1\"\n"), memberOut, &stderr)
	}()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(memberOut.String(), "ack []\n"); {
		if time.Now().After(deadline) {
			t.Fatalf("the member did not join: %q", memberOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var out, stderr strings.Builder
	if status := run(context.Background(), dialArgs(sender, bases[0]), strings.NewReader("emit broadcast \"room1\" \"hello\"\n"), &out, &stderr); status != 0 || !strings.HasSuffix(out.String(), "ack []\n") {
		t.Fatalf("sender: status %d, stdout %q, stderr %q", status, out.String(), stderr.String())
	}
	select {
	case status := <-memberDone:
		if status != 0 {
			t.Errorf("member: status %d", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the member did not end after --wait")
	}
	if got := memberOut.String(); !strings.HasSuffix(got, "ack []\nmsg [\"hello\"]\n") {
		t.Errorf("member printed %q, want the ack then msg [\"hello\"]", got)
	}
}

func TestServeRedisStoppingANodeKeepsTheSessionsItRelays(t *testing.T) {
	nodes := startNodesServing(t, 2)
	defer func() {
		if status := nodes[1].stop(); status != 0 {
			t.Errorf("node 2 exited with %d", status)
		}
	}()
	owner := eiotest.NewClient(t, nodes[1].base+socketio.DefaultPath)
	other := eiotest.NewClient(t, nodes[0].base+socketio.DefaultPath)
	sid := owner.OpenPolling(t)
	if r := owner.Push(t, sid, "40"); r.Status != http.StatusOK { // Socket.IO CONNECT
		t.Fatalf("CONNECT: %v", r)
	}
	if got := owner.PollPackets(t, sid, 1); !strings.HasPrefix(got[0], "40{") {
		t.Fatalf("CONNECT answer %q", got)
	}
	polled := make(chan eiotest.Reply, 1)
	go func() {
		r, _ := other.Do(http.MethodGet, eiotest.PollQuery(sid), nil, nil)
		polled <- r
	}()
	time.Sleep(100 * time.Millisecond) // held by node 2 until it has something (ping: 25 s)
	start := time.Now()
	if status := nodes[0].stop(); status != 0 {
		t.Fatalf("node 1 exited with %d; stderr:\n%s", status, nodes[0].stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("node 1 took %v to stop", d)
	}
	if r := <-polled; r.Status != http.StatusOK {
		t.Fatalf("the poll relayed through node 1: %v, want 200", r)
	}
	// The session lives on its owner.
	if r := owner.Push(t, sid, `421["echo","still here"]`); r.Status != http.StatusOK {
		t.Fatalf("POST to node 2: %v", r)
	}
	var got []string
	for !slices.Contains(got, `431["still here"]`) {
		got = append(got, owner.PollPackets(t, sid, 1)...)
		if len(got) > 5 {
			t.Fatalf("polled %q, want the echo's ack", got)
		}
	}
}
