package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// The decoders of "duplex trace": they read copies of the relayed bytes with the codecs of
// ws, engineio and socketio, and describe what they find as traceEvents. They never touch
// the relayed bytes themselves.

// traceMode is how far up the layers a connection is decoded.
type traceMode uint8

const (
	modeWebSocket traceMode = iota // frames and messages
	modeEngineIO                   // ... and Engine.IO packets in the messages
	modeSocketIO                   // ... and Socket.IO packets in the Engine.IO messages
)

// decodeLimits bound what the decoders keep and show.
type decodeLimits struct {
	maxShow    int   // payload bytes shown (--max-payload-bytes)
	maxMessage int64 // largest message decoded, inflated size included (--max-message-bytes)
}

// frameStream decodes one direction of a relayed WebSocket connection from its bytes, in
// the pieces in which they were read: a header or payload may be split anywhere, frames of
// a fragmented message are put back together (control frames may come between them), and a
// compressed message is inflated when it is complete. It is used by one goroutine.
type frameStream struct {
	conn   int
	dir    traceDir
	out    *tracePrinter
	limits decodeLimits
	mode   traceMode

	inflater      *ws.MessageInflater // nil without permessage-deflate
	inflateBroken string              // why the inflater's history is lost, if it is
	inflated      []byte
	sio           *sioStream // Socket.IO state (modeSocketIO)

	// The frame being read.
	hdr       [ws.MaxHeaderSize]byte
	hdrLen    int // bytes of hdr read so far, or the header's size once complete
	inPayload bool
	h         ws.Header
	at        time.Time // when the frame's first byte came
	left      int64     // payload bytes still to come
	maskPos   int
	payload   []byte // payload kept (unmasked): all of it, or the first maxShow bytes
	keepAll   bool

	// The data message in progress.
	msgActive     bool
	msgOp         ws.Opcode
	msgCompressed bool
	msgFrames     int
	msgSize       int64
	msgTooBig     bool
	msgData       []byte

	failed bool // the stream cannot be decoded: it is relayed without decoding
	frames int
	bytes  int64
}

func newFrameStream(conn int, dir traceDir, out *tracePrinter, limits decodeLimits, mode traceMode, deflate *deflateRecord) *frameStream {
	s := &frameStream{conn: conn, dir: dir, out: out, limits: limits, mode: mode}
	if deflate != nil {
		d := deflate.C2S
		if dir == dirS2C {
			d = deflate.S2C
		}
		s.inflater = ws.NewMessageInflater(d.WindowBits, d.ContextTakeover)
	}
	if mode == modeSocketIO {
		s.sio = newSIOStream(limits)
	}
	return s
}

// feed decodes the next bytes of the stream, read at time at.
func (s *frameStream) feed(b []byte, at time.Time) {
	s.bytes += int64(len(b))
	for len(b) > 0 && !s.failed {
		if !s.inPayload {
			if s.hdrLen == 0 {
				s.at = at
			}
			n := copy(s.hdr[s.hdrLen:], b)
			h, size, err := ws.ParseHeader(s.hdr[:s.hdrLen+n])
			if err != nil {
				s.fail(fmt.Sprintf("bad frame header % x: %v", s.hdr[:s.hdrLen+n], err))
				return
			}
			if size == 0 {
				s.hdrLen += n
				b = b[n:]
				continue
			}
			b = b[size-s.hdrLen:]
			s.hdrLen = size
			if !s.startFrame(h) {
				return
			}
		}
		n := int(min(int64(len(b)), s.left))
		s.takePayload(b[:n])
		b = b[n:]
		s.left -= int64(n)
		if s.left == 0 {
			s.endFrame()
		}
	}
}

// fail reports, once, that the stream cannot be decoded any further.
func (s *frameStream) fail(why string) {
	s.failed = true
	s.out.emit(&traceEvent{Conn: s.conn, Dir: s.dir, Time: s.at, Kind: "error",
		Note: why + "; the rest of this direction is relayed without decoding"})
}

// startFrame sets up the reading of a frame whose header is complete. It returns false when
// the frame makes the stream undecodable.
func (s *frameStream) startFrame(h ws.Header) bool {
	if h.Opcode.IsReserved() {
		s.fail(fmt.Sprintf("frame header % x has the reserved opcode 0x%X, which no extension defines", s.hdr[:s.hdrLen], uint8(h.Opcode)))
		return false
	}
	s.h = h
	s.inPayload = true
	s.left = h.Length
	s.maskPos = 0
	s.payload = s.payload[:0]
	// A data frame is kept whole while its message stays within the limit, so that the
	// message can be decoded; otherwise only what is shown is kept.
	if h.Opcode.IsControl() {
		s.keepAll = h.Length <= s.limits.maxMessage
	} else {
		size := h.Length
		if h.Opcode == ws.OpContinuation {
			size += s.msgSize
		}
		s.keepAll = size <= s.limits.maxMessage && !(h.Opcode == ws.OpContinuation && s.msgTooBig)
	}
	return true // feed ends the frame, at once when it has no payload
}

