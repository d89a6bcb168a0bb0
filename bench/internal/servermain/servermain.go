// Package servermain holds what the bench's server commands (cmd/echoserver,
// cmd/eioserver, cmd/sioserver) share: the -addr, -cpuprofile and
// -memprofile flags (and, for the Engine.IO and Socket.IO servers, the ping
// flags), listening, the "listening ADDR" line the comparisons wait for,
// and running until SIGINT or SIGTERM with the profiles written on the way
// out. SIGUSR1 makes a server collect its garbage and return the freed memory
// to the OS (runtime.GC, debug.FreeOSMemory), so that an idle-memory
// measurement reads live memory (cmd/evcompare).
package servermain

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/duplexio/duplex/bench/internal/proc"
)

// Flags are the flags every bench server takes.
type Flags struct {
	Addr       string // listen address; port 0 picks a free one
	CPUProfile string // file for a CPU profile of the whole run; "" = none
	MemProfile string // file for an allocation profile written on exit; "" = none
}

// AddFlags registers -addr, -cpuprofile and -memprofile on fs, filling f.
func (f *Flags) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.Addr, "addr", "127.0.0.1:0", "listen address (loopback)")
	fs.StringVar(&f.CPUProfile, "cpuprofile", "", "write a CPU profile to this file on exit")
	fs.StringVar(&f.MemProfile, "memprofile", "", "write an allocation profile to this file on exit")
}

// PingFlags registers the Engine.IO -ping-interval and -ping-timeout flags on
// fs, both 5 minutes by default.
func PingFlags(fs *flag.FlagSet) (interval, timeout *time.Duration) {
	interval = fs.Duration("ping-interval", 5*time.Minute, "Engine.IO pingInterval (large, so heartbeats do not weigh on the measurements)")
	timeout = fs.Duration("ping-timeout", 5*time.Minute, "Engine.IO pingTimeout")
	return interval, timeout
}

// Listen raises RLIMIT_NOFILE to its hard limit (logging a failure), samples
// every 4 KiB allocated when -memprofile is set, and listens on -addr.
func (f *Flags) Listen() (net.Listener, error) {
	if _, err := proc.RaiseNoFile(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	if f.MemProfile != "" {
		runtime.MemProfileRate = 4096
	}
	return net.Listen("tcp", f.Addr)
}

// Serve starts the CPU profile (with -cpuprofile), prints "listening ADDR"
// on stdout for ln's address, and waits for SIGINT or SIGTERM; then it
// stops the CPU profile, calls closeServer and writes the allocation profile
// (with -memprofile). It returns the first error of a profile file.
func (f *Flags) Serve(ln net.Listener, closeServer func() error) error {
	if f.CPUProfile != "" {
		out, err := os.Create(f.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
	}
	fmt.Printf("listening %s\n", ln.Addr())

	collect := make(chan os.Signal, 1)
	signal.Notify(collect, syscall.SIGUSR1)
	defer signal.Stop(collect)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	for waiting := true; waiting; {
		select {
		case <-collect:
			runtime.GC()
			debug.FreeOSMemory()
		case <-sig:
			waiting = false
		}
	}
	if f.CPUProfile != "" {
		pprof.StopCPUProfile()
	}
	_ = closeServer()
	if f.MemProfile != "" {
		out, err := os.Create(f.MemProfile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.Lookup("allocs").WriteTo(out, 0); err != nil {
			return err
		}
	}
	return nil
}
