package ws_test

// Category 7: the closing handshake.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/ws"
)

// 7.3.1: a close frame with no payload is answered with a close frame (empty
// or 1000), the server closes TCP, and the application sees 1005.
func TestCloseWithEmptyPayloadEchoed(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		h.send(wstest.Frame{Fin: true, Opcode: wstest.OpClose})
		h.expectCloseReply(0, "")
	})
}

// 7.7.x: a close frame with a valid code is echoed (or answered with 1000)
// and the application sees the code and reason with Remote set.
func TestCloseWithValidCodeEchoed(t *testing.T) {
	t.Parallel()
	type tc struct {
		code   uint16
		reason string
	}
	var cases []tc
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cases = append(cases, tc{code, ""})
	}
	cases = append(cases,
		tc{1000, "bye"},
		tc{4000, "h\u00e9llo \u20ac \U0001F600"},
		tc{1000, strings.Repeat("r", 123)}, // 7.3.5: the longest reason that fits
	)
	name := func(c tc) string {
		if c.reason == "" {
			return fmt.Sprintf("code_%d", c.code)
		}
		return fmt.Sprintf("code_%d_reason_%d_bytes", c.code, len(c.reason))
	}
	forRoleCases(t, allRoles, cases, name, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		h.send(closeFrame(c.code, c.reason))
		h.expectCloseReply(c.code, c.reason)
	})
}

// 7.9.x, 7.13.x: codes invalid on the wire fail the connection with 1002.
func TestFailsOnInvalidCloseCode(t *testing.T) {
	t.Parallel()
	codes := []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
	forRoleCases(t, allRoles, codes, func(c uint16) string { return fmt.Sprintf("code_%d", c) }, func(t *testing.T, r role, code uint16) {
		h := start(t, r, options{})
		h.send(closeFrame(code, ""))
		h.expectFail(ws.StatusProtocolError)
	})
}

// 7.3.2: a 1-byte close payload fails with 1002.
func TestFailsOnClosePayloadOfOneByte(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		h.send(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: []byte{0x03}})
		h.expectFail(ws.StatusProtocolError)
	})
}

// 7.3.6: a 124-byte reason makes the close payload 126 bytes, over the
// control frame limit: 1002.
func TestFailsOnCloseReasonOver123Bytes(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		h.send(closeFrame(1000, strings.Repeat("r", 124)))
		h.expectFail(ws.StatusProtocolError)
	})
}

// 7.5.1: a close reason that is not UTF-8 fails with 1007.
func TestFailsOnInvalidUTF8CloseReason(t *testing.T) {
	t.Parallel()
	reasons := []utf8Case{
		{"kosme_surrogate_edited", append(append(append([]byte{}, kosme...), 0xED, 0xA0, 0x80), "edited"...)},
		{"byte_FF", []byte{0xFF}},
		{"truncated_at_end", []byte("bye\xE2\x82")},
	}
	forRoleCases(t, allRoles, reasons, func(c utf8Case) string { return c.name }, func(t *testing.T, r role, c utf8Case) {
		h := start(t, r, options{})
		h.send(closeFrame(1000, string(c.b)))
		h.expectFail(ws.StatusInvalidPayload)
	})
}

// 7.1.1-7.1.5: after a close frame, the endpoint answers with one close
// frame and nothing else: data after the close is not echoed, pings are not
// answered, a second close is not answered.
func TestNothingAnsweredAfterClose(t *testing.T) {
	t.Parallel()
	type tc struct {
		name   string
		before []wstest.Frame // sent (and echoed) before the close
		echoes []string
		after  []wstest.Frame // sent right after the close
	}
	cases := []tc{
		{"echo_then_close", []wstest.Frame{text("Hello World!")}, []string{"Hello World!"}, nil},
		{"second_close", nil, nil, []wstest.Frame{closeFrame(1000, "again")}},
		{"ping_after_close", nil, nil, []wstest.Frame{ping("after close")}},
		{"text_after_close", nil, nil, []wstest.Frame{text("after close")}},
		{"fragment_then_close_then_continuation", []wstest.Frame{frag(wstest.OpText, false, "fragment1")}, nil, []wstest.Frame{frag(wstest.OpContinuation, true, "fragment2")}},
		{"invalid_frame_after_close", nil, nil, []wstest.Frame{{Fin: true, Rsv: 7, Opcode: 0x3}}},
	}
	forRoleCases(t, allRoles, cases, func(c tc) string { return c.name }, func(t *testing.T, r role, c tc) {
		h := start(t, r, options{})
		fs := append([]wstest.Frame{}, c.before...)
		fs = append(fs, closeFrame(1000, ""))
		fs = append(fs, c.after...)
		h.send(fs...)
		for _, e := range c.echoes {
			h.expectText(e)
		}
		h.expectCloseReply(1000, "")
	})
}

