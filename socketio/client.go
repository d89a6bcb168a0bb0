package socketio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// The Go client: a Manager holds one Engine.IO connection (engineio.Client) and the
// ClientSockets that share it, one per namespace; it dials, routes the packets it reads to
// the socket of their namespace, and reconnects with an exponential backoff when the
// connection is lost. Its behaviour follows socket.io-client 4.x (Manager and Socket).

// Defaults of ManagerOptions.
const (
	DefaultReconnectionDelay    = time.Second
	DefaultReconnectionDelayMax = 5 * time.Second
	DefaultRandomizationFactor  = 0.5
	DefaultDialTimeout          = 20 * time.Second
)

// ErrReconnectFailed is matched (errors.Is) by the error that ends ClientSocket.Connect, and
// pending EmitWithAck calls, when the Manager has used up ReconnectionAttempts without
// getting a connection. The error also wraps the last attempt's dial error.
var ErrReconnectFailed = errors.New("socketio: reconnection attempts exhausted")

// The disconnect reasons of the client side, as socket.io-client names them. The reasons of
// a lost connection are Engine.IO's close reasons (engineio.ReasonTransportClose,
// ReasonTransportError, ReasonPingTimeout, ReasonParseError), passed on as they are.
const (
	// ReasonIOServerDisconnect: the server disconnected the socket (a DISCONNECT packet);
	// the socket does not reconnect.
	ReasonIOServerDisconnect = "io server disconnect"
	// ReasonIOClientDisconnect: the application called ClientSocket.Disconnect or
	// Manager.Close.
	ReasonIOClientDisconnect = "io client disconnect"
)

// ManagerOptions configure a Manager. The zero value is socket.io-client's defaults:
// reconnection without limit, 1 s doubling up to 5 s with ±50 % jitter, a 20 s dial timeout.
type ManagerOptions struct {
	// Engine configures the Engine.IO connection. Its Path defaults to DefaultPath
	// ("/socket.io/"); OnMessage, OnUpgrade and OnClose belong to the Manager and are
	// ignored. Its Logger defaults to the Manager's.
	Engine engineio.ClientOptions
	// NoReconnect turns automatic reconnection off.
	NoReconnect bool
	// ReconnectionAttempts bounds the reconnection attempts in a row (0: no bound); when
	// they are used up the Manager gives up (OnReconnectFailed, ErrReconnectFailed).
	ReconnectionAttempts int
	// ReconnectionDelay is the delay before the first attempt, doubled for each following
	// one (0: DefaultReconnectionDelay).
	ReconnectionDelay time.Duration
	// ReconnectionDelayMax is the ceiling of the doubled delay (0:
	// DefaultReconnectionDelayMax).
	ReconnectionDelayMax time.Duration
	// RandomizationFactor is the jitter: each delay is moved by a random amount of up to
	// this fraction of itself, up or down (0: DefaultRandomizationFactor; negative: no
	// jitter; at most 1).
	RandomizationFactor float64
	// Timeout bounds one connection attempt, the Engine.IO handshake (0:
	// DefaultDialTimeout).
	Timeout time.Duration
	// MaxAttachments bounds the binary attachments of one incoming packet (0:
	// DefaultMaxAttachments). Their total size is bounded by Engine.ReadLimit (0:
	// engineio.DefaultClientReadLimit), the limit of each single message.
	MaxAttachments int
	// Logger receives a line for each connection closed on a protocol error, and debug
	// lines (nil: slog.Default()).
	Logger *slog.Logger
}

