package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/internal/wstest"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// checkNoLeaks fails the test when goroutines it started outlive it (checked after every
// other cleanup has run).
func checkNoLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// tracerRun is a "duplex trace" running in-process.
type tracerRun struct {
	addr   string // host:port it listens on
	stdout *syncBuffer
	stderr *syncBuffer
}

// startTrace runs "duplex trace --upstream upstream args..." on a free loopback port. It is
// stopped, and must exit with status 0, when the test ends.
func startTrace(t *testing.T, upstream string, args ...string) *tracerRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tracerRun{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	status := make(chan int, 1)
	argv := append([]string{"trace", "--listen", "127.0.0.1:0", "--upstream", upstream}, args...)
	go func() { status <- run(ctx, argv, strings.NewReader(""), tr.stdout, tr.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case s := <-status:
			if s != 0 {
				t.Errorf("trace exited with %d; stderr: %s", s, tr.stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("trace did not stop")
		}
	})
	listening := regexp.MustCompile(`listening on (\S+),`)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(tr.stderr.String()); m != nil {
			tr.addr = m[1]
			return tr
		}
		select {
		case s := <-status:
			t.Fatalf("trace exited with %d: %s", s, tr.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("trace did not say where it listens: %q", tr.stderr.String())
	return nil
}

// The JSON output as a tool reads it: only the fields the tests look at.
type jsonEvent struct {
	Conn int    `json:"conn"`
	Dir  string `json:"dir"`
	Time string `json:"time"`
	Kind string `json:"kind"`
	Note string `json:"note"`
	HTTP *struct {
		Method      string `json:"method"`
		Target      string `json:"target"`
		Status      int    `json:"status"`
		HostRewrite string `json:"host_rewritten_to"`
		Headers     []struct {
			Name, Value string
		} `json:"headers"`
		Accept *struct {
			Expected string `json:"expected"`
			Got      string `json:"got"`
			OK       bool   `json:"ok"`
		} `json:"accept_check"`
		Deflate *struct {
			C2S, S2C struct {
				WindowBits      int  `json:"window_bits"`
				ContextTakeover bool `json:"context_takeover"`
			}
		} `json:"deflate"`
		Body         *jsonPayload `json:"body"`
		BodyEncoding string       `json:"body_decoded_from"`
	} `json:"http"`
	Frame *struct {
		Fin            bool         `json:"fin"`
		Rsv1           bool         `json:"rsv1"`
		Rsv2           bool         `json:"rsv2"`
		Rsv3           bool         `json:"rsv3"`
		Opcode         int          `json:"opcode"`
		OpcodeName     string       `json:"opcode_name"`
		Masked         bool         `json:"masked"`
		MaskKey        string       `json:"mask_key"`
		Length         int64        `json:"length"`
		LengthField    int          `json:"length_field"`
		LengthEncoding string       `json:"length_encoding"`
		Header         string       `json:"header"`
		Compressed     bool         `json:"compressed"`
		Payload        *jsonPayload `json:"payload"`
		Close          *struct {
			Code     int    `json:"code"`
			CodeName string `json:"code_name"`
			Reason   string `json:"reason"`
		} `json:"close"`
	} `json:"frame"`
	Message *struct {
		Type       string       `json:"type"`
		Frames     int          `json:"frames"`
		WireSize   int64        `json:"wire_size"`
		Compressed bool         `json:"compressed"`
		Payload    *jsonPayload `json:"payload"`
		Error      string       `json:"error"`
	} `json:"message"`
	EngineIO []struct {
		Type      string       `json:"type"`
		Binary    bool         `json:"binary"`
		Data      *jsonPayload `json:"data"`
		Handshake *struct {
			SID string `json:"sid"`
		} `json:"handshake"`
		SocketIO *struct {
			Type        string            `json:"type,omitempty"`
			Namespace   string            `json:"namespace,omitempty"`
			AckID       *uint64           `json:"ack_id,omitempty"`
			Attachments int               `json:"attachments"`
			Event       string            `json:"event,omitempty"`
			Args        []json.RawMessage `json:"args,omitempty"`
			Data        json.RawMessage   `json:"data,omitempty"`
			Awaiting    int               `json:"awaiting,omitempty"`
			Attachment  *struct {
				Index int          `json:"index"`
				Of    int          `json:"of"`
				Data  *jsonPayload `json:"data"`
			} `json:"attachment,omitempty"`
			AttachmentSizes []int  `json:"attachment_sizes,omitempty"`
			Error           string `json:"error,omitempty"`
		} `json:"socketio"`
		Error string `json:"error"`
	} `json:"engineio"`
	Problems []string `json:"problems"`
}

type jsonPayload struct {
	Size      int64  `json:"size"`
	Type      string `json:"type"`
	Text      string `json:"text"`
	Hex       string `json:"hex"`
	Shown     int    `json:"shown"`
	Truncated bool   `json:"truncated"`
}

// events parses the JSON lines printed so far; every line must be a JSON object.
func (tr *tracerRun) events(t *testing.T) []jsonEvent {
	t.Helper()
	var evs []jsonEvent
	sc := bufio.NewScanner(strings.NewReader(tr.stdout.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev jsonEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("output line is not a JSON object: %v\n%s", err, sc.Text())
		}
		evs = append(evs, ev)
	}
	return evs
}

// waitEvents waits until want reports that the events printed so far are complete, and
// returns them.
func (tr *tracerRun) waitEvents(t *testing.T, what string, want func([]jsonEvent) bool) []jsonEvent {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := tr.events(t)
		if want(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the output:\n%s", what, tr.stdout.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// frames returns the frame events of one direction.
func frames(evs []jsonEvent, dir string) []jsonEvent {
	var out []jsonEvent
	for _, ev := range evs {
		if ev.Kind == "frame" && ev.Dir == dir {
			out = append(out, ev)
		}
	}
	return out
}

// countFrames returns a predicate for waitEvents: at least c2s and s2c frames each way.
func countFrames(c2s, s2c int) func([]jsonEvent) bool {
	return func(evs []jsonEvent) bool { return len(frames(evs, "c2s")) >= c2s && len(frames(evs, "s2c")) >= s2c }
}

// rawUpstream accepts one WebSocket connection on a raw wstest listener (the server side
// written byte by byte) and returns the peer.
func rawUpstream(t *testing.T) (*wstest.Listener, func() *wstest.Peer) {
	t.Helper()
	l, err := wstest.Listen()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted := make(chan *wstest.Peer, 1)
	go func() {
		p, _, err := l.Accept(5 * time.Second)
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- p
	}()
	return l, func() *wstest.Peer {
		p := <-accepted
		if p == nil {
			t.Fatal("the upstream accepted no WebSocket connection")
		}
		t.Cleanup(func() { p.Close() })
		return p
	}
}

func TestTraceShowsEachFrameFieldByField(t *testing.T) {
	checkNoLeaks(t)
	l, accept := rawUpstream(t)
	tr := startTrace(t, l.URL(""), "--json", "--max-payload-bytes", "64")
	client, resp, err := wstest.Dial(tr.addr, &wstest.DialOptions{Path: "/chat?room=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := accept()
	resp.Body.Close()

	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	long := bytes.Repeat([]byte{0x00, 0x01, 0xfe, 0xff}, 70000/4)
	writes := [][]byte{
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("Hello")}, wstest.WithKey(key)),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: bytes.Repeat([]byte{0xab}, 200)}, wstest.WithKey([4]byte{1, 2, 3, 4})),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: long}, wstest.WithKey([4]byte{5, 6, 7, 8})),
		// A fragmented text message with a ping between its fragments, the "é" split across
		// them.
		client.Encode(wstest.Frame{Fin: false, Opcode: wstest.OpText, Payload: []byte("caf\xc3")}),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpPing, Payload: []byte("are you there?")}),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpContinuation, Payload: []byte("\xa9 au lait")}),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(1000, "done")}),
	}
	// Written in odd pieces, so that headers and payloads are split across reads.
	all := bytes.Join(writes, nil)
	if err := client.WriteChunked(all, time.Millisecond, 1, 3, 7, 1000, 5, 0); err != nil {
		t.Fatal(err)
	}
	// The upstream gets exactly the bytes the client wrote: keys included.
	for i, w := range writes {
		got := make([]byte, len(w))
		if _, err := io.ReadFull(serverReader(server), got); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, w) {
			t.Fatalf("frame %d reached the upstream changed", i)
		}
	}
	if err := server.WriteFrames(
		wstest.Frame{Fin: true, Opcode: wstest.OpPong, Payload: []byte("are you there?")},
		wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("bye")},
		wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(4001, "see you")},
	); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"are you there?", "bye", "see you"} {
		f, err := client.ReadFrame()
		if err != nil || !bytes.Contains(f.Payload, []byte(want)) {
			t.Fatalf("client read %v, %v; want %q", f, err, want)
		}
	}
	server.Close()
	if _, err := client.WaitEOF(5 * time.Second); err != nil {
		t.Fatalf("the client's side stayed open after the upstream closed: %v", err)
	}

	evs := tr.waitEvents(t, "closed event", func(evs []jsonEvent) bool {
		return len(evs) > 0 && evs[len(evs)-1].Kind == "closed"
	})
	// The handshake.
	req, res := evs[0], evs[1]
	if req.Kind != "request" || req.Dir != "c2s" || req.HTTP.Method != "GET" || req.HTTP.Target != "/chat?room=1" || req.HTTP.HostRewrite != l.Addr() {
		t.Errorf("first event %+v, want the client's request", req)
	}
	if res.Kind != "response" || res.Dir != "s2c" || res.HTTP.Status != 101 || res.HTTP.Accept == nil || !res.HTTP.Accept.OK || res.HTTP.Accept.Got == "" {
		t.Errorf("second event %+v, want the 101 with a matching Sec-WebSocket-Accept", res)
	}

	c2s := frames(evs, "c2s")
	if len(c2s) != 7 {
		t.Fatalf("%d client frames, want 7:\n%s", len(c2s), tr.stdout.String())
	}
	// A masked 5-byte text frame: the key is the one on the wire.
	f := c2s[0].Frame
	if !f.Fin || f.Rsv1 || f.Rsv2 || f.Rsv3 || f.Opcode != 1 || f.OpcodeName != "text" || !f.Masked || f.MaskKey != "37fa213d" ||
		f.Length != 5 || f.LengthField != 5 || f.LengthEncoding != "7-bit" || f.Header != "818537fa213d" {
		t.Errorf("5-byte text frame: %+v", f)
	}
	if p := f.Payload; p.Type != "text" || p.Text != "Hello" || p.Size != 5 || p.Truncated {
		t.Errorf("5-byte text frame payload: %+v", p)
	}
	// 200 bytes: the 16-bit length (126).
	f = c2s[1].Frame
	if f.Length != 200 || f.LengthField != 126 || f.LengthEncoding != "16-bit" || f.MaskKey != "01020304" || f.Header != "82fe00c801020304" {
		t.Errorf("200-byte frame: %+v", f)
	}
	if p := f.Payload; p.Type != "binary" || p.Size != 200 || p.Shown != 64 || !p.Truncated || p.Hex != strings.Repeat("ab", 64) {
		t.Errorf("200-byte frame payload (shown up to 64 bytes): %+v", p)
	}
	// 70,000 bytes: the 64-bit length (127).
	f = c2s[2].Frame
	if f.Length != 70000 || f.LengthField != 127 || f.LengthEncoding != "64-bit" || f.Header != "82ff000000000001117005060708" {
		t.Errorf("70,000-byte frame: %+v", f)
	}
	if p := f.Payload; p.Size != 70000 || !p.Truncated || p.Hex != strings.Repeat("0001feff", 16) {
		t.Errorf("70,000-byte frame payload: %+v", p)
	}
	// The fragmented message, with the ping in the middle.
	if f := c2s[3]; f.Frame.Fin || f.Frame.OpcodeName != "text" || f.Message != nil {
		t.Errorf("first fragment: %+v %+v", f.Frame, f.Message)
	}
	if p := c2s[3].Frame.Payload; p.Type != "text" || p.Hex != "636166c3" {
		t.Errorf("a text fragment that ends in half a character carries its bytes in hex: %+v", p)
	}
	if f := c2s[4].Frame; f.OpcodeName != "ping" || f.Payload.Text != "are you there?" {
		t.Errorf("ping between the fragments: %+v", f)
	}
	if m := c2s[5].Message; c2s[5].Frame.OpcodeName != "continuation" || m == nil || m.Type != "text" || m.Frames != 2 || m.Payload.Text != "café au lait" {
		t.Errorf("fragmented message: %+v %+v", c2s[5].Frame, m)
	}
	if c := c2s[6].Frame.Close; c == nil || c.Code != 1000 || c.CodeName != "normal closure" || c.Reason != "done" {
		t.Errorf("client close: %+v", c2s[6].Frame)
	}
	for _, ev := range c2s {
		if len(ev.Problems) > 0 {
			t.Errorf("problems reported for a valid frame: %q", ev.Problems)
		}
	}

	s2c := frames(evs, "s2c")
	if len(s2c) != 3 {
		t.Fatalf("%d server frames, want 3", len(s2c))
	}
	if f := s2c[0].Frame; f.OpcodeName != "pong" || f.Masked || f.MaskKey != "" || f.Payload.Text != "are you there?" {
		t.Errorf("pong: %+v", f)
	}
	if f := s2c[1].Frame; f.OpcodeName != "text" || f.Payload.Text != "bye" || f.Header != "8103" {
		t.Errorf("server text: %+v", f)
	}
	if c := s2c[2].Frame.Close; c == nil || c.Code != 4001 || c.CodeName != "private use" || c.Reason != "see you" {
		t.Errorf("server close: %+v", s2c[2].Frame)
	}
}

