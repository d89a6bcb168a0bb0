package ws_test

// Conformance tests for permessage-deflate (RFC 7692), modelled on the
// Autobahn testsuite categories 12 (compressed echo of many messages of
// every size, with context takeover and auto-fragmentation) and 13
// (negotiation variants), plus the framing rules of RFC 7692 and the
// decompression limits. The raw peer (internal/wstest) compresses and
// decompresses with the standard library's compress/flate, independently of
// ws, and walks the DEFLATE streams ws sends to check window sizes and
// context takeover (see /work/notes/deflate-api.md and
// /work/shared/protocol/websocket.md §5).
//
// Negotiation tests are in conformance_deflate_negotiation_test.go.

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

const pmd = "permessage-deflate"

// compressAll is the ws side's default configuration in these tests: every
// message compressed, whatever its size.
func compressAll() *ws.CompressionOptions { return &ws.CompressionOptions{Threshold: -1} }

type deflateOpts struct {
	// comp is the ws side's Compression (nil: compressAll(); see noComp).
	comp   *ws.CompressionOptions
	noComp bool // the ws side has no Compression at all
	// offer is the peer's Sec-WebSocket-Extensions request header lines
	// (server roles); nil means {"permessage-deflate"}, noOffer none.
	offer   []string
	noOffer bool
	// respond returns the peer's Sec-WebSocket-Extensions response value
	// (client role) for the ws client's request; nil accepts the first
	// permessage-deflate offer with no parameters; "" sends no header.
	respond     func(req *http.Request) string
	readLimit   int64
	app         application
	peerTimeout time.Duration
	// level is the peer's compress/flate level (0: default).
	level int
}

// dharness is a harness whose connection negotiated (or declined)
// permessage-deflate; the peer's compressor and decompressor follow the
// agreed parameters. The embedded harness holds the handshake: resp (server
// roles: the 101 response) and req (client role: the ws client's request).
type dharness struct {
	*harness
	offer []string // server roles: the peer's Sec-WebSocket-Extensions lines
	// ext is the agreed extension as it appeared on the wire (nil: none).
	ext *wstest.Extension
	// comp compresses the peer's messages, dec inflates the ws side's, as
	// strictly as the agreement allows: dec keeps only 2^implBits bytes of
	// history, and none with implNoCtx.
	comp      *wstest.Compressor
	dec       *wstest.Decompressor
	implBits  int  // the ws side's agreed window bits (15 when unrestricted)
	implNoCtx bool // the ws side agreed not to use context takeover
}

// startDeflate opens a connection like start, with permessage-deflate
// configured on both sides.
func startDeflate(t *testing.T, r role, o deflateOpts) *dharness {
	t.Helper()
	d := startDeflateHandshake(t, r, o)
	if d.harness.peer == nil {
		t.Fatalf("%s: opening handshake failed", r)
	}
	return d
}

// startDeflateHandshake is startDeflate, returning with a nil peer when the
// handshake failed (the error is in d.appErr for the client role, and d.resp
// holds the response for the server roles).
func startDeflateHandshake(t *testing.T, r role, o deflateOpts) *dharness {
	t.Helper()
	comp := o.comp
	if comp == nil && !o.noComp {
		comp = compressAll()
	}
	if o.noComp {
		comp = nil
	}
	opts := options{
		readLimit:   o.readLimit,
		app:         o.app,
		peerTimeout: o.peerTimeout,
		appTimeout:  2 * time.Minute,
		compression: comp,
		header:      http.Header{},
	}
	var offer []string
	if !o.noOffer {
		offer = o.offer
		if offer == nil {
			offer = []string{pmd}
		}
		opts.header["Sec-WebSocket-Extensions"] = offer
	}
	respond := o.respond
	if respond == nil {
		respond = func(req *http.Request) string {
			exts, _ := wstest.ParseExtensions(req.Header.Values("Sec-WebSocket-Extensions"))
			for _, e := range exts {
				if e.Name == pmd {
					return pmd
				}
			}
			return ""
		}
	}
	var sent string // the client role's response Sec-WebSocket-Extensions
	opts.respond = func(req *http.Request) http.Header {
		sent = respond(req)
		if sent == "" {
			return nil
		}
		return http.Header{"Sec-WebSocket-Extensions": {sent}}
	}
	h, err := open(t, r, opts)
	d := &dharness{harness: h, offer: offer}
	if err != nil {
		if r.isServer() && d.resp != nil {
			return d // a non-101 response: the caller checks it
		}
		t.Fatalf("%s: opening handshake: %v", r, err)
	}
	if r.isServer() {
		exts, perr := wstest.ParseExtensions(d.resp.Header.Values("Sec-WebSocket-Extensions"))
		if perr != nil {
			t.Errorf("%s: response Sec-WebSocket-Extensions %q: %v", r, d.resp.Header.Values("Sec-WebSocket-Extensions"), perr)
		}
		if len(exts) > 1 {
			t.Errorf("%s: response names %d extensions, want at most one: %q", r, len(exts), d.resp.Header.Values("Sec-WebSocket-Extensions"))
		}
		if len(exts) >= 1 {
			d.ext = &exts[0]
		}
	} else if sent != "" {
		exts, perr := wstest.ParseExtensions([]string{sent})
		if perr == nil && len(exts) == 1 {
			d.ext = &exts[0]
		}
	}
	d.configure(o.level)
	return d
}

