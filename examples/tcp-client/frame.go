package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	"unicode/utf8"

	"github.com/duplexio/duplex/ws"
)

// maxMessageSize bounds the messages we accept from the server.
const maxMessageSize = 1 << 20

// sendFrame sends payload as one frame with FIN set, masked with a fresh random key as every
// client-to-server frame must be (RFC 6455 §5.3): the key stops a hostile page from making
// the bytes on the wire look like something an intermediary would misread.
func sendFrame(nc net.Conn, op ws.Opcode, payload []byte, out io.Writer) error {
	h := ws.Header{Fin: true, Opcode: op, Masked: true, Length: int64(len(payload))}
	_, _ = rand.Read(h.Mask[:]) // crypto/rand.Read never fails (Go 1.24+)
	frame := ws.AppendHeader(nil, h)
	headerLen := len(frame)
	frame = append(frame, payload...)
	ws.MaskBytes(h.Mask, 0, frame[headerLen:]) // payload[i] ^= key[i % 4]

	fmt.Fprintf(out, "-> frame header: % x\n", frame[:headerLen])
	explainHeader(out, h, frame[:headerLen])
	fmt.Fprintf(out, "   payload:        %s\n", hexPreview(payload))
	fmt.Fprintf(out, "   masked payload: %s  (payload[i] XOR key[i %% 4])\n", hexPreview(frame[headerLen:]))
	fmt.Fprintf(out, "   %d bytes on the wire: %s\n", len(frame), hexPreview(frame))
	_, err := nc.Write(frame)
	return err
}

// readFrame reads one frame from the server and returns its header and unmasked payload.
func readFrame(br *bufio.Reader, out io.Writer) (ws.Header, []byte, error) {
	// The header is 2 to 14 bytes; ParseHeader returns n == 0 until it has all of them.
	var h ws.Header
	var raw []byte
	for need := 2; raw == nil; need++ {
		b, err := br.Peek(need)
		if err != nil {
			return h, nil, fmt.Errorf("reading a frame header: %w", err)
		}
		var n int
		if h, n, err = ws.ParseHeader(b); err != nil {
			return h, nil, err
		}
		if n > 0 {
			raw = append([]byte(nil), b[:n]...)
			_, _ = br.Discard(n)
		}
	}
	fmt.Fprintf(out, "<- frame header: % x\n", raw)
	explainHeader(out, h, raw)
	switch {
	case h.Masked:
		return h, nil, errors.New("server frames must not be masked")
	case h.Rsv != 0:
		return h, nil, errors.New("reserved bits set, but no extension was negotiated")
	case h.Opcode.IsReserved():
		return h, nil, fmt.Errorf("reserved opcode 0x%X", uint8(h.Opcode))
	case h.Opcode.IsControl() && (!h.Fin || h.Length > 125):
		return h, nil, errors.New("control frame fragmented or over 125 bytes")
	case h.Length > maxMessageSize:
		return h, nil, fmt.Errorf("frame of %d bytes: over our limit", h.Length)
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return h, nil, fmt.Errorf("reading a frame payload: %w", err)
	}
	fmt.Fprintf(out, "   payload: %s\n", hexPreview(payload))
	return h, payload, nil
}

