package ws

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
)

// CompressionOptions enables the permessage-deflate extension (RFC 7692). A nil
// *CompressionOptions (the default) disables it: a client does not offer it and a server
// declines every offer.
//
// Memory: without context takeover a connection holds no compression state between messages
// (compressors and decompressors are pooled). With context takeover a connection keeps, per
// direction, the last 2^windowBits bytes of the messages it sent or received (32 KiB each at
// the default 15 bits) and borrows the compressor from a pool for each message, priming it
// with that history.
type CompressionOptions struct {
	// Level is the flate compression level, 1 (fastest) to 9 (smallest); 0 means 1. It is
	// ignored when the sending window is below 15 bits, which uses a window-bounded encoder.
	// Levels 1, 2, 4 and 5 skip quickly through incompressible data, in a message and in
	// the context-takeover history alike, so repeats of random data are seldom found there;
	// levels 3 and 6–9 index everything, at about 1.5× the CPU of level 1.
	Level int

	// Threshold is the payload size below which WriteMessage sends a message uncompressed
	// (0 means 512 bytes; a negative value compresses every message).
	// WriteMessageCompressed overrides it per message.
	Threshold int

	// ServerNoContextTakeover makes the server reset its compressor for every message. A
	// server with it set says so in its response; a client with it set asks the server.
	ServerNoContextTakeover bool

	// ClientNoContextTakeover makes the client reset its compressor for every message. A
	// server with it set asks the client; a client with it set announces it.
	ClientNoContextTakeover bool

	// ServerMaxWindowBits (8–15, 0 means 15) bounds the server's LZ77 window. A server uses at
	// most this window for its own messages; a client asks the server for it.
	ServerMaxWindowBits int

	// ClientMaxWindowBits (8–15, 0 means 15) bounds the client's LZ77 window. A server asks
	// the client for it (when the client's offer allows), which bounds the history the server
	// keeps for decompressing; a client uses at most this window for its messages.
	ClientMaxWindowBits int
}

const (
	deflateName      = "permessage-deflate"
	defaultThreshold = 512
	maxWindowBits    = 15
	minWindowBits    = 8
)

// syncFlushTail ends the output of a sync flush; permessage-deflate senders remove it.
var syncFlushTail = []byte{0x00, 0x00, 0xff, 0xff}

// deflateParams is what a negotiation agreed on.
type deflateParams struct {
	serverNoContextTakeover bool
	clientNoContextTakeover bool
	serverMaxWindowBits     int // 0 when absent from the response
	clientMaxWindowBits     int
}

func (o *CompressionOptions) bits(v int) int {
	if v == 0 {
		return maxWindowBits
	}
	return v
}

func (o *CompressionOptions) validate() error {
	for _, b := range []int{o.ServerMaxWindowBits, o.ClientMaxWindowBits} {
		if b != 0 && (b < minWindowBits || b > maxWindowBits) {
			return fmt.Errorf("ws: window bits %d outside 8..15", b)
		}
	}
	if o.Level < 0 || o.Level > 9 {
		return fmt.Errorf("ws: compression level %d outside 1..9", o.Level)
	}
	return nil
}

// parseWindowBits parses a window-bits parameter value (8–15, no leading zeros or signs).
func parseWindowBits(p extensionParam) (int, bool) {
	if !p.hasValue || p.value == "" || p.value[0] == '0' || len(p.value) > 2 {
		return 0, false
	}
	n, err := strconv.Atoi(p.value)
	if err != nil || n < minWindowBits || n > maxWindowBits {
		return 0, false
	}
	return n, true
}

// negotiateDeflate picks the first acceptable permessage-deflate offer and returns the
// response header value and the agreed parameters; ok is false when every offer is declined.
func negotiateDeflate(offers []extension, opts *CompressionOptions) (response string, params deflateParams, ok bool) {
	for _, offer := range offers {
		if offer.name != deflateName {
			continue
		}
		if params, ok := acceptDeflateOffer(offer, opts); ok {
			return formatDeflate(params), params, true
		}
	}
	return "", deflateParams{}, false
}

// acceptDeflateOffer answers one offer, or declines it when a parameter is unknown, repeated
// or invalid (RFC 7692 §5.1, §7.1).
func acceptDeflateOffer(offer extension, opts *CompressionOptions) (deflateParams, bool) {
	var p deflateParams
	seen := map[string]bool{}
	clientBitsOffered, clientBitsLimit := false, maxWindowBits
	serverBitsOffered := 0
	for _, param := range offer.params {
		if seen[param.name] {
			return p, false
		}
		seen[param.name] = true
		switch param.name {
		case "server_no_context_takeover":
			if param.hasValue {
				return p, false
			}
			p.serverNoContextTakeover = true
		case "client_no_context_takeover":
			if param.hasValue {
				return p, false
			}
			p.clientNoContextTakeover = true
		case "server_max_window_bits":
			n, valid := parseWindowBits(param)
			if !valid {
				return p, false
			}
			serverBitsOffered = n
		case "client_max_window_bits":
			clientBitsOffered = true
			if param.hasValue {
				n, valid := parseWindowBits(param)
				if !valid {
					return p, false
				}
				clientBitsLimit = n
			}
		default:
			return p, false
		}
	}
	p.serverNoContextTakeover = p.serverNoContextTakeover || opts.ServerNoContextTakeover
	p.clientNoContextTakeover = p.clientNoContextTakeover || opts.ClientNoContextTakeover
	serverBits := opts.bits(opts.ServerMaxWindowBits)
	if serverBitsOffered != 0 {
		serverBits = min(serverBits, serverBitsOffered)
	}
	if serverBitsOffered != 0 || serverBits < maxWindowBits {
		p.serverMaxWindowBits = serverBits
	}
	if clientBitsOffered {
		if want := min(opts.bits(opts.ClientMaxWindowBits), clientBitsLimit); want < maxWindowBits || clientBitsLimit < maxWindowBits {
			p.clientMaxWindowBits = want
		}
	}
	return p, true
}

