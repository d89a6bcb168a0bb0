// Package lbtest is a load balancer for tests: an HTTP front that hands each request to the
// next of its backends in turn (round robin), with no stickiness at all, as the cluster
// tests of long-polling without sticky sessions need.
package lbtest

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Front is a round-robin reverse proxy in front of backends.
type Front struct {
	*httptest.Server // the front's URL is Server.URL

	mu      sync.Mutex
	next    int
	counts  []int
	proxies []*httputil.ReverseProxy
}

// RoundRobin starts a front on a loopback port that relays request i to backend i mod
// len(backends) (each an http:// base URL), WebSocket upgrades included, and closes it
// when the test ends.
func RoundRobin(tb testing.TB, backends ...string) *Front {
	tb.Helper()
	f := &Front{counts: make([]int, len(backends))}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	for _, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			tb.Fatal(err)
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = tr
		p.ErrorLog = log.New(io.Discard, "", 0) // a client that goes away is no error here
		f.proxies = append(f.proxies, p)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		i := f.next
		f.next = (f.next + 1) % len(f.proxies)
		f.counts[i]++
		f.mu.Unlock()
		f.proxies[i].ServeHTTP(w, r)
	}))
	tb.Cleanup(func() {
		f.Close()
		tr.CloseIdleConnections()
	})
	return f
}

// Counts returns how many requests each backend got so far.
func (f *Front) Counts() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.counts...)
}

// EchoInOrder sends n messages "m0".."m<n-1>" with send and checks that received gives them
// back in order: the first half one at a time, each echo awaited (a POST and a poll each,
// through whichever backend the front picks), the second half at once (batched into few
// requests). Each echo is awaited at most 5 s.
func EchoInOrder(tb testing.TB, n int, send func([]byte) error, received <-chan string) {
	tb.Helper()
	expect := func(i int) {
		tb.Helper()
		select {
		case m := <-received:
			if want := fmt.Sprintf("m%d", i); m != want {
				tb.Fatalf("message %d: got %q, want %q", i, m, want)
			}
		case <-time.After(5 * time.Second):
			tb.Fatalf("message %d did not come back", i)
		}
	}
	sendOne := func(i int) {
		tb.Helper()
		if err := send(fmt.Appendf(nil, "m%d", i)); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range n / 2 {
		sendOne(i)
		expect(i)
	}
	for i := n / 2; i < n; i++ {
		sendOne(i)
	}
	for i := n / 2; i < n; i++ {
		expect(i)
	}
}