// takePayload keeps (unmasked) what it needs of the next payload bytes.
func (s *frameStream) takePayload(b []byte) {
	keep := b
	if !s.keepAll {
		keep = b[:max(0, min(len(b), s.limits.maxShow-len(s.payload)))]
	}
	if len(keep) > 0 {
		start := len(s.payload)
		s.payload = append(s.payload, keep...)
		if s.h.Masked {
			ws.MaskBytes(s.h.Mask, s.maskPos, s.payload[start:])
		}
	}
	s.maskPos = (s.maskPos + len(b)) & 3
}

// endFrame describes the frame just read, and the message it ends.
func (s *frameStream) endFrame() {
	h := s.h
	s.inPayload = false
	s.frames++
	header := s.hdr[:s.hdrLen]
	s.hdrLen = 0
	ev := &traceEvent{Conn: s.conn, Dir: s.dir, Time: s.at, Kind: "frame"}
	f := &frameRecord{
		Fin:        h.Fin,
		Rsv1:       h.Rsv&ws.Rsv1 != 0,
		Rsv2:       h.Rsv&ws.Rsv2 != 0,
		Rsv3:       h.Rsv&ws.Rsv3 != 0,
		Opcode:     uint8(h.Opcode),
		OpcodeName: h.Opcode.String(),
		Masked:     h.Masked,
		Length:     h.Length,
		Header:     hex.EncodeToString(header),
	}
	if h.Masked {
		f.MaskKey = hex.EncodeToString(h.Mask[:])
	}
	f.LengthField = header[1] & 0x7F
	switch f.LengthField {
	case 126:
		f.LengthEncoding = "16-bit"
		if h.Length <= 125 {
			ev.Problems = append(ev.Problems, "non-minimal length encoding: 16-bit length for a payload of at most 125 bytes")
		}
	case 127:
		f.LengthEncoding = "64-bit"
		if h.Length <= 0xFFFF {
			ev.Problems = append(ev.Problems, "non-minimal length encoding: 64-bit length for a payload of at most 65535 bytes")
		}
	default:
		f.LengthEncoding = "7-bit"
	}
	ev.Frame = f

	switch {
	case s.dir == dirC2S && !h.Masked:
		ev.Problems = append(ev.Problems, "unmasked frame from the client: a server must fail the connection (RFC 6455 §5.1)")
	case s.dir == dirS2C && h.Masked:
		ev.Problems = append(ev.Problems, "masked frame from the server: a client must fail the connection (RFC 6455 §5.1)")
	}
	if h.Rsv&(ws.Rsv2|ws.Rsv3) != 0 {
		ev.Problems = append(ev.Problems, "RSV2 or RSV3 set, which no negotiated extension defines")
	}
	if f.Rsv1 {
		switch {
		case s.inflater == nil:
			ev.Problems = append(ev.Problems, "RSV1 set without permessage-deflate negotiated")
		case h.Opcode.IsControl() || h.Opcode == ws.OpContinuation:
			ev.Problems = append(ev.Problems, "RSV1 set on a "+h.Opcode.String()+" frame: only the first frame of a data message may have it")
		}
	}

	if h.Opcode.IsControl() {
		if !h.Fin {
			ev.Problems = append(ev.Problems, "fragmented control frame")
		}
		if h.Length > 125 {
			ev.Problems = append(ev.Problems, "control frame payload over 125 bytes")
		}
		f.Payload = makePayload(s.payload, h.Length, h.Opcode != ws.OpClose && utf8.Valid(s.payload), s.limits.maxShow)
		if h.Opcode == ws.OpClose {
			f.Close, ev.Problems = closeRecordOf(s.payload, ev.Problems)
		}
		s.out.emit(ev)
		return
	}

	// A data frame: it starts, continues or ends a message.
	switch {
	case h.Opcode == ws.OpContinuation && !s.msgActive:
		ev.Problems = append(ev.Problems, "continuation frame with no message in progress")
		f.Payload = makePayload(s.payload, h.Length, false, s.limits.maxShow)
		s.out.emit(ev)
		return
	case h.Opcode != ws.OpContinuation && s.msgActive:
		ev.Problems = append(ev.Problems, fmt.Sprintf("new %s message while a fragmented message is in progress (%d frames, dropped)", h.Opcode, s.msgFrames))
		s.msgActive = false
	}
	if h.Opcode != ws.OpContinuation {
		s.msgActive = true
		s.msgOp = h.Opcode
		s.msgCompressed = f.Rsv1 && s.inflater != nil
		s.msgFrames = 0
		s.msgSize = 0
		s.msgTooBig = false
		s.msgData = s.msgData[:0]
	}
	s.msgFrames++
	s.msgSize += h.Length
	if s.keepAll && !s.msgTooBig {
		s.msgData = append(s.msgData, s.payload...)
	} else {
		s.msgTooBig = true
	}
	f.Compressed = s.msgCompressed
	f.Payload = makePayload(s.payload, h.Length, s.msgOp == ws.OpText && !s.msgCompressed, s.limits.maxShow)
	if h.Fin {
		s.msgActive = false
		s.endMessage(ev)
	}
	s.out.emit(ev)
}

