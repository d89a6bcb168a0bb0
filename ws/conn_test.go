package ws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// pair returns a connected client and server Conn over loopback TCP.
func pair(t testing.TB, u *Upgrader) (client, server *Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if u == nil {
		u = &Upgrader{}
	}
	type result struct {
		c   *Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			ch <- result{nil, err}
			return
		}
		c, _, err := u.UpgradeConn(nc)
		ch <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, _, err = Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.CloseNow(); r.c.CloseNow() })
	return client, r.c
}

func TestCloseHandshakeReportsCodeAndReasonToThePeer(t *testing.T) {
	client, server := pair(t, nil)
	got := make(chan error, 1)
	go func() { _, _, err := server.ReadMessage(context.Background()); got <- err }()
	if err := client.Close(4000, "bye"); err != nil {
		t.Fatal(err)
	}
	var ce *CloseError
	if err := <-got; !errors.As(err, &ce) || ce.Code != 4000 || ce.Reason != "bye" || !ce.Remote {
		t.Fatalf("server read: %v", err)
	}
	select {
	case <-server.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server did not close the TCP connection")
	}
	if err := client.WriteMessage(context.Background(), MessageText, []byte("x")); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

func TestCloseWithoutReaderDrainsUntilThePeersClose(t *testing.T) {
	client, server := pair(t, nil)
	// The server sends data, then answers close: Close on the client must read past the data.
	go func() {
		for i := 0; i < 3; i++ {
			server.WriteMessage(context.Background(), MessageText, []byte("data"))
		}
		server.ReadMessage(context.Background())
	}()
	start := time.Now()
	if err := client.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("Close waited for its timeout instead of the peer's close frame")
	}
}