// Manager is a Socket.IO client connection to one server: one Engine.IO connection that the
// ClientSockets of several namespaces share (multiplexing), opened when the first socket
// opens and closed when the last one disconnects. When the connection is lost for any
// reason other than the application's own Close or Disconnect, the Manager reconnects after
// a backoff delay, and every socket that was active sends its CONNECT again on the new
// connection.
//
// Concurrency: every method is safe to call from any goroutine, handlers included. The
// Manager's handlers (OnOpen, OnClose, OnReconnect*) run one at a time, in order, on a
// goroutine of the Manager's own, never on the goroutine that reads the connection; they
// are not ordered with the handlers of its sockets, which run on the sockets' goroutines.
// Register handlers before opening a socket: one added later sees only later events.
type Manager struct {
	url            string
	engineOpts     engineio.ClientOptions
	noReconnect    bool
	maxAttempts    int
	timeout        time.Duration
	maxAttachments int
	maxAttachBytes int64
	logger         *slog.Logger

	events callQueue // the Manager's handlers

	hmu         sync.Mutex
	onOpen      []func()
	onClose     []func(reason string, err error)
	onAttempt   []func(attempt int)
	onReconnect []func(attempt int)
	onRecError  []func(err error)
	onFailed    []func()

	mu            sync.Mutex
	sockets       map[string]*ClientSocket // by namespace
	order         []*ClientSocket          // sockets in creation order
	state         managerState
	cur           *engineConn // the connection being dialed or open; nil when closed
	skipReconnect bool        // set by Close and by the last socket's Disconnect
	reconnecting  bool        // a reconnection timer or attempt is under way
	backoff       backoff
	timer         *time.Timer
	timerGen      uint64        // invalidates a timer that fires after it was stopped
	dialCancel    func()        // cancels the dial in flight
	dialDone      chan struct{} // closed when the dial goroutine has finished
}

type managerState int

const (
	stateClosed managerState = iota
	stateOpening
	stateOpen
)

// engineConn is one Engine.IO connection of a Manager, from its dial to its end. Its
// callbacks run on the connection's reading goroutine.
type engineConn struct {
	m      *Manager
	client atomic.Pointer[engineio.Client] // set once the dial returned
	dead   atomic.Bool                     // the Manager is done with it
	dec    Decoder                         // used by the reading goroutine only
}

