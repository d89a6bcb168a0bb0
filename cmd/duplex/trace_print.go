package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/duplexio/duplex/engineio"
)

// What "duplex trace" prints: each thing it sees becomes one traceEvent, printed as a block
// of aligned lines for people or as one JSON object (one line) with --json. The JSON field
// names are part of the command's interface: tools parse them.

// traceDir is the direction of the bytes an event describes.
type traceDir uint8

const (
	dirNone traceDir = iota // about the connection as a whole
	dirC2S                  // client → server
	dirS2C                  // server → client
)

// arrow is the direction as printed for people.
func (d traceDir) arrow() string {
	switch d {
	case dirC2S:
		return "c→s"
	case dirS2C:
		return "s→c"
	}
	return " ⇄ "
}

// MarshalJSON writes "c2s", "s2c" or "" (the connection as a whole).
func (d traceDir) MarshalJSON() ([]byte, error) {
	switch d {
	case dirC2S:
		return []byte(`"c2s"`), nil
	case dirS2C:
		return []byte(`"s2c"`), nil
	}
	return []byte(`""`), nil
}

// traceEvent is one thing seen on a connection. Kind says which fields are set:
//
//	"open"      a WebSocket connection is relayed (Note: the addresses)
//	"request"   an HTTP request (HTTP; for Engine.IO polling, the decoded body packets)
//	"response"  an HTTP response, likewise
//	"frame"     a WebSocket frame (Frame; on the last frame of a data message, Message and
//	            the Engine.IO packet decoded from it, with its Socket.IO packet)
//	"warning"   a protocol violation noticed in the stream, which is still decoded
//	"error"     something that stops decoding or proxying (Note says what)
//	"closed"    the connection is closed (Note: who closed it, and counts)
type traceEvent struct {
	Conn     int            `json:"conn"`
	Dir      traceDir       `json:"dir"`
	Time     time.Time      `json:"time"`
	Kind     string         `json:"kind"`
	Note     string         `json:"note,omitempty"`
	HTTP     *httpRecord    `json:"http,omitempty"`
	Frame    *frameRecord   `json:"frame,omitempty"`
	Message  *messageRecord `json:"message,omitempty"`
	EngineIO []eioRecord    `json:"engineio,omitempty"`
	Problems []string       `json:"problems,omitempty"`
}

// httpRecord is an HTTP request or response head, and its body when it is printed.
type httpRecord struct {
	Method       string         `json:"method,omitempty"`
	Target       string         `json:"target,omitempty"`
	Proto        string         `json:"proto"`
	Status       int            `json:"status,omitempty"`
	Reason       string         `json:"reason,omitempty"`
	Headers      []headerField  `json:"headers"`
	HostRewrite  string         `json:"host_rewritten_to,omitempty"`
	Accept       *acceptCheck   `json:"accept_check,omitempty"`
	Deflate      *deflateRecord `json:"deflate,omitempty"`
	Body         *payloadRecord `json:"body,omitempty"`
	BodyEncoding string         `json:"body_decoded_from,omitempty"` // gzip or deflate
}

type headerField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// acceptCheck compares the server's Sec-WebSocket-Accept with the value computed from the
// client's Sec-WebSocket-Key.
type acceptCheck struct {
	Key      string `json:"key"`
	Expected string `json:"expected"`
	Got      string `json:"got"`
	OK       bool   `json:"ok"`
}

// deflateRecord is the negotiated permessage-deflate configuration, per direction.
type deflateRecord struct {
	C2S deflateDirection `json:"c2s"`
	S2C deflateDirection `json:"s2c"`
}

type deflateDirection struct {
	WindowBits      int  `json:"window_bits"`
	ContextTakeover bool `json:"context_takeover"`
}

// frameRecord is one WebSocket frame: its header field by field, and its payload unmasked.
type frameRecord struct {
	Fin            bool           `json:"fin"`
	Rsv1           bool           `json:"rsv1"`
	Rsv2           bool           `json:"rsv2"`
	Rsv3           bool           `json:"rsv3"`
	Opcode         uint8          `json:"opcode"`
	OpcodeName     string         `json:"opcode_name"`
	Masked         bool           `json:"masked"`
	MaskKey        string         `json:"mask_key,omitempty"` // 8 hex digits
	Length         int64          `json:"length"`
	LengthField    uint8          `json:"length_field"`    // the 7-bit field: the length itself, 126 or 127
	LengthEncoding string         `json:"length_encoding"` // "7-bit", "16-bit" or "64-bit"
	Header         string         `json:"header"`          // the header bytes, hex
	Compressed     bool           `json:"compressed"`      // payload is (part of) a permessage-deflate message
	Payload        *payloadRecord `json:"payload"`
	Close          *closeRecord   `json:"close,omitempty"`
}