// configure sets the peer's compressor and decompressor from the agreement.
func (d *dharness) configure(level int) {
	d.comp = &wstest.Compressor{Level: level}
	d.implBits = 15
	if d.ext == nil {
		return
	}
	// Parameters as seen from each sender: "mine" is the peer's, "impl"
	// the ws side's.
	implPrefix, peerPrefix := "server_", "client_"
	if d.role == roleClient {
		implPrefix, peerPrefix = "client_", "server_"
	}
	for _, p := range d.ext.Params {
		switch p.Name {
		case peerPrefix + "no_context_takeover":
			d.comp.NoContextTakeover = true
		case implPrefix + "no_context_takeover":
			d.implNoCtx = true
		case peerPrefix + "max_window_bits":
			if n, err := strconv.Atoi(p.Value); err == nil && n >= 8 && n < 15 {
				d.comp.WindowBits = n
			}
		case implPrefix + "max_window_bits":
			if n, err := strconv.Atoi(p.Value); err == nil && n >= 8 && n <= 15 {
				d.implBits = n
			}
		}
	}
	// The peer as a client that offered client_max_window_bits=N (server
	// roles) said it would not use a larger window: it keeps to the
	// smallest N it offered when the response does not set one.
	if d.role.isServer() && d.comp.WindowBits == 0 {
		exts, _ := wstest.ParseExtensions(d.offer)
		for _, e := range exts {
			if p, ok := e.Param("client_max_window_bits"); ok && e.Name == pmd && p.HasValue {
				if n, err := strconv.Atoi(p.Value); err == nil && n >= 8 && n < 15 && (d.comp.WindowBits == 0 || n < d.comp.WindowBits) {
					d.comp.WindowBits = n
				}
			}
		}
	}
	d.dec = &wstest.Decompressor{NoContextTakeover: d.implNoCtx, WindowBits: d.implBits}
}

// implCompression returns the ws side's Conn.Compression().
func (d *dharness) implCompression() string {
	d.t.Helper()
	select {
	case s := <-d.implExt:
		d.implExt <- s
		return s
	case <-time.After(stepTimeout):
		d.t.Fatalf("%s: the ws connection did not start within %v", d.role, stepTimeout)
		return ""
	}
}

// checkAnyFrame applies the RFC 6455 rules every frame obeys (masking,
// minimal length) and RFC 7692's: RSV2/RSV3 never, RSV1 only on the first
// frame of a data message and only when the extension was agreed.
func (d *dharness) checkAnyFrame(f wstest.Frame, first bool) {
	d.t.Helper()
	d.checkFrameForm(f)
	switch {
	case f.Rsv&^wstest.RSV1 != 0:
		d.t.Errorf("%s sent RSV2/RSV3: %v", d.role, f)
	case f.Rsv == 0:
	case f.IsControl():
		d.t.Errorf("%s sent a control frame with RSV1 (control frames are never compressed): %v", d.role, f)
	case !first:
		d.t.Errorf("%s sent RSV1 on a continuation frame: %v", d.role, f)
	case d.ext == nil:
		d.t.Errorf("%s sent RSV1 without permessage-deflate agreed: %v", d.role, f)
	}
}

// deflateMsg is a message read from the ws side.
type deflateMsg struct {
	op         byte
	payload    []byte // inflated
	compressed bool
	wire       []byte // the concatenated frame payloads
	frames     []wstest.Frame
	info       wstest.DeflateInfo
	controls   []wstest.Frame
}

// readMsg reads one data message, checks its frames, and inflates it with
// the peer's decompressor, checking the agreed window and context takeover.
// Control frames before it are returned (and checked).
func (d *dharness) readMsg() deflateMsg {
	d.t.Helper()
	m, err := d.peer.ReadMessage()
	for i, f := range m.Frames {
		d.checkAnyFrame(f, i == 0)
	}
	for _, f := range m.Controls {
		d.checkAnyFrame(f, false)
	}
	if err != nil {
		d.t.Fatalf("%s: waiting for a message: %v", d.role, err)
	}
	out := deflateMsg{op: m.Opcode, frames: m.Frames, controls: m.Controls, wire: m.Payload, payload: m.Payload}
	if m.Frames[0].Rsv&wstest.RSV1 == 0 || d.ext == nil {
		return out
	}
	out.compressed = true
	info, err := wstest.InspectDeflate(m.Payload)
	if err != nil {
		d.t.Fatalf("%s sent an invalid DEFLATE stream (%d bytes): %v", d.role, len(m.Payload), err)
	}
	out.info = info
	if info.Final {
		d.t.Logf("note: %s's message has a block with BFINAL set", d.role)
	}
	if info.MaxDistance > 1<<d.implBits {
		d.t.Errorf("%s: a back-reference of distance %d with an agreed window of %d bits (%d bytes)", d.role, info.MaxDistance, d.implBits, 1<<d.implBits)
	}
	if d.implNoCtx && info.MaxReach > 0 {
		d.t.Errorf("%s: a back-reference reaches %d bytes before the message although no context takeover was agreed", d.role, info.MaxReach)
	}
	p, err := d.dec.Decompress(m.Payload)
	if err != nil {
		d.t.Fatalf("%s's compressed message does not inflate (window %d bits, no context takeover %v): %v", d.role, d.implBits, d.implNoCtx, err)
	}
	out.payload = p
	return out
}

// expectEcho reads a message and checks it is op/payload.
func (d *dharness) expectEcho(op byte, payload []byte) deflateMsg {
	d.t.Helper()
	m := d.readMsg()
	for _, f := range m.controls {
		d.t.Errorf("unexpected control frame before the echo: %v", f)
	}
	if m.op != op {
		d.t.Errorf("echo opcode = %#x, want %#x", m.op, op)
	}
	if !bytes.Equal(m.payload, payload) {
		d.t.Fatalf("echo payload differs: got %d bytes %s, want %d bytes %s", len(m.payload), short(m.payload), len(payload), short(payload))
	}
	return m
}

// sendCompressed compresses payload with the peer's compressor and sends it
// in frames of fragSize (0: one frame), from a goroutine; wait() waits for
// the write.
func (d *dharness) sendCompressed(op byte, payload []byte, fragSize int) (wait func()) {
	d.t.Helper()
	c := d.comp.Compress(payload)
	return d.sendFramesAsync(wstest.CompressedFrames(op, c, fragSize)...)
}