func TestReadContextCancelEndsTheRead(t *testing.T) {
	client, _ := pair(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, _, err := client.ReadMessage(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, _, err := client.ReadMessage(context.Background()); err == nil {
		t.Fatal("read after a cancelled read succeeded")
	}
}

func TestReadDeadlineTimesOut(t *testing.T) {
	client, _ := pair(t, nil)
	client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, _, err := client.ReadMessage(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestConcurrentWritersNeverInterleaveMessages(t *testing.T) {
	client, server := pair(t, nil)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				msg := bytes.Repeat([]byte{byte('a' + w)}, 100+i*37%5000)
				if w%2 == 0 {
					if err := server.WriteMessage(context.Background(), MessageBinary, msg); err != nil {
						t.Error(err)
						return
					}
					continue
				}
				wr, err := server.NextWriter(context.Background(), MessageBinary)
				if err != nil {
					t.Error(err)
					return
				}
				wr.Write(msg[:len(msg)/2])
				wr.Write(msg[len(msg)/2:])
				if err := wr.Close(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() {
		for i := 0; i < 50; i++ {
			server.Ping(context.Background(), []byte("p"))
		}
	}()
	for i := 0; i < writers*each; i++ {
		_, msg, err := client.ReadMessage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(msg) == 0 || !bytes.Equal(msg, bytes.Repeat(msg[:1], len(msg))) {
			t.Fatalf("message %d mixes writers", i)
		}
	}
	wg.Wait()
}

func TestPingIsAnsweredAndPongHandlerCalled(t *testing.T) {
	client, server := pair(t, nil)
	pong := make(chan string, 1)
	client.SetPongHandler(func(b []byte) { pong <- string(b) })
	go server.ReadMessage(context.Background()) // answers pings
	go client.ReadMessage(context.Background()) // receives pongs
	if err := client.Ping(context.Background(), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-pong:
		if p != "hello" {
			t.Fatalf("pong payload %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}

func TestKeepAliveClosesWhenThePeerStopsAnswering(t *testing.T) {
	client, server := pair(t, nil)
	_ = server // never reads, so never answers pings
	go client.ReadMessage(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := client.KeepAlive(ctx, 20*time.Millisecond, 100*time.Millisecond)
	if !errors.Is(err, ErrKeepAliveTimeout) {
		t.Fatalf("err = %v, want ErrKeepAliveTimeout", err)
	}
	select {
	case <-client.Done():
	case <-time.After(time.Second):
		t.Fatal("connection left open")
	}
}

func TestKeepAliveRunsWhileThePeerAnswers(t *testing.T) {
	client, server := pair(t, nil)
	go server.ReadMessage(context.Background())
	go client.ReadMessage(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := client.KeepAlive(ctx, 20*time.Millisecond, time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
}

func TestShutdownSendsGoingAwayToEveryConnection(t *testing.T) {
	u := &Upgrader{}
	srv := echoServer(t, u)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var clients []*Conn
	for i := 0; i < 3; i++ {
		c, _, err := Dial(ctx, wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		clients = append(clients, c)
	}
	errs := make(chan error, len(clients))
	for _, c := range clients {
		go func() { _, _, err := c.ReadMessage(ctx); errs <- err }()
	}
	if err := u.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range clients {
		if err := <-errs; CloseStatus(err) != StatusGoingAway {
			t.Fatalf("client read %v, want 1001", err)
		}
	}
	if _, _, err := Dial(ctx, wsURL(srv), nil); err == nil {
		t.Fatal("upgrade accepted after Shutdown")
	}
}

func TestReadLimitClosesWith1009(t *testing.T) {
	client, server := pair(t, &Upgrader{ReadLimit: 1000})
	got := make(chan error, 1)
	go func() { _, _, err := server.ReadMessage(context.Background()); got <- err }()
	client.WriteMessage(context.Background(), MessageBinary, make([]byte, 1001))
	if err := <-got; CloseStatus(err) != StatusMessageTooBig {
		t.Fatalf("server: %v", err)
	}
	if _, _, err := client.ReadMessage(context.Background()); CloseStatus(err) != StatusMessageTooBig {
		t.Fatalf("client: %v, want the server's 1009", err)
	}
}

func TestNextReaderStreamsAndSkipsUnreadRest(t *testing.T) {
	client, server := pair(t, nil)
	go func() {
		server.WriteMessage(context.Background(), MessageBinary, bytes.Repeat([]byte("x"), 100000))
		server.WriteMessage(context.Background(), MessageText, []byte("second"))
	}()
	typ, r, err := client.NextReader(context.Background())
	if err != nil || typ != MessageBinary {
		t.Fatal(typ, err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	typ, r, err = client.NextReader(context.Background())
	if err != nil || typ != MessageText {
		t.Fatal(typ, err)
	}
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "second" {
		t.Fatalf("%q %v", b, err)
	}
}

func TestNetConnCarriesAStream(t *testing.T) {
	client, server := pair(t, nil)
	go func() {
		s := NetConn(server, MessageBinary)
		io.Copy(s, s) // echo the stream
		s.Close()
	}()
	s := NetConn(client, MessageBinary)
	want := bytes.Repeat([]byte("0123456789"), 5000)
	go func() {
		for i := 0; i < len(want); i += 7000 {
			s.Write(want[i:min(i+7000, len(want))])
		}
	}()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("stream mismatch: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWritesWaitingToCoalesceAreFlushedWithoutAnotherRead(t *testing.T) {
	client, server := pair(t, nil)
	// Two messages arrive in one read: after the first, the server writes a reply while the
	// second is still buffered, then stops reading. The reply must still go out.
	nc := client.nc
	var frames []byte
	for _, m := range []string{"one", "two"} {
		h := Header{Fin: true, Opcode: OpText, Masked: true, Mask: [4]byte{1, 2, 3, 4}, Length: int64(len(m))}
		p := []byte(m)
		MaskBytes(h.Mask, 0, p)
		frames = append(AppendHeader(frames, h), p...)
	}
	if _, err := nc.Write(frames); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for server.buffered() == 0 && time.Now().Before(deadline) {
		if _, msg, err := server.ReadMessage(context.Background()); err != nil || string(msg) != "one" {
			t.Fatalf("%q %v", msg, err)
		}
	}
	if err := server.WriteMessage(context.Background(), MessageText, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, msg, err := client.ReadMessage(ctx); err != nil || string(msg) != "reply" {
		t.Fatalf("%q %v", msg, err)
	}
}

func TestReadAfterLocalCloseNowReturnsErrClosed(t *testing.T) {
	client, _ := pair(t, nil)
	go func() { time.Sleep(20 * time.Millisecond); client.CloseNow() }()
	if _, _, err := client.ReadMessage(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestPeerVanishingIsAbnormalClosure(t *testing.T) {
	client, server := pair(t, nil)
	server.nc.Close()
	if _, _, err := client.ReadMessage(context.Background()); CloseStatus(err) != StatusAbnormalClosure {
		t.Fatalf("err = %v, want 1006", err)
	}
}

// BenchmarkEchoAllocs measures a steady-state echo round trip over loopback: the server reads
// with AppendMessage into a reused buffer and writes the message back.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{16, 1024, 4096, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			srv := echoServer(b, &Upgrader{})
			c, _, err := Dial(context.Background(), wsURL(srv), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			msg := make([]byte, size)
			var buf []byte
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := c.WriteMessage(context.Background(), MessageBinary, msg); err != nil {
					b.Fatal(err)
				}
				if _, buf, err = c.AppendMessage(context.Background(), buf[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if len(buf) != size {
				b.Fatal(fmt.Sprint("echo size ", len(buf)))
			}
		})
	}
}

func TestStartCloseLetsTheReaderSeeMessagesSentBeforeThePeersClose(t *testing.T) {
	client, server := pair(t, nil)
	// The server answers each message, then the close, like an echo server would: its
	// answers to the last messages arrive after the client's close frame went out.
	go func() {
		for {
			typ, msg, err := server.ReadMessage(context.Background())
			if err != nil {
				return
			}
			server.WriteMessage(context.Background(), typ, msg)
		}
	}()
	for _, m := range []string{"one", "two", "three"} {
		if err := client.WriteMessage(context.Background(), MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.StartClose(4002, "done"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two", "three"} {
		if _, msg, err := client.ReadMessage(context.Background()); err != nil || string(msg) != want {
			t.Fatalf("got %q, %v; want %q", msg, err, want)
		}
	}
	var ce *CloseError
	if _, _, err := client.ReadMessage(context.Background()); !errors.As(err, &ce) || ce.Code != 4002 || !ce.Remote {
		t.Fatalf("after the messages: %v, want the peer's echo of 4002", err)
	}
	if err := client.WriteMessage(context.Background(), MessageText, []byte("late")); err == nil {
		t.Fatal("write after StartClose succeeded")
	}
}

func TestStartCloseBoundsTheWaitForAPeerThatNeverAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("waits DefaultCloseTimeout")
	}
	client, _ := pair(t, nil) // the server side never reads
	start := time.Now()
	if err := client.StartClose(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	_, _, err := client.ReadMessage(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d < DefaultCloseTimeout-time.Second || d > DefaultCloseTimeout+3*time.Second {
		t.Fatalf("read ended after %v, want about %v", d, DefaultCloseTimeout)
	}
}

// Connections without raw socket access (TLS, pipes) wait on a small buffer and move to a
// full-sized one once data fills it; large and back-to-back messages must come through whole.
func TestReadsWithoutRawSocketGrowTheirBuffer(t *testing.T) {
	a, b := net.Pipe()
	client := newConn(a, nil, connConfig{})
	server := newConn(b, nil, connConfig{isServer: true})
	defer client.CloseNow()
	defer server.CloseNow()
	if client.raw != nil || server.raw != nil {
		t.Fatal("a pipe has no raw socket; the test would not cover the buffered path")
	}
	sizes := []int{10, 100000, 3, 600, 70000, 1}
	go func() {
		for i, n := range sizes {
			client.WriteMessage(context.Background(), MessageBinary, bytes.Repeat([]byte{byte(i)}, n))
		}
	}()
	for i, n := range sizes {
		_, msg, err := server.ReadMessage(context.Background())
		if err != nil || !bytes.Equal(msg, bytes.Repeat([]byte{byte(i)}, n)) {
			t.Fatalf("message %d (%d bytes): %d bytes, %v", i, n, len(msg), err)
		}
	}
}

// countingConn counts the reads made on it.
type countingConn struct {
	scriptedConn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.scriptedConn.Read(p)
}

func TestReadsWithoutRawSocketMoveToAFullSizedBuffer(t *testing.T) {
	var stream []byte
	for i := 0; i < 100; i++ {
		stream = append(stream, maskedFrame(true, OpBinary, string(bytes.Repeat([]byte{'x'}, 600)))...)
	}
	nc := &countingConn{scriptedConn: scriptedConn{in: bytes.NewReader(stream)}}
	server := newConn(nc, nil, connConfig{isServer: true})
	for i := 0; i < 100; i++ {
		if _, msg, err := server.ReadMessage(context.Background()); err != nil || len(msg) != 600 {
			t.Fatalf("message %d: %d bytes, %v", i, len(msg), err)
		}
	}
	// 60 KB through a 32 KiB buffer takes a few reads; through the 512-byte idle buffer, over 100.
	if nc.reads > 10 {
		t.Fatalf("%d reads for %d bytes", nc.reads, len(stream))
	}
}
