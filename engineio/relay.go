package engineio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// SessionRelay lets the Engine.IO servers of a cluster answer each other's long-polling
// requests, so that the load balancer in front of them need not be sticky: a server that
// gets a polling request for a session it does not have gives it to its SessionRelay,
// which carries it to the server that has the session (its owner) and brings back the
// owner's answer, which the first server then gives to the client. The owner answers a
// relayed request with Server.ServeRelayed, as if the request had come to it.
//
// Only polling requests are relayed. A WebSocket upgrade request for a session of another
// server is refused with 400 (ErrorBadRequest): a client whose probe fails stays on
// polling, as engine.io-client does; the WebSocket must reach the session's owner, which
// takes a sticky balancer (or clients that open their sessions on WebSocket, which need no
// relay at all).
//
// The package adapter/redisadapter has an implementation over Redis pub/sub.
//
// Concurrency: a Server calls NewSessionID and Relay from the goroutines of its requests,
// many at once.
type SessionRelay interface {
	// NewSessionID returns the id of a new session of this server, or "" for the server's
	// own (20 characters, 120 random bits). An id must be unique in the cluster, hard to
	// guess (at least 120 random bits) and made of URL-safe characters (RFC 3986
	// unreserved); a relay may put in it what finds the owner, so that Relay needs no
	// lookup.
	NewSessionID() string
	// Relay carries req, a polling request for a session this server does not have, to
	// the server that has it and returns that server's answer. It returns an error when no
	// server has the session or none answered before ctx ended; the client then gets 400
	// with ErrorSessionIDUnknown, as from a server with no relay. ctx ends when the
	// client goes away or after the server's PingInterval+PingTimeout, the longest an
	// owner holds a poll (a ping answers it after PingInterval at the latest); a relay
	// should end the request on the owner then too.
	Relay(ctx context.Context, req *RelayedRequest) (*RelayedResponse, error)
}

// RelayedRequest is a long-polling request relayed between the servers of a cluster: see
// SessionRelay. Its fields are plain values, to be encoded by the relay as it likes.
type RelayedRequest struct {
	// SID is the session id, also in Query.
	SID string
	// Method is GET (a poll) or POST (packets from the client).
	Method string
	// Query is the raw query of the request (EIO, transport, sid, b64...).
	Query string
	// Header holds the request headers the owner uses (Accept-Encoding, Content-Type,
	// User-Agent); see RelayHeaders.
	Header http.Header
	// Body is the POST body, at most the receiving server's MaxHTTPBufferSize bytes.
	Body []byte
	// RemoteAddr is the client's address, for the owner's logs.
	RemoteAddr string
}

// RelayHeaders are the request headers a Server puts in a RelayedRequest; the others stay
// with the server that received the request.
var RelayHeaders = []string{"Accept-Encoding", "Content-Type", "User-Agent"}

// RelayedResponse is the owner's answer to a RelayedRequest.
type RelayedResponse struct {
	// Status is the HTTP status code.
	Status int
	// Header holds the response headers (Content-Type, Content-Encoding...), without
	// Content-Length, which the server that answers the client sets from Body.
	Header http.Header
	// Body is the response body: at most the owner's MaxHTTPBufferSize bytes of packets
	// (compressed when Header says so), or an Engine.IO error.
	Body []byte
}

// ErrPollReleased, as the cause of the end of the context given to ServeRelayed
// (context.WithCancelCause), releases a relayed poll instead of abandoning it: the poll is
// answered at once, with a noop packet when the session has nothing to send, and the
// session stays open. A relay releases the polls it holds for a server that stops, or asks
// the owner not to hold a poll at all by giving a context already ended so.
var ErrPollReleased = errors.New("engineio: relayed poll released")

// errNoRelayResponse is the cause logged when a relay returned neither a response nor an
// error.
var errNoRelayResponse = errors.New("engineio: the relay returned no response")