func (d *dharness) sendFramesAsync(fs ...wstest.Frame) (wait func()) {
	var b []byte
	for _, f := range fs {
		b = d.peer.AppendEncode(b, f)
	}
	errc := d.writeAsync(b)
	return func() {
		d.t.Helper()
		select {
		case err := <-errc:
			if err != nil && !wstest.IsClosedErr(err) {
				d.t.Errorf("write: %v", err)
			}
		case <-time.After(largeTimeout):
			d.t.Errorf("write did not finish within %v", largeTimeout)
		}
	}
}

// writeAsync writes b on the peer's connection from a goroutine, with its
// own deadline (it does not touch the Peer's Timeout, which the reading
// side may change meanwhile).
func (d *dharness) writeAsync(b []byte) <-chan error {
	errc := make(chan error, 1)
	nc := d.peer.Conn()
	go func() {
		if err := nc.SetWriteDeadline(time.Now().Add(largeTimeout)); err != nil {
			errc <- err
			return
		}
		for len(b) > 0 {
			n := min(len(b), 256<<10)
			if _, err := nc.Write(b[:n]); err != nil {
				errc <- err
				return
			}
			b = b[n:]
		}
		errc <- nil
	}()
	return errc
}

// echoCompressed sends payload compressed and checks the echo.
func (d *dharness) echoCompressed(op byte, payload []byte, fragSize int) deflateMsg {
	d.t.Helper()
	wait := d.sendCompressed(op, payload, fragSize)
	m := d.expectEcho(op, payload)
	wait()
	return m
}

// ---------------------------------------------------------------------------
// Test data: word-like text (compressible, with repeats at every distance,
// like Autobahn's JSON/HTML/book files) and binary data mixing that text
// with incompressible random runs.

var corpus = sync.OnceValue(func() []byte {
	words := strings.Fields(`the websocket protocol enables two-way communication between a client running
		untrusted code in a controlled environment to a remote host that has opted-in to communications
		from that code {"id": 17, "name": "permessage-deflate", "window": [8, 9, 10, 15]} <div class="x">
		Habe nun, ach! Philosophie, Juristerei und Medizin, und leider auch Theologie durchaus studiert
		mit heißem Bemühn. Da steh ich nun, ich armer Tor! und bin so klug als wie zuvor; — ünïcödé ✓`)
	r := rand.New(rand.NewPCG(12, 7))
	b := make([]byte, 0, 2<<20)
	for len(b) < 2<<20 {
		b = append(b, words[r.IntN(len(words))]...)
		switch r.IntN(8) {
		case 0:
			b = append(b, '\n')
		case 1:
			b = strconv.AppendInt(append(b, ' '), int64(r.IntN(1e6)), 10)
			b = append(b, ' ')
		default:
			b = append(b, ' ')
		}
	}
	// Cut at a rune boundary.
	for len(b) > 0 && b[len(b)-1]&0xC0 == 0x80 {
		b = b[:len(b)-1]
	}
	return b
})

var binCorpus = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(99, 3))
	src := corpus()
	b := make([]byte, 0, 2<<20)
	for len(b) < 2<<20 {
		n := 64 + r.IntN(4096)
		if r.IntN(3) == 0 {
			for range n {
				b = append(b, byte(r.Uint32()))
			}
		} else {
			off := r.IntN(len(src) - n)
			b = append(b, src[off:off+n]...)
		}
	}
	return b
})

// dataStream hands out consecutive slices of a corpus, as Autobahn's
// sendOne does (valid UTF-8 for text: cut at rune boundaries).
type dataStream struct {
	text bool
	pos  int
}

func (s *dataStream) next(n int) []byte {
	src := binCorpus()
	if s.text {
		src = corpus()
	}
	if s.pos+n+4 > len(src) {
		s.pos = 0
	}
	start, end := s.pos, s.pos+n
	if s.text {
		for start > 0 && src[start]&0xC0 == 0x80 {
			start--
		}
		end = start + n
		for end > start && end < len(src) && src[end]&0xC0 == 0x80 {
			end--
		}
		// Pad with ASCII to exactly n bytes.
		out := append([]byte{}, src[start:end]...)
		for len(out) < n {
			out = append(out, '.')
		}
		s.pos = end
		return out
	}
	s.pos = end
	return append([]byte{}, src[start:end]...)
}

func opName(op byte) string {
	if op == wstest.OpBinary {
		return "binary"
	}
	return "text"
}

// ---------------------------------------------------------------------------
// Category 12: compressed echo.

// Autobahn 12.x.1-10: messages of 16 B to 1 MiB, many in sequence on one
// connection with context takeover in both directions; the echo (compressed
// by ws) must inflate with the peer's persistent inflater.
func TestDeflateEchoesCompressedMessagesOfEverySize(t *testing.T) {
	t.Parallel()
	type tc struct {
		op          byte
		size, count int
		roles       []role
	}
	var cases []tc
	for _, c := range []tc{
		{0, 16, 20, allRoles},
		{0, 64, 20, allRoles},
		{0, 256, 20, bothRoles},
		{0, 1 << 10, 20, bothRoles},
		{0, 4 << 10, 16, allRoles},
		{0, 8 << 10, 12, bothRoles},
		{0, 16 << 10, 8, bothRoles},
		{0, 32 << 10, 6, bothRoles},
		{0, 64 << 10, 4, allRoles},
		{0, 128 << 10, 3, bothRoles},
		{0, 256 << 10, 2, bothRoles},
		{0, 1 << 20, 1, bothRoles},
	} {
		cases = append(cases, withOps(c, func(c *tc, op byte) { c.op = op })...)
	}
	roles := func(c tc) []role {
		// 1 MiB: text against the server, binary against the client (run
		// time under -race).
		if c.size == 1<<20 {
			if c.op == wstest.OpText {
				return []role{roleServer}
			}
			return []role{roleClient}
		}
		return c.roles
	}
	name := func(c tc) string { return fmt.Sprintf("%s_%s_x%d", opName(c.op), kib(c.size), c.count) }
	forCasesInRoles(t, cases, roles, name, func(t *testing.T, r role, c tc) {
		d := startDeflate(t, r, deflateOpts{peerTimeout: largeTimeout})
		if d.ext == nil {
			t.Fatalf("%s: permessage-deflate not agreed", r)
		}
		src := &dataStream{text: c.op == wstest.OpText}
		var wire, plain, reach int
		for range c.count {
			payload := src.next(c.size)
			m := d.echoCompressed(c.op, payload, 0)
			if !m.compressed {
				t.Errorf("echo of %d bytes not compressed with Threshold -1", c.size)
			}
			wire += len(m.wire)
			plain += len(m.payload)
			if m.info.MaxReach > 0 {
				reach++
			}
		}
		t.Logf("%s echoes: %d bytes inflated from %d; %d of %d messages refer to earlier ones", r, plain, wire, reach, c.count)
	})
}

