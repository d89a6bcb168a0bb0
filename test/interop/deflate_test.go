package interop

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/ws"
)

// permessage-deflate (RFC 7692) against Chromium and Node ws, in both roles.
//
// Every connection goes through a wireTap, so besides the byte-exact echo of
// each payload the tests check what crossed the wire: the negotiated
// Sec-WebSocket-Extensions (the same on both sides and on the wire), which
// messages were compressed (RSV1 on the first frame only, never on control
// frames), that compressible payloads did shrink, and that each sender honoured
// the negotiated parameters:
//   - context takeover probe: the same small random message twice; with
//     takeover the second compresses to almost nothing, without it it does not;
//   - window probe: a 1500-byte random block repeated three times; a sender
//     limited to a 2^10-byte window or less cannot use the repeats, one with
//     a 2^15-byte window must.

// deflateParams are the effective parameters of a negotiated permessage-deflate.
type deflateParams struct {
	serverNoCtx, clientNoCtx bool
	serverBits, clientBits   int
}

// parseDeflate parses a response's Sec-WebSocket-Extensions holding one
// permessage-deflate. Absent window bits are 15 (or clientOffered, the
// client_max_window_bits value the client offered, when it offered one).
func parseDeflate(h string, clientOffered int) (deflateParams, error) {
	p := deflateParams{serverBits: 15, clientBits: 15}
	if clientOffered != 0 {
		p.clientBits = clientOffered
	}
	if strings.Contains(h, ",") {
		return p, fmt.Errorf("more than one extension in %q", h)
	}
	parts := strings.Split(h, ";")
	if strings.TrimSpace(parts[0]) != "permessage-deflate" {
		return p, fmt.Errorf("extension %q is not permessage-deflate", h)
	}
	seen := map[string]bool{}
	for _, part := range parts[1:] {
		k, v, hasValue := strings.Cut(strings.TrimSpace(part), "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
		if seen[k] {
			return p, fmt.Errorf("duplicate parameter %s in %q", k, h)
		}
		seen[k] = true
		switch k {
		case "server_no_context_takeover":
			p.serverNoCtx = true
		case "client_no_context_takeover":
			p.clientNoCtx = true
		case "server_max_window_bits", "client_max_window_bits":
			n, err := strconv.Atoi(v)
			if !hasValue || err != nil || n < 8 || n > 15 {
				return p, fmt.Errorf("bad %s in %q", k, h)
			}
			if k == "server_max_window_bits" {
				p.serverBits = n
			} else {
				p.clientBits = n
			}
		default:
			return p, fmt.Errorf("unknown parameter %s in %q", k, h)
		}
	}
	return p, nil
}

// checkNegotiated checks that every view of the negotiated extension (name ->
// header value; all of them the same string) has the wanted effective
// parameters, and returns them.
func checkNegotiated(t *testing.T, want deflateParams, clientOffered int, views map[string]string) deflateParams {
	t.Helper()
	var first string
	for _, name := range slices.Sorted(maps.Keys(views)) {
		v := views[name]
		if first == "" {
			first = name
		} else if v != views[first] {
			t.Errorf("negotiated extensions differ: %s %q, %s %q", first, views[first], name, v)
		}
		got, err := parseDeflate(v, clientOffered)
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if got != want {
			t.Errorf("%s: negotiated %q = %+v, want %+v", name, v, got, want)
		}
	}
	t.Logf("negotiated: %q", views[first])
	return want
}

var (
	yes = func() *bool { b := true; return &b }()
	no  = func() *bool { b := false; return &b }()
)

// deflateMatrix is one echo step per payload kind and size up to max bytes:
// compressible (json text, pattern binary) and incompressible (random) data.
// Only json text and random binary go up to 16 MiB (the others stop at 1 MiB).
func deflateMatrix(max int) []step {
	var steps []step
	for _, k := range []struct {
		typ, data string
		max       int
	}{
		{"text", dataJSON, 16 << 20}, {"text", dataRandom, 1 << 20}, {"binary", dataPattern, 1 << 20}, {"binary", dataRandom, 16 << 20},
	} {
		for _, n := range []int{0, 125, 1 << 10, 64 << 10, 1 << 20, 16 << 20} {
			if n <= max && n <= k.max {
				steps = append(steps, step{Op: "echo", Type: k.typ, Size: n, Data: k.data})
			}
		}
	}
	return steps
}

// probeSteps are the context-takeover probe (two identical random messages,
// small enough for the smallest window in use) and the window probe.
func probeSteps(p deflateParams) []step {
	n := min(4096, (1<<min(p.serverBits, p.clientBits))/4)
	return []step{
		{Op: "echo", Type: "binary", Size: n, Data: dataRandom},
		{Op: "echo", Type: "binary", Size: n, Data: dataRandom},
		{Op: "echo", Type: "binary", Size: 3 * repeatBlock, Data: dataRepeat},
	}
}

// fragmentSteps are messages sent in several frames (text cut inside UTF-8 characters).
func fragmentSteps() []step {
	return []step{
		{Op: "echo", Type: "text", Size: 125, Fragments: 5},
		{Op: "echo", Type: "text", Size: 64 << 10, Data: dataJSON, Fragments: 4},
		{Op: "echo", Type: "binary", Size: 1 << 20, Data: dataRandom, Fragments: 3},
		{Op: "echo", Type: "binary", Size: 0, Fragments: 2},
	}
}

// sequenceSteps are n messages of varied kinds and sizes on one connection.
func sequenceSteps(n int) []step {
	kinds := []string{dataJSON, dataPattern, dataRandom, dataRepeat}
	steps := make([]step, n)
	for i := range steps {
		steps[i] = step{Op: "echo", Type: msgTypes[i%2], Size: (i * 7919) % 20000, Data: kinds[(i/2)%len(kinds)]}
	}
	return steps
}

func echoOnly(steps []step) []step {
	var out []step
	for _, st := range steps {
		if st.Op == "echo" {
			out = append(out, st)
		}
	}
	return out
}

// checkWire checks the data messages one side sent through the tap against the
// echo steps: type, compression (as wantCompressed says), that compressible
// payloads shrank (bits is the sender's window) and uncompressed ones kept their
// size, and the fragment count when the sender fragmented (fragmented says so).
func checkWire(t *testing.T, tc *tapConn, dir, bits int, steps []step, wantCompressed func(i int, st step) bool, fragmented bool) []wireMsg {
	t.Helper()
	who := [2]string{"server", "client"}[dir]
	msgs := tc.messages(dir)
	if len(msgs) != len(steps) {
		t.Errorf("wire: the %s sent %d data messages, want %d", who, len(msgs), len(steps))
		return msgs
	}
	bad := 0
	for i, st := range steps {
		m := msgs[i]
		var errs []string
		if want := byte(msgType(st.Type)); m.opcode != want {
			errs = append(errs, fmt.Sprintf("opcode %d, want %d", m.opcode, want))
		}
		if want := wantCompressed(i, st); m.compressed != want {
			errs = append(errs, fmt.Sprintf("compressed=%v, want %v", m.compressed, want))
		}
		// The binary pattern repeats every 256 bytes: too far for zlib's 9-bit window (250 bytes usable).
		compressible := st.Data == dataJSON || (st.Data == dataPattern || st.Data == "") && (st.Type == "text" || bits >= 10)
		if m.compressed && compressible && st.Size >= 1<<10 && m.wireLen > int64(st.Size/2) {
			errs = append(errs, fmt.Sprintf("compressible payload sent as %d bytes", m.wireLen))
		}
		if !m.compressed && m.wireLen != int64(st.Size) {
			errs = append(errs, fmt.Sprintf("uncompressed but %d bytes on the wire", m.wireLen))
		}
		if fragmented && st.Fragments > 1 && len(m.frames) != st.Fragments {
			errs = append(errs, fmt.Sprintf("%d frames, want %d", len(m.frames), st.Fragments))
		}
		if len(errs) > 0 {
			if bad++; bad <= 10 {
				t.Errorf("wire: %s message %d (%s %s of %d bytes): %s", who, i, st.Data, st.Type, st.Size, strings.Join(errs, "; "))
			}
		}
	}
	if bad > 10 {
		t.Errorf("wire: %d more bad %s messages", bad-10, who)
	}
	return msgs
}

// checkProbes checks the probe messages (probeSteps, starting at message i)
// that one side sent, against its negotiated context takeover and window.
// duplex says whether that side is duplex's ws.
func checkProbes(t *testing.T, msgs []wireMsg, i int, dir int, noCtx bool, bits int, duplex bool) {
	t.Helper()
	who := [2]string{"server", "client"}[dir]
	if len(msgs) < i+3 {
		return // checkWire reported it
	}
	a, b, w := msgs[i], msgs[i+1], msgs[i+2]
	if !a.compressed || !b.compressed || !w.compressed {
		t.Errorf("wire: %s probes not all compressed", who)
		return
	}
	t.Logf("%s probes: takeover %d -> %d bytes, window %d -> %d bytes (no_context_takeover=%v, %d bits)",
		who, a.wireLen, b.wireLen, 3*repeatBlock, w.wireLen, noCtx, bits)
	t.Run(who+" context takeover", func(t *testing.T) {
		if noCtx && b.wireLen*10 < a.wireLen*9 {
			t.Errorf("wire: %s used context takeover although no_context_takeover was negotiated: a repeated %d-byte message took %d then %d bytes",
				who, a.wireLen, a.wireLen, b.wireLen)
		}
		if !noCtx && b.wireLen*2 > a.wireLen {
			if duplex && bits == 15 {
				// Not a protocol fault: the fast flate levels (1, 2, 4, 5) skip ahead through
				// incompressible input, so a random history is mostly not indexed and a repeat
				// of it is not found. The probe is random by design; ws's own tests check that
				// takeover pays off on compressible data (TestContextTakeoverShrinksRepeats).
				t.Logf("%s: repeated random message not matched in the history at the default level", who)
				return
			}
			t.Errorf("wire: %s did not use context takeover: a repeated message took %d then %d bytes", who, a.wireLen, b.wireLen)
		}
	})
	t.Run(who+" window", func(t *testing.T) {
		switch {
		case bits <= 10 && w.wireLen < 4000:
			t.Errorf("wire: %s compressed matches 1500 bytes apart (%d bytes -> %d) with a %d-bit window", who, 3*repeatBlock, w.wireLen, bits)
		case bits >= 12 && w.wireLen > 2500:
			t.Errorf("wire: %s did not use its %d-bit window (%d bytes -> %d)", who, bits, 3*repeatBlock, w.wireLen)
		}
	})
}

// checkNextWriterFrames checks that compressed messages written through
// NextWriter in several Writes of 64 KiB or more went out in several frames
// (ws sends the compressor's output at each Write; smaller writes may stay
// buffered until Close). parts is the number of Writes (0: the step's Fragments).
func checkNextWriterFrames(t *testing.T, msgs []wireMsg, steps []step, parts int) {
	t.Helper()
	for i, m := range msgs {
		n := parts
		if n == 0 && i < len(steps) {
			n = steps[i].Fragments
		}
		if i < len(steps) && n > 1 && steps[i].Size/n >= 64<<10 && len(m.frames) < 2 {
			t.Errorf("wire: NextWriter message %d (%d bytes) went out in %d frame", i, steps[i].Size, len(m.frames))
		}
	}
}

// deflateEcho is the duplex server's echo for the deflate tests. Query:
// writer=N writes the echo through NextWriter in N parts; compress=true|false|alt
// uses WriteMessageCompressed (alt: compressed for even messages).
func deflateEcho(ctx context.Context, c *ws.Conn, q url.Values, i int, typ ws.MessageType, data []byte) error {
	if parts, _ := strconv.Atoi(q.Get("writer")); parts > 1 {
		w, err := c.NextWriter(ctx, typ)
		if err != nil {
			return err
		}
		for j := range parts {
			if _, err := w.Write(data[j*len(data)/parts : (j+1)*len(data)/parts]); err != nil {
				_ = w.Close()
				return err
			}
		}
		return w.Close()
	}
	switch q.Get("compress") {
	case "true", "false":
		return c.WriteMessageCompressed(ctx, typ, data, q.Get("compress") == "true")
	case "alt":
		return c.WriteMessageCompressed(ctx, typ, data, i%2 == 0)
	}
	return c.WriteMessage(ctx, typ, data)
}

var deflateHooks = serverHooks{info: (*ws.Conn).Compression, echo: deflateEcho}

// tapURL is u with its host replaced by the tap's.
func tapURL(t *testing.T, u string, tap *wireTap) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Host = tap.addr
	return pu.String()
}

