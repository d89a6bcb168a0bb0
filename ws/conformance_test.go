package ws_test

// Conformance tests modelled on the Autobahn testsuite categories 1-7, 9 and
// 10 (see /work/shared/protocol/websocket.md §6). A raw-frame peer
// (internal/wstest) plays the other end of a loopback TCP connection against
// a duplex server (Upgrader over net/http, and UpgradeConn on a bare
// listener) or a duplex client (Dial), each running an echo loop.
//
// Test names say what is checked; subtests are role/case, where role is
// "server" (Upgrader.Upgrade), "server_raw" (Upgrader.UpgradeConn),
// "client" (Dial), or one of the event-driven modes "server_evented"
// (Upgrader.Upgrade, then EventLoop.Serve) and "server_raw_evented"
// (UpgradeConn, then EventLoop.Serve). The application (options.app, an echo
// by default) is written once as hooks that both modes run: a read loop in
// the goroutine roles, an EventHandler in the event-driven ones.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

// stepTimeout bounds every single wait of a conformance test.
const stepTimeout = 5 * time.Second

// failFastTimeout bounds the wait for a failure that must happen without
// waiting for more input (fail-fast UTF-8, read limit).
const failFastTimeout = 3 * time.Second

type role string

const (
	roleServer    role = "server"     // ws.Upgrader.Upgrade behind net/http
	roleServerRaw role = "server_raw" // ws.Upgrader.UpgradeConn on a bare listener
	roleClient    role = "client"     // ws.Dial
	// The event-driven mode: the same handshakes, then ws.EventLoop.Serve with an echo
	// EventHandler.
	roleServerEvented    role = "server_evented"
	roleServerRawEvented role = "server_raw_evented"
)

var (
	bothRoles = []role{roleServer, roleClient}
	allRoles  = []role{roleServer, roleServerRaw, roleClient, roleServerEvented, roleServerRawEvented}
)

func (r role) isServer() bool { return r != roleClient }

// evented reports whether r serves the connection with a ws.EventLoop.
func (r role) evented() bool { return r == roleServerEvented || r == roleServerRawEvented }

// base returns the blocking role whose handshake r uses.
func (r role) base() role {
	switch r {
	case roleServerEvented:
		return roleServer
	case roleServerRawEvented:
		return roleServerRaw
	}
	return r
}

// application is what the duplex side runs on its connection, in a form both
// modes run: open once connected (nil: nothing), then message for each data
// message (nil: echo it, as the Autobahn echo servers do). The goroutine roles
// run it as a read loop (runApp), the event-driven roles as an EventHandler
// (appHandler), with the same ctx. It never stops reading on a write error:
// the test sees writes on the wire, and the application's terminal error is
// the connection's (a *ws.CloseError, ws.ErrClosed, ...).
type application struct {
	open    func(ctx context.Context, c *ws.Conn)
	message func(ctx context.Context, c *ws.Conn, typ ws.MessageType, data []byte)
}

func (a application) onMessage(ctx context.Context, c *ws.Conn, typ ws.MessageType, data []byte) {
	if a.message == nil {
		_ = c.WriteMessage(ctx, typ, data)
		return
	}
	a.message(ctx, c, typ, data)
}

// runApp runs a on c with the blocking API and returns the read's terminal
// error.
func runApp(ctx context.Context, c *ws.Conn, a application) error {
	if a.open != nil {
		a.open(ctx, c)
	}
	for {
		typ, data, err := c.ReadMessage(ctx)
		if err != nil {
			return err
		}
		a.onMessage(ctx, c, typ, data)
	}
}

// appHandler runs an application in the event-driven roles.
type appHandler struct {
	h       *harness
	a       application
	ctx     context.Context
	started *sync.Once
}

func (e appHandler) OnOpen(c *ws.Conn) {
	e.started.Do(func() {
		e.h.connMu.Lock()
		e.h.conn = c
		e.h.connMu.Unlock()
		e.h.implExt <- c.Compression()
	})
	if e.a.open != nil {
		e.a.open(e.ctx, c)
	}
}

func (e appHandler) OnMessage(c *ws.Conn, typ ws.MessageType, data []byte) {
	e.a.onMessage(e.ctx, c, typ, data)
}

func (e appHandler) OnClose(c *ws.Conn, err error) {
	e.h.appErr = err
	close(e.h.appDone)
}

// nextWriterEcho echoes every data message through Conn.NextWriter, writing
// it in pieces of chunk bytes.
func nextWriterEcho(chunk int) application {
	return application{message: func(ctx context.Context, c *ws.Conn, typ ws.MessageType, data []byte) {
		w, err := c.NextWriter(ctx, typ)
		if err != nil {
			return
		}
		defer w.Close()
		for len(data) > 0 {
			n := min(chunk, len(data))
			if _, err := w.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
		}
	}}
}

// checkFragments checks that frames form one valid message of opcode op:
// op on the first frame, continuation frames after it, FIN on the last only.
func checkFragments(t *testing.T, op byte, frames []wstest.Frame) {
	t.Helper()
	for i, f := range frames {
		wantOp := wstest.OpContinuation
		if i == 0 {
			wantOp = op
		}
		if f.Opcode != wantOp || f.Fin != (i == len(frames)-1) {
			t.Errorf("frame %d of %d: %v; want op %#x fin=%v", i, len(frames), f, wantOp, i == len(frames)-1)
		}
	}
}

