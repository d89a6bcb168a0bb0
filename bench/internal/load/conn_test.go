package load

import (
	"context"
	"net"
	"testing"
	"time"
)

// DialMany with sources spreads the connections over that many loopback source
// addresses, round robin, which is what lets one load open more connections to
// one server than one address has ephemeral ports.
func TestDialManySpreadsOverSources(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n, sources = 9, 3
	peers := make(chan string, n)
	go func() {
		for range n { // bounded: the test dials n connections
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).IP.String()
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conns, err := DialMany(ctx, n, sources, ln.Addr().String(), "/", false, 512, "")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	count := map[string]int{}
	for range n {
		select {
		case ip := <-peers:
			count[ip]++
		case <-ctx.Done():
			t.Fatal("not every connection was accepted")
		}
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if count[ip] != n/sources {
			t.Errorf("%s: %d connections, want %d (all: %v)", ip, count[ip], n/sources, count)
		}
	}
}
