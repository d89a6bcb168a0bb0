package load

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Deflate is what a server accepted of the client's permessage-deflate offer
// (RFC 7692), parsed from its Sec-WebSocket-Extensions response.
type Deflate struct {
	Response                string // the header value as the server sent it
	ServerNoContextTakeover bool   // the server resets its compressor per message
	ClientNoContextTakeover bool   // the client must reset its compressor per message
	ServerMaxWindowBits     int    // 0 when absent
	ClientMaxWindowBits     int    // 0 when absent
}

// windowSize is the LZ77 window of DEFLATE (32 KiB): the most history an
// inflater ever needs, whatever server_max_window_bits says.
const windowSize = 32 << 10

// parseDeflateResponse checks the server's answer to offer. The load
// generator compresses with compress/flate, whose window is always 32 KiB, so
// it refuses a client_max_window_bits below 15 unless it resets its
// compressor per message anyway and no message is longer than the window.
func parseDeflateResponse(resp, offer string) (*Deflate, error) {
	if strings.Contains(resp, ",") {
		return nil, fmt.Errorf("server accepted several extensions %q, one was offered", resp)
	}
	parts := strings.Split(resp, ";")
	if strings.TrimSpace(parts[0]) != "permessage-deflate" {
		return nil, fmt.Errorf("server chose extension %q, not permessage-deflate", resp)
	}
	d := &Deflate{Response: resp}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		name, val, hasVal := strings.Cut(strings.TrimSpace(p), "=")
		name = strings.TrimSpace(name)
		if seen[name] {
			return nil, fmt.Errorf("parameter %q repeated in %q", name, resp)
		}
		seen[name] = true
		bits := func() (int, error) {
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
			if !hasVal || err != nil || n < 8 || n > 15 {
				return 0, fmt.Errorf("bad %s in %q", name, resp)
			}
			return n, nil
		}
		var err error
		switch name {
		case "server_no_context_takeover":
			d.ServerNoContextTakeover = true
		case "client_no_context_takeover":
			d.ClientNoContextTakeover = true
		case "server_max_window_bits":
			d.ServerMaxWindowBits, err = bits()
		case "client_max_window_bits":
			if !strings.Contains(offer, "client_max_window_bits") {
				return nil, fmt.Errorf("server sent client_max_window_bits that was not offered: %q", resp)
			}
			d.ClientMaxWindowBits, err = bits()
		default:
			return nil, fmt.Errorf("unknown parameter %q in %q", name, resp)
		}
		if err != nil {
			return nil, err
		}
	}
	if d.ClientMaxWindowBits != 0 && d.ClientMaxWindowBits < 15 {
		return nil, fmt.Errorf("server asks for client_max_window_bits=%d; the load generator's compressor (compress/flate) always uses a 15-bit window", d.ClientMaxWindowBits)
	}
	return d, nil
}

// sliceWriter appends to b.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTail ends a message for the inflater: the sync-flush marker the
// sender removed, then an empty final stored block, so the reader reports
// io.EOF at the end of the message instead of waiting for more input.
var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

// compressor compresses the client's messages: compress/flate at BestSpeed,
// a sync flush per message with its 00 00 ff ff tail removed. With context
// takeover it keeps one flate.Writer (and so its history) for the
// connection; without, it resets the writer before every message.
type compressor struct {
	fw       *flate.Writer
	out      sliceWriter
	takeover bool
}

func newCompressor(takeover bool) *compressor {
	c := &compressor{takeover: takeover}
	fw, err := flate.NewWriter(&c.out, flate.BestSpeed)
	if err != nil {
		panic(err) // BestSpeed is a valid level
	}
	c.fw = fw
	return c
}

// compress appends the compressed form of p to dst.
func (c *compressor) compress(dst, p []byte) ([]byte, error) {
	c.out.b = dst
	if !c.takeover {
		c.fw.Reset(&c.out)
	}
	if _, err := c.fw.Write(p); err != nil {
		return dst, err
	}
	if err := c.fw.Flush(); err != nil {
		return dst, err
	}
	b := c.out.b
	c.out.b = nil
	if !bytes.HasSuffix(b[len(dst):], syncTail) {
		return dst, errors.New("compress/flate sync flush did not end in 00 00 ff ff")
	}
	return b[:len(b)-len(syncTail)], nil
}

// inflater decompresses the server's echoes. With server context takeover
// it keeps the last 32 KiB of everything it inflated on the connection and
// primes the reader with it for each message.
type inflater struct {
	fr       io.ReadCloser
	src      bytes.Reader
	hist     []byte
	takeover bool
}

func newInflater(takeover bool) *inflater {
	return &inflater{fr: flate.NewReader(nil), takeover: takeover}
}

// inflate decompresses comp, which must have len(inflateTail) spare bytes of
// capacity, into dst[:0]; it fails if the result would exceed limit bytes.
func (f *inflater) inflate(dst, comp []byte, limit int) ([]byte, error) {
	comp = append(comp, inflateTail...)
	f.src.Reset(comp)
	var dict []byte
	if f.takeover {
		dict = f.hist
	}
	if err := f.fr.(flate.Resetter).Reset(&f.src, dict); err != nil {
		return nil, err
	}
	dst = dst[:0]
	for i := 0; ; i++ { // each Read makes progress or ends; bounded by limit
		if len(dst) == cap(dst) {
			if len(dst) > limit {
				return nil, fmt.Errorf("echo inflates to more than the %d bytes sent", limit)
			}
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := f.fr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return nil, fmt.Errorf("echo inflates to more than the %d bytes sent", limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("inflate: %w", err)
		}
		if n == 0 && i > 1<<20 {
			return nil, errors.New("inflate makes no progress")
		}
	}
	if f.src.Len() != 0 {
		return nil, fmt.Errorf("%d compressed bytes after the end of the message", f.src.Len())
	}
	if f.takeover {
		f.hist = append(f.hist, dst...)
		if len(f.hist) > windowSize {
			f.hist = f.hist[:copy(f.hist, f.hist[len(f.hist)-windowSize:])]
		}
	}
	return dst, nil
}

// appendJSON appends n bytes of JSON-like text for message seq of
// connection conn: records {"id":ID,"user":"userU","event":"message",
// "text":"hello ID"} with IDs unique to the message, so no two messages are
// equal, cut at n bytes. Keys repeat as in real traffic; numbers do not.
func appendJSON(dst []byte, conn int, seq int64, n int) []byte {
	start := len(dst)
	dst = append(dst, '[')
	base := (int64(conn)<<40 | seq) * 10000
	for k := int64(0); len(dst)-start < n; k++ {
		id := base + k
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendInt(dst, id, 10)
		dst = append(dst, `,"user":"user`...)
		dst = strconv.AppendInt(dst, (id*7919)%100003, 10)
		dst = append(dst, `","event":"message","text":"hello `...)
		dst = strconv.AppendInt(dst, id, 10)
		dst = append(dst, `"}`...)
	}
	return dst[:start+n]
}