type options struct {
	readLimit int64
	app       application // the zero value echoes
	// extra is written by the peer in the same TCP write as its handshake
	// message (request or 101 response).
	extra []byte
	// peerTimeout overrides stepTimeout for the peer's waits.
	peerTimeout time.Duration
	// appTimeout bounds the application's context (0: one minute).
	appTimeout time.Duration
	// compression is the duplex side's Upgrader.Compression or
	// DialOptions.Compression.
	compression *ws.CompressionOptions
	// header holds request header fields the peer adds (server roles).
	header http.Header
	// respond returns header fields the peer adds to its 101 response to
	// the duplex client's request (client role).
	respond func(req *http.Request) http.Header
}

// harness is one connection between the raw peer and a duplex endpoint.
type harness struct {
	t    *testing.T
	role role
	peer *wstest.Peer

	// The opening handshake as the peer saw it: resp is the duplex
	// server's response (server roles, also a non-101 one), req the duplex
	// client's request (client role).
	resp *http.Response
	req  *http.Request

	connMu sync.Mutex
	conn   *ws.Conn

	implExt chan string // the duplex side's Conn.Compression(), once connected
	appDone chan struct{}
	appErr  error

	maskErrOnce sync.Once
}

// start opens a connection between a raw peer and a duplex endpoint of the
// given role running o.app. Everything is released by
// t.Cleanup, which also checks that the application goroutine ended.
func start(t *testing.T, r role, o options) *harness {
	t.Helper()
	h, err := open(t, r, o)
	if err != nil {
		t.Fatalf("%s: opening handshake: %v", r, err)
	}
	return h
}

// open is start, returning the opening handshake's error (with a nil
// h.peer) instead of failing the test.
func open(t *testing.T, r role, o options) (*harness, error) {
	t.Helper()
	if o.appTimeout == 0 {
		o.appTimeout = time.Minute
	}
	h := &harness{t: t, role: r, implExt: make(chan string, 1), appDone: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), o.appTimeout)
	t.Cleanup(cancel)
	var appStarted sync.Once
	var loop *ws.EventLoop
	if r.evented() {
		var err error
		loop, err = ws.NewEventLoop(&ws.EventLoopOptions{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		// Registered first, so that it runs after the harness has released both ends.
		t.Cleanup(func() { loop.Close() })
	}
	run := func(c *ws.Conn, err error) {
		if loop != nil && err == nil {
			if err := loop.Serve(c, appHandler{h: h, a: o.app, ctx: ctx, started: &appStarted}); err != nil {
				t.Errorf("Serve: %v", err)
			}
			return
		}
		appStarted.Do(func() {
			defer close(h.appDone)
			if err != nil {
				h.appErr = err
				return
			}
			h.connMu.Lock()
			h.conn = c
			h.connMu.Unlock()
			h.implExt <- c.Compression()
			h.appErr = runApp(ctx, c, o.app)
		})
	}
	u := &ws.Upgrader{
		ReadLimit:   o.readLimit,
		CheckOrigin: func(*http.Request) bool { return true },
		Compression: o.compression,
	}

	var peer *wstest.Peer
	var err error
	switch r.base() {
	case roleServer:
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			c, err := u.Upgrade(w, req)
			if err != nil {
				err = fmt.Errorf("Upgrade: %w", err)
			}
			run(c, err)
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { h.release(cancel) })
		peer, h.resp, err = wstest.Dial(srv.Listener.Addr().String(), &wstest.DialOptions{Header: o.header, Extra: o.extra})
	case roleServerRaw:
		ln, lerr := net.Listen("tcp", "127.0.0.1:0")
		if lerr != nil {
			t.Fatal(lerr)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			nc, err := ln.Accept()
			if err != nil {
				run(nil, fmt.Errorf("Accept: %w", err))
				return
			}
			nc.SetDeadline(time.Now().Add(stepTimeout))
			c, _, err := u.UpgradeConn(nc)
			nc.SetDeadline(time.Time{})
			if err != nil {
				nc.Close()
				run(nil, fmt.Errorf("UpgradeConn: %w", err))
				return
			}
			run(c, nil)
		}()
		t.Cleanup(func() { h.release(cancel) })
		peer, h.resp, err = wstest.Dial(ln.Addr().String(), &wstest.DialOptions{Header: o.header, Extra: o.extra})
	case roleClient:
		ln, lerr := wstest.Listen()
		if lerr != nil {
			t.Fatal(lerr)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			dctx, dcancel := context.WithTimeout(ctx, stepTimeout)
			defer dcancel()
			c, _, err := ws.Dial(dctx, ln.URL("/echo"), &ws.DialOptions{ReadLimit: o.readLimit, Compression: o.compression})
			if err != nil {
				err = fmt.Errorf("Dial: %w", err)
			}
			run(c, err)
		}()
		t.Cleanup(func() { h.release(cancel) })
		peer, h.req, err = ln.AcceptWith(stepTimeout, wstest.AcceptOptions{Extra: o.extra, Header: o.respond})
	}
	if err != nil {
		return h, err
	}
	peer.Timeout = stepTimeout
	if o.peerTimeout > 0 {
		peer.Timeout = o.peerTimeout
	}
	h.peer = peer
	return h, nil
}

// release closes both ends and checks the application goroutine returns.
func (h *harness) release(cancel context.CancelFunc) {
	if h.peer != nil {
		h.peer.Close()
	}
	h.connMu.Lock()
	c := h.conn
	h.connMu.Unlock()
	if c != nil {
		c.CloseNow()
	}
	cancel()
	select {
	case <-h.appDone:
	case <-time.After(stepTimeout):
		h.t.Errorf("%s: application goroutine still running %v after both ends were closed", h.role, stepTimeout)
	}
}

// implMasks reports whether the duplex side must mask its frames.
func (h *harness) implMasks() bool { return h.role == roleClient }

