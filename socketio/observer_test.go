package socketio

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
)

// broadcastLog records what an Observer is told.
type broadcastLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *broadcastLog) Broadcast(namespace string, recipients int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, namespace+" "+strconv.Itoa(recipients))
}

func (l *broadcastLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.seen
	l.seen = nil
	return s
}

func TestObserverSeesTheFanOutOfEachBroadcast(t *testing.T) {
	obs := &broadcastLog{}
	srv, url := newTestServer(t, eiotest.Evented, &Options{Observer: obs})
	joined := make(chan struct{}, 3)
	srv.OnConnection(func(s *Socket) {
		s.On("join", func(_ Args, ack AckFunc) {
			s.Join("r")
			_ = ack()
		})
		joined <- struct{}{}
	})
	a, b, c := dialRaw(t, url), dialRaw(t, url), dialRaw(t, url)
	for _, rc := range []*rawClient{a, b, c} {
		rc.connect("/")
		<-joined
	}
	for _, rc := range []*rawClient{a, b} {
		rc.send(`21["join"]`)
		if p := rc.packet(); p != "31[]" {
			t.Fatalf("join ack %q", p)
		}
	}
	if got := obs.take(); len(got) != 0 {
		t.Fatalf("reported before any broadcast: %q", got)
	}

	if err := srv.To("r").Emit("m", 1); err != nil {
		t.Fatal(err)
	}
	if err := srv.Emit("m", 2); err != nil {
		t.Fatal(err)
	}
	if err := srv.To("nobody").Emit("m", 3); err != nil {
		t.Fatal(err)
	}
	// A socket's own emit is no broadcast.
	one := srv.Of("/").Socket(srv.Of("/").Adapter().Sockets(BroadcastOptions{Rooms: []Room{"r"}})[0])
	if err := one.Emit("m", 4); err != nil {
		t.Fatal(err)
	}
	if got, want := obs.take(), []string{"/ 2", "/ 3", "/ 0"}; !slices.Equal(got, want) {
		t.Fatalf("reported %q, want %q", got, want)
	}

	// EmitWithAck: reported once queued, before the answers.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _ = srv.To("r").EmitWithAck(ctx, "q")
	if got, want := obs.take(), []string{"/ 2"}; !slices.Equal(got, want) {
		t.Fatalf("EmitWithAck reported %q, want %q", got, want)
	}
}
