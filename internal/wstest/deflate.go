package wstest

// permessage-deflate (RFC 7692) helpers for the raw peer: a compressor and
// a decompressor built on the standard library's compress/flate (independent
// of the implementation under test), a parser for Sec-WebSocket-Extensions
// values, and a structural walker of DEFLATE streams (RFC 1951) that reports
// how far back the back-references reach, to check window sizes and context
// takeover.

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DeflateTail is what a permessage-deflate sender strips from the end of its
// sync-flushed output and a receiver appends before inflating.
var DeflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// finalEmptyBlock is an empty stored block with BFINAL set; appended after
// DeflateTail it makes flate's reader end with io.EOF at the message end.
var finalEmptyBlock = []byte{0x01, 0x00, 0x00, 0xff, 0xff}

// Compressor compresses messages the way a permessage-deflate sender does:
// raw DEFLATE, sync flush, trailing 00 00 ff ff removed.
type Compressor struct {
	// Level is the compress/flate level; 0 means flate.DefaultCompression.
	Level int
	// NoContextTakeover resets the LZ77 window before every message.
	NoContextTakeover bool
	// WindowBits (8..15; 0 means 15) bounds how far back references reach:
	// below 15 the message is compressed in pieces of 2^(WindowBits-1)
	// bytes, each by a fresh writer whose dictionary is the preceding
	// 2^(WindowBits-1) bytes, so no distance reaches 2^WindowBits.
	WindowBits int

	w    *flate.Writer
	out  bytes.Buffer
	hist []byte
}

func (c *Compressor) level() int {
	if c.Level == 0 {
		return flate.DefaultCompression
	}
	return c.Level
}

// Compress returns the compressed payload of one message (a single 0x00
// byte for an empty message).
func (c *Compressor) Compress(msg []byte) []byte {
	c.out.Reset()
	if c.WindowBits == 0 || c.WindowBits >= 15 {
		switch {
		case c.w == nil:
			w, err := flate.NewWriter(&c.out, c.level())
			if err != nil {
				panic(err)
			}
			c.w = w
		case c.NoContextTakeover:
			c.w.Reset(&c.out)
		}
		c.w.Write(msg)
		c.w.Flush()
	} else {
		if c.WindowBits < 8 {
			panic(fmt.Sprintf("wstest: Compressor.WindowBits %d", c.WindowBits))
		}
		half := 1 << (c.WindowBits - 1)
		if c.NoContextTakeover {
			c.hist = c.hist[:0]
		}
		for first := true; first || len(msg) > 0; first = false {
			n := min(half, len(msg))
			w, err := flate.NewWriterDict(&c.out, c.level(), c.hist)
			if err != nil {
				panic(err)
			}
			w.Write(msg[:n])
			w.Flush()
			c.hist = append(c.hist, msg[:n]...)
			if len(c.hist) > half {
				c.hist = append(c.hist[:0], c.hist[len(c.hist)-half:]...)
			}
			msg = msg[n:]
		}
	}
	b := c.out.Bytes()
	if !bytes.HasSuffix(b, DeflateTail) {
		panic("wstest: flate sync flush did not end with 00 00 ff ff")
	}
	return bytes.Clone(b[:len(b)-len(DeflateTail)])
}

// ErrInflateLimit is returned by Decompressor.Decompress when the output
// exceeds Limit.
var ErrInflateLimit = errors.New("wstest: inflated message over the limit")

// Decompressor inflates permessage-deflate payloads.
type Decompressor struct {
	// NoContextTakeover inflates each message with a fresh window.
	NoContextTakeover bool
	// WindowBits (8..15; 0 means 15): only the last 2^WindowBits bytes of
	// earlier messages are given to the inflater as history, so a message
	// referring further back fails to inflate.
	WindowBits int
	// Limit bounds the inflated size of a message; 0 means no limit.
	Limit int

	r    io.ReadCloser
	hist []byte
}

