package ws

import (
	"context"
	"errors"
	"io"
	"net"
	"time"
)

// NetConn returns a net.Conn that carries a byte stream over c: Read returns the payloads of
// the incoming data messages one after another (of any type), and each Write sends one
// message of type typ. Read returns io.EOF once the peer closes with StatusNormalClosure or
// StatusGoingAway. Close performs the closing handshake with StatusNormalClosure. Deadlines
// apply to the underlying connection. The usual rule holds: one goroutine reads at a time.
func NetConn(c *Conn, typ MessageType) net.Conn {
	return &streamConn{c: c, typ: typ}
}

type streamConn struct {
	c   *Conn
	typ MessageType
	r   io.Reader // the current message, nil between messages
}

func (s *streamConn) Read(p []byte) (int, error) {
	for {
		if s.r == nil {
			_, r, err := s.c.NextReader(context.Background())
			if err != nil {
				return 0, streamError(err)
			}
			s.r = r
		}
		n, err := s.r.Read(p)
		if errors.Is(err, io.EOF) {
			s.r = nil
			if n == 0 && len(p) > 0 {
				continue // an empty message: go on to the next
			}
			return n, nil
		}
		if err != nil {
			return n, streamError(err)
		}
		return n, nil
	}
}

// streamError turns a normal close into io.EOF, as a stream reader expects.
func streamError(err error) error {
	switch CloseStatus(err) {
	case StatusNormalClosure, StatusGoingAway, StatusNoStatusReceived:
		var ce *CloseError
		if errors.As(err, &ce) && ce.Remote {
			return io.EOF
		}
	}
	return err
}

func (s *streamConn) Write(p []byte) (int, error) {
	if err := s.c.WriteMessage(context.Background(), s.typ, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *streamConn) Close() error                       { return s.c.Close(StatusNormalClosure, "") }
func (s *streamConn) LocalAddr() net.Addr                { return s.c.LocalAddr() }
func (s *streamConn) RemoteAddr() net.Addr               { return s.c.RemoteAddr() }
func (s *streamConn) SetReadDeadline(t time.Time) error  { return s.c.SetReadDeadline(t) }
func (s *streamConn) SetWriteDeadline(t time.Time) error { return s.c.SetWriteDeadline(t) }
func (s *streamConn) SetDeadline(t time.Time) error {
	return errors.Join(s.c.SetReadDeadline(t), s.c.SetWriteDeadline(t))
}
