package ws_test

// permessage-deflate negotiation (RFC 7692 §5, §7.1; Autobahn category 13):
// the ws server's answer to offers, the ws client's checks of responses, and
// messages exchanged under every agreed configuration (the peer's inflater
// keeps only the agreed window as history, and none without context
// takeover; the DEFLATE walker checks every back-reference distance).

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

var knownDeflateParams = map[string]bool{
	"server_no_context_takeover": false, // no value
	"client_no_context_takeover": false,
	"server_max_window_bits":     true, // value
	"client_max_window_bits":     true,
}

// checkResponseSyntax applies RFC 7692's rules to an accepted response:
// known parameters, each at most once, flags without a value, window bits
// 8..15.
func checkResponseSyntax(t *testing.T, e *wstest.Extension) {
	t.Helper()
	if e.Name != pmd {
		t.Errorf("response extension %q, want %q", e.Name, pmd)
	}
	forKnownParams(t, "response", *e, func(p wstest.ExtParam, hasValue bool) {
		if p.HasValue != hasValue {
			t.Errorf("response parameter %q has value=%v: %s", p.Name, p.HasValue, e)
		}
		if hasValue {
			if n, err := strconv.Atoi(p.Value); err != nil || n < 8 || n > 15 {
				t.Errorf("response parameter %s=%q out of 8..15: %s", p.Name, p.Value, e)
			}
		}
	})
}

// forKnownParams reports the parameters of e that permessage-deflate does
// not define and those that appear more than once (what names e in the
// messages: "response" or "offer"), and calls fn for each known one with
// whether it takes a value.
func forKnownParams(t *testing.T, what string, e wstest.Extension, fn func(p wstest.ExtParam, hasValue bool)) {
	t.Helper()
	seen := map[string]bool{}
	for _, p := range e.Params {
		hasValue, known := knownDeflateParams[p.Name]
		if !known {
			t.Errorf("%s has unknown parameter %q: %s", what, p.Name, e)
			continue
		}
		if seen[p.Name] {
			t.Errorf("%s repeats parameter %q: %s", what, p.Name, e)
		}
		seen[p.Name] = true
		fn(p, hasValue)
	}
}

// checkWantForbid checks that e (what: "response" or "offer") has each
// parameter of want ("name" or "name=value") and none named in forbid.
func checkWantForbid(t *testing.T, what string, e wstest.Extension, want, forbid []string) {
	t.Helper()
	for _, w := range want {
		name, val, hasVal := strings.Cut(w, "=")
		p, ok := e.Param(name)
		if !ok || hasVal && p.Value != val {
			t.Errorf("%s %q lacks %q", what, e, w)
		}
	}
	for _, f := range forbid {
		if _, ok := e.Param(f); ok {
			t.Errorf("%s %q has %q", what, e, f)
		}
	}
}

// sameExtension reports whether impl (a Conn.Compression() value) names
// exactly the extension e.
func sameExtension(impl string, e *wstest.Extension) bool {
	exts, err := wstest.ParseExtensions([]string{impl})
	return err == nil && len(exts) == 1 && exts[0].String() == e.String()
}

