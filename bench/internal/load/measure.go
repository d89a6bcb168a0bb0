package load

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/duplexio/duplex/bench/internal/proc"
)

// The measured window of a run, what is sampled at its edges and what each
// connection counts in it, shared by the WebSocket, Engine.IO and Socket.IO
// loads.

// sleepUntil sleeps until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-ctx.Done():
	}
}

// timing holds the window as offsets from base (monotonic).
type timing struct {
	base         time.Time
	warmEnd, end time.Duration
}

// window holds CPU and syscall samples taken at the edges of a measured
// window.
type window struct {
	cpu0, cpu1, own0, own1 time.Duration
	sys0, sys1             int64
	ownSys0, ownSys1       int64
	cpuErr, sysErr, ownErr error
	ownSysErr              error
	pid                    int
}

// start samples the load's own CPU time and system calls and, when pid > 0,
// the CPU time and system calls of process pid.
func (w *window) start(pid int) {
	w.pid = pid
	w.own0, w.ownErr = proc.CPUTime(os.Getpid())
	w.ownSys0, w.ownSysErr = proc.Syscalls(os.Getpid())
	if pid > 0 {
		w.cpu0, w.cpuErr = proc.CPUTime(pid)
		w.sys0, w.sysErr = proc.Syscalls(pid)
	}
}

// stop samples what start sampled again, unless its first sample failed.
func (w *window) stop() {
	if w.ownErr == nil {
		w.own1, w.ownErr = proc.CPUTime(os.Getpid())
	}
	if w.ownSysErr == nil {
		w.ownSys1, w.ownSysErr = proc.Syscalls(os.Getpid())
	}
	if w.pid > 0 {
		if w.cpuErr == nil {
			w.cpu1, w.cpuErr = proc.CPUTime(w.pid)
		}
		if w.sysErr == nil {
			w.sys1, w.sysErr = proc.Syscalls(w.pid)
		}
	}
}

// serverCPU returns the server's CPU seconds over the window, -1 when unknown.
func (w *window) serverCPU() float64 {
	if w.pid > 0 && w.cpuErr == nil {
		return (w.cpu1 - w.cpu0).Seconds()
	}
	return -1
}

// serverSyscalls returns the server's read and write system calls over the
// window, -1 when unknown.
func (w *window) serverSyscalls() int64 {
	if w.pid > 0 && w.sysErr == nil {
		return w.sys1 - w.sys0
	}
	return -1
}

// loadCPU returns this process's CPU seconds over the window, -1 when
// unknown.
func (w *window) loadCPU() float64 {
	if w.ownErr == nil {
		return (w.own1 - w.own0).Seconds()
	}
	return -1
}

// sampleWindow sleeps until the window of tm, sampling at its edges.
func sampleWindow(ctx context.Context, tm timing, pid int) *window {
	w := new(window)
	sleepUntil(ctx, tm.base.Add(tm.warmEnd))
	w.start(pid)
	sleepUntil(ctx, tm.base.Add(tm.end))
	w.stop()
	return w
}

// fill puts the window's numbers in res.
func (w *window) fill(res *Result) {
	res.LoadCPUSeconds = w.loadCPU()
	if w.ownSysErr == nil && res.Msgs > 0 {
		res.LoadSyscallsPerMsg = float64(w.ownSys1-w.ownSys0) / float64(res.Msgs)
	}
	if cpu := w.serverCPU(); cpu >= 0 {
		res.ServerCPUSeconds = cpu
		if res.Msgs > 0 {
			res.ServerCPUPerMsgUs = cpu * 1e6 / float64(res.Msgs)
		}
	}
	if sys := w.serverSyscalls(); sys >= 0 && res.Msgs > 0 {
		res.ServerSyscallsPerMsg = float64(sys) / float64(res.Msgs)
	}
}

// newResult returns the Result of a run of conns connections (sessions,
// clients) with payload bytes per message and inflight messages in flight
// each, its CPU and syscall numbers -1 (not sampled) until filled.
func newResult(conns, payload, inflight int) Result {
	return Result{Conns: conns, Payload: payload, InFlight: inflight,
		ServerCPUSeconds: -1, ServerCPUPerMsgUs: -1, ServerSyscallsPerMsg: -1, LoadCPUSeconds: -1, LoadSyscallsPerMsg: -1}
}

// finish fills in res, once every connection's tally is added, the window's
// length d, the rate, the latency quantiles of h (the round trips in the
// window) and what w sampled.
func (res *Result) finish(d time.Duration, h *Histogram, w *window) {
	res.Seconds = d.Seconds()
	res.MsgsPerSec = float64(res.Msgs) / res.Seconds
	res.P50us = float64(h.Quantile(0.50)) / 1e3
	res.P90us = float64(h.Quantile(0.90)) / 1e3
	res.P99us = float64(h.Quantile(0.99)) / 1e3
	w.fill(res)
}

// tally is what one connection's (session's, client's) loop counted. Only
// that loop writes it, until the run's WaitGroup is done.
type tally struct {
	hist     *Histogram // latencies of the round trips in the window; nil for idle connections
	msgs     uint64     // round trips completed inside the window
	verified uint64     // answers checked, warmup and drain included
	err      error      // why the loop stopped early, if it did
}

// add adds t, the tally of connection id (who says of what: "conn",
// "session", "client"), to res and its latencies to h: a connection that
// failed counts in Errors, and the first one's error is kept.
func (res *Result) add(h *Histogram, t *tally, who string, id int) {
	h.Merge(t.hist)
	res.Msgs += t.msgs
	res.Verified += t.verified
	if t.err != nil {
		res.Errors++
		if res.FirstError == "" {
			res.FirstError = fmt.Sprintf("%s %d: %v", who, id, t.err)
		}
	}
}

// Window is a measured window's samples, for loads outside this package (the
// Go Socket.IO client load, internal/sioclientload), which measure the way
// the loads here do.
type Window struct{ w *window }

// MeasureWindow sleeps until warmup after base, samples this process's CPU
// time and, when pid > 0, the CPU time and system calls of process pid,
// sleeps until duration later and samples them again (or returns early, when
// ctx ends). Result.Finish puts the numbers in a Result.
func MeasureWindow(ctx context.Context, base time.Time, warmup, duration time.Duration, pid int) *Window {
	return &Window{sampleWindow(ctx, timing{base: base, warmEnd: warmup, end: warmup + duration}, pid)}
}

// NewResult returns the Result of a run of conns clients with payload
// characters per message and inflight messages in flight each, its CPU and
// syscall numbers -1 (not sampled) until Finish fills them.
func NewResult(conns, payload, inflight int) Result { return newResult(conns, payload, inflight) }

// Finish fills in res, once Msgs, Verified and Errors are counted, the
// window's length d, the rate, the latency quantiles of h (the round trips
// in the window) and what w sampled.
func (res *Result) Finish(d time.Duration, h *Histogram, w *Window) { res.finish(d, h, w.w) }