// withOps returns c as a text and as a binary case (set sets the opcode).
func withOps[C any](c C, set func(c *C, op byte)) []C {
	out := []C{c, c}
	set(&out[0], wstest.OpText)
	set(&out[1], wstest.OpBinary)
	return out
}

// Autobahn 12.x.11-18: the peer auto-fragments its compressed messages
// into frames of 256 B to 32 KiB (RSV1 on the first only).
func TestDeflateEchoesFragmentedCompressedMessages(t *testing.T) {
	t.Parallel()
	type tc struct {
		op                byte
		size, frag, count int
		roles             []role
	}
	var cases []tc
	for _, c := range []tc{
		{0, 8 << 10, 256, 8, bothRoles},
		{0, 16 << 10, 256, 4, []role{roleServer}},
		{0, 64 << 10, 256, 2, bothRoles},
		{0, 128 << 10, 1 << 10, 2, bothRoles},
		{0, 128 << 10, 4 << 10, 2, []role{roleServerRaw, roleClient}},
		{0, 128 << 10, 32 << 10, 2, bothRoles},
		{0, 4 << 10, 1, 2, bothRoles},
		{0, 300, 7, 4, allRoles},
	} {
		cases = append(cases, withOps(c, func(c *tc, op byte) { c.op = op })...)
	}
	name := func(c tc) string {
		return fmt.Sprintf("%s_%s_in_%s_frames_x%d", opName(c.op), kib(c.size), kib(c.frag), c.count)
	}
	forCasesInRoles(t, cases, func(c tc) []role { return c.roles }, name, func(t *testing.T, r role, c tc) {
		d := startDeflate(t, r, deflateOpts{peerTimeout: largeTimeout})
		src := &dataStream{text: c.op == wstest.OpText}
		for range c.count {
			d.echoCompressed(c.op, src.next(c.size), c.frag)
		}
	})
}

// Autobahn 9.7/12.x: many messages back to back without waiting for the
// echoes, compressed and uncompressed mixed, with a shared window.
func TestDeflateManyMessagesInFlight(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		d := startDeflate(t, r, deflateOpts{peerTimeout: largeTimeout})
		src := &dataStream{text: true}
		sizes := []int{0, 16, 64, 256, 1024, 4096, 100}
		const n = 120
		var payloads [][]byte
		var b []byte
		for i := range n {
			p := src.next(sizes[i%len(sizes)])
			payloads = append(payloads, p)
			if i%5 == 4 {
				b = d.peer.AppendEncode(b, text(string(p))) // uncompressed: does not touch the window
				continue
			}
			for _, f := range wstest.CompressedFrames(wstest.OpText, d.comp.Compress(p), 0) {
				b = d.peer.AppendEncode(b, f)
			}
		}
		errc := d.writeAsync(b)
		for i := range n {
			d.expectEcho(wstest.OpText, payloads[i])
			if t.Failed() {
				t.FailNow()
			}
		}
		if err := <-errc; err != nil {
			t.Fatalf("write: %v", err)
		}
	})
}

// Context takeover: the same message repeated compresses to a few bytes
// after the first with the peer's persistent window; ws must keep its
// inflater's window across messages. ws's own echoes must inflate with the
// peer's persistent inflater (checked by readMsg).
func TestDeflateContextTakeoverAcrossMessages(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		d := startDeflate(t, r, deflateOpts{})
		msg := (&dataStream{text: true}).next(3000)
		for i := range 20 {
			c := d.comp.Compress(msg)
			if i > 0 && len(c) > 64 {
				t.Fatalf("peer's repeated message compressed to %d bytes: no context takeover in the peer?", len(c))
			}
			wait := d.sendFramesAsync(wstest.CompressedFrames(wstest.OpText, c, 0)...)
			m := d.expectEcho(wstest.OpText, msg)
			wait()
			if i == 19 {
				t.Logf("%s's 20th echo of a repeated 3000-byte message: %d bytes on the wire (max reach back %d)", r, len(m.wire), m.info.MaxReach)
			}
		}
	})
}

// NextWriter: a message written in pieces goes out as one compressed,
// fragmented message, RSV1 on the first frame only; the peer inflates it.
func TestDeflateNextWriterSendsFragmentedCompressedMessage(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		op    byte
		chunk int
		size  int
		minFr int // minimum number of frames expected
	}
	cases := []tc{
		{"text_10000_bytes_in_1000_byte_writes", wstest.OpText, 1000, 10000, 1},
		{"binary_300_bytes_in_1_byte_writes", wstest.OpBinary, 1, 300, 1},
		{"binary_256KiB_in_16KiB_writes", wstest.OpBinary, 16 << 10, 256 << 10, 2},
		{"text_64KiB_in_4KiB_writes", wstest.OpText, 4 << 10, 64 << 10, 1},
		{"binary_empty_no_writes", wstest.OpBinary, 1, 0, 1},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		d := startDeflate(t, r, deflateOpts{peerTimeout: largeTimeout, app: nextWriterEcho(c.chunk)})
		src := &dataStream{text: c.op == wstest.OpText}
		for i := range 2 {
			payload := src.next(c.size)
			m := d.echoCompressed(c.op, payload, 0)
			if !m.compressed {
				t.Errorf("message %d: NextWriter message not compressed (RSV1 clear on the first frame)", i)
			}
			if len(m.frames) < c.minFr {
				t.Errorf("message %d: %d bytes written in %d-byte pieces came in %d frame(s), want at least %d (NextWriter streams fragments)", i, c.size, c.chunk, len(m.frames), c.minFr)
			}
			checkFragments(t, c.op, m.frames)
			if i == 0 {
				t.Logf("%d bytes in %d frames (%d compressed bytes)", c.size, len(m.frames), len(m.wire))
			}
		}
	})
}