// serverReader reads the raw bytes that reached a wstest peer.
func serverReader(p *wstest.Peer) io.Reader {
	_ = p.Conn().SetReadDeadline(time.Now().Add(5 * time.Second))
	return p.Conn()
}

func TestTracePrintsAlignedLinesForPeople(t *testing.T) {
	checkNoLeaks(t)
	l, accept := rawUpstream(t)
	tr := startTrace(t, l.URL(""), "--timestamps=false")
	client, resp, err := wstest.Dial(tr.addr, &wstest.DialOptions{Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	resp.Body.Close()
	server := accept()
	if err := client.WriteRaw(bytes.Join([][]byte{
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("Hello")}, wstest.WithKey([4]byte{0x37, 0xfa, 0x21, 0x3d})),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpBinary, Payload: []byte("0123456789abcdefXYZ\x00")}, wstest.WithKey([4]byte{0, 0, 0, 0})),
	}, nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if _, err := server.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"#1    ⇄   open     WebSocket ",
		"#1   c→s  frame    text         fin=1 rsv=000 op=0x1 mask=1 len=5       (7-bit)       key=37fa213d\n",
		"#1   c→s  bits     1 000 0001 │ 1 0000101 │ key 37 fa 21 3d\n",
		"#1   c→s  payload  text, unmasked, 5 B: \"Hello\"\n",
		"#1   c→s  payload  binary, unmasked, 20 B:\n",
		"#1   c→s             0000  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n",
		"#1   c→s             0010  58 59 5a 00                                       |XYZ.|\n",
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, w := range want {
		for !strings.Contains(tr.stdout.String(), w) {
			if time.Now().After(deadline) {
				t.Fatalf("output lacks %q:\n%s", w, tr.stdout.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	out := tr.stdout.String()
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes written to something that is not a terminal")
	}
	if !strings.Contains(out, "Sec-WebSocket-Accept: ") || !strings.Contains(out, "✓") {
		t.Errorf("the handshake's accept check is missing:\n%s", out)
	}
}

func TestTraceInflatesCompressedMessages(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts ws.CompressionOptions
		c2s  [2]any // window bits, context takeover
		s2c  [2]any
	}{
		{"context takeover", ws.CompressionOptions{Threshold: -1}, [2]any{15, true}, [2]any{15, true}},
		{"no takeover, small windows", ws.CompressionOptions{Threshold: -1, ClientNoContextTakeover: true, ServerMaxWindowBits: 10, ClientMaxWindowBits: 9}, [2]any{9, false}, [2]any{10, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeaks(t)
			opts := tc.opts
			url := wsServer(t, &ws.Upgrader{Compression: &ws.CompressionOptions{Threshold: -1}}, func(c *ws.Conn, _ *http.Request) {
				for {
					typ, msg, err := c.ReadMessage(context.Background())
					if err != nil {
						return
					}
					if err := c.WriteMessage(context.Background(), typ, msg); err != nil {
						return
					}
				}
			})
			tr := startTrace(t, url, "--json")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, _, err := ws.Dial(ctx, "ws://"+tr.addr+"/", &ws.DialOptions{Compression: &opts})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			msgs := []string{"a compressed hello", "a compressed hello", strings.Repeat("again and again ", 100)}
			for _, m := range msgs {
				if err := c.WriteMessage(ctx, ws.MessageText, []byte(m)); err != nil {
					t.Fatal(err)
				}
				if _, got, err := c.ReadMessage(ctx); err != nil || string(got) != m {
					t.Fatalf("echo %q, %v", got, err)
				}
			}
			c.Close(ws.StatusNormalClosure, "")
			evs := tr.waitEvents(t, "every frame", countFrames(len(msgs), len(msgs)))
			var res *jsonEvent
			for i := range evs {
				if evs[i].Kind == "response" {
					res = &evs[i]
				}
			}
			if res == nil || res.HTTP.Deflate == nil {
				t.Fatalf("no permessage-deflate in the response event: %+v", res)
			}
			d := res.HTTP.Deflate
			if got := [2]any{d.C2S.WindowBits, d.C2S.ContextTakeover}; got != tc.c2s {
				t.Errorf("c→s deflate %v, want %v", got, tc.c2s)
			}
			if got := [2]any{d.S2C.WindowBits, d.S2C.ContextTakeover}; got != tc.s2c {
				t.Errorf("s→c deflate %v, want %v", got, tc.s2c)
			}
			for _, dir := range []string{"c2s", "s2c"} {
				for i, ev := range frames(evs, dir)[:len(msgs)] {
					m := ev.Message
					if !ev.Frame.Rsv1 || !ev.Frame.Compressed || m == nil || !m.Compressed || m.Error != "" || m.Payload == nil {
						t.Fatalf("%s message %d: %+v %+v", dir, i, ev.Frame, m)
					}
					if m.Payload.Size != int64(len(msgs[i])) || !strings.HasPrefix(msgs[i], m.Payload.Text) || m.WireSize != ev.Frame.Length {
						t.Errorf("%s message %d inflated to %+v, want %q", dir, i, m.Payload, msgs[i])
					}
					if len(ev.Problems) > 0 {
						t.Errorf("%s message %d: problems %q", dir, i, ev.Problems)
					}
				}
			}
		})
	}
}

// socketIOServer serves the demo Socket.IO server (echo with ack) on a loopback httptest
// server and returns its base URL.
func socketIOServer(t *testing.T) string {
	t.Helper()
	sio := socketio.NewServer(nil)
	addDemoHandlers(sio)
	mux := http.NewServeMux()
	mux.Handle(socketio.DefaultPath, sio)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sio.Shutdown(ctx)
		srv.Close()
	})
	return srv.URL
}

