package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"net"
	"time"
	"unicode/utf8"

	"github.com/duplexio/duplex/ws"
)

// Limits of the frame loop.
const (
	maxMessageSize = 1 << 20          // largest message reassembled, in bytes; more fails with 1009
	idleTimeout    = 2 * time.Minute  // longest wait for the client's next frame
	writeTimeout   = 10 * time.Second // longest wait to hand a frame to the kernel
	closeTimeout   = time.Second      // longest wait for the client's answer to our close frame
)

// protocolError is a violation of RFC 6455 by the client: the server fails the connection
// with this close code.
type protocolError struct {
	code   ws.StatusCode
	reason string
}

func (e *protocolError) Error() string { return fmt.Sprintf("%d %s", e.code, e.reason) }

// errClosed reports that the closing handshake is complete.
var errClosed = errors.New("close handshake complete")

// session is one WebSocket connection after the handshake. Only its own goroutine reads and
// writes, so it needs no locks.
type session struct {
	nc  net.Conn
	br  *bufio.Reader // may hold frame bytes that arrived with the handshake
	log *log.Logger

	// The data message being reassembled: a text or binary frame with FIN=0 starts it,
	// continuation frames extend it, the one with FIN=1 ends it.
	inMessage bool
	msgType   ws.Opcode
	msg       []byte
	frames    int
}

// run handles frames until the connection ends, then says why.
func (s *session) run(ctx context.Context) {
	for {
		err := s.handleFrame(ctx)
		if err == nil {
			continue
		}
		var pe *protocolError
		switch {
		case errors.Is(err, errClosed):
			s.log.Printf("closed: close handshake complete, closing TCP (the server closes first)")
		case errors.As(err, &pe):
			// "Fail the WebSocket connection" (RFC 6455 §7.1.7): send a close frame with
			// the reason and drop the TCP connection without waiting.
			s.log.Printf("protocol error: %v: failing the connection", pe)
			_ = s.writeClose(pe.code, pe.reason)
		case ctx.Err() != nil:
			s.log.Printf("shutting down: sending close 1001 (going away)")
			if s.writeClose(ws.StatusGoingAway, "server shutting down") == nil {
				s.awaitClose()
			}
		default:
			s.log.Printf("connection lost: %v", err)
		}
		return
	}
}

// handleFrame reads one frame and acts on it.
func (s *session) handleFrame(ctx context.Context) error {
	// Bound the wait for the frame. A shutdown moves the deadline into the past; checking ctx
	// after setting it catches a shutdown that came just before.
	_ = s.nc.SetReadDeadline(time.Now().Add(idleTimeout))
	if err := ctx.Err(); err != nil {
		return err
	}
	h, raw, err := readHeader(s.br)
	if err != nil {
		return err
	}
	s.log.Printf("recv frame: %s", describe(h, raw))
	// Check the header before reading the payload it announces.
	if err := s.check(h); err != nil {
		return err
	}
	payload, err := readPayload(s.br, h)
	if err != nil {
		return err
	}

	switch h.Opcode {
	case ws.OpPing:
		// Answer a ping with a pong carrying the same payload.
		s.log.Printf("ping %q: answering with a pong", payload)
		return s.writeFrame(ws.OpPong, payload)
	case ws.OpPong:
		s.log.Printf("pong %q: nothing to do", payload)
		return nil
	case ws.OpClose:
		return s.handleClose(payload)
	case ws.OpText, ws.OpBinary:
		s.inMessage, s.msgType, s.msg, s.frames = true, h.Opcode, append(s.msg[:0], payload...), 1
	case ws.OpContinuation:
		s.msg = append(s.msg, payload...)
		s.frames++
	}
	if !h.Fin {
		return nil // more fragments to come
	}
	return s.echoMessage()
}