// WriteMessageCompressed overrides the threshold either way; WriteMessage
// with the default threshold (512) sends short messages uncompressed and
// longer ones compressed.
func TestDeflateThresholdAndPerMessageOverride(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		small, large := pattern(100), (&dataStream{text: true}).next(4000)
		d := startDeflate(t, r, deflateOpts{comp: &ws.CompressionOptions{}, app: application{open: func(ctx context.Context, c *ws.Conn) {
			for _, s := range []struct {
				p        []byte
				compress bool
			}{{small, true}, {large, false}, {small, false}, {large, true}} {
				_ = c.WriteMessageCompressed(ctx, ws.MessageText, s.p, s.compress) // the peer checks
			}
			for _, p := range [][]byte{small, large} {
				_ = c.WriteMessage(ctx, ws.MessageBinary, p)
			}
		}}})
		want := []struct {
			op         byte
			p          []byte
			compressed bool
		}{{wstest.OpText, small, true}, {wstest.OpText, large, false}, {wstest.OpText, small, false}, {wstest.OpText, large, true}, {wstest.OpBinary, small, false}, {wstest.OpBinary, large, true}}
		for i, w := range want {
			m := d.expectEcho(w.op, w.p)
			if m.compressed != w.compressed {
				t.Errorf("message %d (%d bytes): compressed=%v, want %v", i, len(w.p), m.compressed, w.compressed)
			}
		}
	})
}

// Control frames are never compressed; pings between the fragments of a
// compressed message are answered with uncompressed pongs; ws's own ping
// and close frames have no RSV bits (checked by checkAnyFrame).
func TestDeflateControlFramesUncompressed(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		d := startDeflate(t, r, deflateOpts{app: application{open: func(ctx context.Context, c *ws.Conn) {
			// The peer checks both.
			_ = c.WriteMessage(ctx, ws.MessageText, []byte("first, compressed"))
			_ = c.Ping(ctx, []byte("ws ping"))
		}}})
		d.expectEcho(wstest.OpText, []byte("first, compressed"))
		f, err := d.peer.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for ws's ping: %v", err)
		}
		d.checkAnyFrame(f, false)
		if f.Opcode != wstest.OpPing || string(f.Payload) != "ws ping" {
			t.Fatalf("got %v, want ws's ping", f)
		}
		payload := (&dataStream{text: true}).next(5000)
		fs := wstest.CompressedFrames(wstest.OpText, d.comp.Compress(payload), 100)
		withPing := append([]wstest.Frame{}, fs[:1]...)
		withPing = append(withPing, ping(strings.Repeat("p", 125)))
		withPing = append(withPing, fs[1:]...)
		wait := d.sendFramesAsync(withPing...)
		m := d.readMsg()
		wait()
		if len(m.controls) != 1 || m.controls[0].Opcode != wstest.OpPong || string(m.controls[0].Payload) != strings.Repeat("p", 125) {
			t.Errorf("controls before the echo = %v, want one pong", m.controls)
		}
		if !bytes.Equal(m.payload, payload) {
			t.Errorf("echo differs")
		}
		d.send(closeFrame(1000, "bye"))
		f, ok := d.readUntilClose("reply to close 1000")
		if ok && f.Rsv != 0 {
			t.Errorf("close frame with RSV bits: %v", f)
		}
	})
}

// ---------------------------------------------------------------------------
// Framing rules (RFC 7692 §6).

func TestDeflateFramingFailures(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		frames func(d *dharness) []wstest.Frame
	}
	compressed := func(d *dharness, s string) []byte { return d.comp.Compress([]byte(s)) }
	cases := []tc{
		{"ping_rsv1", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpPing, Payload: []byte("p")}}
		}},
		{"ping_rsv1_compressed_payload", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpPing, Payload: compressed(d, "ping")}}
		}},
		{"pong_rsv1", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpPong, Payload: []byte("p")}}
		}},
		{"close_rsv1", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(1000, "")}}
		}},
		{"ping_rsv1_between_compressed_fragments", func(d *dharness) []wstest.Frame {
			fs := wstest.CompressedFrames(wstest.OpText, compressed(d, "some text to fragment"), 4)
			return []wstest.Frame{fs[0], {Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpPing}, fs[1]}
		}},
		{"continuation_rsv1_after_uncompressed_start", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{frag(wstest.OpText, false, "plain "), {Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpContinuation, Payload: compressed(d, "x")}}
		}},
		{"continuation_rsv1_after_compressed_start", func(d *dharness) []wstest.Frame {
			fs := wstest.CompressedFrames(wstest.OpBinary, compressed(d, "some binary to fragment"), 5)
			fs[1].Rsv = wstest.RSV1
			return fs
		}},
		{"continuation_rsv1_last_fragment", func(d *dharness) []wstest.Frame {
			fs := wstest.CompressedFrames(wstest.OpText, compressed(d, "some text to fragment"), 5)
			fs[len(fs)-1].Rsv = wstest.RSV1
			return fs
		}},
		{"rsv2_on_compressed_text", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1 | wstest.RSV2, Opcode: wstest.OpText, Payload: compressed(d, "x")}}
		}},
		{"rsv3_on_compressed_binary", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1 | wstest.RSV3, Opcode: wstest.OpBinary, Payload: compressed(d, "x")}}
		}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		d := startDeflate(t, r, deflateOpts{})
		d.echoCompressed(wstest.OpText, []byte("before"), 0)
		d.sendExpectFail(ws.StatusProtocolError, c.frames(d)...)
	})
}