// sioOf returns the Socket.IO records of events in direction dir, in order.
func sioOf(evs []jsonEvent, dir string) []string {
	var out []string
	for _, ev := range evs {
		if ev.Dir != dir {
			continue
		}
		for _, e := range ev.EngineIO {
			if s := e.SocketIO; s != nil {
				b, _ := json.Marshal(s)
				out = append(out, string(b))
			}
		}
	}
	return out
}

func TestTraceDecodesSocketIOOverWebSocket(t *testing.T) {
	checkNoLeaks(t)
	tr := startTrace(t, socketIOServer(t), "--json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws://"+tr.addr+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	read := func() (ws.MessageType, string) {
		t.Helper()
		for {
			typ, m, err := c.ReadMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if string(m) == "2" { // an Engine.IO ping
				_ = c.WriteMessage(ctx, ws.MessageText, []byte("3"))
				continue
			}
			return typ, string(m)
		}
	}
	send := func(typ ws.MessageType, m string) {
		t.Helper()
		if err := c.WriteMessage(ctx, typ, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if _, open := read(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("first message %q, want the open packet", open)
	}
	send(ws.MessageText, "40")
	if _, m := read(); !strings.HasPrefix(m, "40{") {
		t.Fatalf("connect answer %q", m)
	}
	send(ws.MessageText, "40/nowhere,")
	if _, m := read(); !strings.HasPrefix(m, "44/nowhere,") {
		t.Fatalf("connect to an unknown namespace answered %q", m)
	}
	send(ws.MessageText, `4212["echo","hi",{"n":1}]`)
	if _, m := read(); m != `4312["hi",{"n":1}]` {
		t.Fatalf("ack %q", m)
	}
	send(ws.MessageText, `451-13["echo",{"_placeholder":true,"num":0},"x"]`)
	send(ws.MessageBinary, "\x01\x02\x03")
	if _, m := read(); m != `461-13[{"_placeholder":true,"num":0},"x"]` {
		t.Fatalf("binary ack %q", m)
	}
	if typ, m := read(); typ != ws.MessageBinary || m != "\x01\x02\x03" {
		t.Fatalf("binary ack attachment %v %q", typ, m)
	}
	c.Close(ws.StatusNormalClosure, "")

	evs := tr.waitEvents(t, "the binary ack's attachment", func(evs []jsonEvent) bool {
		return len(sioOf(evs, "s2c")) >= 5
	})
	c2s, s2c := sioOf(evs, "c2s"), sioOf(evs, "s2c")
	wantC2S := []string{
		`{"type":"CONNECT","namespace":"/","attachments":0}`,
		`{"type":"CONNECT","namespace":"/nowhere","attachments":0}`,
		`{"type":"EVENT","namespace":"/","ack_id":12,"attachments":0,"event":"echo","args":["hi",{"n":1}]}`,
		`{"type":"BINARY_EVENT","namespace":"/","ack_id":13,"attachments":1,"data":["echo",{"_placeholder":true,"num":0},"x"],"awaiting":1}`,
		`{"type":"BINARY_EVENT","namespace":"/","ack_id":13,"attachments":1,"event":"echo","args":[{"_placeholder":true,"num":0},"x"],"attachment":{"index":1,"of":1,"data":{"size":3,"type":"binary","text":"","hex":"010203","shown":3,"truncated":false}},"attachment_sizes":[3]}`,
	}
	if strings.Join(c2s, "\n") != strings.Join(wantC2S, "\n") {
		t.Errorf("client's Socket.IO packets:\n%s\nwant\n%s", strings.Join(c2s, "\n"), strings.Join(wantC2S, "\n"))
	}
	if !strings.Contains(s2c[0], `"type":"CONNECT","namespace":"/"`) || !strings.Contains(s2c[0], `"sid"`) {
		t.Errorf("server's connect: %s", s2c[0])
	}
	if !strings.Contains(s2c[1], `"type":"CONNECT_ERROR","namespace":"/nowhere"`) {
		t.Errorf("server's connect error: %s", s2c[1])
	}
	if s2c[2] != `{"type":"ACK","namespace":"/","ack_id":12,"attachments":0,"args":["hi",{"n":1}]}` {
		t.Errorf("server's ack: %s", s2c[2])
	}
	if !strings.Contains(s2c[3], `"type":"BINARY_ACK"`) || !strings.Contains(s2c[3], `"awaiting":1`) ||
		!strings.Contains(s2c[4], `"attachment_sizes":[3]`) || !strings.Contains(s2c[4], `"ack_id":13`) {
		t.Errorf("server's binary ack:\n%s\n%s", s2c[3], s2c[4])
	}
	// The Engine.IO layer under it: the open packet's handshake.
	for _, ev := range frames(evs, "s2c") {
		if len(ev.EngineIO) == 1 && ev.EngineIO[0].Type == "open" {
			if ev.EngineIO[0].Handshake == nil || ev.EngineIO[0].Handshake.SID == "" {
				t.Errorf("open packet without its handshake: %+v", ev.EngineIO[0])
			}
			return
		}
	}
	t.Error("no Engine.IO open packet decoded")
}

func TestTraceDecodesEngineIOPolling(t *testing.T) {
	checkNoLeaks(t)
	tr := startTrace(t, socketIOServer(t), "--json")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer client.Transport.(*http.Transport).CloseIdleConnections()
	base := "http://" + tr.addr + "/socket.io/?EIO=4&transport=polling"
	do := func(method, query, body string) string {
		t.Helper()
		req, err := http.NewRequest(method, base+query, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, query, res.StatusCode, b)
		}
		return string(b)
	}
	open := do("GET", "", "")
	var hs struct{ SID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(open, "0")), &hs); err != nil || hs.SID == "" {
		t.Fatalf("open %q: %v", open, err)
	}
	sid := "&sid=" + hs.SID
	if r := do("POST", sid, "40\x1e427[\"echo\",\"over polling\"]"); r != "ok" {
		t.Fatalf("POST answered %q", r)
	}
	got := ""
	for !strings.Contains(got, `437["over polling"]`) {
		got += do("GET", sid, "") + "\x1e"
	}
	// The client ends the session (else the server's shutdown waits for it).
	if r := do("POST", sid, "1"); r != "ok" {
		t.Fatalf("POST of a close packet answered %q", r)
	}

	evs := tr.waitEvents(t, "the ack in a poll", func(evs []jsonEvent) bool {
		return len(sioOf(evs, "s2c")) >= 2
	})
	var post *jsonEvent
	for i := range evs {
		if evs[i].Kind == "request" && evs[i].HTTP.Method == "POST" {
			post = &evs[i]
			break
		}
	}
	if post == nil || len(post.EngineIO) != 2 || post.EngineIO[0].Type != "message" || post.HTTP.Body == nil {
		t.Fatalf("POST event: %+v", post)
	}
	c2s := sioOf(evs, "c2s")
	want := []string{
		`{"type":"CONNECT","namespace":"/","attachments":0}`,
		`{"type":"EVENT","namespace":"/","ack_id":7,"attachments":0,"event":"echo","args":["over polling"]}`,
	}
	if strings.Join(c2s, "\n") != strings.Join(want, "\n") {
		t.Errorf("POSTed packets:\n%s\nwant\n%s", strings.Join(c2s, "\n"), strings.Join(want, "\n"))
	}
	s2c := sioOf(evs, "s2c")
	if !strings.Contains(s2c[0], `"type":"CONNECT"`) || s2c[len(s2c)-1] != `{"type":"ACK","namespace":"/","ack_id":7,"attachments":0,"args":["over polling"]}` {
		t.Errorf("polled packets:\n%s", strings.Join(s2c, "\n"))
	}
	if first := evs[1]; first.Kind != "response" || len(first.EngineIO) != 1 || first.EngineIO[0].Handshake == nil || first.EngineIO[0].Handshake.SID != hs.SID {
		t.Errorf("the handshake response: %+v", first)
	}
}

func TestTraceDecodesGzipPollingBodies(t *testing.T) {
	checkNoLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, "4hello\x1ebAQID\x1e2")
		zw.Close()
	}))
	defer srv.Close()
	tr := startTrace(t, srv.URL, "--json")
	tp := &http.Transport{DisableCompression: true}
	defer tp.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+tr.addr+"/engine.io/?EIO=4&transport=polling&sid=x", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := tp.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if zr, err := gzip.NewReader(bytes.NewReader(body)); err != nil {
		t.Fatalf("the client did not get the gzip body as sent: %v", err)
	} else if b, _ := io.ReadAll(zr); string(b) != "4hello\x1ebAQID\x1e2" {
		t.Fatalf("body %q", b)
	}
	evs := tr.waitEvents(t, "the response", func(evs []jsonEvent) bool { return len(evs) >= 2 })
	ev := evs[1]
	if ev.Kind != "response" || ev.HTTP.BodyEncoding != "gzip" || len(ev.EngineIO) != 3 {
		t.Fatalf("response event: %+v", ev)
	}
	e := ev.EngineIO
	if e[0].Type != "message" || e[0].Data.Text != "hello" || !e[1].Binary || e[1].Data.Hex != "010203" || e[2].Type != "ping" {
		t.Errorf("packets: %+v", e)
	}
}

