package socketio

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/ws"
)

// DefaultPath is where a Server answers when its Engine.IO server has no Path.
const DefaultPath = "/socket.io/"

// DefaultConnectTimeout is how long a new connection may take to join its first namespace.
const DefaultConnectTimeout = 45 * time.Second

// Options configures a Server. The zero value is the Node server's defaults.
type Options struct {
	// Engine is the Engine.IO server under Socket.IO, with its transport options (ping
	// interval and timeout, MaxHTTPBufferSize, CORS, AllowRequest, ...). nil: an
	// engineio.Server with its defaults. Its Path defaults to DefaultPath; the Socket.IO
	// server sets its OnConnection.
	Engine *engineio.Server
	// EventLoop, when set, serves the WebSocket connections of the clients on it, with no
	// goroutine and no read buffer per idle client; it sets the EventLoop of Engine when that
	// has none. The loop belongs to the caller, who closes it after the server's Shutdown.
	EventLoop *ws.EventLoop
	// ConnectTimeout closes a connection that has not joined a namespace within it
	// (0: DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// NewAdapter makes the adapter of each namespace (nil: NewInMemoryAdapter).
	NewAdapter NewAdapterFunc
	// MaxAttachments bounds the binary attachments of one incoming packet (0: 10).
	MaxAttachments int
	// ConnectionStateRecovery, when set, lets a client that lost its connection get back
	// its socket (id, rooms, data) and the events it missed; see RecoveryOptions.
	ConnectionStateRecovery *RecoveryOptions
	// Logger receives a line for each connection closed on a protocol error (nil:
	// slog.Default()).
	Logger *slog.Logger
	// Observer, when set, is told of every broadcast and its fan-out, for metrics; see
	// Observer. nil costs nothing.
	Observer Observer
}

// Server is a Socket.IO v5 server: an http.Handler (at "/socket.io/" by default) that the
// official socket.io-client 4.x connects to as it does to the Node server.
//
// Register namespaces, middleware and connection handlers before serving; Of may also be
// called later. All methods are safe for concurrent use.
type Server struct {
	engine         *engineio.Server
	connectTimeout time.Duration
	newAdapter     NewAdapterFunc
	maxAttachments int
	recovery       *RecoveryOptions // nil: off; else with its defaults applied
	logger         *slog.Logger
	observer       Observer

	mu      sync.RWMutex
	nsps    map[string]*Namespace
	parents []*parentNamespace
}

// parentNamespace creates child namespaces for the names it matches.
type parentNamespace struct {
	match func(name string, auth []byte) bool
	nsp   *Namespace // holds the handlers and middleware that children inherit
}

// NewServer returns a server with the main namespace "/" ready.
func NewServer(opts *Options) *Server {
	if opts == nil {
		opts = &Options{}
	}
	srv := &Server{
		engine:         opts.Engine,
		connectTimeout: opts.ConnectTimeout,
		newAdapter:     opts.NewAdapter,
		maxAttachments: opts.MaxAttachments,
		logger:         opts.Logger,
		observer:       opts.Observer,
		nsps:           make(map[string]*Namespace),
	}
	if srv.engine == nil {
		srv.engine = &engineio.Server{}
	}
	if srv.engine.EventLoop == nil {
		srv.engine.EventLoop = opts.EventLoop
	}
	if srv.engine.Path == "" {
		srv.engine.Path = DefaultPath
	}
	if srv.connectTimeout <= 0 {
		srv.connectTimeout = DefaultConnectTimeout
	}
	if srv.newAdapter == nil {
		srv.newAdapter = NewInMemoryAdapter
	}
	if srv.maxAttachments <= 0 {
		srv.maxAttachments = 10
	}
	if srv.logger == nil {
		srv.logger = slog.Default()
	}
	if r := opts.ConnectionStateRecovery; r != nil {
		rc := *r
		if rc.MaxDisconnectionDuration <= 0 {
			rc.MaxDisconnectionDuration = DefaultMaxDisconnectionDuration
		}
		srv.recovery = &rc
	}
	srv.engine.OnConnection = func(s *engineio.Session) { newConnection(srv, s) }
	srv.Of("/")
	return srv
}

// ServeHTTP serves Engine.IO requests under the engine's Path.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { srv.engine.ServeHTTP(w, r) }