// formatDeflate writes agreed parameters as an extension header value.
func formatDeflate(p deflateParams) string {
	var b strings.Builder
	b.WriteString(deflateName)
	if p.serverNoContextTakeover {
		b.WriteString("; server_no_context_takeover")
	}
	if p.clientNoContextTakeover {
		b.WriteString("; client_no_context_takeover")
	}
	if p.serverMaxWindowBits != 0 {
		b.WriteString("; server_max_window_bits=" + strconv.Itoa(p.serverMaxWindowBits))
	}
	if p.clientMaxWindowBits != 0 {
		b.WriteString("; client_max_window_bits=" + strconv.Itoa(p.clientMaxWindowBits))
	}
	return b.String()
}

// deflateOffer is the client's offer for opts.
func deflateOffer(opts *CompressionOptions) string {
	var b strings.Builder
	b.WriteString(deflateName)
	if opts.ServerNoContextTakeover {
		b.WriteString("; server_no_context_takeover")
	}
	if opts.ClientNoContextTakeover {
		b.WriteString("; client_no_context_takeover")
	}
	if opts.ServerMaxWindowBits != 0 && opts.ServerMaxWindowBits < maxWindowBits {
		b.WriteString("; server_max_window_bits=" + strconv.Itoa(opts.ServerMaxWindowBits))
	}
	b.WriteString("; client_max_window_bits")
	if opts.ClientMaxWindowBits != 0 && opts.ClientMaxWindowBits < maxWindowBits {
		b.WriteString("=" + strconv.Itoa(opts.ClientMaxWindowBits))
	}
	return b.String()
}

// acceptDeflateResponse checks the server's answer to deflateOffer(opts). It returns nil
// params when the server declined the extension.
func acceptDeflateResponse(exts []extension, opts *CompressionOptions) (*deflateParams, error) {
	if len(exts) == 0 {
		return nil, nil
	}
	if len(exts) > 1 || exts[0].name != deflateName {
		return nil, errors.New("server chose an extension that was not offered")
	}
	var p deflateParams
	seen := map[string]bool{}
	for _, param := range exts[0].params {
		if seen[param.name] {
			return nil, fmt.Errorf("permessage-deflate parameter %s repeated", param.name)
		}
		seen[param.name] = true
		switch param.name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if param.hasValue {
				return nil, fmt.Errorf("permessage-deflate parameter %s has a value", param.name)
			}
			if param.name == "server_no_context_takeover" {
				p.serverNoContextTakeover = true
			} else {
				p.clientNoContextTakeover = true
			}
		case "server_max_window_bits":
			n, valid := parseWindowBits(param)
			if !valid || n > opts.bits(opts.ServerMaxWindowBits) {
				return nil, fmt.Errorf("invalid server_max_window_bits %q", param.value)
			}
			p.serverMaxWindowBits = n
		case "client_max_window_bits":
			n, valid := parseWindowBits(param)
			if !valid || n > opts.bits(opts.ClientMaxWindowBits) {
				return nil, fmt.Errorf("invalid client_max_window_bits %q", param.value)
			}
			p.clientMaxWindowBits = n
		default:
			return nil, fmt.Errorf("unknown permessage-deflate parameter %s", param.name)
		}
	}
	if opts.ServerNoContextTakeover && !p.serverNoContextTakeover {
		return nil, errors.New("server ignored server_no_context_takeover")
	}
	return &p, nil
}

// deflateState is a connection's compression state, set up from the negotiated parameters
// for its role.
type deflateState struct {
	level     int
	threshold int
	// Sending side.
	sendBits     int
	sendTakeover bool
	sent         history
	// Receiving side.
	recvBits     int
	recvTakeover bool
	received     history
	inflater     *inflater // borrowed from inflaterPool while a message is read
}

// newDeflate returns the compression state for agreed parameters p (nil: none).
func newDeflate(p *deflateParams, opts *CompressionOptions, isServer bool) *deflateState {
	if p == nil {
		return nil
	}
	return newDeflateState(*p, opts, isServer)
}

