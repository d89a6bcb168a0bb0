package ws

import (
	"context"
	"errors"
	"time"
)

// ErrKeepAliveTimeout is returned by KeepAlive when the peer did not answer a ping in time.
var ErrKeepAliveTimeout = errors.New("ws: no pong received in time")

// KeepAlive pings the peer every interval and closes the connection (without a handshake:
// the peer is presumed gone) when no pong arrives within timeout of a ping. It blocks until
// ctx is done (returning ctx.Err()), the connection closes (ErrClosed) or the peer stops
// answering (ErrKeepAliveTimeout); run it on its own goroutine. Pongs are received by the
// reading goroutine, so the application must be reading.
func (c *Conn) KeepAlive(ctx context.Context, interval, timeout time.Duration) error {
	if interval <= 0 || timeout <= 0 {
		return errors.New("ws: KeepAlive needs a positive interval and timeout")
	}
	pongs, closed := c.pongChan(), c.closed.wait(&c.sigMu)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return ErrClosed
		case <-ticker.C:
		}
		// Drop a pong that answered an earlier ping.
		select {
		case <-pongs:
		default:
		}
		if err := c.Ping(ctx, nil); err != nil {
			return err
		}
		deadline := time.NewTimer(timeout)
		select {
		case <-ctx.Done():
			deadline.Stop()
			return ctx.Err()
		case <-closed:
			deadline.Stop()
			return ErrClosed
		case <-deadline.C:
			c.CloseNow()
			return ErrKeepAliveTimeout
		case <-pongs:
		}
		deadline.Stop()
	}
}

// pongChan returns the channel signalled on each pong, making it on first use.
func (c *Conn) pongChan() chan struct{} {
	if p := c.pongs.Load(); p != nil {
		return *p
	}
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if p := c.pongs.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{}, 1)
	c.pongs.Store(&ch)
	return ch
}