// Decompress inflates the payload of one message (the concatenated frame
// payloads, without the tail).
func (d *Decompressor) Decompress(payload []byte) ([]byte, error) {
	bits := d.WindowBits
	if bits == 0 || bits > 15 {
		bits = 15
	}
	var dict []byte
	if !d.NoContextTakeover {
		dict = d.hist[max(0, len(d.hist)-1<<bits):]
	}
	in := make([]byte, 0, len(payload)+len(DeflateTail)+len(finalEmptyBlock))
	in = append(append(append(in, payload...), DeflateTail...), finalEmptyBlock...)
	br := bytes.NewReader(in)
	if d.r == nil {
		d.r = flate.NewReaderDict(br, dict)
	} else if err := d.r.(flate.Resetter).Reset(br, dict); err != nil {
		return nil, err
	}
	var src io.Reader = d.r
	if d.Limit > 0 {
		src = io.LimitReader(d.r, int64(d.Limit)+1)
	}
	out, err := io.ReadAll(src)
	if err != nil {
		return out, fmt.Errorf("wstest: inflate: %w", err)
	}
	if d.Limit > 0 && len(out) > d.Limit {
		return out[:d.Limit], ErrInflateLimit
	}
	if br.Len() != 0 {
		return out, fmt.Errorf("wstest: inflate: %d bytes after a final deflate block", br.Len())
	}
	d.hist = append(d.hist, out...)
	if len(d.hist) > 1<<15 {
		d.hist = append(d.hist[:0], d.hist[len(d.hist)-1<<15:]...)
	}
	return out, nil
}

// CompressedFrames splits a compressed payload into frames of at most
// fragSize bytes (0: one frame), RSV1 on the first frame only.
func CompressedFrames(op byte, compressed []byte, fragSize int) []Frame {
	var fs []Frame
	for first := true; first || len(compressed) > 0; first = false {
		n := len(compressed)
		if fragSize > 0 {
			n = min(n, fragSize)
		}
		f := Frame{Opcode: OpContinuation, Payload: compressed[:n]}
		if first {
			f.Opcode, f.Rsv = op, RSV1
		}
		compressed = compressed[n:]
		f.Fin = len(compressed) == 0
		fs = append(fs, f)
	}
	return fs
}

// ---------------------------------------------------------------------------
// Sec-WebSocket-Extensions parsing.

// ExtParam is one extension parameter; Value is unquoted.
type ExtParam struct {
	Name     string
	Value    string
	HasValue bool
}

// Extension is one element of a Sec-WebSocket-Extensions list.
type Extension struct {
	Name   string
	Params []ExtParam
}

// Param returns the first parameter called name.
func (e Extension) Param(name string) (ExtParam, bool) {
	for _, p := range e.Params {
		if strings.EqualFold(p.Name, name) {
			return p, true
		}
	}
	return ExtParam{}, false
}

// String formats the extension back into header syntax.
func (e Extension) String() string {
	var sb strings.Builder
	sb.WriteString(e.Name)
	for _, p := range e.Params {
		sb.WriteString("; ")
		sb.WriteString(p.Name)
		if p.HasValue {
			sb.WriteString("=")
			sb.WriteString(p.Value)
		}
	}
	return sb.String()
}

func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune("()<>@,;:\\\"/[]?={}", rune(c))
}

// ParseExtensions parses Sec-WebSocket-Extensions header values (RFC 6455
// §9.1 grammar; empty list elements are skipped).
func ParseExtensions(values []string) ([]Extension, error) {
	var exts []Extension
	for _, v := range values {
		s := v
		pos := 0
		skipWS := func() {
			for pos < len(s) && (s[pos] == ' ' || s[pos] == '\t') {
				pos++
			}
		}
		token := func() string {
			start := pos
			for pos < len(s) && isTokenChar(s[pos]) {
				pos++
			}
			return s[start:pos]
		}
		for {
			skipWS()
			if pos == len(s) {
				break
			}
			if s[pos] == ',' {
				pos++
				continue
			}
			name := token()
			if name == "" {
				return nil, fmt.Errorf("wstest: extension name expected at %d in %q", pos, s)
			}
			e := Extension{Name: name}
			for {
				skipWS()
				if pos == len(s) || s[pos] == ',' {
					break
				}
				if s[pos] != ';' {
					return nil, fmt.Errorf("wstest: ';' or ',' expected at %d in %q", pos, s)
				}
				pos++
				skipWS()
				p := ExtParam{Name: token()}
				if p.Name == "" {
					return nil, fmt.Errorf("wstest: parameter name expected at %d in %q", pos, s)
				}
				skipWS()
				if pos < len(s) && s[pos] == '=' {
					pos++
					skipWS()
					p.HasValue = true
					if pos < len(s) && s[pos] == '"' {
						pos++
						var sb strings.Builder
						closed := false
						for pos < len(s) {
							c := s[pos]
							pos++
							if c == '\\' && pos < len(s) {
								sb.WriteByte(s[pos])
								pos++
								continue
							}
							if c == '"' {
								closed = true
								break
							}
							sb.WriteByte(c)
						}
						if !closed {
							return nil, fmt.Errorf("wstest: unterminated quoted string in %q", s)
						}
						p.Value = sb.String()
					} else {
						p.Value = token()
						if p.Value == "" {
							return nil, fmt.Errorf("wstest: parameter value expected at %d in %q", pos, s)
						}
					}
				}
				e.Params = append(e.Params, p)
			}
			exts = append(exts, e)
		}
	}
	return exts, nil
}