func newDeflateState(p deflateParams, opts *CompressionOptions, isServer bool) *deflateState {
	d := &deflateState{level: opts.Level, threshold: opts.Threshold}
	if d.level == 0 {
		d.level = flate.BestSpeed
	}
	if d.threshold == 0 {
		d.threshold = defaultThreshold
	}
	serverBits, clientBits := maxWindowBits, maxWindowBits
	if p.serverMaxWindowBits != 0 {
		serverBits = p.serverMaxWindowBits
	}
	if p.clientMaxWindowBits != 0 {
		clientBits = p.clientMaxWindowBits
	}
	if isServer {
		d.sendBits, d.sendTakeover = min(serverBits, opts.bits(opts.ServerMaxWindowBits)), !p.serverNoContextTakeover
		d.recvBits, d.recvTakeover = clientBits, !p.clientNoContextTakeover
	} else {
		d.sendBits, d.sendTakeover = min(clientBits, opts.bits(opts.ClientMaxWindowBits)), !p.clientNoContextTakeover
		d.recvBits, d.recvTakeover = serverBits, !p.serverNoContextTakeover
	}
	d.sent.size = 1 << d.sendBits
	d.received.size = 1 << d.recvBits
	return d
}

// history keeps the last size bytes of a stream: the LZ77 window that context takeover
// carries from one message to the next. It is what a connection with context takeover
// holds while idle, so its buffer grows with the stream up to size bytes, never beyond.
type history struct {
	buf  []byte
	size int
}

func (h *history) write(p []byte) {
	if len(p) > h.size {
		p = p[len(p)-h.size:]
	}
	if over := len(h.buf) + len(p) - h.size; over > 0 {
		h.buf = h.buf[:copy(h.buf, h.buf[over:])]
	}
	if need := len(h.buf) + len(p); need > cap(h.buf) {
		grown := make([]byte, len(h.buf), min(h.size, max(need, 2*cap(h.buf))))
		copy(grown, h.buf)
		h.buf = grown
	}
	h.buf = append(h.buf, p...)
}

// Compressors are pooled by level for 15-bit windows and by window size below that.
var (
	levelWriters  [10]sync.Pool
	windowWriters [maxWindowBits]sync.Pool
)

func getCompressor(level, bits int) *flate.Writer {
	pool := &levelWriters[level]
	if bits < maxWindowBits {
		pool = &windowWriters[bits]
	}
	if w, ok := pool.Get().(*flate.Writer); ok {
		return w
	}
	var w *flate.Writer
	if bits < maxWindowBits {
		w, _ = flate.NewWriterWindow(nil, 1<<bits)
	} else {
		w, _ = flate.NewWriter(nil, level)
	}
	return w
}

func putCompressor(w *flate.Writer, level, bits int) {
	if bits < maxWindowBits {
		windowWriters[bits].Put(w)
	} else {
		levelWriters[level].Put(w)
	}
}

// dictSize returns how much of the sending history primes the compressor for a message of n
// bytes: priming costs about as much as compressing the dictionary, so small messages use a
// proportionate part of the window (distances stay within the negotiated window either way).
func dictSize(n, window int) int {
	return min(window, max(4<<10, 8*n))
}

// startCompress borrows a compressor that appends to out, primed with the sending history
// when context takeover is on; sizeHint is the expected message size (0 when unknown).
func (d *deflateState) startCompress(out *[]byte, sizeHint int) *flate.Writer {
	w := getCompressor(d.level, d.sendBits)
	var dict []byte
	if d.sendTakeover && len(d.sent.buf) > 0 {
		dict = d.sent.buf
		if sizeHint > 0 {
			dict = dict[len(dict)-min(len(dict), dictSize(sizeHint, d.sent.size)):]
		}
	}
	w.ResetDict(appendWriter{out}, dict)
	return w
}

// write compresses p and records it in the sending history.
func (d *deflateState) write(w *flate.Writer, p []byte) error {
	if _, err := w.Write(p); err != nil {
		return err
	}
	if d.sendTakeover {
		d.sent.write(p)
	}
	return nil
}

// finishCompress sync-flushes the compressor, removes the trailing 00 00 ff ff from out
// (RFC 7692 §7.2.1) and returns the compressor to its pool.
func (d *deflateState) finishCompress(w *flate.Writer, out *[]byte) error {
	err := w.Flush()
	w.ResetDict(nil, nil) // forget the output and the dictionary before pooling
	putCompressor(w, d.level, d.sendBits)
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(*out, syncFlushTail) {
		return errors.New("ws: compressor output lacks the sync-flush tail")
	}
	*out = (*out)[:len(*out)-4]
	return nil
}

// compress appends the permessage-deflate payload of msg to out.
func (d *deflateState) compress(out *[]byte, msg []byte) error {
	w := d.startCompress(out, len(msg))
	if err := d.write(w, msg); err != nil {
		d.finishCompress(w, out)
		return err
	}
	return d.finishCompress(w, out)
}

// appendWriter is an io.Writer that appends to a byte slice.
type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) {
	*w.b = append(*w.b, p...)
	return len(p), nil
}