// RFC 6455 §7.1.1: after the closing handshake the server closes TCP first,
// even if the client keeps its side open.
func TestServerClosesTCPAfterClosingHandshake(t *testing.T) {
	t.Parallel()
	forRoles(t, []role{roleServer, roleServerRaw}, func(t *testing.T, r role) {
		h := start(t, r, options{})
		h.send(closeFrame(1000, "done"))
		f, err := h.readFrame()
		if err != nil || f.Opcode != wstest.OpClose {
			t.Fatalf("got %v, %v; want a close frame", f, err)
		}
		start := time.Now()
		if extra, err := h.peer.WaitEOF(stepTimeout); err != nil || extra != 0 {
			t.Fatalf("after the close reply: %d more bytes, %v; want TCP closed by the server", extra, err)
		}
		t.Logf("server closed TCP %v after its close reply", time.Since(start))
		h.expectAppError(1000, "done", true, true)
	})
}

// The application's Close runs the closing handshake: the peer sees a close
// frame with the code and reason, answers it, and Close returns nil; the
// server then closes TCP.
func TestApplicationCloseHandshake(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		closeErr := make(chan error, 1)
		var closing sync.Once
		h := start(t, r, options{app: application{message: func(_ context.Context, c *ws.Conn, _ ws.MessageType, _ []byte) {
			// On the first message. (The event-driven roles' Close does not wait: they
			// see "late" here too, and their echo of it would fail, as writes after
			// Close do.)
			closing.Do(func() { closeErr <- c.Close(4001, "app done") })
		}}})
		h.send(text("please close"))
		f, ok := h.readUntilClose("application Close")
		if !ok {
			return
		}
		if code, reason, _ := wstest.ParseClose(f.Payload); code != 4001 || reason != "app done" {
			t.Errorf("close frame = %v, want 4001 \"app done\"", f)
		}
		// Data sent after the close frame is discarded by the closing side.
		h.send(text("late"), closeFrame(4001, ""))
		if r.isServer() {
			if extra, err := h.peer.WaitEOF(stepTimeout); err != nil || extra != 0 {
				t.Errorf("after the close reply: %d more bytes, %v; want TCP closed by the server", extra, err)
			}
		} else {
			// Let the client see our close before we end TCP.
			time.Sleep(20 * time.Millisecond)
			h.peer.Close()
		}
		select {
		case err := <-closeErr:
			if err != nil {
				t.Errorf("Close returned %v, want nil", err)
			}
		case <-time.After(stepTimeout):
			t.Fatalf("Close did not return within %v", stepTimeout)
		}
		select {
		case <-h.appDone:
		case <-time.After(stepTimeout):
			t.Fatalf("read after Close did not return")
		}
		if h.appErr == nil || (!errors.Is(h.appErr, ws.ErrClosed) && ws.CloseStatus(h.appErr) == 0) {
			t.Errorf("read after Close returned %v, want ws.ErrClosed or a *ws.CloseError", h.appErr)
		}
	})
}

// A TCP close without a close frame is reported as 1006 (not remote).
func TestTCPCloseWithoutCloseFrameIsAbnormalClosure(t *testing.T) {
	t.Parallel()
	forRoles(t, allRoles, func(t *testing.T, r role) {
		h := start(t, r, options{})
		h.send(text("x"))
		h.expectText("x")
		h.peer.Close()
		h.expectAppError(ws.StatusAbnormalClosure, "", false, false)
	})
}
