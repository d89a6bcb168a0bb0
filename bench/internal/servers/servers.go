// Package servers holds one WebSocket echo server per library, each written
// the plain, documented way for that library, plus a raw TCP echo baseline.
// Every server echoes each message back with the opcode it arrived with.
package servers

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Server is a running echo server.
type Server interface {
	// Close stops accepting and closes the listener. Connections already
	// upgraded end when their peer closes them.
	Close() error
}

type starter func(ln net.Listener) (Server, error)

var registry = map[string]starter{}

func register(name string, s starter) { registry[name] = s }

// Names lists the registered implementations, sorted.
func Names() []string {
	var n []string
	for k := range registry {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// IsWebSocket reports whether impl speaks WebSocket (all but "tcp").
func IsWebSocket(impl string) bool { return impl != "tcp" }

// Start serves impl on ln in background goroutines.
func Start(impl string, ln net.Listener) (Server, error) {
	s, ok := registry[impl]
	if !ok {
		return nil, fmt.Errorf("unknown impl %q (have %v)", impl, Names())
	}
	return s(ln)
}

// httpServer runs h on ln with net/http.
type httpServer struct{ srv *http.Server }

func serveHTTP(ln net.Listener, h http.Handler) Server {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return httpServer{srv}
}

func (s httpServer) Close() error { return s.srv.Close() }

// listenerServer runs an accept loop calling handle in one goroutine per conn.
type listenerServer struct{ ln net.Listener }

func serveListener(ln net.Listener, handle func(net.Conn)) Server {
	go func() {
		// Bounded by the listener: Accept fails for good once it is closed.
		var delay time.Duration
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Temporary failure such as EMFILE: back off, like net/http.
				if delay == 0 {
					delay = 5 * time.Millisecond
				} else if delay < time.Second {
					delay *= 2
				}
				time.Sleep(delay)
				continue
			}
			delay = 0
			go handle(c)
		}
	}()
	return listenerServer{ln}
}

func (s listenerServer) Close() error { return s.ln.Close() }

// ---- tcp: raw TCP echo, the baseline ----

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func init() {
	register("tcp", func(ln net.Listener) (Server, error) {
		return serveListener(ln, func(c net.Conn) {
			defer c.Close()
			bp := copyBufPool.Get().(*[]byte)
			defer copyBufPool.Put(bp)
			buf := *bp
			// Ends when the peer closes or the connection fails.
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil { // io.EOF when the peer closes
					return
				}
			}
		}), nil
	})
}