// readMessage reads frames until a whole data message has arrived, answering pings on the
// way. A close frame from the server ends the conversation with an error.
func readMessage(nc net.Conn, br *bufio.Reader, out io.Writer) (ws.Opcode, []byte, error) {
	var op ws.Opcode
	var msg []byte
	for {
		h, payload, err := readFrame(br, out)
		if err != nil {
			return 0, nil, err
		}
		switch h.Opcode {
		case ws.OpPing:
			fmt.Fprintln(out, "   a ping: answering with a pong carrying the same payload")
			if err := sendFrame(nc, ws.OpPong, payload, out); err != nil {
				return 0, nil, err
			}
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			code, reason := closePayload(payload)
			return 0, nil, fmt.Errorf("server closed the connection: %d %q", code, reason)
		case ws.OpText, ws.OpBinary:
			if op != 0 {
				return 0, nil, errors.New("new message before the previous one ended")
			}
			op = h.Opcode
		case ws.OpContinuation:
			if op == 0 {
				return 0, nil, errors.New("continuation frame with no message in progress")
			}
		}
		if len(msg)+len(payload) > maxMessageSize {
			return 0, nil, errors.New("message over our limit")
		}
		msg = append(msg, payload...)
		if !h.Fin {
			fmt.Fprintln(out, "   FIN=0: more fragments follow")
			continue
		}
		if op == ws.OpText && !utf8.Valid(msg) {
			return 0, nil, errors.New("text message is not valid UTF-8")
		}
		return op, msg, nil
	}
}

// closeHandshake sends a close frame (status 1000, normal closure), reads until the server's
// close frame arrives, then waits for the server to close TCP: the server closes first
// (RFC 6455 §7.1.1), so that the client's port does not linger in TIME_WAIT.
func closeHandshake(nc net.Conn, br *bufio.Reader, out io.Writer) error {
	payload := binary.BigEndian.AppendUint16(nil, uint16(ws.StatusNormalClosure))
	payload = append(payload, "bye"...)
	if err := sendFrame(nc, ws.OpClose, payload, out); err != nil {
		return err
	}
	for {
		h, payload, err := readFrame(br, out)
		if err != nil {
			return err
		}
		if h.Opcode == ws.OpClose {
			code, reason := closePayload(payload)
			fmt.Fprintf(out, "server answered close: code %d reason %q\n", code, reason)
			break
		}
		fmt.Fprintln(out, "   (data after our close frame is discarded)")
	}

	step(out, 7, "wait for the server to close the TCP connection")
	_ = nc.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := io.Copy(io.Discard, br); err != nil || n > 0 {
		fmt.Fprintf(out, "server did not close cleanly (%d more bytes, %v): closing ourselves\n", n, err)
		return nil
	}
	fmt.Fprintln(out, "server closed TCP (EOF). Done.")
	return nil
}

// closePayload decodes a close frame's payload: a 2-byte status code then a UTF-8 reason, or
// nothing (reported as 1005, "no status received").
func closePayload(p []byte) (ws.StatusCode, string) {
	if len(p) < 2 {
		return ws.StatusNoStatusReceived, ""
	}
	return ws.StatusCode(binary.BigEndian.Uint16(p)), string(p[2:])
}

// explainHeader prints what each bit of a frame header means.
func explainHeader(out io.Writer, h ws.Header, raw []byte) {
	fmt.Fprintf(out, "   byte 0 = %08b: FIN=%d RSV1=%d RSV2=%d RSV3=%d opcode=%v(0x%X)\n",
		raw[0], bit(h.Fin), h.Rsv>>2&1, h.Rsv>>1&1, h.Rsv&1, h.Opcode, uint8(h.Opcode))
	fmt.Fprintf(out, "   byte 1 = %08b: MASK=%d length field=%d", raw[1], bit(h.Masked), raw[1]&0x7F)
	switch raw[1] & 0x7F {
	case 126:
		fmt.Fprintf(out, " -> 16-bit length in the next 2 bytes: %d\n", h.Length)
	case 127:
		fmt.Fprintf(out, " -> 64-bit length in the next 8 bytes: %d\n", h.Length)
	default:
		fmt.Fprintf(out, " (7-bit length: the payload length itself)\n")
	}
	if h.Masked {
		fmt.Fprintf(out, "   masking key: % x\n", h.Mask)
	}
}

// hexPreview formats b in hex, cut after 32 bytes.
func hexPreview(b []byte) string {
	if len(b) <= 32 {
		return fmt.Sprintf("% x", b)
	}
	return fmt.Sprintf("% x ... (%d bytes)", b[:32], len(b))
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}