// checkFrameForm applies the RFC 6455 rules every frame from the duplex
// side must obey with or without extensions: masking per role and the
// minimal length form.
func (h *harness) checkFrameForm(f wstest.Frame) {
	h.t.Helper()
	if f.Masked != h.implMasks() {
		h.maskErrOnce.Do(func() {
			h.t.Errorf("%s sent a frame with masked=%v, want masked=%v: %v", h.role, f.Masked, h.implMasks(), f)
		})
	}
	if want := wstest.MinimalLenForm(len(f.Payload)); f.LenForm != want {
		h.t.Errorf("%s sent a %d-byte payload with length form %d, want the minimal form %d", h.role, len(f.Payload), f.LenForm, want)
	}
}

// checkFrame applies the rules every frame from the duplex side must obey
// when no extension was agreed.
func (h *harness) checkFrame(f wstest.Frame) {
	h.t.Helper()
	h.checkFrameForm(f)
	if f.Rsv != 0 {
		h.t.Errorf("%s sent RSV bits %#x without an extension: %v", h.role, f.Rsv, f)
	}
}

// send encodes frames (masked per the peer's role) and writes them in one write.
func (h *harness) send(fs ...wstest.Frame) {
	h.t.Helper()
	var b []byte
	for _, f := range fs {
		b = h.peer.AppendEncode(b, f)
	}
	h.sendRaw(b)
}

// sendRaw writes b. A write that fails because the duplex side already
// closed the connection is only logged: the following expectation reports
// whether that was right.
func (h *harness) sendRaw(b []byte) {
	h.t.Helper()
	h.sendChunked(b, 0)
}

func (h *harness) sendChunked(b []byte, pause time.Duration, sizes ...int) {
	h.t.Helper()
	if err := h.peer.WriteChunked(b, pause, sizes...); err != nil {
		if wstest.IsClosedErr(err) {
			h.t.Logf("write: %v (connection closed by %s)", err, h.role)
			return
		}
		h.t.Fatalf("write: %v", err)
	}
}

// sendEach writes each frame with its own write, pausing between them.
func (h *harness) sendEach(pause time.Duration, fs ...wstest.Frame) {
	h.t.Helper()
	for i, f := range fs {
		if i > 0 && pause > 0 {
			time.Sleep(pause)
		}
		h.send(f)
	}
}

func (h *harness) readFrame() (wstest.Frame, error) {
	h.t.Helper()
	f, err := h.peer.ReadFrame()
	if err == nil {
		h.checkFrame(f)
	}
	return f, err
}

// expectMessage reads the next data message and checks it. Control frames
// before it fail the test.
func (h *harness) expectMessage(op byte, payload []byte) wstest.Message {
	h.t.Helper()
	m, err := h.peer.ReadMessage()
	for _, f := range m.Frames {
		h.checkFrame(f)
	}
	for _, f := range m.Controls {
		h.checkFrame(f)
		h.t.Errorf("unexpected control frame before the echo: %v", f)
	}
	if err != nil {
		h.t.Fatalf("waiting for the echo (op %#x, %d bytes): %v", op, len(payload), err)
	}
	if m.Opcode != op {
		h.t.Errorf("echo opcode = %#x, want %#x", m.Opcode, op)
	}
	if !bytes.Equal(m.Payload, payload) {
		h.t.Errorf("echo payload differs: got %d bytes %s, want %d bytes %s", len(m.Payload), short(m.Payload), len(payload), short(payload))
	}
	return m
}

func (h *harness) expectText(s string) { h.t.Helper(); h.expectMessage(wstest.OpText, []byte(s)) }

// expectPong reads the next frame and checks it is a pong with payload.
func (h *harness) expectPong(payload []byte) {
	h.t.Helper()
	f, err := h.readFrame()
	if err != nil {
		h.t.Fatalf("waiting for a pong %s: %v", short(payload), err)
	}
	if f.Opcode != wstest.OpPong || !f.Fin || !bytes.Equal(f.Payload, payload) {
		h.t.Fatalf("got %v, want a pong with payload %s", f, short(payload))
	}
}

// readUntilClose reads frames until a close frame; every frame before it is
// reported as unexpected. ok is false when no close frame arrived.
func (h *harness) readUntilClose(what string) (wstest.Frame, bool) {
	h.t.Helper()
	for {
		f, err := h.readFrame()
		if err != nil {
			h.t.Errorf("%s: waiting for a close frame (%s): %v", h.role, what, err)
			return f, false
		}
		if f.Opcode == wstest.OpClose {
			if !f.Fin {
				h.t.Errorf("close frame without FIN: %v", f)
			}
			return f, true
		}
		h.t.Errorf("%s: unexpected frame while waiting for a close frame (%s): %v", h.role, what, f)
	}
}

// expectFail checks that the duplex side fails the connection with code:
// a close frame with that code and nothing before it, TCP closed after our
// close reply (server roles), and the application's read returns
// *ws.CloseError{Code: code, Remote: false}.
func (h *harness) expectFail(code ws.StatusCode) {
	h.t.Helper()
	h.expectFailWithin(code, h.peer.Timeout)
}

// sendExpectFail sends fs followed by a ping in one write and checks that
// the duplex side fails the connection with code (the ping is not
// answered: expectFail reports any frame before the close frame).
func (h *harness) sendExpectFail(code ws.StatusCode, fs ...wstest.Frame) {
	h.t.Helper()
	h.send(append(fs[:len(fs):len(fs)], ping("after"))...)
	h.expectFail(code)
}