// RSV1 on a data frame when permessage-deflate was not agreed: the ws side
// has no Compression, or has it but the peer did not offer it (server) or
// the peer declined it (client).
func TestDeflateFailsOnRSV1WhenNotNegotiated(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		o    deflateOpts
	}
	declines := func(*http.Request) string { return "" }
	cases := []tc{
		{"ws_without_compression_peer_offers", deflateOpts{noComp: true}},
		{"ws_with_compression_peer_does_not_offer", deflateOpts{noOffer: true, respond: declines}},
		{"ws_with_compression_other_extension_offered", deflateOpts{offer: []string{"x-webkit-deflate-frame"}, respond: declines}},
		{"ws_with_compression_invalid_offer_declined", deflateOpts{offer: []string{pmd + "; server_max_window_bits=16"}, respond: declines}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		if r == roleClient && (c.name == "ws_with_compression_other_extension_offered" || c.name == "ws_with_compression_invalid_offer_declined") {
			t.Skip("the offer is the ws client's own in the client role")
		}
		d := startDeflate(t, r, c.o)
		if d.ext != nil {
			t.Fatalf("extension agreed: %v", d.ext)
		}
		if s := d.implCompression(); s != "" {
			t.Errorf("Conn.Compression() = %q without agreement, want \"\"", s)
		}
		d.send(text("before"))
		d.expectEcho(wstest.OpText, []byte("before"))
		// A valid compressed message, which is a protocol error here.
		c2 := (&wstest.Compressor{}).Compress([]byte("compressed"))
		d.sendExpectFail(ws.StatusProtocolError, wstest.CompressedFrames(wstest.OpText, c2, 0)[0])
	})
}

// The compressed empty message (a single 00 byte) and other edge forms are
// accepted.
func TestDeflateAcceptsEdgeCaseMessages(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		op     byte
		want   string
		frames func(d *dharness) []wstest.Frame
	}
	cases := []tc{
		{"empty_text_single_00", wstest.OpText, "", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpText, Payload: []byte{0}}}
		}},
		{"empty_binary_single_00", wstest.OpBinary, "", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpBinary, Payload: []byte{0}}}
		}},
		{"empty_text_00_in_continuation_after_empty_first", wstest.OpText, "", func(d *dharness) []wstest.Frame {
			return []wstest.Frame{{Rsv: wstest.RSV1, Opcode: wstest.OpText}, {Fin: true, Opcode: wstest.OpContinuation, Payload: []byte{0}}}
		}},
		{"compressed_by_peer_empty", wstest.OpText, "", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpText, d.comp.Compress(nil), 0)
		}},
		{"stored_block_uncompressed_deflate", wstest.OpText, "Hello", func(d *dharness) []wstest.Frame {
			// RFC 7692 §7.2.3.3: a stored (BTYPE=00) block carrying
			// "Hello", then the header byte of the sync flush's empty
			// stored block (its 00 00 ff ff stripped).
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpText, Payload: []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 'H', 'e', 'l', 'l', 'o', 0x00}}}
		}},
		{"rfc7692_example_hello", wstest.OpText, "Hello", func(d *dharness) []wstest.Frame {
			// RFC 7692 §7.2.3.1: "Hello" compressed, one frame.
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpText, Payload: []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}}}
		}},
		{"rfc7692_example_hello_fragmented", wstest.OpText, "Hello", func(d *dharness) []wstest.Frame {
			// RFC 7692 §7.2.3.1: the same in two fragments.
			return []wstest.Frame{
				{Rsv: wstest.RSV1, Opcode: wstest.OpText, Payload: []byte{0xf2, 0x48, 0xcd}},
				{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte{0xc9, 0xc9, 0x07, 0x00}},
			}
		}},
		{"rfc7692_example_two_blocks", wstest.OpText, "Hello", func(d *dharness) []wstest.Frame {
			// RFC 7692 §7.2.3.5: two DEFLATE blocks in one message.
			return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpText, Payload: []byte{0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00}}}
		}},
		{"compressed_fragments_with_empty_ones", wstest.OpText, "fragmented text", func(d *dharness) []wstest.Frame {
			fs := wstest.CompressedFrames(wstest.OpText, d.comp.Compress([]byte("fragmented text")), 3)
			out := []wstest.Frame{fs[0], {Opcode: wstest.OpContinuation}}
			out = append(out, fs[1:]...)
			return out
		}},
		{"multibyte_utf8_split_across_compressed_fragments", wstest.OpText, "€€€ ünïcödé ✓✓✓", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpText, d.comp.Compress([]byte("€€€ ünïcödé ✓✓✓")), 1)
		}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		d := startDeflate(t, r, deflateOpts{})
		if strings.HasPrefix(c.name, "rfc7692_") || strings.HasPrefix(c.name, "stored_") {
			// Hand-made streams assume an empty window on both sides.
			d.comp = &wstest.Compressor{}
		}
		wait := d.sendFramesAsync(c.frames(d)...)
		d.expectEcho(c.op, []byte(c.want))
		wait()
		// The connection (and both windows) still work.
		d.echoCompressed(wstest.OpText, []byte("next message"), 0)
	})
}

// ---------------------------------------------------------------------------
// Invalid payloads: corrupt DEFLATE data and invalid UTF-8 after inflation
// fail with 1007.

