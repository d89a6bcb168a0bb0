package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/duplexio/duplex/ws"
)

// DefaultPath is where a Server answers when Server.Path is empty.
const DefaultPath = "/engine.io/"

// The transports, as named in the transport query parameter and in Server.Transports.
const (
	TransportPolling   = "polling"
	TransportWebSocket = "websocket"
)

// The defaults of the Server options, those of the Node server.
const (
	DefaultPingInterval             = 25 * time.Second
	DefaultPingTimeout              = 20 * time.Second
	DefaultUpgradeTimeout           = 10 * time.Second
	DefaultMaxHTTPBufferSize        = 1_000_000
	DefaultHTTPCompressionThreshold = 1024
	DefaultMaxQueuedBytes           = 4 << 20
	DefaultMaxQueuedPackets         = 4096
)

// Server is an Engine.IO v4 server: an http.Handler that accepts sessions over HTTP
// long-polling and WebSocket, upgrades polling sessions to WebSocket, keeps them alive with
// heartbeats and hands each session to OnConnection.
//
// Set the fields before the first request and do not change them afterwards. ServeHTTP,
// Shutdown and SessionCount are safe to call from any goroutine.
//
// The zero value, with OnConnection set, serves with the Node server's defaults.
type Server struct {
	// Path is the URL path prefix the server answers under (empty: DefaultPath). Requests
	// whose path does not start with it get 404, so the server can be mounted at the root
	// of a mux or at Path itself. Socket.IO uses "/socket.io/".
	Path string

	// PingInterval is the time between two pings of the server (0: DefaultPingInterval).
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong that answers a ping before it
	// closes the session with ReasonPingTimeout (0: DefaultPingTimeout).
	PingTimeout time.Duration
	// UpgradeTimeout bounds an upgrade from polling to WebSocket, from the WebSocket
	// handshake to the client's upgrade packet (0: DefaultUpgradeTimeout). A WebSocket that
	// does not complete it in time is closed and the session stays on polling.
	UpgradeTimeout time.Duration

	// MaxHTTPBufferSize is the largest POST body and the largest WebSocket message accepted,
	// in bytes (0: DefaultMaxHTTPBufferSize); the handshake announces it as maxPayload.
	// A client that sends more is refused (413 over polling) and its session is closed.
	// The server also keeps each of its polling responses within it.
	MaxHTTPBufferSize int64

	// Transports lists the transports clients may use: TransportPolling, TransportWebSocket
	// (nil: both). A request for another one is refused with ErrorTransportUnknown.
	Transports []string
	// DisableUpgrades keeps every session on the transport it opened with: the handshake
	// offers no upgrade and upgrade requests are refused.
	DisableUpgrades bool

	// CORS, when set, adds Cross-Origin Resource Sharing headers to the polling answers and
	// answers preflight OPTIONS requests. Browsers do not apply CORS to WebSocket: use
	// AllowRequest to check the Origin of WebSocket handshakes.
	CORS *CORSOptions
	// Cookie, when set, is the template of a cookie sent with the handshake answer, whose
	// value is the session id (Node's cookie option); e.g. &http.Cookie{Name: "io", Path:
	// "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}.
	Cookie *http.Cookie
	// AllowRequest, when set, is called with every handshake request (a request that opens a
	// session, on either transport). A non-nil error refuses it with HTTP 403 and
	// ErrorForbidden, the error's text as the message.
	AllowRequest func(r *http.Request) error

	// PerMessageDeflate enables WebSocket compression (RFC 7692) with clients that offer it
	// (nil: off, as in the Node server).
	PerMessageDeflate *ws.CompressionOptions
	// DisableHTTPCompression turns off the gzip or deflate encoding of polling responses,
	// which is otherwise used when the client accepts it and the body has at least
	// HTTPCompressionThreshold bytes (0: DefaultHTTPCompressionThreshold).
	DisableHTTPCompression   bool
	HTTPCompressionThreshold int

	// InitialPacket, when not nil, is sent to every new session as a text message right
	// after the open packet.
	InitialPacket []byte

	// MaxQueuedBytes and MaxQueuedPackets bound each session's outgoing queue: the packets
	// sent and not yet written to the client (0: DefaultMaxQueuedBytes,
	// DefaultMaxQueuedPackets). A Send that would go past either bound fails with
	// ErrQueueFull and closes the session with ReasonQueueFull, so a client that stops
	// reading costs the server a bounded amount of memory. (A single message larger than
	// MaxQueuedBytes is accepted when nothing else is queued.) Session.Writable and
	// Session.Drain let the sender slow down before that.
	MaxQueuedBytes   int
	MaxQueuedPackets int

	// Logger receives a line for each refused request and each session closed on an error,
	// with the peer's address (nil: slog.Default()).
	Logger *slog.Logger

	// Observer, when set, is told of sessions opening and closing, messages in and out and
	// refused requests, for metrics; see Observer. nil costs nothing.
	Observer Observer

	// Relay, when set, answers the long-polling requests for sessions this server does not
	// have, relaying them to the server of the cluster that has them, and names the
	// sessions this server opens; see SessionRelay. nil: such requests get 400 with
	// ErrorSessionIDUnknown, and clients need a sticky load balancer.
	Relay SessionRelay

	// EventLoop, when set, serves the sessions' WebSocket connections on it instead of one
	// goroutine each: an idle WebSocket session then holds no goroutine and no read buffer
	// (see ws.EventLoop). The loop belongs to the caller, who closes it after Shutdown. The
	// polling transport is unchanged (an idle poll holds only its HTTP request).
	EventLoop *ws.EventLoop

	// OnConnection is called with each new session, after its handshake is accepted and
	// before the client receives the open packet, so that no message can arrive before it
	// returns: set Session.OnMessage and Session.OnClose here. It runs on the goroutine of
	// the handshake request; it may Send.
	OnConnection func(s *Session)

	initOnce sync.Once
	cfg      config
	upgrader *ws.Upgrader

	mu       sync.Mutex
	sessions map[string]*Session
	closing  bool
	sessWG   sync.WaitGroup // one count per session until its OnClose has returned
}