// ---------------------------------------------------------------------------
// DEFLATE stream walker (RFC 1951), written for these tests: it decodes the
// block structure and the literal/length/distance symbols without producing
// output, and reports the back-reference distances.

// DeflateInfo describes one message's compressed payload.
type DeflateInfo struct {
	OutLen      int  // inflated length
	MaxDistance int  // the largest back-reference distance (0: none)
	MaxReach    int  // the largest distance minus the output position: > 0 means a reference into earlier messages
	Blocks      int  // number of blocks, including the appended empty stored block
	Final       bool // a block had BFINAL set
}

type bitReader struct {
	b     []byte
	pos   int    // next byte to load into acc
	acc   uint64 // bits not yet consumed, LSB first
	nbits uint   // number of valid bits in acc
}

var errDeflateEOF = errors.New("wstest: deflate data truncated")

func (r *bitReader) bits(n uint) (uint32, error) {
	for r.nbits < n {
		if r.pos >= len(r.b) {
			return 0, errDeflateEOF
		}
		r.acc |= uint64(r.b[r.pos]) << r.nbits
		r.pos++
		r.nbits += 8
	}
	v := uint32(r.acc & (1<<n - 1))
	r.acc >>= n
	r.nbits -= n
	return v, nil
}

// align drops the bits up to the next byte boundary.
func (r *bitReader) align() {
	drop := r.nbits % 8
	r.acc >>= drop
	r.nbits -= drop
}

// bytePos returns the position of the next unconsumed byte (after align).
func (r *bitReader) bytePos() int { return r.pos - int(r.nbits/8) }

// skipTo discards buffered bits and continues at byte position pos.
func (r *bitReader) skipTo(pos int) { r.pos, r.acc, r.nbits = pos, 0, 0 }

// done reports whether every input bit was consumed.
func (r *bitReader) done() bool { return r.pos >= len(r.b) && r.nbits == 0 }

// huffman is a canonical Huffman code: count[l] codes of length l, symbols
// sorted by code.
type huffman struct {
	count  [16]int
	symbol []int
}

func newHuffman(lengths []int) (*huffman, error) {
	h := &huffman{symbol: make([]int, 0, len(lengths))}
	for _, l := range lengths {
		h.count[l]++
	}
	h.count[0] = 0
	left := 1
	for l := 1; l < 16; l++ {
		left <<= 1
		left -= h.count[l]
		if left < 0 {
			return nil, errors.New("wstest: over-subscribed Huffman code")
		}
	}
	for l := 1; l < 16; l++ {
		for s, sl := range lengths {
			if sl == l {
				h.symbol = append(h.symbol, s)
			}
		}
	}
	return h, nil
}

func (h *huffman) decode(r *bitReader) (int, error) {
	code, first, index := 0, 0, 0
	for l := 1; l < 16; l++ {
		b, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		code |= int(b)
		count := h.count[l]
		if code-first < count {
			return h.symbol[index+code-first], nil
		}
		index += count
		first += count
		first <<= 1
		code <<= 1
	}
	return 0, errors.New("wstest: invalid Huffman code")
}

var (
	lenBase  = [29]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lenExtra = [29]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase = [30]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtr = [30]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	clOrder  = [19]int{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}
)

var fixedLit, fixedDist *huffman

func init() {
	l := make([]int, 288)
	for i := range l {
		switch {
		case i < 144:
			l[i] = 8
		case i < 256:
			l[i] = 9
		case i < 280:
			l[i] = 7
		default:
			l[i] = 8
		}
	}
	fixedLit, _ = newHuffman(l)
	d := make([]int, 30)
	for i := range d {
		d[i] = 5
	}
	fixedDist, _ = newHuffman(d)
}

