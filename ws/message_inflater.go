package ws

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/flate"
)

// DeflateParams is the permessage-deflate configuration (RFC 7692) that a server's handshake
// response settles, as read by ParseDeflateParams. The client's parameters govern the
// messages the client sends, the server's those the server sends.
type DeflateParams struct {
	// ServerNoContextTakeover: the server resets its LZ77 window for every message it sends.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the client resets its LZ77 window for every message it sends.
	ClientNoContextTakeover bool
	// ServerMaxWindowBits (8–15) bounds how far back the server's messages refer; 15 when
	// the response does not limit it.
	ServerMaxWindowBits int
	// ClientMaxWindowBits (8–15) bounds how far back the client's messages refer; 15 when
	// the response does not limit it.
	ClientMaxWindowBits int
}

// ParseDeflateParams reads the permessage-deflate configuration of a connection from the
// Sec-WebSocket-Extensions values of the server's handshake response (all its header lines,
// as http.Header.Values returns them). It reports ok == false when the response accepted no
// permessage-deflate; other extensions in the list are skipped. The error says what is
// malformed: the list's syntax, or a permessage-deflate parameter that is unknown, repeated
// or out of range. It does not check the response against what the client offered: it is
// meant for tools that watch a handshake (Dial does its own checks).
func ParseDeflateParams(values []string) (p DeflateParams, ok bool, err error) {
	exts, err := parseExtensions(values)
	if err != nil {
		return DeflateParams{}, false, err
	}
	for _, ext := range exts {
		if ext.name != deflateName {
			continue
		}
		// Any window the response names is allowed: the limits of a zero CompressionOptions
		// are 15 bits.
		agreed, err := acceptDeflateResponse([]extension{ext}, &CompressionOptions{})
		if err != nil {
			return DeflateParams{}, false, errors.New("ws: " + err.Error())
		}
		p = DeflateParams{
			ServerNoContextTakeover: agreed.serverNoContextTakeover,
			ClientNoContextTakeover: agreed.clientNoContextTakeover,
			ServerMaxWindowBits:     maxWindowBits,
			ClientMaxWindowBits:     maxWindowBits,
		}
		if agreed.serverMaxWindowBits != 0 {
			p.ServerMaxWindowBits = agreed.serverMaxWindowBits
		}
		if agreed.clientMaxWindowBits != 0 {
			p.ClientMaxWindowBits = agreed.clientMaxWindowBits
		}
		return p, true, nil
	}
	return DeflateParams{}, false, nil
}

// ErrInflateLimit is returned by MessageInflater.Inflate when a message inflates past the
// limit it was given.
var ErrInflateLimit = errors.New("ws: inflated message exceeds the limit")

// MessageInflater inflates the compressed messages (RFC 7692 permessage-deflate) of one
// direction of a connection, one whole message at a time, outside a Conn: for tools that
// watch or replay a byte stream. With context takeover it keeps the last 2^windowBits bytes
// of the messages it inflated, the history the sender's window may refer to; without it,
// every message starts afresh.
//
// A MessageInflater is not safe for concurrent use. Give it every compressed message of its
// direction, in order: with context takeover a message refers to the ones before it.
type MessageInflater struct {
	takeover bool
	hist     history
	fr       io.ReadCloser // reused from message to message
}

// NewMessageInflater returns an inflater for messages compressed with a window of windowBits
// (8–15; out-of-range values are read as 15), keeping the history between messages when
// contextTakeover is set. For the messages the client sends, pass
// DeflateParams.ClientMaxWindowBits and !ClientNoContextTakeover; for the server's, the
// server's.
func NewMessageInflater(windowBits int, contextTakeover bool) *MessageInflater {
	if windowBits < minWindowBits || windowBits > maxWindowBits {
		windowBits = maxWindowBits
	}
	return &MessageInflater{takeover: contextTakeover, hist: history{size: 1 << windowBits}}
}

// Inflate appends the inflated form of one compressed message to dst and returns the
// extended slice. payload is the message's compressed data: the payloads of all its frames
// put together, as sent (without the 00 00 ff ff that the sender removed). limit bounds the
// inflated size of the message (0 or less: no bound); past it Inflate stops, having
// allocated no more than that, and returns ErrInflateLimit.
//
// On error (ErrInflateLimit, or corrupt data) Inflate returns dst unchanged and the history
// is left as it was, so the following messages of a stream that refer to this one will
// likely fail too; Reset starts afresh.
func (m *MessageInflater) Inflate(dst, payload []byte, limit int64) ([]byte, error) {
	var dict []byte
	if m.takeover {
		dict = m.hist.buf
	}
	src := io.MultiReader(bytes.NewReader(payload), strings.NewReader(inflateTail))
	if m.fr == nil {
		m.fr = flate.NewReader(src)
	}
	if err := m.fr.(flate.Resetter).Reset(src, dict); err != nil {
		return dst, err
	}
	start := len(dst)
	out := dst
	for {
		if len(out) == cap(out) {
			// Grow by what came so far, between 512 bytes and inflateChunk at a time.
			out = slices.Grow(out, min(inflateChunk, max(512, len(out)-start)))
		}
		room := out[len(out):cap(out)]
		if limit > 0 {
			if left := limit - int64(len(out)-start) + 1; int64(len(room)) > left {
				room = room[:left] // one byte past the limit is enough to know
			}
		}
		n, err := m.fr.Read(room)
		out = out[:len(out)+n]
		if limit > 0 && int64(len(out)-start) > limit {
			return dst, ErrInflateLimit
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return dst, errors.New("ws: invalid compressed data: " + err.Error())
		}
	}
	if m.takeover {
		m.hist.write(out[start:])
	}
	return out, nil
}

// Reset forgets the history of earlier messages, as when the sender starts a new stream.
func (m *MessageInflater) Reset() { m.hist.buf = m.hist.buf[:0] }