// config holds the options with their defaults applied.
type config struct {
	path                 string
	pingInterval         time.Duration
	pingTimeout          time.Duration
	upgradeTimeout       time.Duration
	maxBuffer            int64
	polling, websocket   bool
	upgrades             bool
	compressionThreshold int
	maxQueuedBytes       int
	maxQueuedPackets     int
	logger               *slog.Logger
}

func (srv *Server) init() {
	srv.initOnce.Do(func() {
		c := config{
			path:                 orDefault(srv.Path, DefaultPath),
			pingInterval:         orDefault(srv.PingInterval, DefaultPingInterval),
			pingTimeout:          orDefault(srv.PingTimeout, DefaultPingTimeout),
			upgradeTimeout:       orDefault(srv.UpgradeTimeout, DefaultUpgradeTimeout),
			maxBuffer:            orDefault(srv.MaxHTTPBufferSize, DefaultMaxHTTPBufferSize),
			compressionThreshold: orDefault(srv.HTTPCompressionThreshold, DefaultHTTPCompressionThreshold),
			maxQueuedBytes:       orDefault(srv.MaxQueuedBytes, DefaultMaxQueuedBytes),
			maxQueuedPackets:     orDefault(srv.MaxQueuedPackets, DefaultMaxQueuedPackets),
			logger:               srv.Logger,
		}
		if c.logger == nil {
			c.logger = slog.Default()
		}
		c.polling = srv.Transports == nil || slices.Contains(srv.Transports, TransportPolling)
		c.websocket = srv.Transports == nil || slices.Contains(srv.Transports, TransportWebSocket)
		c.upgrades = c.polling && c.websocket && !srv.DisableUpgrades
		if srv.DisableHTTPCompression {
			c.compressionThreshold = -1
		}
		srv.cfg = c
		srv.upgrader = &ws.Upgrader{
			// Browsers do not apply CORS to WebSocket; the Node server accepts every origin
			// and leaves the check to allowRequest, and so does this one.
			CheckOrigin: func(*http.Request) bool { return true },
			ReadLimit:   c.maxBuffer,
			Compression: srv.PerMessageDeflate,
		}
		srv.sessions = make(map[string]*Session)
	})
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// ServeHTTP answers Engine.IO requests: handshakes, polls, posts and WebSocket upgrades.
// Refused requests get the protocol's error JSON ({"code":N,"message":"..."}) with HTTP 400
// (403 for ErrorForbidden); requests after Shutdown get 503. With a Relay, polling requests
// for sessions of other servers are relayed to them.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	srv.init()
	if !strings.HasPrefix(r.URL.Path, srv.cfg.path) && r.URL.Path+"/" != srv.cfg.path {
		http.NotFound(w, r)
		return
	}
	if srv.CORS != nil {
		if srv.CORS.apply(w, r) {
			return // preflight answered
		}
	}
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		srv.refuse(w, r, ErrorUnsupportedProtocolVersion, "")
		return
	}
	transport := q.Get("transport")
	if !srv.allowsTransport(transport) {
		srv.refuse(w, r, ErrorTransportUnknown, "")
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		srv.handshake(w, r, transport)
		return
	}
	s := srv.session(sid)
	if s == nil {
		if srv.Relay != nil {
			srv.relay(w, r, sid, transport)
			return
		}
		srv.refuse(w, r, ErrorSessionIDUnknown, "")
		return
	}
	if transport == TransportWebSocket {
		srv.upgrade(w, r, s)
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

func (srv *Server) allowsTransport(t string) bool {
	switch t {
	case TransportPolling:
		return srv.cfg.polling
	case TransportWebSocket:
		return srv.cfg.websocket
	}
	return false
}

// refuse answers r with an Engine.IO error.
func (srv *Server) refuse(w http.ResponseWriter, r *http.Request, code ErrorCode, message string) {
	srv.cfg.logger.Debug("engineio: request refused", "remote", r.RemoteAddr, "method", r.Method, "url", r.URL.String(), "code", int(code), "error", orDefault(message, code.Message()))
	if srv.Observer != nil {
		srv.Observer.RequestRefused(code)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code.HTTPStatus())
	_, _ = w.Write(AppendErrorJSON(nil, code, message))
}

// handshake opens a session for a request without sid.
func (srv *Server) handshake(w http.ResponseWriter, r *http.Request, transport string) {
	if transport == TransportPolling && r.Method != http.MethodGet {
		srv.refuse(w, r, ErrorBadHandshakeMethod, "")
		return
	}
	if srv.AllowRequest != nil {
		if err := srv.AllowRequest(r); err != nil {
			msg := err.Error()
			if msg == "" {
				msg = ErrorForbidden.Message()
			}
			srv.refuse(w, r, ErrorForbidden, msg)
			return
		}
	}
	if srv.isClosing() {
		http.Error(w, "engineio: server shutting down", http.StatusServiceUnavailable)
		return
	}
	id := ""
	if srv.Relay != nil {
		id = srv.Relay.NewSessionID()
	}
	if id == "" {
		id = newSessionID()
	}
	if srv.Cookie != nil {
		c := *srv.Cookie
		c.Value = id
		http.SetCookie(w, &c)
	}
	if transport == TransportWebSocket {
		conn, err := srv.upgrader.Upgrade(w, r)
		if err != nil {
			srv.cfg.logger.Debug("engineio: websocket handshake failed", "remote", r.RemoteAddr, "error", err)
			if srv.Observer != nil {
				srv.Observer.RequestRefused(ErrorBadRequest)
			}
			return
		}
		s := srv.open(id, r, TransportWebSocket)
		if s == nil {
			_ = conn.Close(ws.StatusGoingAway, "server shutting down")
			return
		}
		s.attachWebSocket(conn)
		return
	}
	s := srv.open(id, r, TransportPolling)
	if s == nil {
		http.Error(w, "engineio: server shutting down", http.StatusServiceUnavailable)
		return
	}
	s.poll(w, r)
}

// open registers a new session, queues its open packet, calls OnConnection and starts its
// heartbeat. It returns nil when the server is shutting down.
func (srv *Server) open(id string, r *http.Request, transport string) *Session {
	s := newSession(srv, id, r, transport)
	srv.mu.Lock()
	if srv.closing {
		srv.mu.Unlock()
		return nil
	}
	srv.sessions[id] = s
	srv.sessWG.Add(1)
	srv.mu.Unlock()
	if srv.Observer != nil {
		srv.Observer.SessionOpened(transport)
	}

	upgrades := []string{}
	if transport == TransportPolling && srv.cfg.upgrades {
		upgrades = []string{TransportWebSocket}
	}
	hs := Handshake{
		SID:          id,
		Upgrades:     upgrades,
		PingInterval: int(srv.cfg.pingInterval / time.Millisecond),
		PingTimeout:  int(srv.cfg.pingTimeout / time.Millisecond),
		MaxPayload:   int(srv.cfg.maxBuffer),
	}
	s.enqueueControl(Packet{Type: Open, Data: hs.AppendJSON(nil)})
	if srv.InitialPacket != nil {
		s.enqueueControl(Packet{Type: Message, Data: srv.InitialPacket})
	}
	if srv.OnConnection != nil {
		srv.OnConnection(s)
	}
	s.startHeartbeat()
	return s
}

func (srv *Server) session(id string) *Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.sessions[id]
}

