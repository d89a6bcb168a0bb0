package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/duplexio/duplex/ws"
)

// readHeader reads one frame header: 2 bytes, then 0, 2 or 8 bytes of extended length, then
// the 4-byte masking key when MASK is set — 2 to 14 bytes in all. ws.ParseHeader returns
// n == 0 while its input holds only part of a header, so we peek one more byte until it has
// enough. It returns the header and its raw bytes.
func readHeader(br *bufio.Reader) (ws.Header, []byte, error) {
	for need := 2; ; need++ {
		b, err := br.Peek(need)
		if err != nil {
			return ws.Header{}, nil, err
		}
		h, n, err := ws.ParseHeader(b)
		if err != nil {
			// A 64-bit length with its top bit set.
			return ws.Header{}, nil, &protocolError{ws.StatusProtocolError, err.Error()}
		}
		if n > 0 {
			raw := append([]byte(nil), b[:n]...)
			_, _ = br.Discard(n)
			return h, raw, nil
		}
	}
}

// readPayload reads the payload announced by h and unmasks it. The caller has checked
// h.Length against its limits: the length is the peer's claim, never trust it to allocate.
func readPayload(br *bufio.Reader, h ws.Header) ([]byte, error) {
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(br, payload); err != nil {
		return nil, err
	}
	if h.Masked {
		// payload[i] ^= key[i % 4]; masking and unmasking are the same XOR.
		ws.MaskBytes(h.Mask, 0, payload)
	}
	return payload, nil
}

// appendFrame appends a complete unmasked frame (server frames are never masked) with FIN set.
func appendFrame(dst []byte, op ws.Opcode, payload []byte) []byte {
	dst = ws.AppendHeader(dst, ws.Header{Fin: true, Opcode: op, Length: int64(len(payload))})
	return append(dst, payload...)
}

// describe spells out every field of a header, e.g.
//
//	FIN=1 RSV1=0 RSV2=0 RSV3=0 opcode=text(0x1) MASK=1 len=5 (7-bit) key=37fa213d [81 85 37 fa 21 3d]
func describe(h ws.Header, raw []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "FIN=%d RSV1=%d RSV2=%d RSV3=%d opcode=%v(0x%X) MASK=%d len=%d (%s)",
		bit(h.Fin), h.Rsv>>2&1, h.Rsv>>1&1, h.Rsv&1, h.Opcode, uint8(h.Opcode), bit(h.Masked), h.Length, lengthEncoding(raw))
	if h.Masked {
		fmt.Fprintf(&b, " key=%x", h.Mask)
	}
	fmt.Fprintf(&b, " [% x]", raw)
	return b.String()
}

// lengthEncoding names how the payload length was encoded, from the 7-bit field of byte 1:
// 0–125 is the length itself, 126 means "the next 2 bytes", 127 "the next 8 bytes".
func lengthEncoding(raw []byte) string {
	switch raw[1] & 0x7F {
	case 126:
		return "16-bit"
	case 127:
		return "64-bit"
	}
	return "7-bit"
}

func bit(b bool) int {
	if b {
		return 1
	}
	return 0
}