func (h *harness) expectFailWithin(code ws.StatusCode, d time.Duration) {
	h.t.Helper()
	saved := h.peer.Timeout
	h.peer.Timeout = d
	f, ok := h.readUntilClose(fmt.Sprintf("want close %d", code))
	h.peer.Timeout = saved
	if ok {
		got, reason, hasCode := wstest.ParseClose(f.Payload)
		if !hasCode || ws.StatusCode(got) != code {
			h.t.Errorf("%s: close frame %v, want code %d", h.role, f, code)
		} else {
			h.t.Logf("close %d %q", got, reason)
		}
		// Reply like a well-behaved peer, then the server must close TCP.
		_ = h.peer.WriteClose(uint16(code), "")
		h.expectTCPClosedByServer()
	}
	h.expectAppError(code, "", false, false)
}

// expectTCPClosedByServer checks, for the server roles, that the server
// closes the TCP connection (RFC 6455 §7.1.1) with nothing more sent.
func (h *harness) expectTCPClosedByServer() {
	h.t.Helper()
	if !h.role.isServer() {
		// The server (our peer) closes TCP first.
		h.peer.Close()
		return
	}
	extra, err := h.peer.WaitEOF(stepTimeout)
	if extra > 0 {
		h.t.Errorf("%s sent %d more bytes after its close frame", h.role, extra)
	}
	if err != nil {
		h.t.Errorf("%s did not close TCP after the closing handshake: %v", h.role, err)
	}
}

// expectAppError waits for the application goroutine and checks its error.
func (h *harness) expectAppError(code ws.StatusCode, reason string, remote, checkReason bool) {
	h.t.Helper()
	select {
	case <-h.appDone:
	case <-time.After(stepTimeout):
		h.t.Errorf("%s: application read did not return within %v", h.role, stepTimeout)
		return
	}
	var ce *ws.CloseError
	if !errors.As(h.appErr, &ce) {
		h.t.Errorf("%s: application read returned %v, want *ws.CloseError{Code: %d, Remote: %v}", h.role, h.appErr, code, remote)
		return
	}
	if ce.Code != code || ce.Remote != remote || (checkReason && ce.Reason != reason) {
		h.t.Errorf("%s: application read returned %#v, want Code=%d Reason=%q Remote=%v", h.role, *ce, code, reason, remote)
	}
	if ws.CloseStatus(h.appErr) != code {
		h.t.Errorf("CloseStatus(%v) = %d, want %d", h.appErr, ws.CloseStatus(h.appErr), code)
	}
}

// expectCloseReply checks the duplex side's answer to a close frame the peer
// sent with code (0: empty payload) and reason: a close frame echoing the
// code (or 1000; empty or 1000 for an empty close), nothing else, TCP closed
// by the server, and the application sees *ws.CloseError{Remote: true}.
func (h *harness) expectCloseReply(code uint16, reason string) {
	h.t.Helper()
	f, ok := h.readUntilClose(fmt.Sprintf("reply to close %d", code))
	if ok {
		got, _, hasCode := wstest.ParseClose(f.Payload)
		switch {
		case len(f.Payload) == 1:
			h.t.Errorf("close reply has a 1-byte payload: %v", f)
		case code == 0 && hasCode && got != 1000:
			h.t.Errorf("reply to an empty close = %v, want an empty close or 1000", f)
		case code != 0 && (!hasCode || got != code && got != 1000):
			h.t.Errorf("reply to close %d = %v, want close %d (or 1000)", code, f, code)
		}
		h.expectTCPClosedByServer()
	}
	want := ws.StatusCode(code)
	if code == 0 {
		want = ws.StatusNoStatusReceived
	}
	h.expectAppError(want, reason, true, true)
}

func short(b []byte) string {
	if len(b) > 48 {
		return fmt.Sprintf("%q...", b[:48])
	}
	return fmt.Sprintf("%q", b)
}

// Frame constructors.

func text(s string) wstest.Frame {
	return wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte(s)}
}
func binaryFrame(b []byte) wstest.Frame {
	return wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: b}
}
func ping(s string) wstest.Frame {
	return wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: []byte(s)}
}
func pong(s string) wstest.Frame {
	return wstest.Frame{Fin: true, Opcode: wstest.OpPong, Payload: []byte(s)}
}
func closeFrame(code uint16, reason string) wstest.Frame {
	return wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(code, reason)}
}
func frag(op byte, fin bool, s string) wstest.Frame {
	return wstest.Frame{Fin: fin, Opcode: op, Payload: []byte(s)}
}

// pattern returns n bytes of printable ASCII (valid as text and binary).
func pattern(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789*"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return b
}

// binaryPattern returns n bytes covering every byte value.
func binaryPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// forRoles runs fn as a parallel subtest per role.
func forRoles(t *testing.T, roles []role, fn func(t *testing.T, r role)) {
	t.Helper()
	for _, r := range roles {
		t.Run(string(r), func(t *testing.T) {
			t.Parallel()
			fn(t, r)
		})
	}
}

// forRoleCases runs fn as a parallel subtest per role and case name.
func forRoleCases[C any](t *testing.T, roles []role, cases []C, name func(C) string, fn func(t *testing.T, r role, c C)) {
	t.Helper()
	for _, r := range roles {
		t.Run(string(r), func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(name(c), func(t *testing.T) {
					t.Parallel()
					fn(t, r, c)
				})
			}
		})
	}
}

// forCasesInRoles runs fn as a parallel subtest per role (all of them) and
// case name, each case only in the roles roles(c) names.
func forCasesInRoles[C any](t *testing.T, cases []C, roles func(C) []role, name func(C) string, fn func(t *testing.T, r role, c C)) {
	t.Helper()
	for _, r := range allRoles {
		t.Run(string(r), func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				if !containsRole(roles(c), r) {
					continue
				}
				t.Run(name(c), func(t *testing.T) {
					t.Parallel()
					fn(t, r, c)
				})
			}
		})
	}
}