// endMessage adds the message that ev's frame ends, and what it carries, to ev.
func (s *frameStream) endMessage(ev *traceEvent) {
	m := &messageRecord{Type: s.msgOp.String(), Frames: s.msgFrames, WireSize: s.msgSize, Compressed: s.msgCompressed}
	ev.Message = m
	data := s.msgData
	switch {
	case s.msgTooBig:
		m.Error = fmt.Sprintf("message of %d B on the wire is over --max-message-bytes (%d); not decoded", s.msgSize, s.limits.maxMessage)
		if s.msgCompressed && s.inflateBroken == "" {
			s.inflateBroken = "an earlier compressed message was not decoded"
		}
		return
	case s.msgCompressed && s.inflateBroken != "":
		m.Error = "cannot inflate: " + s.inflateBroken + ", and context takeover may refer to it"
		return
	case s.msgCompressed:
		out, err := s.inflater.Inflate(s.inflated[:0], data, s.limits.maxMessage)
		if err != nil {
			m.Error = "cannot inflate: " + err.Error()
			s.inflateBroken = "an earlier message did not inflate"
			return
		}
		s.inflated = out
		data = out
	}
	isText := s.msgOp == ws.OpText
	m.Payload = makePayload(data, int64(len(data)), isText, s.limits.maxShow)
	if isText && !utf8.Valid(data) {
		ev.Problems = append(ev.Problems, "text message is not valid UTF-8: a receiver must fail the connection with 1007")
	}
	if s.mode >= modeEngineIO {
		ev.EngineIO = append(ev.EngineIO, decodeEIO(data, !isText, s.sio, s.limits))
	}
}

// closeRecordOf reads a close frame's payload, adding what is wrong with it to problems.
func closeRecordOf(payload []byte, problems []string) (*closeRecord, []string) {
	c := &closeRecord{}
	switch {
	case len(payload) == 0:
	case len(payload) == 1:
		problems = append(problems, "close payload of 1 byte: a status code takes 2")
	default:
		code := binary.BigEndian.Uint16(payload)
		c.Code = int(code)
		c.CodeName = closeCodeName(code)
		c.Reason = string(payload[2:])
		if !closeCodeSendable(code) {
			problems = append(problems, fmt.Sprintf("close code %d may not be sent in a close frame", code))
		}
		if !utf8.ValidString(c.Reason) {
			problems = append(problems, "close reason is not valid UTF-8")
		}
	}
	return c, problems
}

// closeCodeSendable reports whether a close frame may carry code (RFC 6455 §7.4).
func closeCodeSendable(code uint16) bool {
	return validCloseCode(int(code))
}

// closeCodeName names a close status code for people.
func closeCodeName(code uint16) string {
	switch ws.StatusCode(code) {
	case ws.StatusNormalClosure:
		return "normal closure"
	case ws.StatusGoingAway:
		return "going away"
	case ws.StatusProtocolError:
		return "protocol error"
	case ws.StatusUnsupportedData:
		return "unsupported data"
	case ws.StatusNoStatusReceived:
		return "no status received"
	case ws.StatusAbnormalClosure:
		return "abnormal closure"
	case ws.StatusInvalidPayload:
		return "invalid payload data"
	case ws.StatusPolicyViolation:
		return "policy violation"
	case ws.StatusMessageTooBig:
		return "message too big"
	case ws.StatusMandatoryExtension:
		return "mandatory extension"
	case ws.StatusInternalError:
		return "internal error"
	case ws.StatusServiceRestart:
		return "service restart"
	case ws.StatusTryAgainLater:
		return "try again later"
	case ws.StatusBadGateway:
		return "bad gateway"
	case ws.StatusTLSHandshake:
		return "TLS handshake"
	}
	switch {
	case code >= 3000 && code <= 3999:
		return "registered"
	case code >= 4000 && code <= 4999:
		return "private use"
	}
	return ""
}

