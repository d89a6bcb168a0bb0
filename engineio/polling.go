package engineio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
)

var (
	errPollAbandoned   = errors.New("engineio: poll connection closed prematurely")
	errPayloadTooLarge = errors.New("engineio: POST body over MaxHTTPBufferSize")
)

// poll answers a long-polling GET: at once with the queued packets, or when some arrive.
func (s *Session) poll(w http.ResponseWriter, r *http.Request) {
	srv := s.srv
	s.mu.Lock()
	if s.transport != TransportPolling {
		s.mu.Unlock()
		srv.refuse(w, r, ErrorBadRequest, "")
		return
	}
	if s.pollWake != nil {
		s.mu.Unlock()
		srv.refuse(w, r, ErrorBadRequest, "")
		s.closeNow(ReasonTransportError, errOverlap)
		return
	}
	if len(s.queue) == 0 && !s.noopPending && sessionState(s.state.Load()) == stateOpen {
		wake := make(chan struct{}, 1)
		s.pollWake = wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-r.Context().Done():
			if !errors.Is(context.Cause(r.Context()), ErrPollReleased) {
				s.mu.Lock()
				s.pollWake = nil
				s.mu.Unlock()
				s.closeNow(ReasonTransportError, errPollAbandoned)
				return
			}
			// A relayed poll released: answered now, with a noop when nothing is queued.
		}
		s.mu.Lock()
		s.pollWake = nil
		if s.transport != TransportPolling {
			// Upgraded while waiting: release the poll.
			s.mu.Unlock()
			writePayload(w, r, []byte{'0' + byte(Noop)}, -1)
			return
		}
	}
	// noopPending stays set until the upgrade ends: a client may poll once more after the
	// noop that answered its probe (engine.io-client pauses polling only then), and that
	// poll must not wait for the next ping either.
	var batch []outPacket
	if sessionState(s.state.Load()) == stateClosed {
		// The client that closed the session gets a noop for its pending poll, as from the
		// Node server; a client whose session the server ended gets the close packet.
		t := Close
		if s.reason == ReasonTransportClose {
			t = Noop
		}
		batch = []outPacket{{Packet: Packet{Type: t}}}
	} else {
		batch = s.takeLocked(int(srv.cfg.maxBuffer))
		switch {
		case len(batch) > 0:
		case sessionState(s.state.Load()) == stateClosing:
			// The close packet goes alone, once the queue is out: a client handles a close
			// packet before the Socket.IO packets of the same response, so it would see
			// "transport close" before the server's DISCONNECT.
			batch = []outPacket{{Packet: Packet{Type: Close}}}
		default:
			batch = []outPacket{{Packet: Packet{Type: Noop}}}
		}
		if sessionState(s.state.Load()) == stateClosing {
			s.armLocked(min(srv.cfg.pingTimeout, pollingCloseGrace)) // for the next poll
		}
	}
	s.mu.Unlock()

	buf := getPayloadBuffer()
	body := (*buf)[:0]
	compress := false
	closing := false
	for i, p := range batch {
		if i > 0 {
			body = append(body, separator)
		}
		body = AppendPayload(body, []Packet{p.Packet})
		compress = compress || p.compress
		closing = closing || p.Type == Close
	}
	threshold := -1
	if compress {
		threshold = srv.cfg.compressionThreshold
	}
	writePayload(w, r, body, threshold)
	*buf = body
	putPayloadBuffer(buf)
	if o := srv.Observer; o != nil {
		if n, size := countMessages(batch); n > 0 {
			o.MessagesSent(TransportPolling, n, size)
		}
	}

	s.mu.Lock()
	s.written(batch)
	s.mu.Unlock()
	if closing {
		s.closeNow(s.closeReason(), nil)
	}
}

// closeReason returns the reason given when closing began.
func (s *Session) closeReason() CloseReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// takeLocked removes from the queue the packets that fit in one polling response of at most
// limit bytes (at least one packet) and returns them.
func (s *Session) takeLocked(limit int) []outPacket {
	n, size := 0, 0
	for n < len(s.queue) {
		l := payloadLen(s.queue[n].Packet)
		if n > 0 {
			l++
		}
		if n > 0 && size+l > limit {
			break
		}
		size += l
		n++
	}
	batch := make([]outPacket, n)
	copy(batch, s.queue[:n])
	clear(s.queue[:n])
	if n == len(s.queue) {
		s.queue = s.queue[:0]
	} else {
		s.queue = append(s.queue[:0], s.queue[n:]...)
	}
	return batch
}

// written accounts for packets taken from the queue and now written.
func (s *Session) written(batch []outPacket) {
	for _, p := range batch {
		s.queuedBytes -= len(p.Data)
	}
	s.signalDrainLocked()
}