func kib(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// ---------------------------------------------------------------------------
// Category 1: framing.

func TestFramingEchoesMessagesOfEveryLength(t *testing.T) {
	t.Parallel()
	type tc struct {
		op   byte
		n    int
		name string
	}
	var cases []tc
	for _, n := range []int{0, 125, 126, 127, 128, 65535, 65536, 1 << 20} {
		cases = append(cases, tc{wstest.OpText, n, fmt.Sprintf("text_%d", n)}, tc{wstest.OpBinary, n, fmt.Sprintf("binary_%d", n)})
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		payload := pattern(c.n)
		if c.op == wstest.OpBinary {
			payload = binaryPattern(c.n)
		}
		h.send(wstest.Frame{Fin: true, Opcode: c.op, Payload: payload})
		m := h.expectMessage(c.op, payload)
		if len(m.Frames) != 1 {
			t.Logf("note: WriteMessage sent the echo in %d frames", len(m.Frames))
		}
	})
}

// Autobahn 1.1.8 / 1.2.8: a 65536-byte message whose frame is delivered in
// 997-byte TCP chunks.
func TestFramingEchoesMessageDeliveredInChunks(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		for _, op := range []byte{wstest.OpText, wstest.OpBinary} {
			payload := pattern(65536)
			h.sendChunked(h.peer.Encode(wstest.Frame{Fin: true, Opcode: op, Payload: payload}), 0, 997)
			h.expectMessage(op, payload)
		}
	})
}

func TestFramingAcceptsNonMinimalLengthEncodings(t *testing.T) {
	t.Parallel()
	type tc struct {
		name string
		n    int
		form wstest.LenForm
	}
	cases := []tc{
		{"len0_as_16bit", 0, wstest.Len16},
		{"len5_as_16bit", 5, wstest.Len16},
		{"len125_as_16bit", 125, wstest.Len16},
		{"len0_as_64bit", 0, wstest.Len64},
		{"len5_as_64bit", 5, wstest.Len64},
		{"len200_as_64bit", 200, wstest.Len64},
		{"len65535_as_64bit", 65535, wstest.Len64},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		payload := pattern(c.n)
		h.sendRaw(h.peer.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: payload}, wstest.WithLenForm(c.form)))
		h.expectMessage(wstest.OpText, payload)
	})
}

func TestFramingFailsOn64BitLengthWithMostSignificantBitSet(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		h.sendRaw(h.peer.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: []byte("hello")}, wstest.DeclaredLength(1<<63|5)))
		h.expectFailWithin(ws.StatusProtocolError, failFastTimeout)
	})
}

// The bytes that follow the handshake in the same TCP segment are the first
// frame: they must not be dropped (websocket.md §1).
func TestFrameInSameWriteAsHandshakeIsNotDropped(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		p := &wstest.Peer{Role: wstest.RoleClient}
		if !r.isServer() {
			p.Role = wstest.RoleServer
		}
		extra := p.Encode(text("first"))
		extra = p.AppendEncode(extra, ping("early"))
		h := start(t, r, options{extra: extra})
		h.expectText("first")
		h.expectPong([]byte("early"))
	})
}

// ---------------------------------------------------------------------------
// Category 2: pings and pongs.

func TestPingAnsweredWithPongWithSamePayload(t *testing.T) {
	t.Parallel()
	type tc struct {
		name    string
		payload []byte
		chunk   int // deliver the frame in TCP chunks of this size
	}
	cases := []tc{
		{"empty", nil, 0},
		{"text_125", pattern(125), 0},
		{"binary_125", binaryPattern(125), 0},
		{"binary_125_in_1_byte_chunks", binaryPattern(125), 1},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		b := h.peer.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: c.payload})
		if c.chunk > 0 {
			h.sendChunked(b, time.Millisecond, c.chunk)
		} else {
			h.sendRaw(b)
		}
		h.expectPong(c.payload)
	})
}

func TestFailsOnPingWithPayloadOver125Bytes(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		h.sendExpectFail(ws.StatusProtocolError, wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: binaryPattern(126)})
	})
}

func TestUnsolicitedPongIgnored(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		pongs []string
	}
	cases := []tc{
		{"empty", []string{""}},
		{"with_payload", []string{"unsolicited pong payload"}},
		{"two", []string{"a", strings.Repeat("b", 125)}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		var fs []wstest.Frame
		for _, p := range c.pongs {
			fs = append(fs, pong(p))
		}
		fs = append(fs, ping("solicited"), text("after"))
		h.send(fs...)
		h.expectPong([]byte("solicited"))
		h.expectText("after")
	})
}

// Autobahn 2.10 / 2.11: ten pings in a burst (and chopped into small TCP
// chunks); at least the last must be answered, and every pong must answer
// one of the pings, in order.
func TestPingBurstAnswered(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		chunk int
	}
	cases := []tc{{"one_write", 0}, {"in_3_byte_chunks", 3}}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		var b []byte
		for i := range 10 {
			b = h.peer.AppendEncode(b, ping(fmt.Sprintf("payload-%d", i)))
		}
		h.sendChunked(b, 0, c.chunk)
		next, answered := 0, 0
		for next < 10 {
			f, err := h.readFrame()
			if err != nil {
				t.Fatalf("after %d pongs (next expected >= payload-%d): %v", answered, next, err)
			}
			var i int
			if f.Opcode != wstest.OpPong || func() bool { _, err := fmt.Sscanf(string(f.Payload), "payload-%d", &i); return err != nil }() || i < next {
				t.Fatalf("got %v, want a pong for payload-%d..payload-9", f, next)
			}
			next, answered = i+1, answered+1
		}
		t.Logf("%d of 10 pings answered", answered)
		h.send(text("done"))
		h.expectText("done")
	})
}