func TestDeflateFailsOnInvalidPayload(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		frames func(d *dharness) []wstest.Frame
	}
	one := func(op byte, p []byte) []wstest.Frame {
		return []wstest.Frame{{Fin: true, Rsv: wstest.RSV1, Opcode: op, Payload: p}}
	}
	farRef := func() []byte {
		// Compressed against a dictionary the receiver does not have:
		// distances reach before the start of the (fresh) stream.
		var buf bytes.Buffer
		dict := []byte("a dictionary the receiver never saw, a dictionary the receiver never saw")
		w, _ := flate.NewWriterDict(&buf, flate.BestCompression, dict)
		w.Write([]byte("the receiver never saw a dictionary"))
		w.Flush()
		return bytes.TrimSuffix(buf.Bytes(), wstest.DeflateTail)
	}
	cases := []tc{
		{"reserved_block_type", func(d *dharness) []wstest.Frame { return one(wstest.OpBinary, []byte{0x07, 0x00, 0x01}) }},
		{"stored_block_len_nlen_mismatch", func(d *dharness) []wstest.Frame {
			return one(wstest.OpBinary, []byte{0x00, 0x05, 0x00, 0x12, 0x34, 'a', 'b', 'c', 'd', 'e'})
		}},
		{"reference_before_stream_start", func(d *dharness) []wstest.Frame { return one(wstest.OpBinary, farRef()) }},
		{"invalid_huffman_table", func(d *dharness) []wstest.Frame {
			// Dynamic block, HLIT=31 HDIST=31 (more codes than exist),
			// all code-length codes 7 bits (over-subscribed).
			return one(wstest.OpBinary, []byte{0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		}},
		{"garbage_fragmented", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpBinary, []byte{0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2)
		}},
		{"text_invalid_utf8_after_inflate", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpText, d.comp.Compress([]byte("valid start \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80 end")), 0)
		}},
		{"text_invalid_utf8_0xff_compressed_fragmented", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpText, d.comp.Compress(append(pattern(3000), 0xff)), 50)
		}},
		{"text_truncated_utf8_at_message_end", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpText, d.comp.Compress([]byte("ends mid-rune \xe2\x82")), 0)
		}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		d := startDeflate(t, r, deflateOpts{})
		fs := c.frames(d)
		if c.name == "reference_before_stream_start" {
			// Must be the first compressed message the ws side sees.
			d.send(text("before"))
			d.expectEcho(wstest.OpText, []byte("before"))
		} else {
			d.echoCompressed(wstest.OpText, []byte("before"), 0)
		}
		d.sendExpectFail(ws.StatusInvalidPayload, fs...)
	})
}

// ---------------------------------------------------------------------------
// Limits: the inflated size is bounded by the read limit.

// zeroBomb returns n zero bytes compressed at the best ratio (~1:1000).
// The result is shared: callers must not modify it.
func zeroBomb(n int) []byte {
	if b, ok := zeroBombs.Load(n); ok {
		return b.([]byte)
	}
	b, _ := zeroBombs.LoadOrStore(n, makeZeroBomb(n))
	return b.([]byte)
}

var zeroBombs sync.Map // int -> []byte

func makeZeroBomb(n int) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	zeros := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, len(zeros))
		w.Write(zeros[:k])
		n -= k
	}
	w.Flush()
	return bytes.TrimSuffix(buf.Bytes(), wstest.DeflateTail)
}

// gibBombFrames returns the frames of a compressed message that inflates to
// 1 GiB of zeros without ever holding more than a few MiB: a first part
// inflating to 1 MiB of zeros, then the same sync-flushed block, which only
// refers back into zeros, repeated 1023 times (one frame each).
func gibBombFrames(op byte) []wstest.Frame {
	first, block := gibBombParts()
	fs := []wstest.Frame{{Rsv: wstest.RSV1, Opcode: op, Payload: append(first, wstest.DeflateTail...)}}
	for i := range 1023 {
		p := block
		if i == 1022 {
			p = bytes.TrimSuffix(block, wstest.DeflateTail)
		}
		fs = append(fs, wstest.Frame{Fin: i == 1022, Opcode: wstest.OpContinuation, Payload: p})
	}
	return fs
}

var gibBombParts = sync.OnceValues(func() (first, block []byte) {
	first = bytes.Clone(zeroBomb(1 << 20))
	var buf bytes.Buffer
	w, _ := flate.NewWriterDict(&buf, flate.BestCompression, make([]byte, 32<<10))
	zeros := make([]byte, 64<<10)
	for range 16 {
		w.Write(zeros)
	}
	w.Flush()
	return first, buf.Bytes() // block ends with 00 00 ff ff: byte-aligned, repeatable
})

func TestDeflateGiBBombIsValidDeflate(t *testing.T) {
	t.Parallel()
	fs := gibBombFrames(wstest.OpBinary)
	var total, wire int
	var in []byte
	for _, f := range fs[:3] {
		in = append(in, f.Payload...)
	}
	info, err := wstest.InspectDeflate(bytes.TrimSuffix(in, wstest.DeflateTail))
	if err != nil || info.OutLen != 3<<20 || info.MaxReach > 0 {
		t.Fatalf("first 3 frames: %+v, %v", info, err)
	}
	// The block in frames 1..1022 refers only to zeros within 32 KiB and
	// produces zeros, so repeating it keeps the stream valid.
	for i, f := range fs[1:] {
		if i < 1021 && !bytes.Equal(f.Payload, fs[1].Payload) {
			t.Fatalf("frame %d differs from frame 1", i+1)
		}
	}
	one, err := wstest.InspectDeflate(bytes.TrimSuffix(fs[1].Payload, wstest.DeflateTail))
	if err != nil || one.OutLen != 1<<20 || one.MaxDistance > 32<<10 {
		t.Fatalf("repeated block: %+v, %v", one, err)
	}
	for _, f := range fs {
		wire += len(f.Payload)
	}
	total = 1 << 30
	t.Logf("1 GiB bomb: %d frames, %d compressed bytes (ratio %d:1)", len(fs), wire, total/wire)
}

