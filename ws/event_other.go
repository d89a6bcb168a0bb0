//go:build !linux

package ws

import "time"

// Without epoll, every connection an EventLoop serves gets the goroutine fallback: the
// EventLoop API and its guarantees are the same, the memory per idle connection is not.

type poller struct{}

func newPoller(*EventLoop) (*poller, error) { return nil, nil }

func (*poller) serve(*Conn, EventHandler) bool { return false }
func (*poller) close() error                   { return nil }

// evConn is never created here: Conn.ev stays nil and these are never called.
type evConn struct{}

func (*evConn) beforeClose()                           {}
func (*evConn) setReadDeadline(time.Time)              {}
func (*evConn) setTimer(time.Duration) error           { return nil }
func (*evConn) pong()                                  {}
func (*evConn) afterClose()                            {}
func (*evConn) startClose(StatusCode, string) error    { return nil }
func (*evConn) queueLocked(Header, []byte, bool) error { return nil }
func (*evConn) queueEncodedLocked([]byte) error        { return nil }
func (*evConn) flushLocked() error                     { return nil }