// ---------------------------------------------------------------------------
// Category 3: reserved bits.

func TestFailsOnReservedBits(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		frames []wstest.Frame // the offending sequence, after a valid text "before"
		pause  time.Duration
	}
	var cases []tc
	for rsv := uint8(1); rsv <= 7; rsv++ {
		cases = append(cases,
			tc{fmt.Sprintf("text_rsv%d", rsv), []wstest.Frame{{Fin: true, Rsv: rsv, Opcode: wstest.OpText, Payload: []byte("rsv text")}}, 0},
			tc{fmt.Sprintf("binary_rsv%d", rsv), []wstest.Frame{{Fin: true, Rsv: rsv, Opcode: wstest.OpBinary, Payload: binaryPattern(16)}}, 0},
			tc{fmt.Sprintf("ping_rsv%d", rsv), []wstest.Frame{{Fin: true, Rsv: rsv, Opcode: wstest.OpPing, Payload: []byte("rsv ping")}}, 0},
			tc{fmt.Sprintf("pong_rsv%d", rsv), []wstest.Frame{{Fin: true, Rsv: rsv, Opcode: wstest.OpPong, Payload: []byte("rsv pong")}}, 0},
			tc{fmt.Sprintf("close_rsv%d", rsv), []wstest.Frame{{Fin: true, Rsv: rsv, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(1000, "")}}, 0},
			tc{fmt.Sprintf("continuation_rsv%d", rsv), []wstest.Frame{frag(wstest.OpText, false, "frag1"), {Fin: true, Rsv: rsv, Opcode: wstest.OpContinuation, Payload: []byte("frag2")}}, 0},
		)
	}
	// Autobahn 3.3: the same, frame by frame with pauses.
	cases = append(cases, tc{"text_rsv2_frame_by_frame_with_pauses", []wstest.Frame{{Fin: true, Rsv: 2, Opcode: wstest.OpText, Payload: []byte("rsv text")}}, 50 * time.Millisecond})
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		fs := append([]wstest.Frame{text("before")}, c.frames...)
		fs = append(fs, ping("after"))
		if c.pause > 0 {
			h.sendEach(c.pause, fs...)
		} else {
			h.send(fs...)
		}
		h.expectText("before")
		h.expectFail(ws.StatusProtocolError)
	})
}

// ---------------------------------------------------------------------------
// Category 4: reserved opcodes.

func TestFailsOnReservedOpcode(t *testing.T) {
	t.Parallel()
	type tc struct {
		name    string
		op      byte
		payload string
	}
	var cases []tc
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases, tc{fmt.Sprintf("opcode_%d", op), op, "reserved opcode payload"})
	}
	cases = append(cases, tc{"opcode_3_empty", 3, ""}, tc{"opcode_11_empty", 0xB, ""})
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		h.send(text("before"), wstest.Frame{Fin: true, Opcode: c.op, Payload: []byte(c.payload)}, ping("after"))
		h.expectText("before")
		h.expectFail(ws.StatusProtocolError)
	})
}

// ---------------------------------------------------------------------------
// Category 5: fragmentation.

type sendMode int

const (
	oneWrite     sendMode = iota // all frames in one write
	framePauses                  // one write per frame, 30 ms apart
	oneByteChops                 // all bytes in 1-byte writes
)

func (h *harness) sendMode(mode sendMode, fs ...wstest.Frame) {
	h.t.Helper()
	switch mode {
	case framePauses:
		h.sendEach(30*time.Millisecond, fs...)
	case oneByteChops:
		var b []byte
		for _, f := range fs {
			b = h.peer.AppendEncode(b, f)
		}
		h.sendChunked(b, 0, 1)
	default:
		h.send(fs...)
	}
}