// forget removes a closed session from the table.
func (srv *Server) forget(s *Session) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.mu.Unlock()
}

func (srv *Server) isClosing() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.closing
}

// SessionCount returns the number of open sessions.
func (srv *Server) SessionCount() int {
	srv.init()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// Shutdown closes every session with ReasonServerShutdown and refuses new ones with 503.
// Each session first sends what it has queued (a polling session answers its pending or
// next poll, if one comes within 2 s, with a close packet; a WebSocket session ends with
// close code 1001). Shutdown
// returns when every session is closed and its OnClose has returned, or when ctx ends,
// in which case the sessions still open are closed at once (their OnClose may still be
// running) and ctx's error is returned.
// It does not stop the HTTP server the Server is mounted on.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.init()
	srv.mu.Lock()
	srv.closing = true
	all := make([]*Session, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for _, s := range all {
		s.closeGracefully(ReasonServerShutdown)
	}
	done := make(chan struct{})
	go func() {
		srv.sessWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	srv.mu.Lock()
	all = all[:0]
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for _, s := range all {
		s.closeNow(ReasonServerShutdown, nil)
	}
	return ctx.Err()
}

// newSessionID returns 15 random bytes (120 bits) in URL-safe base64: 20 characters.
func newSessionID() string {
	var b [15]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// errOverlap is the cause of a session closed because its client sent two polls or two
// posts at once.
var errOverlap = errors.New("engineio: overlapping polling requests")