// InspectDeflate walks the compressed payload of one message (without the
// tail, which it appends) and reports its inflated length and how far back
// its references reach. It stops at the end of the input when that falls on
// a block boundary, or at a block with BFINAL set.
func InspectDeflate(payload []byte) (DeflateInfo, error) {
	var info DeflateInfo
	in := append(append([]byte{}, payload...), DeflateTail...)
	r := &bitReader{b: in}
	for !r.done() {
		final, err := r.bits(1)
		if err != nil {
			return info, err
		}
		typ, err := r.bits(2)
		if err != nil {
			return info, err
		}
		info.Blocks++
		switch typ {
		case 0:
			r.align()
			pos := r.bytePos()
			if pos+4 > len(in) {
				return info, errDeflateEOF
			}
			n := int(in[pos]) | int(in[pos+1])<<8
			nn := int(in[pos+2]) | int(in[pos+3])<<8
			if n != ^nn&0xffff {
				return info, errors.New("wstest: stored block LEN/NLEN mismatch")
			}
			pos += 4
			if pos+n > len(in) {
				return info, errDeflateEOF
			}
			r.skipTo(pos + n)
			info.OutLen += n
		case 1, 2:
			lit, dist := fixedLit, fixedDist
			if typ == 2 {
				if lit, dist, err = readDynamic(r); err != nil {
					return info, err
				}
			}
			if err := walkBlock(r, lit, dist, &info); err != nil {
				return info, err
			}
		default:
			return info, errors.New("wstest: reserved block type 3")
		}
		if final == 1 {
			info.Final = true
			break
		}
	}
	return info, nil
}

func readDynamic(r *bitReader) (*huffman, *huffman, error) {
	hlit, err := r.bits(5)
	if err != nil {
		return nil, nil, err
	}
	hdist, err := r.bits(5)
	if err != nil {
		return nil, nil, err
	}
	hclen, err := r.bits(4)
	if err != nil {
		return nil, nil, err
	}
	nlit, ndist := int(hlit)+257, int(hdist)+1
	var cl [19]int
	for i := 0; i < int(hclen)+4; i++ {
		v, err := r.bits(3)
		if err != nil {
			return nil, nil, err
		}
		cl[clOrder[i]] = int(v)
	}
	clh, err := newHuffman(cl[:])
	if err != nil {
		return nil, nil, err
	}
	lengths := make([]int, 0, nlit+ndist)
	for len(lengths) < nlit+ndist {
		sym, err := clh.decode(r)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case sym < 16:
			lengths = append(lengths, sym)
		case sym == 16:
			if len(lengths) == 0 {
				return nil, nil, errors.New("wstest: repeat with no previous length")
			}
			v, err := r.bits(2)
			if err != nil {
				return nil, nil, err
			}
			prev := lengths[len(lengths)-1]
			for range 3 + int(v) {
				lengths = append(lengths, prev)
			}
		default:
			nb, base := uint(3), 3
			if sym == 18 {
				nb, base = 7, 11
			}
			v, err := r.bits(nb)
			if err != nil {
				return nil, nil, err
			}
			for range base + int(v) {
				lengths = append(lengths, 0)
			}
		}
	}
	if len(lengths) > nlit+ndist {
		return nil, nil, errors.New("wstest: code lengths overrun")
	}
	lit, err := newHuffman(lengths[:nlit])
	if err != nil {
		return nil, nil, err
	}
	dist, err := newHuffman(lengths[nlit:])
	if err != nil {
		return nil, nil, err
	}
	return lit, dist, nil
}

func walkBlock(r *bitReader, lit, dist *huffman, info *DeflateInfo) error {
	for {
		sym, err := lit.decode(r)
		if err != nil {
			return err
		}
		switch {
		case sym < 256:
			info.OutLen++
		case sym == 256:
			return nil
		default:
			sym -= 257
			if sym >= 29 {
				return fmt.Errorf("wstest: invalid length symbol %d", sym+257)
			}
			e, err := r.bits(lenExtra[sym])
			if err != nil {
				return err
			}
			length := lenBase[sym] + int(e)
			ds, err := dist.decode(r)
			if err != nil {
				return err
			}
			if ds >= 30 {
				return fmt.Errorf("wstest: invalid distance symbol %d", ds)
			}
			e, err = r.bits(distExtr[ds])
			if err != nil {
				return err
			}
			d := distBase[ds] + int(e)
			info.MaxDistance = max(info.MaxDistance, d)
			info.MaxReach = max(info.MaxReach, d-info.OutLen)
			info.OutLen += length
		}
	}
}