// decodeEIO decodes the Engine.IO packet of one WebSocket message (binary: it came in a
// binary frame) and, when sio is set, the Socket.IO packet in it.
func decodeEIO(data []byte, binary bool, sio *sioStream, limits decodeLimits) eioRecord {
	p, err := engineio.ParsePacket(data, binary)
	if err != nil {
		return eioRecord{Error: err.Error()}
	}
	return eioRecordOf(p, sio, limits)
}

// eioRecordOf describes an Engine.IO packet and, when sio is set, the Socket.IO packet
// its message carries.
func eioRecordOf(p engineio.Packet, sio *sioStream, limits decodeLimits) eioRecord {
	r := eioRecord{Type: p.Type.String(), TypeID: int(p.Type), Binary: p.IsBinary()}
	if p.Type == engineio.Open {
		if hs, err := engineio.ParseHandshake(p.Data); err == nil {
			r.Handshake = &hs
			return r
		}
	}
	if len(p.Data) > 0 || p.Type == engineio.Message {
		r.Data = makePayload(p.Data, int64(len(p.Data)), !p.IsBinary(), limits.maxShow)
	}
	if p.Type == engineio.Message && sio != nil {
		r.SocketIO = sio.add(p.Data, p.IsBinary())
	}
	return r
}

// sioStream puts together the Socket.IO packets of one direction of an Engine.IO session.
type sioStream struct {
	dec      socketio.Decoder
	limits   decodeLimits
	awaiting int // attachments the pending binary packet announced
	got      int // attachments received for it
}

func newSIOStream(limits decodeLimits) *sioStream {
	// A tracer shows what comes, within reason: more attachments than a server would take.
	return &sioStream{dec: socketio.Decoder{MaxAttachments: 1000}, limits: limits}
}

// add decodes the next Engine.IO message of the stream.
func (s *sioStream) add(data []byte, binary bool) *sioRecord {
	if binary {
		m, err := s.dec.Add(data, true)
		if err != nil {
			s.awaiting, s.got = 0, 0
			return &sioRecord{Error: err.Error()}
		}
		s.got++
		r := &sioRecord{Attachment: &attachmentRecord{Index: s.got, Of: s.awaiting, Data: makePayload(data, int64(len(data)), false, s.limits.maxShow)}}
		if m != nil {
			s.awaiting, s.got = 0, 0
			complete := sioRecordOf(m)
			complete.Attachment = r.Attachment
			return complete
		}
		return r
	}
	var pendingErr string
	if s.awaiting > 0 {
		// The Decoder refuses a text message while attachments are awaited; say so, and read
		// the new packet anyway.
		pendingErr = fmt.Sprintf("the previous packet got %d of its %d attachments", s.got, s.awaiting)
		s.dec.Reset()
		s.awaiting, s.got = 0, 0
	}
	p, err := socketio.ParsePacket(data, s.dec.MaxAttachments)
	if err != nil {
		return &sioRecord{Error: joinErr(pendingErr, err.Error())}
	}
	m, err := s.dec.Add(data, false)
	if err != nil {
		return &sioRecord{Error: joinErr(pendingErr, err.Error())}
	}
	if m == nil {
		s.awaiting = p.Attachments
		r := sioRecordOf(&socketio.Message{Packet: p})
		r.Event, r.Args = "", nil
		r.Data = rawJSON(p.Data)
		r.Awaiting = p.Attachments
		r.Error = pendingErr
		return r
	}
	r := sioRecordOf(m)
	r.Error = pendingErr
	return r
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// sioRecordOf describes a complete Socket.IO message.
func sioRecordOf(m *socketio.Message) *sioRecord {
	r := &sioRecord{Type: m.Type.String(), TypeID: int(m.Type), Namespace: m.Namespace, Attachments: m.Attachments}
	if m.HasID {
		id := m.ID
		r.AckID = &id
	}
	var args socketio.Args
	var err error
	switch m.Type {
	case socketio.Event, socketio.BinaryEvent:
		r.Event, args, err = socketio.EventArgs(m)
	case socketio.Ack, socketio.BinaryAck:
		args, err = socketio.AckArgs(m)
	default:
		r.Data = rawJSON(m.Data)
		return r
	}
	if err != nil {
		r.Data = rawJSON(m.Data)
		r.Error = err.Error()
		return r
	}
	r.Args = make([]json.RawMessage, args.Len())
	for i := range r.Args {
		r.Args[i] = rawJSON(args.Raw(i))
	}
	for _, b := range m.Binary {
		r.AttachmentSizes = append(r.AttachmentSizes, len(b))
	}
	return r
}

// rawJSON returns data as a json.RawMessage when it is valid JSON, else as a JSON string
// (so that the event still encodes), or nil when empty.
func rawJSON(data []byte) json.RawMessage {
	if len(data) == 0 {
		return nil
	}
	if json.Valid(data) {
		return json.RawMessage(append([]byte(nil), data...))
	}
	b, _ := json.Marshal(string(data))
	return b
}