// NewManager returns a Manager for the server at rawURL (http, https, ws or wss; the path
// is not used: the Engine.IO path is opts.Engine.Path, the namespace is chosen with
// Socket). Nothing is dialed until a socket opens.
func NewManager(rawURL string, opts *ManagerOptions) *Manager {
	var o ManagerOptions
	if opts != nil {
		o = *opts
	}
	if o.Engine.Path == "" {
		o.Engine.Path = DefaultPath
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Engine.Logger == nil {
		o.Engine.Logger = o.Logger
	}
	o.Engine.OnMessage, o.Engine.OnUpgrade, o.Engine.OnClose = nil, nil, nil
	if o.ReconnectionDelay <= 0 {
		o.ReconnectionDelay = DefaultReconnectionDelay
	}
	if o.ReconnectionDelayMax <= 0 {
		o.ReconnectionDelayMax = DefaultReconnectionDelayMax
	}
	switch {
	case o.RandomizationFactor == 0:
		o.RandomizationFactor = DefaultRandomizationFactor
	case o.RandomizationFactor < 0:
		o.RandomizationFactor = 0
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultDialTimeout
	}
	if o.MaxAttachments <= 0 {
		o.MaxAttachments = DefaultMaxAttachments
	}
	if o.Engine.ReadLimit <= 0 {
		o.Engine.ReadLimit = engineio.DefaultClientReadLimit
	}
	return &Manager{
		url:            rawURL,
		engineOpts:     o.Engine,
		noReconnect:    o.NoReconnect,
		maxAttempts:    max(o.ReconnectionAttempts, 0),
		timeout:        o.Timeout,
		maxAttachments: o.MaxAttachments,
		maxAttachBytes: o.Engine.ReadLimit,
		logger:         o.Logger,
		sockets:        make(map[string]*ClientSocket),
		backoff:        newBackoff(o.ReconnectionDelay, o.ReconnectionDelayMax, o.RandomizationFactor),
	}
}

// Dial opens a socket on a Manager of its own: rawURL names the server and, in its path,
// the namespace ("http://host:3000/admin": namespace "/admin"; no path: "/"); the
// Engine.IO path is mopts.Engine.Path (DefaultPath when empty) whatever the URL's path.
// It waits, as ClientSocket.Connect does, until the socket is connected or ctx ends; on an
// error it closes the Manager and returns no socket.
//
// To share one connection among namespaces, use NewManager and Manager.Socket instead.
// The socket's Disconnect closes the Manager's connection (no other socket uses it).
//
// (It is socket.io-client's io(url); the name Connect belongs to the packet type.)
func Dial(ctx context.Context, rawURL string, mopts *ManagerOptions, sopts *ClientSocketOptions) (*ClientSocket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("socketio: %w", err)
	}
	nsp := u.Path
	base := *u
	base.Path, base.RawPath = "", ""
	m := NewManager(base.String(), mopts)
	s := m.Socket(nsp, sopts)
	if err := s.Connect(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return s, nil
}

// Socket returns the Manager's socket for namespace ("" and "/" are the main namespace; a
// name without a leading slash gets one), creating it on first use: the same namespace
// always gives the same socket, and opts count only on its first call (nil: defaults). The
// socket is not opened: call its Open or Connect.
func (m *Manager) Socket(namespace string, opts *ClientSocketOptions) *ClientSocket {
	if namespace == "" || namespace[0] != '/' {
		namespace = "/" + namespace
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sockets[namespace]; s != nil {
		return s
	}
	s := newClientSocket(m, namespace, opts)
	m.sockets[namespace] = s
	m.order = append(m.order, s)
	return s
}

// OnOpen adds a handler called each time the Engine.IO connection opens (first
// connection and reconnections), before the sockets' CONNECT answers arrive.
func (m *Manager) OnOpen(h func()) {
	m.hmu.Lock()
	m.onOpen = append(m.onOpen, h)
	m.hmu.Unlock()
}

// OnClose adds a handler called each time the Engine.IO connection ends, with the reason
// (an engineio.CloseReason as a string, "parse error" for a malformed packet, "forced
// close" when the Manager closed it) and the error behind it, if any.
func (m *Manager) OnClose(h func(reason string, err error)) {
	m.hmu.Lock()
	m.onClose = append(m.onClose, h)
	m.hmu.Unlock()
}

// OnReconnectAttempt adds a handler called before each reconnection attempt, with its
// number (1 for the first attempt after a connection was lost).
func (m *Manager) OnReconnectAttempt(h func(attempt int)) {
	m.hmu.Lock()
	m.onAttempt = append(m.onAttempt, h)
	m.hmu.Unlock()
}

// OnReconnect adds a handler called when a reconnection attempt succeeded, with the
// number of attempts it took.
func (m *Manager) OnReconnect(h func(attempt int)) {
	m.hmu.Lock()
	m.onReconnect = append(m.onReconnect, h)
	m.hmu.Unlock()
}

// OnReconnectError adds a handler called with the error of each failed reconnection
// attempt.
func (m *Manager) OnReconnectError(h func(err error)) {
	m.hmu.Lock()
	m.onRecError = append(m.onRecError, h)
	m.hmu.Unlock()
}

// OnReconnectFailed adds a handler called when ReconnectionAttempts attempts in a row have
// failed and the Manager stops trying.
func (m *Manager) OnReconnectFailed(h func()) {
	m.hmu.Lock()
	m.onFailed = append(m.onFailed, h)
	m.hmu.Unlock()
}

// Engine returns the open Engine.IO connection, or nil while there is none (not yet
// dialed, dialing, or waiting to reconnect). Closing it makes the Manager reconnect, as
// any connection loss does.
func (m *Manager) Engine() *engineio.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != stateOpen || m.cur == nil {
		return nil
	}
	return m.cur.client.Load()
}

// Close disconnects every socket (each connected one sends its DISCONNECT and gets
// OnDisconnect with "io client disconnect"), stops reconnecting, closes the Engine.IO
// connection and waits until it has ended (at most a few seconds, for the server to take
// what is queued). Pending EmitWithAck calls fail with ErrDisconnected; emits buffered
// while disconnected are kept. A socket's Open or Connect opens the Manager again.
//
// Close may be called from any handler.
func (m *Manager) Close() {
	m.mu.Lock()
	sockets := append([]*ClientSocket(nil), m.order...)
	m.mu.Unlock()
	for _, s := range sockets {
		s.disconnect()
	}
	m.shutdown(true)
}

// socketInactive closes the connection when no socket wants it any more.
func (m *Manager) socketInactive() {
	m.mu.Lock()
	for _, s := range m.order {
		if s.isActive() {
			m.mu.Unlock()
			return
		}
	}
	m.mu.Unlock()
	m.shutdown(false)
}

// shutdown stops reconnecting and closes the connection, reason "forced close"; with wait
// it returns once the dial in flight and the connection's goroutines have ended.
func (m *Manager) shutdown(wait bool) {
	m.mu.Lock()
	m.skipReconnect = true
	m.reconnecting = false
	m.stopTimerLocked()
	m.backoff.reset()
	if m.dialCancel != nil {
		m.dialCancel()
	}
	dialDone := m.dialDone
	ec := m.cur
	m.mu.Unlock()
	if ec != nil {
		m.engineClosed(ec, string(engineio.ReasonForcedClose), nil)
	}
	if !wait {
		return
	}
	if dialDone != nil {
		<-dialDone
	}
	if ec != nil {
		if c := ec.client.Load(); c != nil {
			<-c.Done()
		}
	}
}

func (m *Manager) stopTimerLocked() {
	m.timerGen++
	if m.timer != nil {
		m.timer.Stop()
		m.timer = nil
	}
}

// openSocket connects s: on the open connection at once, else once the connection opens.
func (m *Manager) openSocket(s *ClientSocket) {
	m.mu.Lock()
	switch m.state {
	case stateOpen:
		ec := m.cur
		m.mu.Unlock()
		s.sendConnect(ec)
		return
	case stateClosed:
		if !m.reconnecting {
			m.openLocked()
		}
	}
	m.mu.Unlock()
}

// openLocked starts dialing a new connection, when there is none.
func (m *Manager) openLocked() {
	if m.state != stateClosed {
		return
	}
	m.state = stateOpening
	m.skipReconnect = false
	ec := &engineConn{m: m, dec: Decoder{MaxAttachments: m.maxAttachments, MaxAttachmentBytes: m.maxAttachBytes}}
	m.cur = ec
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	done := make(chan struct{})
	m.dialCancel, m.dialDone = cancel, done
	opts := m.engineOpts
	opts.OnMessage = ec.onMessage
	opts.OnClose = ec.onClose
	go func() {
		defer close(done)
		c, err := engineio.Dial(ctx, m.url, &opts)
		cancel()
		if !m.dialed(ec, c, err) && c != nil {
			// Closed while dialing: the connection is not wanted.
			_ = c.Close()
			<-c.Done()
		}
	}()
}

// dialed takes the result of a dial. It reports false when the Manager no longer wants
// the connection.
func (m *Manager) dialed(ec *engineConn, c *engineio.Client, err error) bool {
	m.mu.Lock()
	if m.cur != ec {
		m.mu.Unlock()
		return false
	}
	m.dialCancel = nil
	if err != nil {
		m.cur, m.state = nil, stateClosed
		wasReconnecting := m.reconnecting
		m.reconnecting = false
		var failed bool
		if wasReconnecting || m.backoff.attempts == 0 {
			failed = m.reconnectLocked()
		}
		will := m.reconnecting
		sockets := append([]*ClientSocket(nil), m.order...)
		if wasReconnecting {
			m.events.post(func() {
				for _, h := range snapshot(&m.hmu, &m.onRecError) {
					h(err)
				}
			})
		}
		if failed {
			m.postFailed()
		}
		m.mu.Unlock()
		m.logger.Debug("socketio: dial failed", "url", m.url, "error", err, "retry", will)
		endErr := err
		if failed {
			endErr = fmt.Errorf("%w: %w", ErrReconnectFailed, err)
		}
		for _, s := range sockets {
			s.dialFailed(err, endErr, will)
		}
		return true
	}
	ec.client.Store(c)
	m.state = stateOpen
	wasReconnecting := m.reconnecting
	attempt := m.backoff.attempts
	if wasReconnecting {
		m.reconnecting = false
		m.backoff.reset()
	}
	sockets := append([]*ClientSocket(nil), m.order...)
	m.events.post(func() {
		for _, h := range snapshot(&m.hmu, &m.onOpen) {
			h()
		}
	})
	if wasReconnecting {
		m.events.post(func() {
			for _, h := range snapshot(&m.hmu, &m.onReconnect) {
				h(attempt)
			}
		})
	}
	m.mu.Unlock()
	for _, s := range sockets {
		if s.isActive() {
			s.sendConnect(ec)
		}
	}
	return true
}

// snapshot returns a handler list as it is now, read under mu.
func snapshot[T any](mu *sync.Mutex, list *[]T) []T {
	mu.Lock()
	defer mu.Unlock()
	return *list
}

func (m *Manager) postFailed() {
	m.events.post(func() {
		for _, h := range snapshot(&m.hmu, &m.onFailed) {
			h()
		}
	})
}

// reconnectLocked schedules the next reconnection attempt after the backoff delay. It
// reports true when the attempts are used up: the Manager then gives up.
func (m *Manager) reconnectLocked() (failed bool) {
	if m.reconnecting || m.skipReconnect || m.noReconnect {
		return false
	}
	if m.maxAttempts > 0 && m.backoff.attempts >= m.maxAttempts {
		m.backoff.reset()
		return true
	}
	d := m.backoff.duration()
	m.reconnecting = true
	m.stopTimerLocked()
	gen := m.timerGen
	m.timer = time.AfterFunc(d, func() { m.attempt(gen) })
	return false
}

// attempt runs when the backoff delay has passed: it dials again.
func (m *Manager) attempt(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.timerGen || m.skipReconnect || !m.reconnecting {
		return
	}
	m.timer = nil
	n := m.backoff.attempts
	m.events.post(func() {
		for _, h := range snapshot(&m.hmu, &m.onAttempt) {
			h(n)
		}
	})
	m.openLocked()
}

// socketFor returns the socket of a namespace, or nil.
func (m *Manager) socketFor(nsp string) *ClientSocket {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sockets[nsp]
}

// engineClosed handles the end of ec, whatever ended it: the sockets on it disconnect with
// reason, and the Manager reconnects unless told not to.
func (m *Manager) engineClosed(ec *engineConn, reason string, cause error) {
	m.mu.Lock()
	if m.cur != ec {
		m.mu.Unlock()
		return
	}
	ec.dead.Store(true)
	m.cur, m.state = nil, stateClosed
	if m.dialCancel != nil {
		m.dialCancel()
		m.dialCancel = nil
	}
	m.reconnecting = false
	m.backoff.reset()
	failed := false
	if !m.skipReconnect {
		failed = m.reconnectLocked()
	}
	will := m.reconnecting
	sockets := append([]*ClientSocket(nil), m.order...)
	m.events.post(func() {
		for _, h := range snapshot(&m.hmu, &m.onClose) {
			h(reason, cause)
		}
	})
	if failed {
		m.postFailed()
	}
	m.mu.Unlock()
	for _, s := range sockets {
		s.engineClosed(ec, reason, will)
	}
	if c := ec.client.Load(); c != nil {
		_ = c.Close() // ErrClientClosed when it ended by itself
	}
}

// onMessage handles one Engine.IO message, on the connection's reading goroutine.
func (ec *engineConn) onMessage(data []byte, binary bool) {
	if ec.dead.Load() {
		return
	}
	msg, err := ec.dec.Add(data, binary)
	if err != nil {
		ec.protocolError(err)
		return
	}
	if msg == nil {
		return // waiting for attachments
	}
	s := ec.m.socketFor(msg.Namespace)
	if s == nil {
		return // no socket there: ignored, as socket.io-client does
	}
	if err := s.onPacket(ec, msg); err != nil {
		ec.protocolError(err)
	}
}

// protocolError closes a connection on which the server broke the protocol, with the
// reason "parse error"; the Manager reconnects.
func (ec *engineConn) protocolError(err error) {
	ec.m.logger.Info("socketio: closing the connection on a protocol error", "url", ec.m.url, "error", err)
	ec.m.engineClosed(ec, string(engineio.ReasonParseError), err)
}

// onClose is the connection's OnClose.
func (ec *engineConn) onClose(reason engineio.CloseReason, cause error) {
	ec.m.engineClosed(ec, string(reason), cause)
}

// send writes a packet and its attachments, atomically.
func (ec *engineConn) send(p *outPacket) error {
	c := ec.client.Load()
	if c == nil || ec.dead.Load() {
		return engineio.ErrClientClosed
	}
	if len(p.attachments) == 0 {
		return c.Send(p.text, engineio.Text)
	}
	batch := make([]engineio.Outgoing, 0, 1+len(p.attachments))
	batch = append(batch, engineio.Outgoing{Data: p.text})
	for _, a := range p.attachments {
		batch = append(batch, engineio.Outgoing{Data: a, Binary: true})
	}
	return c.SendBatch(batch, engineio.Text)
}

// callQueue runs functions one at a time, in the order posted, on a goroutine that exists
// only while there is work. post never waits.
type callQueue struct {
	mu      sync.Mutex
	calls   []func()
	running bool
}

func (q *callQueue) post(f func()) {
	q.mu.Lock()
	q.calls = append(q.calls, f)
	if !q.running {
		q.running = true
		go q.run()
	}
	q.mu.Unlock()
}

func (q *callQueue) run() {
	for {
		q.mu.Lock()
		if len(q.calls) == 0 {
			q.running = false
			q.calls = nil
			q.mu.Unlock()
			return
		}
		f := q.calls[0]
		q.calls[0] = nil
		q.calls = q.calls[1:]
		q.mu.Unlock()
		f()
	}
}