// check enforces RFC 6455 §5 on a header received by a server.
func (s *session) check(h ws.Header) error {
	fail := func(reason string) error { return &protocolError{ws.StatusProtocolError, reason} }
	switch {
	case h.Rsv != 0:
		return fail("reserved bits set, but no extension was negotiated")
	case h.Opcode.IsReserved():
		return fail("reserved opcode")
	case !h.Masked:
		return fail("client frames must be masked")
	case h.Opcode.IsControl() && !h.Fin:
		return fail("fragmented control frame")
	case h.Opcode.IsControl() && h.Length > 125:
		return fail("control frame payload over 125 bytes")
	case h.Opcode == ws.OpContinuation && !s.inMessage:
		return fail("continuation frame with no message in progress")
	case (h.Opcode == ws.OpText || h.Opcode == ws.OpBinary) && s.inMessage:
		return fail("new message before the previous one ended")
	}
	if !h.Opcode.IsControl() {
		sofar := int64(0)
		if h.Opcode == ws.OpContinuation {
			sofar = int64(len(s.msg))
		}
		// Written so that a huge claimed length cannot overflow the sum.
		if h.Length > maxMessageSize-sofar {
			return &protocolError{ws.StatusMessageTooBig, fmt.Sprintf("message over %d bytes", maxMessageSize)}
		}
	}
	return nil
}

// echoMessage sends a complete message back, as one frame: fragmentation is a property of
// the transfer, not of the message, so it need not be preserved.
func (s *session) echoMessage() error {
	s.inMessage = false
	if s.msgType == ws.OpText && !utf8.Valid(s.msg) {
		// A real server checks as the bytes arrive, to fail on the first invalid one.
		return &protocolError{ws.StatusInvalidPayload, "text message is not valid UTF-8"}
	}
	s.log.Printf("message: %v, %d bytes in %d frame(s): echoing it", s.msgType, len(s.msg), s.frames)
	return s.writeFrame(s.msgType, s.msg)
}

// handleClose answers the client's close frame with one of our own, echoing its code; the
// caller then closes TCP, which is the server's job (RFC 6455 §7.1.1).
func (s *session) handleClose(payload []byte) error {
	code, reason, err := parseClose(payload)
	if err != nil {
		return err
	}
	if code == ws.StatusNoStatusReceived {
		s.log.Printf("close received: no status code: answering with an empty close")
		code = 0
	} else {
		s.log.Printf("close received: code=%d reason=%q: answering with close %d", code, reason, code)
	}
	if err := s.writeClose(code, ""); err != nil {
		return err
	}
	return errClosed
}

// parseClose decodes a close payload: empty, or a 2-byte big-endian status code followed by
// a UTF-8 reason.
func parseClose(p []byte) (ws.StatusCode, string, error) {
	switch {
	case len(p) == 0:
		return ws.StatusNoStatusReceived, "", nil
	case len(p) == 1:
		return 0, "", &protocolError{ws.StatusProtocolError, "close payload of 1 byte"}
	}
	code := ws.StatusCode(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return 0, "", &protocolError{ws.StatusProtocolError, fmt.Sprintf("invalid close code %d", code)}
	}
	if !utf8.Valid(p[2:]) {
		return 0, "", &protocolError{ws.StatusInvalidPayload, "close reason is not UTF-8"}
	}
	return code, string(p[2:]), nil
}

// validCloseCode reports whether code may be sent in a close frame (RFC 6455 §7.4). 1005,
// 1006 and 1015 are reported to applications but never sent.
func validCloseCode(code ws.StatusCode) bool {
	return code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999
}

// writeClose sends a close frame: the code (0: none) and reason, at most 125 bytes together.
func (s *session) writeClose(code ws.StatusCode, reason string) error {
	var payload []byte
	if code != 0 {
		payload = binary.BigEndian.AppendUint16(nil, uint16(code))
		payload = append(payload, reason[:min(len(reason), 123)]...)
	}
	return s.writeFrame(ws.OpClose, payload)
}

// writeFrame sends one unmasked frame with FIN set, logging its header.
func (s *session) writeFrame(op ws.Opcode, payload []byte) error {
	frame := appendFrame(nil, op, payload)
	h, n, _ := ws.ParseHeader(frame) // decode what we encoded, to log it the same way
	s.log.Printf("send frame: %s", describe(h, frame[:n]))
	_ = s.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := s.nc.Write(frame)
	return err
}

// awaitClose waits, briefly, for the client to answer our close frame, dropping any data
// frames that were already on their way.
func (s *session) awaitClose() {
	_ = s.nc.SetReadDeadline(time.Now().Add(closeTimeout))
	for {
		h, raw, err := readHeader(s.br)
		if err != nil || h.Length > maxMessageSize {
			return
		}
		s.log.Printf("recv frame: %s", describe(h, raw))
		if _, err := readPayload(s.br, h); err != nil || h.Opcode == ws.OpClose {
			return
		}
	}
}