func TestFragmentedMessageEchoedAsOneMessage(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		frames []wstest.Frame
		mode   sendMode
		op     byte
		want   string
		pongs  []string // pongs expected before the echo
	}
	text2 := []wstest.Frame{frag(wstest.OpText, false, "fragment1"), frag(wstest.OpContinuation, true, "fragment2")}
	textPing := []wstest.Frame{frag(wstest.OpText, false, "fragment1"), ping("ping between"), frag(wstest.OpContinuation, true, "fragment2")}
	// Autobahn 5.19/5.20: 5 fragments, pings after the 2nd and 4th.
	text5 := []wstest.Frame{
		frag(wstest.OpText, false, "f1-"), frag(wstest.OpContinuation, false, "f2-"), ping("pongme 1!"),
		frag(wstest.OpContinuation, false, "f3-"), frag(wstest.OpContinuation, false, "f4-"), ping("pongme 2!"),
		frag(wstest.OpContinuation, true, "f5"),
	}
	var text10 []wstest.Frame
	for i := range 10 {
		op := wstest.OpContinuation
		if i == 0 {
			op = wstest.OpText
		}
		text10 = append(text10, frag(op, i == 9, string(rune('a'+i))))
	}
	bin3 := []wstest.Frame{
		{Opcode: wstest.OpBinary, Payload: []byte{0, 1, 2}},
		{Opcode: wstest.OpContinuation, Payload: []byte{0xff, 0xfe}},
		{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte{0x80}},
	}
	cases := []tc{
		{"text_2_fragments", text2, oneWrite, wstest.OpText, "fragment1fragment2", nil},
		{"text_2_fragments_with_pauses", text2, framePauses, wstest.OpText, "fragment1fragment2", nil},
		{"text_2_fragments_in_1_byte_chops", text2, oneByteChops, wstest.OpText, "fragment1fragment2", nil},
		{"text_10_fragments", text10, oneWrite, wstest.OpText, "abcdefghij", nil},
		{"binary_2_fragments", []wstest.Frame{frag(wstest.OpBinary, false, "fragment1"), frag(wstest.OpContinuation, true, "fragment2")}, oneWrite, wstest.OpBinary, "fragment1fragment2", nil},
		{"binary_3_fragments", bin3, oneWrite, wstest.OpBinary, "\x00\x01\x02\xff\xfe\x80", nil},
		{"text_with_ping_between_fragments", textPing, oneWrite, wstest.OpText, "fragment1fragment2", []string{"ping between"}},
		{"text_with_ping_between_fragments_with_pauses", textPing, framePauses, wstest.OpText, "fragment1fragment2", []string{"ping between"}},
		{"text_with_ping_between_fragments_in_1_byte_chops", textPing, oneByteChops, wstest.OpText, "fragment1fragment2", []string{"ping between"}},
		{"text_5_fragments_with_2_pings_with_pauses", text5, framePauses, wstest.OpText, "f1-f2-f3-f4-f5", []string{"pongme 1!", "pongme 2!"}},
		{"text_with_unsolicited_pong_between_fragments", []wstest.Frame{frag(wstest.OpText, false, "a"), pong("x"), frag(wstest.OpContinuation, true, "b")}, oneWrite, wstest.OpText, "ab", nil},
		{"text_all_fragments_empty", []wstest.Frame{frag(wstest.OpText, false, ""), frag(wstest.OpContinuation, false, ""), frag(wstest.OpContinuation, true, "")}, oneWrite, wstest.OpText, "", nil},
		{"text_empty_first_and_last_fragment", []wstest.Frame{frag(wstest.OpText, false, ""), frag(wstest.OpContinuation, false, "middle"), frag(wstest.OpContinuation, true, "")}, oneWrite, wstest.OpText, "middle", nil},
		{"binary_empty_fragments_around_data", []wstest.Frame{frag(wstest.OpBinary, false, ""), frag(wstest.OpContinuation, false, "x"), frag(wstest.OpContinuation, false, ""), frag(wstest.OpContinuation, true, "y")}, oneWrite, wstest.OpBinary, "xy", nil},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		h.sendMode(c.mode, c.frames...)
		for _, p := range c.pongs {
			h.expectPong([]byte(p))
		}
		h.expectMessage(c.op, []byte(c.want))
		// The connection is still healthy.
		h.send(text("next"))
		h.expectText("next")
	})
}

func TestFailsOnBadFragmentation(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		frames []wstest.Frame
		mode   sendMode
		echoes []string // text echoes expected before the failure
	}
	cases := []tc{
		{"ping_fragmented", []wstest.Frame{{Opcode: wstest.OpPing, Payload: []byte("frag1")}, frag(wstest.OpContinuation, true, "frag2")}, oneWrite, nil},
		{"pong_fragmented", []wstest.Frame{{Opcode: wstest.OpPong, Payload: []byte("frag1")}, frag(wstest.OpContinuation, true, "frag2")}, oneWrite, nil},
		{"close_fragmented", []wstest.Frame{{Opcode: wstest.OpClose, Payload: wstest.ClosePayload(1000, "")}, frag(wstest.OpContinuation, true, "")}, oneWrite, nil},
		{"ping_without_fin_alone", []wstest.Frame{{Opcode: wstest.OpPing, Payload: []byte("p")}}, oneWrite, nil},
		{"continuation_fin_without_start", []wstest.Frame{frag(wstest.OpContinuation, true, "non-continuation payload"), text("Hello, world!")}, oneWrite, nil},
		{"continuation_fin_without_start_with_pauses", []wstest.Frame{frag(wstest.OpContinuation, true, "non-continuation payload"), text("Hello, world!")}, framePauses, nil},
		{"continuation_fin_without_start_in_1_byte_chops", []wstest.Frame{frag(wstest.OpContinuation, true, "non-continuation payload"), text("Hello, world!")}, oneByteChops, nil},
		{"continuation_nofin_without_start", []wstest.Frame{frag(wstest.OpContinuation, false, "fragment1"), text("Hello, world!")}, oneWrite, nil},
		{"continuation_nofin_then_message", []wstest.Frame{frag(wstest.OpContinuation, false, "fragment1"), frag(wstest.OpText, false, "fragment2"), frag(wstest.OpContinuation, true, "fragment3")}, oneWrite, nil},
		{"continuation_after_complete_message", []wstest.Frame{frag(wstest.OpText, false, "f1"), frag(wstest.OpContinuation, true, "f2"), frag(wstest.OpContinuation, false, "f3"), frag(wstest.OpText, true, "f4")}, oneWrite, []string{"f1f2"}},
		{"text_while_text_in_progress", []wstest.Frame{frag(wstest.OpText, false, "fragment1"), frag(wstest.OpText, true, "fragment2")}, oneWrite, nil},
		{"text_nofin_while_text_in_progress", []wstest.Frame{frag(wstest.OpText, false, "fragment1"), frag(wstest.OpText, false, "fragment2"), frag(wstest.OpContinuation, true, "x")}, oneWrite, nil},
		{"binary_while_text_in_progress", []wstest.Frame{frag(wstest.OpText, false, "fragment1"), frag(wstest.OpBinary, true, "fragment2")}, oneWrite, nil},
		{"text_while_binary_in_progress", []wstest.Frame{frag(wstest.OpBinary, false, "fragment1"), frag(wstest.OpText, true, "fragment2")}, oneWrite, nil},
		{"text_while_text_in_progress_with_pauses", []wstest.Frame{frag(wstest.OpText, false, "fragment1"), frag(wstest.OpText, true, "fragment2")}, framePauses, nil},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		fs := append([]wstest.Frame{}, c.frames...)
		fs = append(fs, ping("after"))
		h.sendMode(c.mode, fs...)
		for _, e := range c.echoes {
			h.expectText(e)
		}
		h.expectFail(ws.StatusProtocolError)
	})
}

