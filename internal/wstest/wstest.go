// Package wstest is a raw-frame WebSocket test peer for conformance tests.
//
// A Peer is one end of a real TCP connection that does the RFC 6455 opening
// handshake by hand and then writes and reads frames byte for byte, with no
// validation of its own: it can send anything (reserved bits and opcodes,
// wrong masking, non-minimal or impossible lengths, frames split into chunks
// with pauses) and it reports exactly what the implementation under test
// sent (header fields, whether the frame was masked and with which key, the
// unmasked payload), and when the implementation closed TCP.
//
// The package is deliberately independent of package ws: it is an
// independent check of that package's wire behaviour.
//
// Every blocking operation is bounded by a timeout (Peer.Timeout unless a
// method takes its own).
package wstest

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Opcodes.
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Reserved bits, as the value of Frame.Rsv.
const (
	RSV1 uint8 = 0x4
	RSV2 uint8 = 0x2
	RSV3 uint8 = 0x1
)

// DefaultTimeout bounds every wait of a Peer whose Timeout is zero.
const DefaultTimeout = 5 * time.Second

// DefaultMaxPayload bounds the payload length ReadFrame accepts.
const DefaultMaxPayload = 64 << 20

const acceptGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// AcceptKey returns the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func AcceptKey(key string) string {
	sum := sha1.Sum([]byte(key + acceptGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// Role says which end of the connection a Peer plays. It decides the
// default masking: a client masks every frame, a server never does.
type Role int

const (
	RoleClient Role = iota
	RoleServer
)

// String returns the role's name.
func (r Role) String() string {
	if r == RoleServer {
		return "server"
	}
	return "client"
}

// Frame is one WebSocket frame.
//
// For writing, Fin, Rsv, Opcode and Payload (unmasked) describe the frame;
// masking and the length encoding are chosen with Options. For reading,
// Masked and Key report how the implementation masked the frame; Payload is
// always returned unmasked.
type Frame struct {
	Fin     bool
	Rsv     uint8 // RSV1=0x4, RSV2=0x2, RSV3=0x1
	Opcode  byte
	Masked  bool
	Key     [4]byte
	Payload []byte
	// LenForm is, for a frame read, the length encoding it used (Len7,
	// Len16 or Len64).
	LenForm LenForm
}

// String summarises the frame's header and payload.
func (f Frame) String() string {
	p := f.Payload
	suffix := ""
	if len(p) > 32 {
		p, suffix = p[:32], "..."
	}
	s := fmt.Sprintf("fin=%v rsv=%d op=%#x masked=%v len=%d payload=%q%s", f.Fin, f.Rsv, f.Opcode, f.Masked, len(f.Payload), p, suffix)
	if f.Opcode == OpClose {
		if code, reason, ok := ParseClose(f.Payload); ok {
			s += fmt.Sprintf(" (close code=%d reason=%q)", code, reason)
		}
	}
	return s
}

// IsControl reports whether the frame's opcode is a control opcode (0x8-0xF).
func (f Frame) IsControl() bool { return f.Opcode&0x8 != 0 }

// LenForm selects how the payload length is encoded in a written frame.
type LenForm int

const (
	LenMinimal LenForm = iota // the shortest form (what the RFC requires of senders)
	Len7                      // 7-bit form; only valid for lengths <= 125
	Len16                     // 126 + 16-bit length, whatever the length
	Len64                     // 127 + 64-bit length, whatever the length
)

type encodeOpts struct {
	mask     int // 0 role default, 1 on, 2 off
	key      *[4]byte
	lenForm  LenForm
	declared *uint64
}

// Option changes how a frame is encoded.
type Option func(*encodeOpts)

// Masked forces masking on (true) or off (false), whatever the peer's role.
func Masked(on bool) Option {
	return func(o *encodeOpts) {
		if on {
			o.mask = 1
		} else {
			o.mask = 2
		}
	}
}

// WithKey masks with the given key instead of a fresh random one (implies
// masking unless Masked(false) is given after it).
func WithKey(k [4]byte) Option {
	return func(o *encodeOpts) { o.key = &k; o.mask = 1 }
}

// WithLenForm selects the payload length encoding.
func WithLenForm(f LenForm) Option { return func(o *encodeOpts) { o.lenForm = f } }

// DeclaredLength writes n as the frame's payload length instead of
// len(Payload) (n is written in the 64-bit form when it does not fit the
// chosen one). Use it to announce more payload than is sent, or an invalid
// length such as one with the most significant bit set.
func DeclaredLength(n uint64) Option { return func(o *encodeOpts) { o.declared = &n } }

// AppendFrame appends the wire encoding of f to dst. masked/key/form/declared
// are the resolved encoding options.
func appendFrame(dst []byte, f Frame, masked bool, key [4]byte, form LenForm, declared *uint64) []byte {
	b0 := f.Opcode & 0x0F
	b0 |= (f.Rsv & 0x7) << 4
	if f.Fin {
		b0 |= 0x80
	}
	n := uint64(len(f.Payload))
	if declared != nil {
		n = *declared
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	if form == LenMinimal {
		switch {
		case n <= 125:
			form = Len7
		case n <= 0xFFFF:
			form = Len16
		default:
			form = Len64
		}
	}
	if form == Len7 && n > 125 || form == Len16 && n > 0xFFFF {
		form = Len64
	}
	switch form {
	case Len7:
		dst = append(dst, b0, mbit|byte(n))
	case Len16:
		dst = append(dst, b0, mbit|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, mbit|127)
		dst = binary.BigEndian.AppendUint64(dst, n)
	}
	if masked {
		dst = append(dst, key[:]...)
	}
	start := len(dst)
	dst = append(dst, f.Payload...)
	if masked {
		mask(key, dst[start:])
	}
	return dst
}

func mask(key [4]byte, b []byte) {
	for i := range b {
		b[i] ^= key[i&3]
	}
}

// NewKey returns a fresh random masking key.
func NewKey() [4]byte {
	var k [4]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic(err)
	}
	return k
}

// Peer is one end of a WebSocket connection after the opening handshake.
// Reads must come from one goroutine at a time, and so must writes.
type Peer struct {
	Role Role
	// Timeout bounds each read or write call; zero means DefaultTimeout.
	Timeout time.Duration
	// MaxPayload bounds the length of a frame ReadFrame accepts; zero
	// means DefaultMaxPayload.
	MaxPayload int64

	conn net.Conn
	br   *bufio.Reader
}

// NewPeer wraps a connection whose handshake is already done. br may hold
// bytes already read from conn (it may be nil).
func NewPeer(conn net.Conn, br *bufio.Reader, role Role) *Peer {
	if br == nil {
		br = bufio.NewReaderSize(conn, 64<<10)
	}
	return &Peer{Role: role, conn: conn, br: br}
}

// Conn returns the underlying TCP connection.
func (p *Peer) Conn() net.Conn { return p.conn }

// Close closes the TCP connection.
func (p *Peer) Close() error { return p.conn.Close() }

// CloseWrite half-closes the TCP connection (sends FIN) when possible.
func (p *Peer) CloseWrite() error {
	if cw, ok := p.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return p.conn.Close()
}

func (p *Peer) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultTimeout
}

// Encode returns the wire bytes of f, masked per the peer's role unless
// an option says otherwise.
func (p *Peer) Encode(f Frame, opts ...Option) []byte {
	return p.AppendEncode(nil, f, opts...)
}

// AppendEncode is Encode appending to dst.
func (p *Peer) AppendEncode(dst []byte, f Frame, opts ...Option) []byte {
	var o encodeOpts
	for _, opt := range opts {
		opt(&o)
	}
	masked := p.Role == RoleClient
	switch o.mask {
	case 1:
		masked = true
	case 2:
		masked = false
	}
	var key [4]byte
	if masked {
		if o.key != nil {
			key = *o.key
		} else {
			key = NewKey()
		}
	}
	return appendFrame(dst, f, masked, key, o.lenForm, o.declared)
}

// WriteRaw writes b as is.
func (p *Peer) WriteRaw(b []byte) error {
	if err := p.conn.SetWriteDeadline(time.Now().Add(p.timeout())); err != nil {
		return err
	}
	_, err := p.conn.Write(b)
	return err
}

// WriteChunked writes b in pieces of the given sizes (the last size repeats
// until b is exhausted), sleeping pause between pieces.
func (p *Peer) WriteChunked(b []byte, pause time.Duration, sizes ...int) error {
	if len(sizes) == 0 {
		return p.WriteRaw(b)
	}
	for i := 0; len(b) > 0; i++ {
		n := sizes[min(i, len(sizes)-1)]
		if n <= 0 || n > len(b) {
			n = len(b)
		}
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		if err := p.WriteRaw(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// WriteFrame encodes and writes one frame.
func (p *Peer) WriteFrame(f Frame, opts ...Option) error {
	return p.WriteRaw(p.Encode(f, opts...))
}

// WriteFrames encodes the frames into one buffer and writes it at once.
func (p *Peer) WriteFrames(fs ...Frame) error {
	var b []byte
	for _, f := range fs {
		b = p.AppendEncode(b, f)
	}
	return p.WriteRaw(b)
}

// WriteText writes a single-frame text message.
func (p *Peer) WriteText(s string) error {
	return p.WriteFrame(Frame{Fin: true, Opcode: OpText, Payload: []byte(s)})
}

// WriteBinary writes a single-frame binary message.
func (p *Peer) WriteBinary(b []byte) error {
	return p.WriteFrame(Frame{Fin: true, Opcode: OpBinary, Payload: b})
}

// WritePing writes a ping frame.
func (p *Peer) WritePing(payload []byte) error {
	return p.WriteFrame(Frame{Fin: true, Opcode: OpPing, Payload: payload})
}

// WritePong writes a pong frame.
func (p *Peer) WritePong(payload []byte) error {
	return p.WriteFrame(Frame{Fin: true, Opcode: OpPong, Payload: payload})
}

// WriteClose writes a close frame with a status code and reason.
func (p *Peer) WriteClose(code uint16, reason string) error {
	return p.WriteFrame(Frame{Fin: true, Opcode: OpClose, Payload: ClosePayload(code, reason)})
}

// ClosePayload builds a close frame payload: 2-byte code then reason.
func ClosePayload(code uint16, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	return append(b, reason...)
}

// ParseClose splits a close payload. ok is false for an empty payload (no
// status code) and for a 1-byte payload.
func ParseClose(payload []byte) (code uint16, reason string, ok bool) {
	if len(payload) < 2 {
		return 0, "", false
	}
	return binary.BigEndian.Uint16(payload), string(payload[2:]), true
}

// ReadFrame reads one frame, waiting at most p.Timeout.
func (p *Peer) ReadFrame() (Frame, error) { return p.ReadFrameTimeout(p.timeout()) }

// ReadFrameTimeout reads one frame, waiting at most d for all of it.
func (p *Peer) ReadFrameTimeout(d time.Duration) (Frame, error) {
	if err := p.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return Frame{}, err
	}
	var f Frame
	var hdr [14]byte
	if _, err := io.ReadFull(p.br, hdr[:2]); err != nil {
		return f, err
	}
	f.Fin = hdr[0]&0x80 != 0
	f.Rsv = (hdr[0] >> 4) & 0x7
	f.Opcode = hdr[0] & 0x0F
	f.Masked = hdr[1]&0x80 != 0
	n := uint64(hdr[1] & 0x7F)
	f.LenForm = Len7
	switch n {
	case 126:
		f.LenForm = Len16
		if _, err := io.ReadFull(p.br, hdr[2:4]); err != nil {
			return f, unexpected(err)
		}
		n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
	case 127:
		f.LenForm = Len64
		if _, err := io.ReadFull(p.br, hdr[2:10]); err != nil {
			return f, unexpected(err)
		}
		n = binary.BigEndian.Uint64(hdr[2:10])
	}
	maxp := p.MaxPayload
	if maxp <= 0 {
		maxp = DefaultMaxPayload
	}
	if n > uint64(maxp) {
		return f, fmt.Errorf("wstest: frame payload length %d over the limit %d", n, maxp)
	}
	if f.Masked {
		if _, err := io.ReadFull(p.br, f.Key[:]); err != nil {
			return f, unexpected(err)
		}
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(p.br, f.Payload); err != nil {
		return f, unexpected(err)
	}
	if f.Masked {
		mask(f.Key, f.Payload)
	}
	return f, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Message is a data message reassembled by ReadMessage.
type Message struct {
	Opcode  byte    // OpText or OpBinary
	Payload []byte  // concatenated, unmasked
	Frames  []Frame // the data frames, in order
	// Controls are the control frames (ping/pong) that arrived before the
	// message was complete, in order.
	Controls []Frame
}

// CloseReceivedError is returned by ReadMessage when a close frame arrives.
type CloseReceivedError struct {
	Frame    Frame
	Partial  []Frame // data frames of an incomplete message, if any
	Controls []Frame
}

// Error reports the close frame received.
func (e *CloseReceivedError) Error() string {
	return "wstest: close frame received: " + e.Frame.String()
}

// ReadMessage reads frames until one complete data message has arrived.
// It reports but does not enforce protocol rules: a continuation without a
// message in progress, or a data frame while one is in progress, is an
// error. Each frame read is bounded by p.Timeout.
func (p *Peer) ReadMessage() (Message, error) {
	var m Message
	started := false
	for {
		f, err := p.ReadFrame()
		if err != nil {
			return m, err
		}
		switch {
		case f.Opcode == OpClose:
			return m, &CloseReceivedError{Frame: f, Partial: m.Frames, Controls: m.Controls}
		case f.IsControl():
			m.Controls = append(m.Controls, f)
			continue
		case f.Opcode == OpContinuation:
			if !started {
				return m, fmt.Errorf("wstest: continuation frame without a message in progress: %v", f)
			}
		default:
			if started {
				return m, fmt.Errorf("wstest: data frame while a message is in progress: %v", f)
			}
			started = true
			m.Opcode = f.Opcode
		}
		m.Frames = append(m.Frames, f)
		m.Payload = append(m.Payload, f.Payload...)
		if f.Fin {
			return m, nil
		}
	}
}

// ErrTimeout is returned (wrapped) when a bounded wait expires.
var ErrTimeout = errors.New("wstest: timeout")

// WaitEOF waits at most d for the other side to close TCP, discarding
// whatever arrives first; extra is the number of bytes discarded. A reset
// connection counts as closed.
func (p *Peer) WaitEOF(d time.Duration) (extra int, err error) {
	if err := p.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return 0, err
	}
	buf := make([]byte, 4096)
	for {
		n, err := p.br.Read(buf)
		extra += n
		if err != nil {
			if IsClosedErr(err) {
				return extra, nil
			}
			if IsTimeout(err) {
				return extra, fmt.Errorf("%w: connection still open after %v", ErrTimeout, d)
			}
			return extra, err
		}
	}
}

// IsClosedErr reports whether err means the connection was closed by the
// other side (EOF or reset).
func IsClosedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// IsTimeout reports whether err is a deadline expiry.
func IsTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ErrTimeout) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// MinimalLenForm returns the length encoding a sender must use for n bytes.
func MinimalLenForm(n int) LenForm {
	switch {
	case n <= 125:
		return Len7
	case n <= 0xFFFF:
		return Len16
	}
	return Len64
}

// headerHas reports whether a comma-separated header value list contains
// token (case-insensitive).
func headerHas(values []string, token string) bool {
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