// Engine returns the Engine.IO server under this server.
func (srv *Server) Engine() *engineio.Server { return srv.engine }

// Of returns the namespace with this name ("/chat"), creating it on first use. A name
// without a leading slash gets one.
func (srv *Server) Of(name string) *Namespace {
	if name == "" || name[0] != '/' {
		name = "/" + name
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if nsp := srv.nsps[name]; nsp != nil {
		return nsp
	}
	nsp := newNamespace(srv, name, nil)
	srv.nsps[name] = nsp
	return nsp
}

// OfFunc declares dynamic namespaces: the first client to connect to a name that no
// namespace has and that match accepts (given the client's auth payload as JSON) creates
// a child namespace of that name. The returned parent holds the middleware and connection
// handlers every child inherits; broadcasting on it reaches the sockets of all children.
func (srv *Server) OfFunc(match func(name string, auth []byte) bool) *Namespace {
	parent := newNamespace(srv, "", nil)
	srv.mu.Lock()
	srv.parents = append(srv.parents, &parentNamespace{match: match, nsp: parent})
	srv.mu.Unlock()
	return parent
}

// OfRegexp is OfFunc with a regular expression matched against the name.
func (srv *Server) OfRegexp(re *regexp.Regexp) *Namespace {
	return srv.OfFunc(func(name string, _ []byte) bool { return re.MatchString(name) })
}

// namespaceFor finds the namespace a client asks for, creating a dynamic child if a parent
// matches.
func (srv *Server) namespaceFor(name string, auth []byte) *Namespace {
	srv.mu.RLock()
	nsp := srv.nsps[name]
	parents := srv.parents
	srv.mu.RUnlock()
	if nsp != nil {
		return nsp
	}
	for _, p := range parents {
		if !p.match(name, auth) {
			continue
		}
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if nsp := srv.nsps[name]; nsp != nil {
			return nsp // created meanwhile
		}
		child := newNamespace(srv, name, p.nsp)
		srv.nsps[name] = child
		p.nsp.addChild(child)
		return child
	}
	return nil
}

// Use adds middleware to the main namespace; see Namespace.Use.
func (srv *Server) Use(mw Middleware) { srv.Of("/").Use(mw) }

// OnConnection adds a connection handler to the main namespace; see Namespace.OnConnection.
func (srv *Server) OnConnection(h func(s *Socket)) { srv.Of("/").OnConnection(h) }

// To starts a broadcast on the main namespace to the sockets in rooms.
func (srv *Server) To(rooms ...Room) *BroadcastOperator { return srv.Of("/").To(rooms...) }

// In is To.
func (srv *Server) In(rooms ...Room) *BroadcastOperator { return srv.To(rooms...) }

// Except starts a broadcast on the main namespace to every socket but those in rooms.
func (srv *Server) Except(rooms ...Room) *BroadcastOperator { return srv.Of("/").Except(rooms...) }

// Volatile starts a broadcast on the main namespace that skips the sockets not ready to
// write at once.
func (srv *Server) Volatile() *BroadcastOperator { return srv.Of("/").Volatile() }

// Local starts a broadcast on the main namespace that stays on this server.
func (srv *Server) Local() *BroadcastOperator { return srv.Of("/").Local() }

// Timeout starts a broadcast on the main namespace whose acknowledgements are awaited at
// most d.
func (srv *Server) Timeout(d time.Duration) *BroadcastOperator { return srv.Of("/").Timeout(d) }

// Emit sends an event to every socket of the main namespace.
func (srv *Server) Emit(event string, args ...any) error { return srv.Of("/").Emit(event, args...) }

// Shutdown disconnects every socket with the reason "server shutting down", closes the
// connections and the adapters, and returns when they are closed or ctx ends.
func (srv *Server) Shutdown(ctx context.Context) error {
	err := srv.engine.Shutdown(ctx)
	srv.mu.RLock()
	nsps := make([]*Namespace, 0, len(srv.nsps))
	for _, nsp := range srv.nsps {
		nsps = append(nsps, nsp)
	}
	srv.mu.RUnlock()
	for _, nsp := range nsps {
		_ = nsp.adapter.Close()
	}
	return err
}