func TestTraceRelaysAnUndecodableStreamAsItIs(t *testing.T) {
	checkNoLeaks(t)
	l, accept := rawUpstream(t)
	tr := startTrace(t, l.URL(""), "--json")
	client, resp, err := wstest.Dial(tr.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	resp.Body.Close()
	server := accept()
	// A reserved opcode (0x3): nothing after it can be trusted to be frames.
	bad := client.Encode(wstest.Frame{Fin: true, Opcode: 0x3, Payload: []byte("??")})
	garbage := []byte("\xff\xff\xff\xff not frames at all \x00\x01")
	if err := client.WriteRaw(append(bad, garbage...)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(bad)+len(garbage))
	if _, err := io.ReadFull(serverReader(server), got); err != nil || !bytes.Equal(got, append(bad, garbage...)) {
		t.Fatalf("upstream got %q, %v", got, err)
	}
	// More bytes still go through, both ways.
	if err := client.WriteRaw([]byte("more")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(serverReader(server), got[:4]); err != nil || string(got[:4]) != "more" {
		t.Fatalf("upstream got %q, %v", got[:4], err)
	}
	if err := server.WriteText("still here"); err != nil {
		t.Fatal(err)
	}
	if f, err := client.ReadFrame(); err != nil || string(f.Payload) != "still here" {
		t.Fatalf("client got %v, %v", f, err)
	}
	// The client closing closes the upstream.
	client.Close()
	if _, err := server.WaitEOF(5 * time.Second); err != nil {
		t.Fatalf("the upstream stayed open after the client closed: %v", err)
	}
	evs := tr.waitEvents(t, "closed", func(evs []jsonEvent) bool { return len(evs) > 0 && evs[len(evs)-1].Kind == "closed" })
	errorsSeen := 0
	for _, ev := range evs {
		if ev.Kind == "error" {
			errorsSeen++
			if ev.Dir != "c2s" || !strings.Contains(ev.Note, "reserved opcode 0x3") {
				t.Errorf("error event %+v", ev)
			}
		}
	}
	if errorsSeen != 1 {
		t.Errorf("%d error events, want the undecodable stream reported once:\n%s", errorsSeen, tr.stdout.String())
	}
	if s2c := frames(evs, "s2c"); len(s2c) != 1 || s2c[0].Frame.Payload.Text != "still here" {
		t.Errorf("the other direction is still decoded: %+v", s2c)
	}
}

func TestTraceReportsProtocolViolations(t *testing.T) {
	checkNoLeaks(t)
	l, accept := rawUpstream(t)
	tr := startTrace(t, l.URL(""), "--json")
	client, resp, err := wstest.Dial(tr.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	resp.Body.Close()
	server := accept()
	if err := client.WriteRaw(bytes.Join([][]byte{
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("plain")}, wstest.Masked(false)),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpText, Payload: []byte("short")}, wstest.WithLenForm(wstest.Len64)),
		client.Encode(wstest.Frame{Fin: true, Rsv: wstest.RSV1, Opcode: wstest.OpText, Payload: []byte("x")}),
		client.Encode(wstest.Frame{Fin: true, Opcode: wstest.OpClose, Payload: wstest.ClosePayload(1005, "")}),
	}, nil)); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if _, err := server.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	evs := tr.waitEvents(t, "4 frames", countFrames(4, 0))
	c2s := frames(evs, "c2s")
	for i, want := range []string{"unmasked frame from the client", "non-minimal length encoding", "RSV1 set without permessage-deflate", "close code 1005 may not be sent"} {
		if p := strings.Join(c2s[i].Problems, "; "); !strings.Contains(p, want) {
			t.Errorf("frame %d: problems %q, want %q", i, p, want)
		}
	}
	if c2s[1].Frame.LengthEncoding != "64-bit" || c2s[1].Frame.Length != 5 {
		t.Errorf("non-minimal frame: %+v", c2s[1].Frame)
	}
}

func TestTraceFlagErrorsAreUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--upstream", "ftp://x"},
		{"--upstream", "ws://127.0.0.1:1", "--color", "sometimes"},
		{"--upstream", "ws://127.0.0.1:1", "--decode", "xml"},
		{"--upstream", "ws://127.0.0.1:1", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if s := run(context.Background(), append([]string{"trace"}, args...), strings.NewReader(""), &stdout, &stderr); s != 2 {
			t.Errorf("%q: status %d, want 2 (stderr %q)", args, s, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if s := run(context.Background(), []string{"help"}, strings.NewReader(""), &stdout, &stderr); s != 0 || !strings.Contains(stdout.String(), "trace") {
		t.Errorf("help: %d %q", s, stdout.String())
	}
}

func TestTraceHeaderBits(t *testing.T) {
	for _, tc := range []struct {
		header ws.Header
		want   string
	}{
		{ws.Header{Fin: true, Opcode: ws.OpText, Length: 5, Masked: true, Mask: [4]byte{0x37, 0xfa, 0x21, 0x3d}}, "1 000 0001 │ 1 0000101 │ key 37 fa 21 3d"},
		{ws.Header{Fin: false, Rsv: ws.Rsv1, Opcode: ws.OpBinary, Length: 200}, "0 100 0010 │ 0 1111110 │ 00000000 11001000"},
		{ws.Header{Fin: true, Opcode: ws.OpClose, Length: 70000}, "1 000 1000 │ 0 1111111 │ 00000000 00000000 00000000 00000000 00000000 00000001 00010001 01110000"},
	} {
		if got := headerBits(hex.EncodeToString(ws.AppendHeader(nil, tc.header))); got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.header, got, tc.want)
		}
	}
}