func TestDeflateFailsOnInflatedSizeOverReadLimit(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	type tc struct {
		name   string
		frames func(d *dharness) []wstest.Frame
	}
	cases := []tc{
		{"zeros_limit_plus_1", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpBinary, zeroBomb(limit+1), 0)
		}},
		{"text_limit_plus_1_fragmented", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpText, d.comp.Compress(pattern(limit+1)), 1000)
		}},
		{"zeros_10MiB_one_frame", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpBinary, zeroBomb(10<<20), 0)
		}},
		{"zeros_10MiB_in_1KiB_frames", func(d *dharness) []wstest.Frame {
			return wstest.CompressedFrames(wstest.OpBinary, zeroBomb(10<<20), 1<<10)
		}},
		{"zeros_10MiB_unfinished_message", func(d *dharness) []wstest.Frame {
			fs := wstest.CompressedFrames(wstest.OpBinary, zeroBomb(10<<20), 2<<10)
			fs[len(fs)-1].Fin = false
			return fs
		}},
		{"zeros_1GiB_repeated_block", func(d *dharness) []wstest.Frame { return gibBombFrames(wstest.OpText) }},
		{"compressed_size_over_limit_unfinished", func(d *dharness) []wstest.Frame {
			// Incompressible: the compressed payload alone goes over the limit.
			noise := make([]byte, limit+limit/4)
			r := rand.New(rand.NewPCG(5, 8))
			for i := range noise {
				noise[i] = byte(r.Uint32())
			}
			fs := wstest.CompressedFrames(wstest.OpBinary, d.comp.Compress(noise), 16<<10)
			fs[len(fs)-1].Fin = false
			return fs
		}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		d := startDeflate(t, r, deflateOpts{readLimit: limit, peerTimeout: largeTimeout})
		if c.name == "zeros_limit_plus_1" {
			// Exactly the limit inflated is fine.
			d.echoCompressed(wstest.OpBinary, make([]byte, limit), 0)
		} else {
			d.echoCompressed(wstest.OpBinary, []byte("before"), 0)
		}
		fs := c.frames(d)
		if r.evented() && c.name == "zeros_10MiB_unfinished_message" {
			// The event mode holds a compressed message compressed (bounded by the read
			// limit: see compressed_size_over_limit_unfinished) and inflates it once its
			// last frame is in, so the peer ends the message here.
			fs = append(fs, wstest.Frame{Fin: true, Opcode: wstest.OpContinuation})
		}
		wait := d.sendFramesAsync(fs...)
		start := time.Now()
		d.expectFailWithin(ws.StatusMessageTooBig, failFastTimeout)
		t.Logf("1009 after %v", time.Since(start))
		d.peer.Close()
		wait()
	})
}

// The decompression bomb must not make ws allocate much more than the read
// limit: the Go heap allocations while ws reads a 1 GiB bomb with a 1 MiB
// limit stay within a few MiB. Not parallel, so that the allocation counts
// are ws's (and the peer's small reads).
func TestDeflateBombDoesNotAllocate(t *testing.T) {
	const limit = 1 << 20
	const bound = 24 << 20 // generous: read limit, buffers, inflater state
	for _, r := range allRoles {
		t.Run(string(r), func(t *testing.T) {
			for _, bomb := range []string{"10MiB_one_frame", "1GiB_repeated_block"} {
				t.Run(bomb, func(t *testing.T) {
					d := startDeflate(t, r, deflateOpts{readLimit: limit, peerTimeout: largeTimeout})
					d.echoCompressed(wstest.OpBinary, []byte("warm up"), 0)
					var fs []wstest.Frame
					if bomb == "10MiB_one_frame" {
						fs = wstest.CompressedFrames(wstest.OpBinary, zeroBomb(10<<20), 0)
					} else {
						fs = gibBombFrames(wstest.OpBinary)
					}
					var b []byte
					for _, f := range fs {
						b = d.peer.AppendEncode(b, f)
					}
					fs = nil
					runtime.GC()
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					errc := d.writeAsync(b)
					start := time.Now()
					d.expectFailWithin(ws.StatusMessageTooBig, failFastTimeout)
					elapsed := time.Since(start)
					runtime.ReadMemStats(&after)
					d.peer.Close()
					select {
					case <-errc:
					case <-time.After(stepTimeout):
						t.Errorf("peer write did not end")
					}
					total := after.TotalAlloc - before.TotalAlloc
					heapGrowth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
					t.Logf("%s: 1009 after %v; %d KiB allocated, heap %+d KiB", r, elapsed, total>>10, heapGrowth>>10)
					if total > bound {
						t.Errorf("%s allocated %d MiB while reading a decompression bomb with a %d MiB read limit, want < %d MiB", r, total>>20, limit>>20, bound>>20)
					}
				})
			}
		})
	}
}

// TestDeflateLeavesNoGoroutines runs compressed echo, a compression failure
// and a bomb per role and checks that no goroutine outlives them. Not
// parallel.
func TestDeflateLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, r := range allRoles {
		t.Run(string(r), func(t *testing.T) {
			t.Run("echo", func(t *testing.T) {
				d := startDeflate(t, r, deflateOpts{})
				d.echoCompressed(wstest.OpText, pattern(5000), 100)
			})
			t.Run("corrupt", func(t *testing.T) {
				d := startDeflate(t, r, deflateOpts{})
				d.send(wstest.Frame{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpBinary, Payload: []byte{0x07}})
				d.expectFail(ws.StatusInvalidPayload)
			})
			t.Run("bomb", func(t *testing.T) {
				d := startDeflate(t, r, deflateOpts{readLimit: 64 << 10})
				wait := d.sendFramesAsync(wstest.CompressedFrames(wstest.OpBinary, zeroBomb(1<<20), 0)...)
				d.expectFailWithin(ws.StatusMessageTooBig, failFastTimeout)
				wait()
			})
			t.Run("peer_vanishes_mid_compressed_message", func(t *testing.T) {
				d := startDeflate(t, r, deflateOpts{})
				fs := wstest.CompressedFrames(wstest.OpText, d.comp.Compress(pattern(5000)), 100)
				d.send(fs[0])
				time.Sleep(10 * time.Millisecond)
				d.peer.Close()
				d.expectAppError(ws.StatusAbnormalClosure, "", false, false)
			})
		})
	}
	checkGoroutinesBack(t, before, "deflate")
}