// post reads a client's POST: its packets, in order.
func (s *Session) post(w http.ResponseWriter, r *http.Request) {
	srv := s.srv
	s.mu.Lock()
	if s.transport != TransportPolling {
		s.mu.Unlock()
		srv.refuse(w, r, ErrorBadRequest, "")
		return
	}
	if s.posting {
		s.mu.Unlock()
		srv.refuse(w, r, ErrorBadRequest, "")
		s.closeNow(ReasonTransportError, errOverlap)
		return
	}
	s.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.posting = false
		s.mu.Unlock()
	}()

	limit := srv.cfg.maxBuffer
	if r.ContentLength > limit {
		tooLarge(w, s)
		return
	}
	buf := getPayloadBuffer()
	defer putPayloadBuffer(buf)
	body, err := readAtMost(r.Body, (*buf)[:0], limit, r.ContentLength)
	*buf = body[:0]
	if err != nil {
		if errors.Is(err, errPayloadTooLarge) {
			tooLarge(w, s)
			return
		}
		s.closeNow(ReasonTransportError, fmt.Errorf("engineio: reading POST body: %w", err))
		return
	}
	var sc PayloadScanner
	sc.Reset(body, 0)
	for sc.Scan() {
		if !s.receive(sc.Packet(), TransportPolling) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		srv.refuse(w, r, ErrorBadRequest, "")
		s.closeNow(ReasonParseError, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	_, _ = io.WriteString(w, "ok")
}

// tooLarge refuses a POST body over the limit and closes the session.
func tooLarge(w http.ResponseWriter, s *Session) {
	w.Header().Set("Connection", "close") // the rest of the body is not read
	http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
	s.closeNow(ReasonTransportError, errPayloadTooLarge)
}

// readAtMost appends r's content to dst, failing with errPayloadTooLarge as soon as it goes
// past limit bytes, so that no more than limit+1 bytes are ever read.
func readAtMost(r io.Reader, dst []byte, limit, hint int64) ([]byte, error) {
	if hint > 0 && int64(cap(dst)) <= hint {
		dst = make([]byte, 0, hint+1) // +1: the read that finds the end
	}
	lr := io.LimitedReader{R: r, N: limit + 1}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := lr.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > limit {
			return dst, errPayloadTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// writePayload writes a polling response body, compressed when it has at least threshold
// bytes (threshold < 0: never) and the client accepts gzip or deflate.
func writePayload(w http.ResponseWriter, r *http.Request, body []byte, threshold int) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	if threshold >= 0 && len(body) >= threshold {
		if enc := acceptedEncoding(r.Header.Get("Accept-Encoding")); enc != "" {
			buf := getPayloadBuffer()
			out := bytes.NewBuffer((*buf)[:0])
			compressTo(out, enc, body)
			h.Set("Content-Encoding", enc)
			h.Set("Content-Length", strconv.Itoa(out.Len()))
			_, _ = w.Write(out.Bytes())
			*buf = out.Bytes()[:0]
			putPayloadBuffer(buf)
			return
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// acceptedEncoding returns "gzip" or "deflate" when the Accept-Encoding header allows it
// (gzip preferred, as in the Node server), or "".
func acceptedEncoding(accept string) string {
	var deflate bool
	for part := range strings.SplitSeq(accept, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if q, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok && strings.Trim(strings.TrimSpace(q), "0.") == "" {
			continue // q=0: refused
		}
		switch name {
		case "gzip", "*":
			return "gzip"
		case "deflate":
			deflate = true
		}
	}
	if deflate {
		return "deflate"
	}
	return ""
}

var (
	gzipWriters    = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed); return w }}
	deflateWriters = sync.Pool{New: func() any { w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed); return w }}
)

// compressTo writes body to out compressed with enc, "gzip" or "deflate" (HTTP's deflate
// is the zlib format, as Node's zlib.createDeflate writes it).
func compressTo(out *bytes.Buffer, enc string, body []byte) {
	if enc == "gzip" {
		zw := gzipWriters.Get().(*gzip.Writer)
		zw.Reset(out)
		_, _ = zw.Write(body)
		_ = zw.Close()
		gzipWriters.Put(zw)
		return
	}
	fw := deflateWriters.Get().(*zlib.Writer)
	fw.Reset(out)
	_, _ = fw.Write(body)
	_ = fw.Close()
	deflateWriters.Put(fw)
}

// payloadBuffers holds the buffers of polling bodies between requests; buffers that grew
// past maxPooledPayload are left to the garbage collector.
var payloadBuffers sync.Pool

const maxPooledPayload = 64 << 10

func getPayloadBuffer() *[]byte {
	if b, ok := payloadBuffers.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

func putPayloadBuffer(b *[]byte) {
	if cap(*b) <= maxPooledPayload {
		*b = (*b)[:0]
		payloadBuffers.Put(b)
	}
}