func hostOf(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Host
}

// checkEchoes checks a Node peer's echo results against the steps (compactly:
// the sequences have hundreds of steps).
func checkEchoes(t *testing.T, steps []step, events []event) {
	t.Helper()
	var echoes []event
	for _, ev := range events {
		if ev.Op == "echo" {
			echoes = append(echoes, ev)
		}
	}
	if len(echoes) != len(steps) {
		t.Fatalf("got %d echo results for %d steps", len(echoes), len(steps))
	}
	bad := 0
	for i, st := range steps {
		ev := echoes[i]
		if ev.GotType != st.Type || ev.Len != st.Size || !ev.Match || ev.SHA256 != payloadSHA(st.Data, st.Type, st.Size) {
			if bad++; bad <= 10 {
				t.Errorf("echo %d (%s %s of %d bytes) came back as %s of %d bytes, identical=%v", i, st.Data, st.Type, st.Size, ev.GotType, ev.Len, ev.Match)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%d more bad echoes", bad-10)
	}
}

// evented1MiB caps a size matrix at 1 MiB in the evented mode: the 16 MiB matrices take
// 15–25 s under -race, so they run once, in the goroutine mode; the evented mode runs
// every case with the 1 MiB matrix.
func evented1MiB(mode eiotest.Mode, maxSize int) int {
	if mode == eiotest.Evented {
		return min(maxSize, 1<<20)
	}
	return maxSize
}

// --- Chromium -> duplex server ---------------------------------------------

// Chromium offers "permessage-deflate; client_max_window_bits"; the duplex
// server accepts it with each option set and echoes compressed messages of
// every kind and size byte-exact. With Compression nil the extension is
// declined and nothing is compressed.
func TestDeflateChromiumToDuplexServer(t *testing.T) {
	b := getBrowser(t)
	t.Parallel()
	cases := []struct {
		name    string
		opts    *ws.CompressionOptions
		want    *deflateParams // nil: no extension
		maxSize int            // of the size matrix
	}{
		{"defaults", &ws.CompressionOptions{}, &deflateParams{serverBits: 15, clientBits: 15}, 16 << 20},
		{"no context takeover", &ws.CompressionOptions{Threshold: -1, ServerNoContextTakeover: true, ClientNoContextTakeover: true},
			&deflateParams{serverNoCtx: true, clientNoCtx: true, serverBits: 15, clientBits: 15}, 1 << 20},
		{"client window 10 bits", &ws.CompressionOptions{Threshold: -1, ClientMaxWindowBits: 10},
			&deflateParams{serverBits: 15, clientBits: 10}, 1 << 20},
		{"server window 10 bits", &ws.CompressionOptions{Threshold: -1, ServerMaxWindowBits: 10},
			&deflateParams{serverBits: 10, clientBits: 15}, 1 << 20},
		{"compression nil", nil, nil, 1 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eiotest.InEveryMode(t, func(t *testing.T, mode eiotest.Mode) {
				t.Parallel()
				testDeflateChromiumToDuplexServer(t, b, httpMode(mode), tc.opts, tc.want, evented1MiB(mode, tc.maxSize))
			})
		})
	}
}

// testDeflateChromiumToDuplexServer runs one case: the page's echo of the size matrix up
// to maxSize and the probes, through the wire tap, against the duplex server in mode with
// opts; want is the negotiation expected (nil: none).
func testDeflateChromiumToDuplexServer(t *testing.T, b *browserProc, mode serverMode, opts *ws.CompressionOptions, want *deflateParams, maxSize int) {
	page := startPageServer(t)
	up := &ws.Upgrader{Compression: opts, AllowedOrigins: []string{strings.TrimSuffix(page, "/")}}
	srv := startDuplexServerHooks(t, mode, up, deflateHooks)
	tap := startWireTap(t, hostOf(t, srv.wsURL))
	p := deflateParams{serverBits: 15, clientBits: 15}
	if want != nil {
		p = *want
	}
	steps := append(deflateMatrix(maxSize), probeSteps(p)...)
	var results []event
	b.run(t, 120*time.Second, page, "echo", map[string]any{"url": tapURL(t, srv.url("c"), tap), "steps": steps}, &results)
	open := srv.expect(t, "c", "open")
	conn := tap.conn(t, 0)
	if len(results) == 0 || results[0].Op != "open" {
		t.Fatalf("page results %+v: no open", results)
	}
	checkEchoes(t, steps, results)
	srv.checkMessages(t, "c", steps)
	checkCloseError(t, srv.expect(t, "c", "closed").Err, ws.CloseError{Code: 1000, Remote: true})
	conn.checkFraming(t)
	if want == nil {
		if open.Extensions != "" || results[0].Extensions != "" || conn.responseExtensions() != "" {
			t.Errorf("extension negotiated without Compression: Conn.Compression() %q, page %q, wire %q",
				open.Extensions, results[0].Extensions, conn.responseExtensions())
		}
		never := func(int, step) bool { return false }
		checkWire(t, conn, fromClient, 15, steps, never, false)
		checkWire(t, conn, fromServer, 15, steps, never, false)
		return
	}
	if open.Extensions == "" {
		t.Fatalf("Conn.Compression() is empty")
	}
	checkNegotiated(t, *want, 0, map[string]string{"Conn.Compression()": open.Extensions, "wire": conn.responseExtensions()})
	// Chromium rebuilds WebSocket.extensions from the parsed header.
	if got, err := parseDeflate(results[0].Extensions, 0); err != nil || got != *want {
		t.Errorf("page's WebSocket.extensions %q = %+v (%v), want %+v", results[0].Extensions, got, err, *want)
	}
	threshold := opts.Threshold
	if threshold == 0 {
		threshold = 512
	}
	cm := checkWire(t, conn, fromClient, p.clientBits, steps, func(int, step) bool { return true }, false)
	sm := checkWire(t, conn, fromServer, p.serverBits, steps, func(_ int, st step) bool { return threshold < 0 || st.Size >= threshold }, false)
	probe := len(steps) - len(probeSteps(p))
	checkProbes(t, cm, probe, fromClient, p.clientNoCtx, p.clientBits, false)
	checkProbes(t, sm, probe, fromServer, p.serverNoCtx, p.serverBits, true)
}

// --- Node ws client -> duplex server ----------------------------------------

// connSpec is one connection of a deflate case: the server's query and the steps.
type connSpec struct {
	name   string
	query  []string
	steps  []step
	probes bool // steps end with probeSteps
}

// deflateConns are the connections of every case: the size matrix with the
// probes, fragmented messages, and (when long) 200 messages in sequence plus
// per-message compression switched off on both sides.
func deflateConns(p deflateParams, maxSize int, long bool) []connSpec {
	conns := []connSpec{
		{name: "matrix", steps: append(deflateMatrix(maxSize), probeSteps(p)...), probes: true},
		{name: "fragments", steps: fragmentSteps()},
	}
	if long {
		alt := sequenceSteps(12)
		for i := range alt {
			alt[i].Compress = []*bool{yes, no, no}[i%3]
		}
		conns = append(conns,
			connSpec{name: "sequence", steps: sequenceSteps(200)},
			connSpec{name: "NextWriter", query: []string{"writer", "3"}, steps: deflateMatrix(1 << 20)},
			connSpec{name: "compress per message", query: []string{"compress", "alt"}, steps: alt},
		)
	}
	return conns
}

func TestDeflateNodeWSClientToDuplexServer(t *testing.T) {
	requireNode(t)
	t.Parallel()
	cases := []struct {
		name    string
		node    map[string]any // ws's perMessageDeflate options (threshold 0 added)
		duplex  ws.CompressionOptions
		offered int // client_max_window_bits value the client offers
		want    deflateParams
		accept  string // modeHTTP or modeConn
		long    bool
	}{
		{name: "takeover", duplex: ws.CompressionOptions{Threshold: -1},
			want: deflateParams{serverBits: 15, clientBits: 15}, accept: modeHTTP, long: true},
		{name: "takeover/UpgradeConn", duplex: ws.CompressionOptions{Threshold: -1},
			want: deflateParams{serverBits: 15, clientBits: 15}, accept: modeConn},
		{name: "node asks no context takeover", node: map[string]any{"serverNoContextTakeover": true, "clientNoContextTakeover": true},
			duplex: ws.CompressionOptions{Threshold: -1}, want: deflateParams{serverNoCtx: true, clientNoCtx: true, serverBits: 15, clientBits: 15}, accept: modeHTTP},
		{name: "duplex sets no context takeover", duplex: ws.CompressionOptions{Threshold: -1, ServerNoContextTakeover: true, ClientNoContextTakeover: true},
			want: deflateParams{serverNoCtx: true, clientNoCtx: true, serverBits: 15, clientBits: 15}, accept: modeHTTP},
		{name: "duplex sets server no context takeover", duplex: ws.CompressionOptions{Threshold: -1, ServerNoContextTakeover: true},
			want: deflateParams{serverNoCtx: true, serverBits: 15, clientBits: 15}, accept: modeConn},
		{name: "node asks windows 10 and 9", node: map[string]any{"serverMaxWindowBits": 10, "clientMaxWindowBits": 9},
			duplex: ws.CompressionOptions{Threshold: -1}, offered: 9, want: deflateParams{serverBits: 10, clientBits: 9}, accept: modeHTTP},
		{name: "duplex sets windows 9 and 10", duplex: ws.CompressionOptions{Threshold: -1, ServerMaxWindowBits: 9, ClientMaxWindowBits: 10},
			want: deflateParams{serverBits: 9, clientBits: 10}, accept: modeHTTP},
	}
	for _, tc := range cases {
		maxSize := 1 << 20
		if tc.long {
			maxSize = 16 << 20
		}
		for _, serve := range eiotest.Modes {
			for _, cs := range deflateConns(tc.want, evented1MiB(serve, maxSize), tc.long) {
				t.Run(tc.name+"/"+string(serve)+"/"+cs.name, func(t *testing.T) {
					t.Parallel()
					testDeflateNodeWSClientToDuplexServer(t, serverMode{tc.accept, serve}, tc.node, tc.duplex, tc.offered, tc.want, cs)
				})
			}
		}
	}
}

// testDeflateNodeWSClientToDuplexServer runs connection cs of a case: the node ws client
// with node's options against the duplex server with duplex's, offering offered bits.
func testDeflateNodeWSClientToDuplexServer(t *testing.T, mode serverMode, node map[string]any, duplex ws.CompressionOptions, offered int, want deflateParams, cs connSpec) {
	nodeOpts := map[string]any{"threshold": 0}
	maps.Copy(nodeOpts, node)
	duplexOpts := duplex
	srv := startDuplexServerHooks(t, mode, &ws.Upgrader{Compression: &duplexOpts}, deflateHooks)
	tap := startWireTap(t, hostOf(t, srv.wsURL))
	steps := append(slices.Clone(cs.steps), step{Op: "close", Code: 1000})
	events := runClient(t, "ws-client.js", tapURL(t, srv.url("c", cs.query...), tap), clientArgs{PerMessageDeflate: nodeOpts, Steps: steps})
	open := srv.expect(t, "c", "open")
	conn := tap.conn(t, 0)
	echoes := echoOnly(steps)
	checkEchoes(t, echoes, events)
	srv.checkMessages(t, "c", echoes)
	if ev := srv.expect(t, "c", "closed"); ws.CloseStatus(ev.Err) != 1000 {
		t.Errorf("server read error %v, want a CloseError with code 1000", ev.Err)
	}
	p := checkNegotiated(t, want, offered, map[string]string{
		"Conn.Compression()": open.Extensions, "node ws (response header)": events[0].Negotiated, "wire": conn.responseExtensions()})
	conn.checkFraming(t)
	cm := checkWire(t, conn, fromClient, p.clientBits, echoes, func(_ int, st step) bool { return st.Compress == nil || *st.Compress }, true)
	q := url.Values{}
	for i := 0; i+1 < len(cs.query); i += 2 {
		q.Set(cs.query[i], cs.query[i+1])
	}
	sm := checkWire(t, conn, fromServer, p.serverBits, echoes, func(i int, _ step) bool { return q.Get("compress") != "alt" || i%2 == 0 }, false)
	if parts, _ := strconv.Atoi(q.Get("writer")); parts > 1 {
		checkNextWriterFrames(t, sm, echoes, parts)
	}
	if cs.probes {
		probe := len(echoes) - 3
		checkProbes(t, cm, probe, fromClient, p.clientNoCtx, p.clientBits, false)
		checkProbes(t, sm, probe, fromServer, p.serverNoCtx, p.serverBits, true)
	}
}

// --- duplex client -> Node ws server ----------------------------------------

func TestDeflateDuplexClientToNodeWSServer(t *testing.T) {
	requireNode(t)
	t.Parallel()
	cases := []struct {
		name    string
		duplex  ws.CompressionOptions
		node    map[string]any // ws's perMessageDeflate options (threshold 0 added)
		offered int
		want    deflateParams
		long    bool
	}{
		{name: "takeover", duplex: ws.CompressionOptions{Threshold: -1}, want: deflateParams{serverBits: 15, clientBits: 15}, long: true},
		{name: "duplex asks no context takeover", duplex: ws.CompressionOptions{Threshold: -1, ServerNoContextTakeover: true, ClientNoContextTakeover: true},
			want: deflateParams{serverNoCtx: true, clientNoCtx: true, serverBits: 15, clientBits: 15}},
		{name: "node sets no context takeover", duplex: ws.CompressionOptions{Threshold: -1},
			node: map[string]any{"serverNoContextTakeover": true, "clientNoContextTakeover": true},
			want: deflateParams{serverNoCtx: true, clientNoCtx: true, serverBits: 15, clientBits: 15}},
		{name: "node sets client no context takeover", duplex: ws.CompressionOptions{Threshold: -1},
			node: map[string]any{"clientNoContextTakeover": true}, want: deflateParams{clientNoCtx: true, serverBits: 15, clientBits: 15}},
		{name: "duplex asks windows 10 and 9", duplex: ws.CompressionOptions{Threshold: -1, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9},
			offered: 9, want: deflateParams{serverBits: 10, clientBits: 9}},
		{name: "node sets windows 9 and 10", duplex: ws.CompressionOptions{Threshold: -1},
			node: map[string]any{"serverMaxWindowBits": 9, "clientMaxWindowBits": 10}, want: deflateParams{serverBits: 9, clientBits: 10}},
	}
	for _, tc := range cases {
		maxSize := 1 << 20
		if tc.long {
			maxSize = 16 << 20
		}
		conns := deflateConns(tc.want, maxSize, tc.long)
		for _, cs := range conns {
			t.Run(tc.name+"/"+cs.name, func(t *testing.T) {
				t.Parallel()
				nodeOpts := map[string]any{"threshold": 0}
				maps.Copy(nodeOpts, tc.node)
				srv := startWSServer(t, wsServerArgs{PerMessageDeflate: nodeOpts})
				tap := startWireTap(t, fmt.Sprintf("127.0.0.1:%d", srv.port))
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				defer cancel()
				// The node server's echo: fragmented for the NextWriter case, per-message compression for the other.
				query := slices.Clone(cs.query)
				if len(query) > 0 && query[0] == "writer" {
					query = []string{"fragments", query[1]}
				}
				duplexOpts := tc.duplex
				c, _ := dial(t, ctx, tapURL(t, srv.url("c", query...), tap), &ws.DialOptions{Compression: &duplexOpts})
				open := srv.expect(t, "c", "open")
				conn := tap.conn(t, 0)
				p := checkNegotiated(t, tc.want, tc.offered, map[string]string{
					"Conn.Compression()": c.Compression(), "node ws (response header)": open.Negotiated, "wire": conn.responseExtensions()})
				echoes := echoOnly(cs.steps)
				bad := 0
				for i, st := range echoes {
					data := payload(st.Data, st.Type, st.Size)
					if err := duplexSend(ctx, c, st, data); err != nil {
						t.Fatalf("send %d (%s %s of %d bytes): %v", i, st.Data, st.Type, st.Size, err)
					}
					typ, got, err := c.ReadMessage(ctx)
					if err != nil {
						t.Fatalf("ReadMessage %d (%s %s of %d bytes): %v", i, st.Data, st.Type, st.Size, err)
					}
					ev := srv.expect(t, "c", "message")
					if typ != msgType(st.Type) || !bytes.Equal(got, data) || ev.Type != st.Type || ev.Len != st.Size || ev.SHA256 != sha256Hex(data) {
						if bad++; bad <= 10 {
							t.Errorf("echo %d (%s %s of %d bytes): node got %s of %d bytes (sha %.12s), echo %v of %d bytes (sha %.12s)",
								i, st.Data, st.Type, st.Size, ev.Type, ev.Len, ev.SHA256, typ, len(got), sha256Hex(got))
						}
					}
				}
				if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
					t.Errorf("Close: %v", err)
				}
				if ev := srv.expect(t, "c", "close"); ev.Code != 1000 {
					t.Errorf("ws server saw close %d, want 1000", ev.Code)
				}
				conn.checkFraming(t)
				cm := checkWire(t, conn, fromClient, p.clientBits, echoes, func(_ int, st step) bool { return st.Compress == nil || *st.Compress }, false)
				checkNextWriterFrames(t, cm, echoes, 0)
				q := url.Values{}
				for i := 0; i+1 < len(query); i += 2 {
					q.Set(query[i], query[i+1])
				}
				alt := q.Get("compress") == "alt"
				frags, _ := strconv.Atoi(q.Get("fragments"))
				sm := checkWire(t, conn, fromServer, p.serverBits, echoes, func(i int, _ step) bool { return !alt || i%2 == 0 }, false)
				for i, m := range sm {
					if frags > 1 && len(m.frames) != frags {
						t.Errorf("wire: node's fragmented echo %d went out in %d frames, want %d", i, len(m.frames), frags)
						break
					}
				}
				if cs.probes {
					probe := len(echoes) - 3
					checkProbes(t, cm, probe, fromClient, p.clientNoCtx, p.clientBits, true)
					checkProbes(t, sm, probe, fromServer, p.serverNoCtx, p.serverBits, false)
				}
			})
		}
	}
}

// duplexSend sends one step's message from the duplex client: through
// NextWriter in Fragments writes, with WriteMessageCompressed when the step
// sets Compress, else WriteMessage.
func duplexSend(ctx context.Context, c *ws.Conn, st step, data []byte) error {
	switch {
	case st.Fragments > 1:
		w, err := c.NextWriter(ctx, msgType(st.Type))
		if err != nil {
			return err
		}
		for j := range st.Fragments {
			if _, err := w.Write(data[j*len(data)/st.Fragments : (j+1)*len(data)/st.Fragments]); err != nil {
				_ = w.Close()
				return err
			}
		}
		return w.Close()
	case st.Compress != nil:
		return c.WriteMessageCompressed(ctx, msgType(st.Type), data, *st.Compress)
	}
	return c.WriteMessage(ctx, msgType(st.Type), data)
}