func paramInt(e *wstest.Extension, name string) (int, bool) {
	p, ok := e.Param(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(p.Value)
	return n, err == nil
}

// exchangeUnderAgreement sends compressed messages of several sizes (with
// repeats, so that references across messages and at every distance are
// tempting) and checks the echoes under the agreed parameters.
func (d *dharness) exchangeUnderAgreement() {
	d.t.Helper()
	if d.ext == nil {
		d.send(text("uncompressed"))
		m := d.expectEcho(wstest.OpText, []byte("uncompressed"))
		if m.compressed {
			d.t.Errorf("compressed echo without agreement")
		}
		return
	}
	src := &dataStream{text: true}
	same := src.next(3000)
	payloads := [][]byte{nil, src.next(100), same, same, src.next(12000), src.next(600), same, src.next(24000)}
	reach, dist := 0, 0
	for i, p := range payloads {
		m := d.echoCompressed(wstest.OpText, p, []int{0, 0, 0, 0, 1000, 0, 0, 4096}[i])
		if !m.compressed {
			d.t.Errorf("message %d: echo not compressed (Threshold -1)", i)
		}
		reach = max(reach, m.info.MaxReach)
		dist = max(dist, m.info.MaxDistance)
	}
	d.t.Logf("agreed %q; ws side's max distance %d (window %d bits), max reach before the message %d", d.ext, dist, d.implBits, reach)
}

// ---------------------------------------------------------------------------
// Server roles: the peer offers, ws answers.

type serverNegCase struct {
	name  string
	offer []string
	comp  *ws.CompressionOptions // nil: compressAll()
	// accept: the extension must be agreed; decline: it must not be;
	// neither: either is fine (checked if agreed).
	accept, decline bool
	want            []string // response parameters required: "name" or "name=value"
	forbid          []string // parameter names that must not be in the response
	maxServerBits   int      // server_max_window_bits required, at most this
	maxClientBits   int      // client_max_window_bits, if present, at most this
}

func serverNegCases() []serverNegCase {
	var cs []serverNegCase
	add := func(c serverNegCase) { cs = append(cs, c) }
	// Autobahn 13.1: the default offer.
	add(serverNegCase{name: "plain", offer: []string{pmd}, accept: true, forbid: []string{"client_max_window_bits", "server_max_window_bits", "server_no_context_takeover"}})
	add(serverNegCase{name: "server_no_context_takeover", offer: []string{pmd + "; server_no_context_takeover"}, accept: true, want: []string{"server_no_context_takeover"}})
	add(serverNegCase{name: "client_no_context_takeover", offer: []string{pmd + "; client_no_context_takeover"}, accept: true})
	add(serverNegCase{name: "both_no_context_takeover", offer: []string{pmd + "; client_no_context_takeover; server_no_context_takeover"}, accept: true, want: []string{"server_no_context_takeover"}})
	for n := 8; n <= 15; n++ {
		c := serverNegCase{name: fmt.Sprintf("server_max_window_bits_%d", n), offer: []string{fmt.Sprintf("%s; server_max_window_bits=%d", pmd, n)}, maxServerBits: n}
		// zlib cannot use an 8-bit window; declining is allowed (websocket.md §5).
		c.accept = n > 8
		add(c)
	}
	add(serverNegCase{name: "client_max_window_bits_no_value", offer: []string{pmd + "; client_max_window_bits"}, accept: true})
	for n := 8; n <= 15; n++ {
		add(serverNegCase{name: fmt.Sprintf("client_max_window_bits_%d", n), offer: []string{fmt.Sprintf("%s; client_max_window_bits=%d", pmd, n)}, accept: true, maxClientBits: n})
	}
	// Autobahn 13.2-13.7 style combinations.
	add(serverNegCase{name: "server_no_context_takeover_client_max_window_bits", offer: []string{pmd + "; server_no_context_takeover; client_max_window_bits"}, accept: true, want: []string{"server_no_context_takeover"}})
	add(serverNegCase{name: "all_parameters", offer: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"}, accept: true, want: []string{"server_no_context_takeover"}, maxServerBits: 10, maxClientBits: 12})
	add(serverNegCase{name: "server_max_window_bits_9_no_context_takeover", offer: []string{pmd + "; server_max_window_bits=9; server_no_context_takeover"}, accept: true, want: []string{"server_no_context_takeover"}, maxServerBits: 9})
	add(serverNegCase{name: "parameter_order_and_case_of_whitespace", offer: []string{pmd + " ;client_max_window_bits=11 ;  server_max_window_bits=12"}, accept: true, maxServerBits: 12, maxClientBits: 11})
	// Quoted values.
	add(serverNegCase{name: "quoted_client_max_window_bits", offer: []string{pmd + `; client_max_window_bits="10"`}, accept: true, maxClientBits: 10})
	add(serverNegCase{name: "quoted_server_max_window_bits", offer: []string{pmd + `; server_max_window_bits="10"`}, accept: true, maxServerBits: 10})
	// Several offers: the first acceptable one is picked.
	add(serverNegCase{name: "first_offer_picked", offer: []string{pmd + "; server_no_context_takeover, " + pmd}, accept: true, want: []string{"server_no_context_takeover"}})
	add(serverNegCase{name: "first_offer_picked_reverse", offer: []string{pmd + ", " + pmd + "; server_no_context_takeover"}, accept: true, forbid: []string{"server_no_context_takeover"}})
	add(serverNegCase{name: "invalid_first_offer_skipped", offer: []string{pmd + "; server_max_window_bits=7, " + pmd + "; server_no_context_takeover, " + pmd}, accept: true, want: []string{"server_no_context_takeover"}})
	add(serverNegCase{name: "unknown_param_offer_skipped", offer: []string{pmd + "; x_param, " + pmd + "; server_max_window_bits=12"}, accept: true, maxServerBits: 12})
	add(serverNegCase{name: "offers_on_two_header_lines", offer: []string{pmd + "; foo=1", pmd + "; server_max_window_bits=11"}, accept: true, maxServerBits: 11})
	add(serverNegCase{name: "unknown_extension_then_deflate", offer: []string{"x-webkit-deflate-frame, " + pmd + "; server_no_context_takeover"}, accept: true, want: []string{"server_no_context_takeover"}})
	// Autobahn 13.7: (True, 8), (True, 0), (False, 0) offers.
	add(serverNegCase{name: "autobahn_13_7_offers", offer: []string{pmd + "; server_no_context_takeover; server_max_window_bits=8, " + pmd + "; server_no_context_takeover, " + pmd}, accept: true, want: []string{"server_no_context_takeover"}, maxServerBits: 15})
	// Declined offers (101 without the extension).
	for _, o := range []string{
		pmd + "; foo",
		pmd + "; foo=1",
		pmd + "; server_no_context_takeover; server_no_context_takeover",
		pmd + "; client_no_context_takeover; client_no_context_takeover",
		pmd + "; server_max_window_bits=10; server_max_window_bits=10",
		pmd + "; client_max_window_bits; client_max_window_bits=10",
		pmd + "; server_max_window_bits=7",
		pmd + "; server_max_window_bits=16",
		pmd + "; server_max_window_bits=abc",
		pmd + "; server_max_window_bits=0",
		pmd + "; server_max_window_bits",
		pmd + "; client_max_window_bits=16",
		pmd + "; client_max_window_bits=7",
		pmd + "; client_max_window_bits=x9",
		pmd + "; server_no_context_takeover=1",
		pmd + "; client_no_context_takeover=true",
		"x-webkit-deflate-frame",
		"permessage-foo",
	} {
		add(serverNegCase{name: "declined_" + strings.NewReplacer(pmd+"; ", "", "; ", "_", "=", "_", "-", "_").Replace(o), offer: []string{o}, decline: true})
	}
	// The server's own options.
	add(serverNegCase{name: "opt_server_no_context_takeover", offer: []string{pmd}, comp: &ws.CompressionOptions{Threshold: -1, ServerNoContextTakeover: true}, accept: true, want: []string{"server_no_context_takeover"}})
	add(serverNegCase{name: "opt_client_no_context_takeover", offer: []string{pmd}, comp: &ws.CompressionOptions{Threshold: -1, ClientNoContextTakeover: true}, accept: true, want: []string{"client_no_context_takeover"}})
	add(serverNegCase{name: "opt_server_max_window_bits_10_plain_offer", offer: []string{pmd}, comp: &ws.CompressionOptions{Threshold: -1, ServerMaxWindowBits: 10}, accept: true, want: []string{"server_max_window_bits=10"}})
	add(serverNegCase{name: "opt_server_max_window_bits_10_offer_12", offer: []string{pmd + "; server_max_window_bits=12"}, comp: &ws.CompressionOptions{Threshold: -1, ServerMaxWindowBits: 10}, accept: true, want: []string{"server_max_window_bits=10"}})
	add(serverNegCase{name: "opt_server_max_window_bits_10_offer_9", offer: []string{pmd + "; server_max_window_bits=9"}, comp: &ws.CompressionOptions{Threshold: -1, ServerMaxWindowBits: 10}, accept: true, maxServerBits: 9})
	add(serverNegCase{name: "opt_client_max_window_bits_10_offer_no_value", offer: []string{pmd + "; client_max_window_bits"}, comp: &ws.CompressionOptions{Threshold: -1, ClientMaxWindowBits: 10}, accept: true, want: []string{"client_max_window_bits=10"}})
	add(serverNegCase{name: "opt_client_max_window_bits_10_offer_12", offer: []string{pmd + "; client_max_window_bits=12"}, comp: &ws.CompressionOptions{Threshold: -1, ClientMaxWindowBits: 10}, accept: true, want: []string{"client_max_window_bits=10"}})
	add(serverNegCase{name: "opt_client_max_window_bits_10_offer_9", offer: []string{pmd + "; client_max_window_bits=9"}, comp: &ws.CompressionOptions{Threshold: -1, ClientMaxWindowBits: 10}, accept: true, maxClientBits: 9})
	add(serverNegCase{name: "opt_client_max_window_bits_10_not_offered", offer: []string{pmd}, comp: &ws.CompressionOptions{Threshold: -1, ClientMaxWindowBits: 10}, forbid: []string{"client_max_window_bits"}})
	add(serverNegCase{name: "opt_all", offer: []string{pmd + "; client_max_window_bits"}, comp: &ws.CompressionOptions{Threshold: -1, Level: 9, ServerNoContextTakeover: true, ClientNoContextTakeover: true, ServerMaxWindowBits: 9, ClientMaxWindowBits: 11}, accept: true, want: []string{"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits=9", "client_max_window_bits=11"}})
	return cs
}

func TestDeflateServerNegotiation(t *testing.T) {
	t.Parallel()
	forRoleCases(t, []role{roleServer, roleServerRaw}, serverNegCases(), func(c serverNegCase) string { return c.name }, func(t *testing.T, r role, c serverNegCase) {
		d := startDeflate(t, r, deflateOpts{offer: c.offer, comp: c.comp, peerTimeout: largeTimeout})
		impl := d.implCompression()
		switch {
		case d.ext == nil && c.accept:
			t.Fatalf("offer %q declined, want accepted (response Sec-WebSocket-Extensions %q)", c.offer, d.resp.Header.Values("Sec-WebSocket-Extensions"))
		case d.ext != nil && c.decline:
			t.Fatalf("offer %q accepted with %q, want declined", c.offer, d.ext)
		case d.ext == nil:
			if impl != "" {
				t.Errorf("Conn.Compression() = %q, want \"\" when declined", impl)
			}
			if len(c.want) > 0 {
				t.Errorf("offer %q declined, want accepted with %v", c.offer, c.want)
			}
			t.Logf("declined %q", c.offer)
			d.exchangeUnderAgreement()
			return
		}
		e := d.ext
		t.Logf("offer %q -> %q (Conn.Compression() %q)", c.offer, e, impl)
		checkResponseSyntax(t, e)
		if impl == "" {
			t.Errorf("Conn.Compression() = \"\", want the agreed %q", e)
		} else if !sameExtension(impl, e) {
			t.Errorf("Conn.Compression() = %q, response %q", impl, e)
		}
		checkWantForbid(t, "response", *e, c.want, c.forbid)
		offered := func(name string) bool {
			exts, _ := wstest.ParseExtensions(c.offer)
			for _, x := range exts {
				if _, ok := x.Param(name); ok && x.Name == pmd {
					return true
				}
			}
			return false
		}
		if _, ok := e.Param("client_max_window_bits"); ok && !offered("client_max_window_bits") {
			t.Errorf("response %q has client_max_window_bits, which no offer had", e)
		}
		if c.maxServerBits > 0 {
			if n, ok := paramInt(e, "server_max_window_bits"); !ok || n > c.maxServerBits {
				t.Errorf("offer with server_max_window_bits=%d answered %q; the response must keep server_max_window_bits <= %d", c.maxServerBits, e, c.maxServerBits)
			}
		}
		if c.maxClientBits > 0 {
			if n, ok := paramInt(e, "client_max_window_bits"); ok && n > c.maxClientBits {
				t.Errorf("response %q sets client_max_window_bits above the offered %d", e, c.maxClientBits)
			}
		}
		d.exchangeUnderAgreement()
	})
}

// A syntactically malformed Sec-WebSocket-Extensions header is a bad
// request: 400, and Upgrade/UpgradeConn return an error.
func TestDeflateServerRejectsMalformedExtensionsHeader(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		offer string
	}
	cases := []tc{
		{"unterminated_quote", pmd + `; client_max_window_bits="10`},
		{"parameter_without_name", pmd + "; =10"},
		{"empty_parameter", pmd + ";; server_no_context_takeover"},
		{"missing_semicolon", pmd + " server_no_context_takeover"},
		{"extension_name_quoted", `"permessage-deflate"`},
		{"separator_in_value", pmd + "; server_max_window_bits=1@0"},
	}
	forRoleCases(t, []role{roleServer, roleServerRaw}, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		d := startDeflateHandshake(t, r, deflateOpts{offer: []string{c.offer}})
		if d.peer != nil {
			t.Fatalf("malformed %q: 101 with extensions %q, want 400", c.offer, d.resp.Header.Values("Sec-WebSocket-Extensions"))
		}
		if d.resp.StatusCode != http.StatusBadRequest {
			t.Errorf("malformed %q: status %s, want 400", c.offer, d.resp.Status)
		}
		select {
		case <-d.appDone:
			if d.appErr == nil {
				t.Errorf("upgrade returned no error")
			} else {
				t.Logf("upgrade error: %v", d.appErr)
			}
		case <-time.After(stepTimeout):
			t.Errorf("upgrade did not return within %v", stepTimeout)
		}
	})
}

// ---------------------------------------------------------------------------
// Client role: ws offers, the raw peer answers.

type clientNegCase struct {
	name string
	comp *ws.CompressionOptions // nil: compressAll()
	// wantOffer: parameters the ws client's offer must contain ("name" or
	// "name=value"); forbidOffer: names it must not.
	wantOffer, forbidOffer []string
	// respond returns the response value for the ws client's first
	// permessage-deflate offer; skip (when set) says why the case does not
	// apply to that offer.
	respond func(offer wstest.Extension) string
	skip    func(offer wstest.Extension) string
	ok      bool
}

func fixed(s string) func(wstest.Extension) string { return func(wstest.Extension) string { return s } }

func clientNegCases() []clientNegCase {
	withOpts := func(o ws.CompressionOptions) *ws.CompressionOptions { o.Threshold = -1; return &o }
	offersClientBits := func(e wstest.Extension) string {
		if _, ok := e.Param("client_max_window_bits"); !ok {
			return "the ws client did not offer client_max_window_bits"
		}
		return ""
	}
	noClientBits := func(e wstest.Extension) string {
		if _, ok := e.Param("client_max_window_bits"); ok {
			return "the ws client offers client_max_window_bits"
		}
		return ""
	}
	return []clientNegCase{
		{name: "plain", respond: fixed(pmd), ok: true},
		{name: "no_extension_in_response", respond: fixed(""), ok: true},
		{name: "server_no_context_takeover", respond: fixed(pmd + "; server_no_context_takeover"), ok: true},
		{name: "client_no_context_takeover", respond: fixed(pmd + "; client_no_context_takeover"), ok: true},
		{name: "both_no_context_takeover", respond: fixed(pmd + "; server_no_context_takeover; client_no_context_takeover"), ok: true},
		{name: "server_max_window_bits_8", respond: fixed(pmd + "; server_max_window_bits=8"), ok: true},
		{name: "server_max_window_bits_10", respond: fixed(pmd + "; server_max_window_bits=10"), ok: true},
		{name: "server_max_window_bits_15", respond: fixed(pmd + "; server_max_window_bits=15"), ok: true},
		{name: "client_max_window_bits_9", respond: fixed(pmd + "; client_max_window_bits=9"), skip: offersClientBits, ok: true},
		{name: "client_max_window_bits_8", respond: fixed(pmd + "; client_max_window_bits=8"), skip: offersClientBits, ok: true},
		{name: "client_max_window_bits_15", respond: fixed(pmd + "; client_max_window_bits=15"), skip: offersClientBits, ok: true},
		{name: "client_max_window_bits_quoted", respond: fixed(pmd + `; client_max_window_bits="10"`), skip: offersClientBits, ok: true},
		{name: "all_parameters", respond: fixed(pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=12"), skip: offersClientBits, ok: true},
		{name: "opt_offer_server_no_context_takeover", comp: withOpts(ws.CompressionOptions{ServerNoContextTakeover: true}), wantOffer: []string{"server_no_context_takeover"}, respond: fixed(pmd + "; server_no_context_takeover"), ok: true},
		{name: "opt_offer_client_no_context_takeover", comp: withOpts(ws.CompressionOptions{ClientNoContextTakeover: true}), wantOffer: []string{"client_no_context_takeover"}, respond: fixed(pmd), ok: true},
		{name: "opt_offer_server_max_window_bits_10", comp: withOpts(ws.CompressionOptions{ServerMaxWindowBits: 10}), wantOffer: []string{"server_max_window_bits=10"}, respond: fixed(pmd + "; server_max_window_bits=10"), ok: true},
		{name: "opt_offer_server_max_window_bits_10_answer_9", comp: withOpts(ws.CompressionOptions{ServerMaxWindowBits: 10}), respond: fixed(pmd + "; server_max_window_bits=9"), ok: true},
		{name: "opt_offer_client_max_window_bits_10", comp: withOpts(ws.CompressionOptions{ClientMaxWindowBits: 10}), wantOffer: []string{"client_max_window_bits=10"}, respond: fixed(pmd + "; client_max_window_bits=10"), ok: true},
		{name: "opt_offer_client_max_window_bits_10_answer_8", comp: withOpts(ws.CompressionOptions{ClientMaxWindowBits: 10}), respond: fixed(pmd + "; client_max_window_bits=8"), ok: true},
		{name: "opt_offer_client_max_window_bits_10_no_answer", comp: withOpts(ws.CompressionOptions{ClientMaxWindowBits: 10}), respond: fixed(pmd), ok: true},
		// Invalid responses: Dial fails.
		{name: "bad_extension_not_offered", respond: fixed("x-webkit-deflate-frame")},
		{name: "bad_two_extensions", respond: fixed(pmd + ", " + pmd)},
		{name: "bad_unknown_parameter", respond: fixed(pmd + "; foo")},
		{name: "bad_unknown_parameter_with_value", respond: fixed(pmd + "; foo=1")},
		{name: "bad_duplicate_parameter", respond: fixed(pmd + "; server_no_context_takeover; server_no_context_takeover")},
		{name: "bad_duplicate_window_bits", respond: fixed(pmd + "; server_max_window_bits=10; server_max_window_bits=10")},
		{name: "bad_server_max_window_bits_7", respond: fixed(pmd + "; server_max_window_bits=7")},
		{name: "bad_server_max_window_bits_16", respond: fixed(pmd + "; server_max_window_bits=16")},
		{name: "bad_server_max_window_bits_abc", respond: fixed(pmd + "; server_max_window_bits=abc")},
		{name: "bad_server_max_window_bits_no_value", respond: fixed(pmd + "; server_max_window_bits")},
		{name: "bad_client_max_window_bits_16", respond: fixed(pmd + "; client_max_window_bits=16"), skip: offersClientBits},
		{name: "bad_client_max_window_bits_7", respond: fixed(pmd + "; client_max_window_bits=7"), skip: offersClientBits},
		{name: "bad_client_max_window_bits_no_value", respond: fixed(pmd + "; client_max_window_bits"), skip: offersClientBits},
		{name: "bad_client_max_window_bits_not_offered", respond: fixed(pmd + "; client_max_window_bits=10"), skip: noClientBits},
		{name: "bad_flag_with_value", respond: fixed(pmd + "; client_no_context_takeover=1")},
		{name: "bad_server_max_window_bits_above_offer", comp: withOpts(ws.CompressionOptions{ServerMaxWindowBits: 10}), respond: fixed(pmd + "; server_max_window_bits=12")},
		{name: "bad_client_max_window_bits_above_offer", comp: withOpts(ws.CompressionOptions{ClientMaxWindowBits: 10}), respond: fixed(pmd + "; client_max_window_bits=12")},
		{name: "bad_malformed_header", respond: fixed(pmd + `; client_max_window_bits="10`)},
	}
}

func TestDeflateClientNegotiation(t *testing.T) {
	t.Parallel()
	forRoleCases(t, []role{roleClient}, clientNegCases(), func(c clientNegCase) string { return c.name }, func(t *testing.T, r role, c clientNegCase) {
		var offer wstest.Extension
		var offerErr, skip string
		d := startDeflateHandshake(t, r, deflateOpts{comp: c.comp, peerTimeout: largeTimeout, respond: func(req *http.Request) string {
			exts, err := wstest.ParseExtensions(req.Header.Values("Sec-WebSocket-Extensions"))
			if err != nil {
				offerErr = err.Error()
				return ""
			}
			found := false
			for _, e := range exts {
				if e.Name == pmd {
					offer, found = e, true
					break
				}
			}
			if !found {
				offerErr = fmt.Sprintf("no %s offer in %q", pmd, req.Header.Values("Sec-WebSocket-Extensions"))
				return ""
			}
			if c.skip != nil {
				if skip = c.skip(offer); skip != "" {
					return ""
				}
			}
			return c.respond(offer)
		}})
		if offerErr != "" {
			t.Fatalf("ws client's offer: %s", offerErr)
		}
		t.Logf("ws client offered %q", offer)
		checkOffer(t, offer)
		checkWantForbid(t, "offer", offer, c.wantOffer, c.forbidOffer)
		if skip != "" {
			t.Skip(skip)
		}
		if !c.ok {
			select {
			case <-d.appDone:
			case <-time.After(stepTimeout):
				t.Fatalf("Dial did not return within %v", stepTimeout)
			}
			if d.appErr == nil || !strings.HasPrefix(d.appErr.Error(), "Dial:") {
				t.Fatalf("Dial accepted the response %q (app returned %v), want an error", d.ext, d.appErr)
			}
			t.Logf("Dial error: %v", d.appErr)
			extra, err := d.peer.WaitEOF(stepTimeout)
			if err != nil {
				t.Errorf("ws client did not close TCP after rejecting the handshake: %v", err)
			} else if extra > 0 {
				t.Logf("ws client sent %d bytes before closing", extra)
			}
			return
		}
		impl := d.implCompression()
		if d.ext == nil {
			if impl != "" {
				t.Errorf("Conn.Compression() = %q without an extension in the response", impl)
			}
		} else if !sameExtension(impl, d.ext) {
			t.Errorf("Conn.Compression() = %q, response %q", impl, d.ext)
		}
		d.exchangeUnderAgreement()
		// Also messages ws sends on its own (not echoes) obey the agreement:
		// covered by exchangeUnderAgreement's echoes, which are ws writes.
	})
}

// checkOffer applies RFC 7692's rules to an offer: known parameters at most
// once, flags without value, server_max_window_bits with a value 8..15,
// client_max_window_bits with no value or 8..15.
func checkOffer(t *testing.T, e wstest.Extension) {
	t.Helper()
	forKnownParams(t, "offer", e, func(p wstest.ExtParam, hasValue bool) {
		switch {
		case !hasValue && p.HasValue:
			t.Errorf("offer parameter %q has a value: %s", p.Name, e)
		case p.Name == "server_max_window_bits" && !p.HasValue:
			t.Errorf("offer has server_max_window_bits without a value: %s", e)
		case hasValue && p.HasValue:
			if n, err := strconv.Atoi(p.Value); err != nil || n < 8 || n > 15 {
				t.Errorf("offer parameter %s=%q out of 8..15: %s", p.Name, p.Value, e)
			}
		}
	})
}