// relay answers a request for a session this server does not have through srv.Relay.
func (srv *Server) relay(w http.ResponseWriter, r *http.Request, sid, transport string) {
	if transport == TransportWebSocket {
		srv.refuse(w, r, ErrorBadRequest, "session of another server: upgrade refused")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		srv.refuse(w, r, ErrorBadRequest, "")
		return
	}
	req := &RelayedRequest{
		SID:        sid,
		Method:     r.Method,
		Query:      r.URL.RawQuery,
		Header:     make(http.Header, len(RelayHeaders)),
		RemoteAddr: r.RemoteAddr,
	}
	for _, k := range RelayHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	if r.Method == http.MethodPost {
		limit := srv.cfg.maxBuffer
		if r.ContentLength > limit {
			relayTooLarge(w)
			return
		}
		body, err := readAtMost(r.Body, nil, limit, r.ContentLength)
		if errors.Is(err, errPayloadTooLarge) {
			relayTooLarge(w)
			return
		}
		if err != nil {
			srv.cfg.logger.Debug("engineio: reading a POST body to relay", "remote", r.RemoteAddr, "sid", sid, "error", err)
			return
		}
		req.Body = body
	}
	ctx, cancel := context.WithTimeout(r.Context(), srv.cfg.pingInterval+srv.cfg.pingTimeout)
	defer cancel()
	res, err := srv.Relay.Relay(ctx, req)
	if err == nil && res == nil {
		err = errNoRelayResponse
	}
	if err != nil {
		srv.cfg.logger.Debug("engineio: relay failed", "remote", r.RemoteAddr, "method", r.Method, "sid", sid, "error", err)
		srv.refuse(w, r, ErrorSessionIDUnknown, "")
		return
	}
	h := w.Header()
	for k, v := range res.Header {
		if k != "Content-Length" {
			h[k] = v
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	status := res.Status
	if status < 100 || status > 999 {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	_, _ = w.Write(res.Body)
}

// relayTooLarge refuses a POST body over the limit; the session is on another server,
// which its client's next request closes (the client ends the session on this error).
func relayTooLarge(w http.ResponseWriter) {
	w.Header().Set("Connection", "close") // the rest of the body is not read
	http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
}

// ServeRelayed answers req, a long-polling request for one of this server's sessions that
// another server of the cluster received and relayed (see SessionRelay), as ServeHTTP
// answers the same request: with the same limits, errors and compression (when the
// relayed Accept-Encoding allows it). A GET is held until the session has packets to send
// (a ping at the latest, after PingInterval); if ctx ends first, the poll is abandoned and,
// as for a client that goes away in the middle of a poll, the session closed with
// ReasonTransportError, unless ctx's cause is ErrPollReleased. An unknown session gets 400 with ErrorSessionIDUnknown.
// ServeRelayed is safe to call from any goroutine; it blocks as long as the request.
func (srv *Server) ServeRelayed(ctx context.Context, req *RelayedRequest) *RelayedResponse {
	srv.init()
	u := &url.URL{Path: srv.cfg.path, RawQuery: req.Query}
	header := req.Header.Clone()
	if header == nil {
		header = make(http.Header)
	}
	r := (&http.Request{
		Method:        req.Method,
		URL:           u,
		RequestURI:    u.RequestURI(),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(req.Body)),
		ContentLength: int64(len(req.Body)),
		RemoteAddr:    req.RemoteAddr,
	}).WithContext(ctx)
	rec := &relayRecorder{header: make(http.Header)}
	srv.serveRelayed(rec, r, req.SID)
	rec.header.Del("Content-Length")
	return &RelayedResponse{Status: rec.statusOr200(), Header: rec.header, Body: rec.body.Bytes()}
}

func (srv *Server) serveRelayed(w http.ResponseWriter, r *http.Request, sid string) {
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		srv.refuse(w, r, ErrorUnsupportedProtocolVersion, "")
		return
	}
	if q.Get("transport") != TransportPolling || !srv.cfg.polling || q.Get("sid") != sid || sid == "" {
		srv.refuse(w, r, ErrorBadRequest, "")
		return
	}
	s := srv.session(sid)
	if s == nil {
		srv.refuse(w, r, ErrorSessionIDUnknown, "")
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.poll(w, r)
	case http.MethodPost:
		s.post(w, r)
	default:
		srv.refuse(w, r, ErrorBadRequest, "")
	}
}

// relayRecorder is the http.ResponseWriter of a relayed request: it keeps the answer.
type relayRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rr *relayRecorder) Header() http.Header { return rr.header }

func (rr *relayRecorder) WriteHeader(status int) {
	if rr.status == 0 {
		rr.status = status
	}
}

func (rr *relayRecorder) Write(p []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	return rr.body.Write(p)
}

func (rr *relayRecorder) statusOr200() int {
	if rr.status == 0 {
		return http.StatusOK
	}
	return rr.status
}
