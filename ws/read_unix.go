//go:build unix

package ws

import "syscall"

// setupRawRead lets reads on a socket wait for data without holding a buffer: the runtime's
// poller parks the goroutine, and a buffer is taken from the pool only once bytes are ready.
// This is what keeps an idle connection down to its goroutine and a few structs.
func (c *Conn) setupRawRead() {
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	c.raw = raw
	c.rawRead = c.readRaw
}

// readRaw is the callback of syscall.RawConn.Read: a non-blocking read into the pooled
// buffer. On EAGAIN it gives the buffer back (when it holds nothing) and asks the runtime to
// wait for readability.
func (c *Conn) readRaw(fd uintptr) bool {
	if c.rb == nil {
		c.rb = getBuffer(c.cfg.readBufferSize)
	}
	b := *c.rb
	for {
		n, err := syscall.Read(int(fd), b[len(b):cap(b)])
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if len(b) == 0 {
				c.releaseReadBuffer()
			}
			return false
		}
		c.rawN, c.rawErr = n, err
		return true
	}
}