func TestTraceTextPayloadIsCutAtACharacter(t *testing.T) {
	for _, tc := range []struct {
		text string
		max  int
		want string
	}{
		{"héllo", 2, "h"}, // "é" is 2 bytes: not split
		{"héllo", 3, "hé"},
		{"héllo", 10, "héllo"},
		{"a€", 3, "a"},
	} {
		p := makePayload([]byte(tc.text), int64(len(tc.text)), true, tc.max)
		if p.Text != tc.want || p.Truncated != (tc.want != tc.text) {
			t.Errorf("%q cut at %d: %+v, want %q", tc.text, tc.max, p, tc.want)
		}
	}
}

// FuzzTraceFrameStream feeds arbitrary bytes, in pieces of any size, to the decoder of one
// direction, up through Socket.IO, with and without permessage-deflate, and prints what it
// finds both ways: it must never panic, and every JSON line must be valid.
func FuzzTraceFrameStream(f *testing.F) {
	f.Add([]byte("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"), uint8(3), false, false)
	f.Add([]byte("\x01\x03caf\x89\x00\x80\x03\xc3\xa9s"), uint8(1), false, true)
	f.Add([]byte("\xc1\x07\xf2\x48\xcd\xc9\xc9\x07\x00\xc1\x05\xf2\x00\x11\x00\x00"), uint8(2), true, false)
	f.Add([]byte("\x81\x1e451-3[\"up\",{\"_placeholder\":true}]\x82\x03\x01\x02\x03\x81\x0242"), uint8(5), false, true)
	f.Add([]byte("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00"), uint8(0), false, false)
	f.Add([]byte("\x88\x01\x03\x88\x04\x03\xed\xff\xfe"), uint8(7), false, true)
	f.Fuzz(func(t *testing.T, data []byte, split uint8, compressed, human bool) {
		var out bytes.Buffer
		p := &tracePrinter{w: &out, json: !human, maxShow: 16}
		var deflate *deflateRecord
		if compressed {
			deflate = &deflateRecord{C2S: deflateDirection{15, true}, S2C: deflateDirection{9, false}}
		}
		for _, dir := range []traceDir{dirC2S, dirS2C} {
			s := newFrameStream(1, dir, p, decodeLimits{maxShow: 16, maxMessage: 1 << 16}, modeSocketIO, deflate)
			at := time.Unix(0, 0)
			for rest := data; len(rest) > 0 && !s.failed; {
				n := min(len(rest), int(split)+1)
				s.feed(rest[:n], at)
				rest = rest[n:]
			}
		}
		if !human {
			sc := bufio.NewScanner(&out)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if !json.Valid(sc.Bytes()) {
					t.Fatalf("invalid JSON line %q", sc.Text())
				}
			}
		}
	})
}

func TestTraceRelaysARefusedHandshake(t *testing.T) {
	checkNoLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no WebSocket here", http.StatusForbidden)
	}))
	defer srv.Close()
	tr := startTrace(t, srv.URL, "--json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := ws.Dial(ctx, "ws://"+tr.addr+"/", nil)
	var he *ws.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden || !strings.Contains(string(he.Body), "no WebSocket here") {
		t.Fatalf("dial through the tracer: %v, want the upstream's 403 and its body", err)
	}
	evs := tr.waitEvents(t, "the refusal", func(evs []jsonEvent) bool { return len(evs) >= 2 })
	res := evs[1]
	if res.Kind != "response" || res.HTTP.Status != 403 || res.HTTP.Accept != nil || res.HTTP.Body == nil || !strings.Contains(res.HTTP.Body.Text, "no WebSocket here") {
		t.Errorf("response event: %+v", res)
	}
	for _, ev := range evs {
		if ev.Kind == "open" || ev.Kind == "frame" {
			t.Errorf("a refused handshake decoded as WebSocket: %+v", ev)
		}
	}
}