// closeRecord is the payload of a close frame.
type closeRecord struct {
	Code     int    `json:"code,omitempty"` // absent: no status code
	CodeName string `json:"code_name,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// payloadRecord is a payload as shown: text, or hex for binary data, cut at --max-payload-bytes.
type payloadRecord struct {
	Size      int64  `json:"size"`
	Type      string `json:"type"` // "text" or "binary"
	Text      string `json:"text,omitempty"`
	Hex       string `json:"hex,omitempty"` // binary data; for text, set too when it is not valid UTF-8
	Shown     int    `json:"shown"`
	Truncated bool   `json:"truncated"`
}

// messageRecord is a whole data message, given on the frame that ends it.
type messageRecord struct {
	Type       string         `json:"type"` // "text" or "binary"
	Frames     int            `json:"frames"`
	WireSize   int64          `json:"wire_size"` // payload bytes on the wire, compressed
	Compressed bool           `json:"compressed"`
	Payload    *payloadRecord `json:"payload,omitempty"` // inflated when compressed
	Error      string         `json:"error,omitempty"`   // why the message could not be read
}

// eioRecord is a decoded Engine.IO packet.
type eioRecord struct {
	Type      string              `json:"type"`
	TypeID    int                 `json:"type_id"`
	Binary    bool                `json:"binary"`
	Data      *payloadRecord      `json:"data,omitempty"`
	Handshake *engineio.Handshake `json:"handshake,omitempty"`
	SocketIO  *sioRecord          `json:"socketio,omitempty"` // what a message carries, under Socket.IO
	Error     string              `json:"error,omitempty"`
}

// sioRecord is a decoded Socket.IO packet, or a binary attachment of one.
type sioRecord struct {
	Type        string            `json:"type,omitempty"`
	TypeID      int               `json:"type_id"`
	Namespace   string            `json:"namespace,omitempty"`
	AckID       *uint64           `json:"ack_id,omitempty"`
	Attachments int               `json:"attachments"`
	Event       string            `json:"event,omitempty"`
	Args        []json.RawMessage `json:"args,omitempty"`
	Data        json.RawMessage   `json:"data,omitempty"`
	// Awaiting is set on a binary packet whose attachments have not all come yet.
	Awaiting int `json:"awaiting,omitempty"`
	// Attachment is set for a binary Engine.IO message that carries an attachment; the
	// packet it completes follows in the same event.
	Attachment *attachmentRecord `json:"attachment,omitempty"`
	// AttachmentSizes lists the sizes of a completed binary packet's attachments.
	AttachmentSizes []int  `json:"attachment_sizes,omitempty"`
	Error           string `json:"error,omitempty"`
}

type attachmentRecord struct {
	Index int            `json:"index"` // from 1
	Of    int            `json:"of"`
	Data  *payloadRecord `json:"data"`
}

// makePayload renders data as text (when isText) or hex, showing at most max bytes (a text
// is cut at a character boundary). size is the full size, which may exceed len(data) when
// only a prefix was kept.
func makePayload(data []byte, size int64, isText bool, max int) *payloadRecord {
	p := &payloadRecord{Size: size, Type: "binary"}
	shown := data
	if len(shown) > max {
		shown = shown[:max]
		if isText {
			// Do not split the last character: back up to its first byte and drop it
			// when it is incomplete.
			start := len(shown)
			for start > 0 && len(shown)-start < utf8.UTFMax && shown[start-1]&0xC0 == 0x80 {
				start--
			}
			if start > 0 && !utf8.FullRune(shown[start-1:]) {
				shown = shown[:start-1]
			}
		}
	}
	p.Shown = len(shown)
	p.Truncated = int64(len(shown)) < size
	if isText {
		p.Type = "text"
		p.Text = string(shown)
		if !utf8.Valid(shown) {
			// JSON cannot carry the invalid bytes (a character split between fragments,
			// typically): the exact bytes go in Hex too.
			p.Hex = hex.EncodeToString(shown)
		}
	} else {
		p.Hex = hex.EncodeToString(shown)
	}
	return p
}

// tracePrinter writes events to stdout, one at a time.
type tracePrinter struct {
	mu         sync.Mutex
	w          io.Writer
	json       bool
	color      bool
	timestamps bool
	maxShow    int // how much of a Socket.IO packet's JSON is shown
	buf        []byte
}

// ANSI styles used on a terminal.
const (
	styleReset   = "\x1b[0m"
	styleDim     = "\x1b[2m"
	styleBold    = "\x1b[1m"
	styleRed     = "\x1b[31m"
	styleGreen   = "\x1b[32m"
	styleYellow  = "\x1b[33m"
	styleBlue    = "\x1b[34m"
	styleMagenta = "\x1b[35m"
	styleCyan    = "\x1b[36m"
)

// line is one printed line: a label in the label column and the text after it.
type line struct {
	label, style, text string
}

// emit prints ev.
func (p *tracePrinter) emit(ev *traceEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.json {
		b, err := json.Marshal(ev)
		if err != nil {
			b, _ = json.Marshal(&traceEvent{Conn: ev.Conn, Dir: ev.Dir, Time: ev.Time, Kind: "error", Note: "cannot encode event: " + err.Error()})
		}
		_, _ = p.w.Write(append(b, '\n'))
		return
	}
	p.buf = p.buf[:0]
	prefix := p.prefix(ev)
	for _, l := range renderEvent(ev, p.maxShow) {
		p.buf = append(p.buf, prefix...)
		label := fmt.Sprintf("%-8s ", l.label)
		if p.color && l.label != "" {
			label = styleDim + label + styleReset
		}
		p.buf = append(p.buf, label...)
		if p.color && l.style != "" {
			p.buf = append(p.buf, l.style...)
			p.buf = append(p.buf, l.text...)
			p.buf = append(p.buf, styleReset...)
		} else {
			p.buf = append(p.buf, l.text...)
		}
		p.buf = append(p.buf, '\n')
	}
	_, _ = p.w.Write(p.buf)
}

// prefix is what starts every line of ev: connection number, direction and time.
func (p *tracePrinter) prefix(ev *traceEvent) string {
	var b strings.Builder
	conn := fmt.Sprintf("#%-3d", ev.Conn)
	arrow := ev.Dir.arrow()
	if p.color {
		conn = styleBold + conn + styleReset
		switch ev.Dir {
		case dirC2S:
			arrow = styleCyan + arrow + styleReset
		case dirS2C:
			arrow = styleMagenta + arrow + styleReset
		}
	}
	b.WriteString(conn)
	b.WriteByte(' ')
	b.WriteString(arrow)
	b.WriteByte(' ')
	if p.timestamps {
		ts := ev.Time.Format("15:04:05.000000")
		if p.color {
			ts = styleDim + ts + styleReset
		}
		b.WriteString(ts)
		b.WriteByte(' ')
	}
	b.WriteByte(' ')
	return b.String()
}

// renderEvent turns an event into lines for people.
func renderEvent(ev *traceEvent, maxShow int) []line {
	var out []line
	switch ev.Kind {
	case "open", "closed":
		out = append(out, line{ev.Kind, styleBold, ev.Note})
	case "error":
		out = append(out, line{"error", styleRed, ev.Note})
	case "warning":
		out = append(out, line{"warning", styleRed, ev.Note})
	}
	if ev.HTTP != nil {
		out = renderHTTP(out, ev.HTTP)
	}
	if ev.Frame != nil {
		out = renderFrame(out, ev.Frame)
	}
	for _, pr := range ev.Problems {
		out = append(out, line{"warning", styleRed, pr})
	}
	if m := ev.Message; m != nil && (m.Frames > 1 || m.Compressed || m.Error != "") {
		out = renderMessage(out, m)
	}
	for i := range ev.EngineIO {
		out = renderEIO(out, &ev.EngineIO[i])
		if s := ev.EngineIO[i].SocketIO; s != nil {
			out = renderSIO(out, s, maxShow)
		}
	}
	return out
}

func renderHTTP(out []line, h *httpRecord) []line {
	if h.Method != "" {
		out = append(out, line{"http", styleGreen + styleBold, h.Method + " " + h.Target + " " + h.Proto})
	} else {
		out = append(out, line{"http", styleGreen + styleBold, fmt.Sprintf("%s %d %s", h.Proto, h.Status, h.Reason)})
	}
	width := 0
	for _, f := range h.Headers {
		width = max(width, len(f.Name))
	}
	for _, f := range h.Headers {
		text := fmt.Sprintf("%-*s %s", width+1, f.Name+":", f.Value)
		style := ""
		if strings.EqualFold(f.Name, "Host") && h.HostRewrite != "" {
			text += "   (sent upstream as " + h.HostRewrite + ")"
		}
		if a := h.Accept; a != nil && strings.EqualFold(f.Name, "Sec-WebSocket-Accept") {
			if a.OK {
				text += "   ✓ base64(SHA-1(key + GUID))"
				style = styleGreen
			} else {
				text += "   ✗ want " + a.Expected
				style = styleRed
			}
		}
		out = append(out, line{"header", style, text})
	}
	if a := h.Accept; a != nil && a.Got == "" {
		out = append(out, line{"warning", styleRed, "no Sec-WebSocket-Accept; want " + a.Expected})
	}
	if d := h.Deflate; d != nil {
		out = append(out, line{"deflate", styleYellow, "permessage-deflate  c→s: " + d.C2S.String() + "   s→c: " + d.S2C.String()})
	}
	if h.Body != nil {
		what := h.Body.Type
		if h.BodyEncoding != "" {
			what += " (" + h.BodyEncoding + "-decoded)"
		}
		out = renderPayload(out, "body", sized(what, h.Body), h.Body)
	}
	return out
}

func (d deflateDirection) String() string {
	s := fmt.Sprintf("window %d bits (%d bytes)", d.WindowBits, 1<<d.WindowBits)
	if d.ContextTakeover {
		return s + ", context takeover"
	}
	return s + ", no context takeover"
}

func renderFrame(out []line, f *frameRecord) []line {
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	key := ""
	if f.Masked {
		key = " key=" + f.MaskKey
	}
	enc := f.LengthEncoding
	if f.LengthField >= 126 {
		enc += ", " + strconv.Itoa(int(f.LengthField))
	}
	out = append(out, line{"frame", styleYellow + styleBold, fmt.Sprintf("%-12s fin=%d rsv=%d%d%d op=0x%X mask=%d len=%-7d %-13s%s",
		f.OpcodeName, b(f.Fin), b(f.Rsv1), b(f.Rsv2), b(f.Rsv3), f.Opcode, b(f.Masked), f.Length, "("+enc+")", key)})
	out[len(out)-1].text = strings.TrimRight(out[len(out)-1].text, " ")
	out = append(out, line{"bits", styleDim, headerBits(f.Header)})
	switch {
	case f.Close != nil:
		c := f.Close
		text := "no status code"
		if c.Code != 0 {
			text = fmt.Sprintf("code %d", c.Code)
			if c.CodeName != "" {
				text += " (" + c.CodeName + ")"
			}
		}
		if c.Reason != "" {
			text += ", reason " + strconv.Quote(c.Reason)
		}
		out = append(out, line{"close", styleBold, text})
	case f.Compressed:
		out = renderPayload(out, "payload", sized("compressed", f.Payload), f.Payload)
	default:
		what := f.Payload.Type
		if f.Masked {
			what += ", unmasked"
		}
		out = renderPayload(out, "payload", sized(what, f.Payload), f.Payload)
	}
	return out
}

// headerBits shows a frame header (hex) as its fields' bits: FIN RSV1 RSV2 RSV3 opcode, MASK
// and the 7-bit length, the extended length, then the masking key in hex.
func headerBits(hexHeader string) string {
	h, err := hex.DecodeString(hexHeader)
	if err != nil || len(h) < 2 {
		return hexHeader
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d%d%d %04b │ %d %07b", h[0]>>7, h[0]>>6&1, h[0]>>5&1, h[0]>>4&1, h[0]&0xF, h[1]>>7, h[1]&0x7F)
	rest := h[2:]
	ext := 0
	switch h[1] & 0x7F {
	case 126:
		ext = 2
	case 127:
		ext = 8
	}
	if ext > 0 && len(rest) >= ext {
		b.WriteString(" │ ")
		for i, c := range rest[:ext] {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%08b", c)
		}
		rest = rest[ext:]
	}
	if len(rest) == 4 {
		fmt.Fprintf(&b, " │ key % x", rest)
	}
	return b.String()
}

// sized is what followed by the size of p, and how much of it is shown.
func sized(what string, p *payloadRecord) string {
	head := fmt.Sprintf("%s, %d B", what, p.Size)
	if p.Truncated {
		head += fmt.Sprintf(" (first %d shown)", p.Shown)
	}
	return head
}

// renderPayload shows a payload after head, on one line (text, short binary) or as a hex
// dump.
func renderPayload(out []line, label, head string, p *payloadRecord) []line {
	more := ""
	if p.Truncated {
		more = "…"
	}
	if p.Type == "text" {
		return append(out, line{label, "", head + ": " + strconv.Quote(p.Text) + more})
	}
	data, _ := hex.DecodeString(p.Hex)
	if len(data) <= 16 {
		return append(out, line{label, "", head + ": " + fmt.Sprintf("% x", data) + more})
	}
	out = append(out, line{label, "", head + ":"})
	for off := 0; off < len(data); off += 16 {
		row := data[off:min(off+16, len(data))]
		var ascii strings.Builder
		for _, c := range row {
			if c >= 0x20 && c < 0x7f {
				ascii.WriteByte(c)
			} else {
				ascii.WriteByte('.')
			}
		}
		hexCols := fmt.Sprintf("% x", row[:min(8, len(row))])
		if len(row) > 8 {
			hexCols += fmt.Sprintf("  % x", row[8:])
		}
		out = append(out, line{"", styleDim, fmt.Sprintf("  %04x  %-48s  |%s|", off, hexCols, ascii.String())})
	}
	if p.Truncated {
		out = append(out, line{"", styleDim, fmt.Sprintf("  … %d more bytes", p.Size-int64(p.Shown))})
	}
	return out
}

func renderMessage(out []line, m *messageRecord) []line {
	what := fmt.Sprintf("%s message in %d frame", m.Type, m.Frames)
	if m.Frames != 1 {
		what += "s"
	}
	if m.Compressed {
		what += fmt.Sprintf(", %d B compressed", m.WireSize)
	}
	if m.Error != "" {
		return append(out, line{"message", styleRed, what + ": " + m.Error})
	}
	head := sized(what, m.Payload)
	if m.Compressed {
		head = fmt.Sprintf("%s, inflated to %d B", what, m.Payload.Size)
		if m.Payload.Truncated {
			head += fmt.Sprintf(" (first %d shown)", m.Payload.Shown)
		}
	}
	return renderPayload(out, "message", head, m.Payload)
}

func renderEIO(out []line, e *eioRecord) []line {
	if e.Error != "" {
		return append(out, line{"eio", styleRed, "not an Engine.IO packet: " + e.Error})
	}
	what := e.Type
	if e.Binary {
		what += " (binary)"
	}
	if hs := e.Handshake; hs != nil {
		return append(out, line{"eio", styleBlue, fmt.Sprintf("%-8s sid=%s upgrades=%v pingInterval=%dms pingTimeout=%dms maxPayload=%d",
			what, hs.SID, hs.Upgrades, hs.PingInterval, hs.PingTimeout, hs.MaxPayload)})
	}
	if e.Data == nil {
		return append(out, line{"eio", styleBlue, what})
	}
	return renderPayload(out, "eio", sized(what, e.Data), e.Data)
}

func renderSIO(out []line, s *sioRecord, maxShow int) []line {
	if s.Error != "" {
		return append(out, line{"sio", styleRed, "not a Socket.IO packet: " + s.Error})
	}
	if a := s.Attachment; a != nil {
		out = renderPayload(out, "sio", sized(fmt.Sprintf("attachment %d/%d", a.Index, a.Of), a.Data), a.Data)
		if s.Type == "" {
			return out
		}
	}
	var b strings.Builder
	b.WriteString(fmt.Sprintf("%-13s nsp=%s", s.Type, s.Namespace))
	if s.AckID != nil {
		fmt.Fprintf(&b, " ack=%d", *s.AckID)
	}
	if s.Attachments > 0 {
		fmt.Fprintf(&b, " attachments=%d", s.Attachments)
	}
	switch {
	case s.Awaiting > 0:
		fmt.Fprintf(&b, " data=%s (awaiting %d binary message", cut(s.Data, maxShow), s.Awaiting)
		if s.Awaiting > 1 {
			b.WriteByte('s')
		}
		b.WriteByte(')')
	case s.Event != "" || s.Args != nil:
		if s.Event != "" {
			fmt.Fprintf(&b, " event=%s", strconv.Quote(s.Event))
		}
		args := make([]string, len(s.Args))
		for i, a := range s.Args {
			args[i] = string(a)
		}
		fmt.Fprintf(&b, " args=[%s]", cut([]byte(strings.Join(args, ",")), maxShow))
		if len(s.AttachmentSizes) > 0 {
			fmt.Fprintf(&b, " attachment sizes=%v", s.AttachmentSizes)
		}
	case len(s.Data) > 0:
		fmt.Fprintf(&b, " data=%s", cut(s.Data, maxShow))
	}
	return append(out, line{"sio", styleMagenta, b.String()})
}

// cut returns the first max bytes of JSON text b (not splitting a character), with "…" when
// there was more.
func cut(b []byte, max int) string {
	p := makePayload(b, int64(len(b)), true, max)
	if p.Truncated {
		return p.Text + "…"
	}
	return p.Text
}