// ---------------------------------------------------------------------------
// Masking rules (RFC 6455 §5.1, §5.3).

func TestServerFailsOnUnmaskedFrame(t *testing.T) {
	t.Parallel()
	unmasked := wstest.Masked(false)
	failsOnMaskingViolation(t, []role{roleServer, roleServerRaw}, []maskCase{
		{"text", text("unmasked"), unmasked},
		{"binary", binaryFrame([]byte{1, 2, 3}), unmasked},
		{"ping", ping("unmasked"), unmasked},
		{"close", closeFrame(1000, ""), unmasked},
		{"text_empty", text(""), unmasked},
	})
}

func TestClientFailsOnMaskedFrame(t *testing.T) {
	t.Parallel()
	masked := wstest.Masked(true)
	failsOnMaskingViolation(t, []role{roleClient}, []maskCase{
		{"text", text("masked"), masked},
		{"binary", binaryFrame([]byte{1, 2, 3}), masked},
		{"ping", ping("masked"), masked},
		{"close", closeFrame(1000, ""), masked},
		{"text_zero_key", text("zero key"), wstest.WithKey([4]byte{})},
	})
}

// maskCase is a frame the peer sends encoded with opt, which breaks the
// masking rule for the duplex side's role.
type maskCase struct {
	name string
	f    wstest.Frame
	opt  wstest.Option
}

// failsOnMaskingViolation checks, per role and case, that after a valid
// echo the frame encoded against the masking rule fails the connection
// with 1002.
func failsOnMaskingViolation(t *testing.T, roles []role, cases []maskCase) {
	t.Helper()
	forRoleCases(t, roles, cases, func(c maskCase) string { return c.name }, func(t *testing.T, r role, c maskCase) {
		h := start(t, r, options{})
		h.send(text("before"))
		h.expectText("before")
		h.sendRaw(h.peer.Encode(c.f, c.opt))
		h.expectFail(ws.StatusProtocolError)
	})
}

// Every client frame is masked with a fresh key; server frames never are.
// (checkFrame verifies the masking bit of every frame in every test; this one
// looks at the keys.)
func TestClientMasksEveryFrameWithFreshKey(t *testing.T) {
	t.Parallel()
	const n = 32
	// A write error ends the writing: the frames the peer reads tell (and the test may
	// end, closing the connection, before the last ones are written).
	h := start(t, roleClient, options{app: application{open: func(ctx context.Context, c *ws.Conn) {
		for i := range n {
			if err := c.WriteMessage(ctx, ws.MessageText, fmt.Appendf(nil, "message %d", i)); err != nil {
				return
			}
		}
		w, err := c.NextWriter(ctx, ws.MessageBinary)
		if err != nil {
			return
		}
		for range 4 {
			if _, err := w.Write(binaryPattern(100)); err != nil {
				break
			}
		}
		if err := w.Close(); err != nil {
			return
		}
		_ = c.Ping(ctx, []byte("client ping"))
	}}})
	keys := map[[4]byte]int{}
	frames := 0
	for frames < n+5 {
		f, err := h.readFrame()
		if err != nil {
			t.Fatalf("after %d frames: %v", frames, err)
		}
		frames++
		if !f.Masked {
			t.Fatalf("client frame not masked: %v", f)
		}
		keys[f.Key]++
		if f.Opcode == wstest.OpPing {
			break
		}
	}
	if len(keys) != frames {
		t.Errorf("%d client frames used only %d distinct masking keys: %v", frames, len(keys), keys)
	}
}

// TestConformanceLeavesNoGoroutines runs one echo, one failure and one
// closing handshake per role and checks that no goroutine outlives them
// (the harness closes both ends and waits for the application goroutine;
// this checks the library's own goroutines too). It does not run in
// parallel, so that other tests do not disturb the count.
func TestConformanceLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, r := range allRoles {
		t.Run(string(r), func(t *testing.T) {
			t.Run("echo", func(t *testing.T) {
				h := start(t, r, options{})
				h.send(text("hello"), ping("p"))
				h.expectText("hello")
				h.expectPong([]byte("p"))
			})
			t.Run("fail", func(t *testing.T) {
				h := start(t, r, options{})
				h.send(wstest.Frame{Fin: true, Opcode: 0x3})
				h.expectFail(ws.StatusProtocolError)
			})
			t.Run("close", func(t *testing.T) {
				h := start(t, r, options{})
				h.send(closeFrame(1000, ""))
				h.expectCloseReply(1000, "")
			})
			t.Run("peer_vanishes_mid_message", func(t *testing.T) {
				h := start(t, r, options{})
				h.send(frag(wstest.OpText, false, "half"))
				time.Sleep(10 * time.Millisecond)
				h.peer.Close()
				h.expectAppError(ws.StatusAbnormalClosure, "", false, false)
			})
		})
	}
	checkGoroutinesBack(t, before, "conformance")
}

// checkGoroutinesBack waits up to 3 s for the number of goroutines to drop
// back to before, and fails with a dump of all stacks if it does not; what
// names the scenarios.
func checkGoroutinesBack(t *testing.T, before int, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	after := runtime.NumGoroutine()
	for after > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("%d goroutines before, %d after the %s scenarios:\n%s", before, after, what, buf[:n])
	}
}
