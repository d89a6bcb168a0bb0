// Command idlerss measures the server's resident memory per idle WebSocket connection, in
// the event-driven mode (ws.EventLoop) or the goroutine mode (a ReadMessage loop per
// connection). The clients run in a child process, so that only the server is counted.
//
//	go run ./internal/cmd/idlerss -mode evented -n 10000
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
	"strconv"
	"strings"
	"time"

	"github.com/duplexio/duplex/ws"
)

func main() {
	mode := flag.String("mode", "evented", "evented or goroutine")
	n := flag.Int("n", 10000, "connections")
	client := flag.String("client", "", "internal: dial this address n times and wait")
	flag.Parse()
	if *client != "" {
		runClients(*client, *n)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	var loop *ws.EventLoop
	if *mode == "evented" {
		loop, err = ws.NewEventLoop(nil)
		check(err)
	}
	u := &ws.Upgrader{}
	nop := nopHandler{}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := u.Upgrade(w, r)
		if err != nil {
			return
		}
		if loop != nil {
			_ = loop.Serve(c, nop)
			return
		}
		go func() {
			for {
				if _, _, err := c.ReadMessage(context.Background()); err != nil {
					return
				}
			}
		}()
	}))
	settle()
	before := rss()
	cmd := exec.Command(os.Args[0], "-client", ln.Addr().String(), "-n", strconv.Itoa(*n))
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
	after := rss()
	fmt.Printf("mode=%s conns=%d rss_before=%d KiB rss_after=%d KiB per_conn=%.0f B goroutines=%d\n",
		*mode, *n, before>>10, after>>10, float64(after-before)/float64(*n), runtime.NumGoroutine())
	cmd.Process.Kill()
	cmd.Wait()
}

type nopHandler struct{}

func (nopHandler) OnOpen(*ws.Conn)                            {}
func (nopHandler) OnMessage(*ws.Conn, ws.MessageType, []byte) {}
func (nopHandler) OnClose(*ws.Conn, error)                    {}

func runClients(addr string, n int) {
	conns := make([]*ws.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, _, err := ws.Dial(context.Background(), "ws://"+addr+"/", nil)
		check(err)
		conns = append(conns, c)
	}
	// A message on each, so that every server connection has read once (buffers taken
	// from the pools and given back), as a real idle connection has.
	for _, c := range conns {
		check(c.WriteMessage(context.Background(), ws.MessageText, []byte("hello")))
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
