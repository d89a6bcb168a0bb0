// Command idlerss measures the server's resident memory per idle WebSocket connection, in
// the event-driven mode (ws.EventLoop) or the goroutine mode (a ReadMessage loop per
// connection), upgraded under net/http (Upgrader.Upgrade) or on a bare listener
// (Upgrader.UpgradeConn, -raw). The clients run in a child process, so that only the
// server is counted. Besides RSS it prints the live heap per connection, and with
// -memprofile it writes a heap profile sampled at every allocation, to see what an idle
// connection holds (go tool pprof -sample_index=inuse_space). With -deflate the connections
// negotiate permessage-deflate (with or without context takeover) and exchange one
// compressed message of -msg bytes each way before going idle.
//
//	go run ./internal/cmd/idlerss -mode evented -n 10000 [-raw] [-memprofile heap.prof]
//	go run ./internal/cmd/idlerss -mode evented -n 10000 -deflate takeover -msg 1024
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/ws"
)

func main() {
	mode := flag.String("mode", "evented", "evented or goroutine")
	n := flag.Int("n", 10000, "connections")
	raw := flag.Bool("raw", false, "upgrade with UpgradeConn on a bare listener instead of net/http")
	memprofile := flag.String("memprofile", "", "write a heap profile (every allocation sampled) with the connections open")
	deflate := flag.String("deflate", "", "negotiate permessage-deflate: takeover (context takeover both ways) or nocontext")
	msg := flag.Int("msg", 1024, "with -deflate: the size of the compressed message sent each way")
	client := flag.String("client", "", "internal: dial this address n times and wait")
	flag.Parse()
	comp := compression(*deflate)
	if *client != "" {
		runClients(*client, *n, comp, *msg)
		return
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 1
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	var loop *ws.EventLoop
	if *mode == "evented" {
		loop, err = ws.NewEventLoop(nil)
		check(err)
	}
	u := &ws.Upgrader{Compression: comp}
	// Compressed messages are echoed, so that the server's sending side has compressed too.
	echo := comp != nil
	serve := func(c *ws.Conn) {
		if loop != nil {
			_ = loop.Serve(c, nopHandler{echo: echo})
			return
		}
		go func() {
			for {
				typ, data, err := c.ReadMessage(context.Background())
				if err != nil {
					return
				}
				if echo {
					_ = c.WriteMessage(context.Background(), typ, data)
				}
			}
		}()
	}
	if *raw {
		go acceptRaw(ln, u, serve)
	} else {
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c, err := u.Upgrade(w, r); err == nil {
				serve(c)
			}
		}))
	}
	settle()
	before, heapBefore := rss(), heapInuse()
	cmd := exec.Command(os.Args[0], "-client", ln.Addr().String(), "-n", strconv.Itoa(*n), "-deflate", *deflate, "-msg", strconv.Itoa(*msg))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	check(err)
	check(cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	check(err)
	if strings.TrimSpace(line) != "ready" {
		panic(line)
	}
	time.Sleep(time.Second)
	settle()
	after, heapAfter := rss(), heapInuse()
	fmt.Printf("mode=%s raw=%v deflate=%q conns=%d rss_before=%d KiB rss_after=%d KiB per_conn=%.0f B heap_per_conn=%.0f B goroutines=%d\n",
		*mode, *raw, *deflate, *n, before>>10, after>>10, float64(after-before)/float64(*n),
		float64(heapAfter-heapBefore)/float64(*n), runtime.NumGoroutine())
	if *memprofile != "" {
		f, err := os.Create(*memprofile)
		check(err)
		check(pprof.Lookup("heap").WriteTo(f, 0))
		check(f.Close())
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// acceptRaw upgrades every connection ln accepts with UpgradeConn, no net/http.
func acceptRaw(ln net.Listener, u *ws.Upgrader, serve func(*ws.Conn)) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			c, _, err := u.UpgradeConn(nc)
			if err != nil {
				nc.Close()
				return
			}
			serve(c)
		}()
	}
}

// nopHandler does nothing, or echoes with echo set.
type nopHandler struct{ echo bool }

func (nopHandler) OnOpen(*ws.Conn) {}
func (h nopHandler) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	if h.echo {
		_ = c.WriteMessage(context.Background(), typ, data)
	}
}
func (nopHandler) OnClose(*ws.Conn, error) {}

// compression returns the CompressionOptions of a -deflate value (nil: none), compressing
// every message.
func compression(mode string) *ws.CompressionOptions {
	switch mode {
	case "":
		return nil
	case "takeover":
		return &ws.CompressionOptions{Threshold: -1}
	case "nocontext":
		return &ws.CompressionOptions{Threshold: -1, ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	}
	panic("-deflate: takeover or nocontext")
}

func runClients(addr string, n int, comp *ws.CompressionOptions, msgSize int) {
	conns := make([]*ws.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, _, err := ws.Dial(context.Background(), "ws://"+addr+"/", &ws.DialOptions{Compression: comp})
		check(err)
		conns = append(conns, c)
	}
	// A message on each, so that every server connection has read once (buffers taken
	// from the pools and given back), as a real idle connection has. With compression, a
	// message of msgSize bytes (text with repeats), and its echo is read.
	msg := []byte("hello")
	if comp != nil {
		msg = []byte(strings.Repeat("idle connection, compressed; ", msgSize/29+1)[:msgSize])
	}
	for _, c := range conns {
		check(c.WriteMessage(context.Background(), ws.MessageText, msg))
	}
	if comp != nil {
		for _, c := range conns {
			_, _, err := c.ReadMessage(context.Background())
			check(err)
		}
	}
	fmt.Println("ready")
	select {}
}

// settle collects garbage and returns freed memory to the OS, so that RSS counts live
// memory.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

// heapInuse returns the bytes in in-use heap spans (live objects and the free room in
// their spans), after settle.
func heapInuse() int64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	check(err)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}
