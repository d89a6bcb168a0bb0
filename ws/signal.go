package ws

import (
	"sync"
	"sync/atomic"
)

// signal is a one-shot notification (a channel closed once) whose channel is made only when
// someone asks to wait on it, so that a connection nobody waits on holds no channel: an idle
// connection served by an EventLoop is polled, not waited on. The Conn's signals share one
// mutex, sigMu, passed to the methods that touch the channel.
type signal struct {
	fired atomic.Bool
	ch    chan struct{} // nil until wait; guarded by the Conn's sigMu
}

// done reports whether fire has been called. It takes no lock.
func (s *signal) done() bool { return s.fired.Load() }

// wait returns a channel that is closed once fire has been called (already closed when it
// has).
func (s *signal) wait(mu *sync.Mutex) <-chan struct{} {
	mu.Lock()
	defer mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
		if s.fired.Load() {
			close(s.ch)
		}
	}
	return s.ch
}

// fire marks the signal and wakes its waiters. It reports whether this call was the first.
func (s *signal) fire(mu *sync.Mutex) bool {
	mu.Lock()
	defer mu.Unlock()
	if s.fired.Load() {
		return false
	}
	s.fired.Store(true)
	if s.ch != nil {
		close(s.ch)
	}
	return true
}
