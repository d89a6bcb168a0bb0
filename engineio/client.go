package engineio

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/duplexio/duplex/ws"
)

// DefaultClientReadLimit is the largest message a Client accepts when
// ClientOptions.ReadLimit is 0: the largest a Node server accepts by default is 1 MB, but a
// server may send more than it accepts.
const DefaultClientReadLimit = 100 << 20

// clientCloseGrace bounds how long Client.Close waits for the queue to be written and the
// server to see the close before the transport is cut.
const clientCloseGrace = 2 * time.Second

// ErrClientClosed is returned by Client.Send once Close was called or the connection ended.
var ErrClientClosed = errors.New("engineio: client closed")

// ClientOptions configure Dial. The zero value connects as engine.io-client does by
// default: a polling handshake, then an upgrade to WebSocket.
type ClientOptions struct {
	// Path is the server's Engine.IO path ("": "/engine.io/"). The path of the URL given
	// to Dial is not used.
	Path string
	// Transports lists the transports to open the connection with, tried in order until
	// one succeeds ("polling", "websocket"; nil: polling, then websocket). A connection
	// opened with polling upgrades to WebSocket when the list holds "websocket" too.
	Transports []string
	// DisableUpgrade keeps the connection on the transport it opened with.
	DisableUpgrade bool
	// Header is sent with every polling request and with the WebSocket handshake.
	Header http.Header
	// Query is added to the query of every request (after the URL's own query).
	Query url.Values
	// TLSConfig is used for https:// and wss:// URLs (nil: the defaults).
	TLSConfig *tls.Config
	// HTTPClient makes the polling requests (nil: a client of the connection's own, with
	// TLSConfig, closed with it). When it has a cookie jar, its cookies are sent with the
	// WebSocket handshake too, as sticky load balancers need.
	HTTPClient *http.Client
	// Compression offers permessage-deflate on the WebSocket transport.
	Compression bool
	// ReadLimit is the largest message, and polling response, accepted
	// (0: DefaultClientReadLimit). A larger one ends the connection with
	// ReasonTransportError.
	ReadLimit int64
	// Logger receives debug logs (nil: slog.Default()).
	Logger *slog.Logger

	// OnMessage receives each message from the server. data is valid only until it
	// returns: copy what must be kept. nil drops messages.
	OnMessage func(data []byte, binary bool)
	// OnUpgrade is called when the connection has moved to the WebSocket transport; the
	// messages delivered before came over polling, the ones after over the WebSocket.
	OnUpgrade func(transport string)
	// OnClose is called once when the connection has ended, with the reason and, when
	// there is one, the error behind it.
	OnClose func(reason CloseReason, cause error)
}

// HTTPError is the error of a handshake or polling request that the server answered with a
// status other than 200: Code and Message come from its Engine.IO error body
// ({"code":N,"message":"..."}) when it sent one (Code is -1 otherwise).
type HTTPError struct {
	StatusCode int
	Code       ErrorCode
	Message    string
}

// Error says what the server answered.
func (e *HTTPError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("engineio: server answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return fmt.Sprintf("engineio: server answered %d: %s (code %d)", e.StatusCode, e.Message, int(e.Code))
}

// newHTTPError reads the Engine.IO error of a non-200 response.
func newHTTPError(res *http.Response) *HTTPError {
	e := &HTTPError{StatusCode: res.StatusCode, Code: -1}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	var v struct {
		Code    *int   `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil && v.Code != nil {
		e.Code, e.Message = ErrorCode(*v.Code), v.Message
	}
	return e
}

// A Client is the client side of an Engine.IO connection, opened by Dial. Its methods are
// safe for concurrent use. Send never waits for the network: messages are queued and
// written in order by the connection's writer, several per request or system call.
//
// The callbacks of its ClientOptions run one at a time, in order, on the goroutine that
// reads the transport: OnMessage for each message, OnUpgrade between the last polling
// message and the first WebSocket one, OnClose once, after the last of them has returned.
// A slow OnMessage delays the reading of the next messages (hand long work to another
// goroutine). A Client holds two goroutines (reader and writer) while it is open, three
// during an upgrade.
type Client struct {
	cfg    clientConfig
	hs     Handshake
	url    *url.URL // http(s)://host/path?EIO=4 plus the options' query
	httpc  *http.Client
	ownTr  *http.Transport // the transport of a client of our own, closed at the end
	ctx    context.Context // ends the transports' requests
	cancel context.CancelFunc

	mu          sync.Mutex
	cond        *sync.Cond // signals a change of writing, polling or state
	transport   string
	conn        *ws.Conn // the WebSocket transport, once upgraded or opened on it
	probe       *ws.Conn // the WebSocket being probed during an upgrade
	queue       []outPacket
	spare       []outPacket // the last written batch's array, for the queue to reuse
	queuedBytes int
	corks       int  // Cork calls not yet matched by Uncork: sends do not wake the writer
	writing     bool // the writer holds a batch
	polling     bool // the poll loop runs
	paused      bool // an upgrade stops polling: no new GET, no new POST
	closing     bool // Close was called: the queue is flushed, then the transport closed
	closed      bool
	reason      CloseReason
	cause       error

	wake      chan struct{} // kicks the writer
	wtext     []byte        // the writer's scratch buffer for text frames
	heartbeat *time.Timer   // ends a connection the server stopped pinging
	grace     *time.Timer   // bounds Close
	workers   sync.WaitGroup
	done      chan struct{}
}

// clientConfig is ClientOptions with the defaults applied.
type clientConfig struct {
	ClientOptions
	transports []string
}

func (o *ClientOptions) config() clientConfig {
	var cfg clientConfig
	if o != nil {
		cfg.ClientOptions = *o
	}
	if cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	cfg.transports = cfg.Transports
	if len(cfg.transports) == 0 {
		cfg.transports = []string{TransportPolling, TransportWebSocket}
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultClientReadLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// Dial opens an Engine.IO connection to the server at rawURL (http, https, ws or wss; the
// scheme picks TLS, the path is opts.Path). It returns once the server's open packet has
// arrived on the first transport of opts.Transports that succeeds, or the error of each
// transport tried. ctx bounds the handshake only. A server's refusal is an *HTTPError (a
// *ws.HandshakeError for a WebSocket refused at its handshake).
func Dial(ctx context.Context, rawURL string, opts *ClientOptions) (*Client, error) {
	cfg := opts.config()
	u, err := clientURL(rawURL, cfg)
	if err != nil {
		return nil, err
	}
	for _, t := range cfg.transports {
		if t != TransportPolling && t != TransportWebSocket {
			return nil, fmt.Errorf("engineio: unknown transport %q", t)
		}
	}
	var errs []error
	for _, t := range cfg.transports {
		c := newClient(cfg, u)
		if err = c.open(ctx, t); err == nil {
			return c, nil
		}
		c.release()
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// clientURL makes the base URL of every request: http(s), the path, EIO=4 and the query.
func clientURL(rawURL string, cfg clientConfig) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("engineio: %w", err)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("engineio: URL scheme %q is not http, https, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("engineio: URL %q has no host", rawURL)
	}
	q := u.Query()
	for k, vs := range cfg.Query {
		q[k] = append(q[k], vs...)
	}
	q.Set("EIO", "4")
	u.Path, u.RawPath, u.RawQuery, u.Fragment = cfg.Path, "", q.Encode(), ""
	return u, nil
}

func newClient(cfg clientConfig, u *url.URL) *Client {
	c := &Client{cfg: cfg, url: u, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.cond = sync.NewCond(&c.mu)
	c.httpc = cfg.HTTPClient
	if c.httpc == nil {
		c.ownTr = &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			TLSClientConfig:     cfg.TLSConfig,
			MaxIdleConnsPerHost: 2,
			IdleConnTimeout:     90 * time.Second,
		}
		c.httpc = &http.Client{Transport: c.ownTr}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

// open performs the handshake on one transport and starts the connection's goroutines.
func (c *Client) open(ctx context.Context, transport string) error {
	var first []Packet // packets that came with the open packet
	if transport == TransportPolling {
		hs, rest, err := c.pollingHandshake(ctx)
		if err != nil {
			return err
		}
		c.hs, first = hs, rest
	} else {
		conn, hs, err := c.dialWebSocket(ctx, "")
		if err != nil {
			return err
		}
		c.hs, c.conn = hs, conn
	}
	c.transport = transport
	c.heartbeat = time.AfterFunc(c.heartbeatTimeout(), func() { c.fail(ReasonPingTimeout, errors.New("engineio: no ping from the server")) })
	c.workers.Add(2)
	go c.writeLoop()
	if transport == TransportPolling {
		c.polling = true
		go c.pollLoop(first, c.canUpgrade())
	} else {
		go func() {
			defer c.workers.Done()
			c.readWebSocket(c.conn)
		}()
	}
	return nil
}

// release frees what a Client that failed its handshake holds.
func (c *Client) release() {
	c.cancel()
	if c.ownTr != nil {
		c.ownTr.CloseIdleConnections()
	}
}

// canUpgrade reports whether a polling connection should try the WebSocket.
func (c *Client) canUpgrade() bool {
	return !c.cfg.DisableUpgrade && slices.Contains(c.cfg.transports, TransportWebSocket) &&
		slices.Contains(c.hs.Upgrades, TransportWebSocket)
}

// heartbeatTimeout is how long the server may stay silent: its ping interval plus the
// timeout it gives itself for our pong.
func (c *Client) heartbeatTimeout() time.Duration {
	return time.Duration(c.hs.PingInterval+c.hs.PingTimeout) * time.Millisecond
}

// ID returns the session id the server gave the connection.
func (c *Client) ID() string { return c.hs.SID }

// Handshake returns the server's open packet: session id, upgrades, heartbeat and payload
// limit.
func (c *Client) Handshake() Handshake { return c.hs }

// Transport returns the transport in use: "polling" or "websocket".
func (c *Client) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport
}

// Done returns a channel closed when the connection has ended: OnClose has returned and the
// connection's goroutines have exited. Do not wait for it inside a callback.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or "" and nil while it is open.
func (c *Client) Err() (CloseReason, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason, c.cause
}

// Send queues a message: text, or binary with flags&Binary. NoCompress keeps it out of
// WebSocket compression. data is kept, not copied, until it is written: do not modify it
// after the call. It fails with ErrClientClosed once the connection is closing, and with
// ErrQueueFull when the queue holds DefaultMaxQueuedPackets messages or
// DefaultMaxQueuedBytes bytes already (the message is not sent; the connection goes on).
func (c *Client) Send(data []byte, flags SendFlag) error {
	one := [1]Outgoing{{Data: data, Binary: flags&Binary != 0}}
	return c.SendBatch(one[:], flags)
}

// SendBatch queues several messages at once, in order: no message of another Send comes
// between them. flags may hold NoCompress; Binary is taken from each Outgoing. It fails
// as Send does, for the whole batch.
func (c *Client) SendBatch(batch []Outgoing, flags SendFlag) error {
	size := 0
	for _, m := range batch {
		size += len(m.Data)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.closed {
		return ErrClientClosed
	}
	if len(c.queue) > 0 && (len(c.queue)+len(batch) > DefaultMaxQueuedPackets || c.queuedBytes+size > DefaultMaxQueuedBytes) {
		return ErrQueueFull
	}
	for _, m := range batch {
		c.queue = append(c.queue, outPacket{Packet: Packet{Type: Message, Data: m.Data, Binary: m.Binary}, compress: flags&NoCompress == 0})
	}
	c.queuedBytes += size
	if c.corks == 0 {
		c.kickLocked()
	}
	return nil
}

// Cork holds the writer back: until the matching Uncork, Send and SendBatch queue their
// messages without waking the writer, so that the messages of several goroutines about to
// send leave together, in one write. Calls nest; the last Uncork wakes the writer when
// messages wait. A corked connection still writes when something else wakes its writer
// (a write already under way, a pong, Close); every Cork must be matched by an Uncork, soon:
// while corked, queued messages may wait.
func (c *Client) Cork() {
	c.mu.Lock()
	c.corks++
	c.mu.Unlock()
}

// Uncork undoes one Cork.
func (c *Client) Uncork() {
	c.mu.Lock()
	if c.corks > 0 {
		c.corks--
	}
	if c.corks == 0 && len(c.queue) > 0 {
		c.kickLocked()
	}
	c.mu.Unlock()
}

// enqueue queues a control packet (pong, close).
func (c *Client) enqueue(p Packet) {
	c.mu.Lock()
	if !c.closed {
		c.queue = append(c.queue, outPacket{Packet: p})
		c.kickLocked()
	}
	c.mu.Unlock()
}

// kickLocked wakes the writer.
func (c *Client) kickLocked() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close ends the connection: what is queued is written, then a close packet (polling) or a
// WebSocket close frame, and OnClose is called with ReasonForcedClose. It returns at once;
// the server is given clientCloseGrace to take it before the transport is cut. Wait on Done
// for the end. Close on a closed connection returns ErrClientClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closing || c.closed {
		c.mu.Unlock()
		return ErrClientClosed
	}
	c.closing = true
	if c.transport == TransportPolling {
		c.queue = append(c.queue, outPacket{Packet: Packet{Type: Close}})
	}
	c.kickLocked()
	c.grace = time.AfterFunc(clientCloseGrace, func() { c.fail(ReasonForcedClose, nil) })
	c.mu.Unlock()
	return nil
}

// onPacket handles a packet from the server; it runs on the reading goroutine. It reports
// false when the connection has ended.
func (c *Client) onPacket(p Packet) bool {
	switch p.Type {
	case Ping:
		c.heartbeat.Reset(c.heartbeatTimeout())
		c.enqueue(Packet{Type: Pong, Data: p.Data})
	case Message:
		c.mu.Lock()
		drop := c.closing || c.closed
		c.mu.Unlock()
		if !drop && c.cfg.OnMessage != nil {
			c.cfg.OnMessage(p.Data, p.Binary)
		}
	case Close:
		c.fail(ReasonTransportClose, nil)
		return false
	}
	// Noop releases a poll; Open, Pong and Upgrade have no meaning here and are ignored,
	// as engine.io-client ignores them.
	return true
}

// transportFailed ends the connection after an error of its transport: a Close in
// progress makes it the end Close asked for.
func (c *Client) transportFailed(reason CloseReason, err error) {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		c.fail(ReasonForcedClose, nil)
		return
	}
	c.fail(reason, err)
}

// fail ends the connection at once, once: requests are cancelled, WebSockets cut, and
// OnClose is called when the readers have stopped.
func (c *Client) fail(reason CloseReason, cause error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.reason, c.cause = true, reason, cause
	conn, probe := c.conn, c.probe
	c.queue, c.queuedBytes = nil, 0
	c.cond.Broadcast()
	c.mu.Unlock()
	c.cancel()
	if conn != nil {
		conn.CloseNow()
	}
	if probe != nil {
		probe.CloseNow()
	}
	c.cfg.Logger.Debug("engineio: client closed", "sid", c.hs.SID, "reason", reason, "error", cause)
	go c.finish()
}

// finish waits for the connection's goroutines, then calls OnClose and closes Done.
func (c *Client) finish() {
	c.workers.Wait()
	c.heartbeat.Stop()
	c.mu.Lock()
	if c.grace != nil {
		c.grace.Stop()
	}
	c.mu.Unlock()
	if c.ownTr != nil {
		c.ownTr.CloseIdleConnections()
	}
	if c.cfg.OnClose != nil {
		c.cfg.OnClose(c.reason, c.cause)
	}
	close(c.done)
}

// writeLoop writes the queue, on the transport of the moment, until the connection ends.
func (c *Client) writeLoop() {
	defer c.workers.Done()
	for {
		select {
		case <-c.wake:
		case <-c.ctx.Done():
			return
		}
		for c.writeBatch() {
		}
	}
}

// writeBatch writes what is queued, as one POST or one batch of WebSocket frames. It
// reports whether it wrote something (and should look again).
func (c *Client) writeBatch() bool {
	c.mu.Lock()
	if c.closed || (c.paused && c.transport == TransportPolling) {
		c.mu.Unlock()
		return false
	}
	transport, conn := c.transport, c.conn
	n := len(c.queue)
	if transport == TransportPolling {
		n = c.pollingBatchLen()
	}
	if n == 0 {
		closing := c.closing
		c.mu.Unlock()
		if closing {
			c.closeTransport(transport, conn)
		}
		return false
	}
	var batch []outPacket
	if n == len(c.queue) {
		// Take the whole queue; it goes on in the array of the previous batch.
		batch, c.queue, c.spare = c.queue, c.spare[:0], nil
	} else {
		batch = slices.Clone(c.queue[:n])
		c.queue = slices.Delete(c.queue, 0, n)
	}
	for _, p := range batch {
		if p.Type == Message {
			c.queuedBytes -= len(p.Data)
		}
	}
	c.writing = true
	c.mu.Unlock()

	var err error
	if transport == TransportPolling {
		err = c.post(batch)
	} else {
		// No context: fail closes the WebSocket, which ends a write in progress.
		c.wtext, err = writeWebSocket(conn, batch, c.wtext)
	}
	clear(batch) // the messages' data belongs to their senders
	c.mu.Lock()
	if c.spare == nil && cap(batch) <= 1024 {
		c.spare = batch[:0]
	}
	c.writing = false
	c.cond.Broadcast()
	c.mu.Unlock()
	if err != nil {
		c.transportFailed(ReasonTransportError, err)
		return false
	}
	return true
}

// closeTransport ends the connection once Close has flushed the queue: the close packet
// went with the last POST; a WebSocket gets its close frame and the reader waits for the
// server's.
func (c *Client) closeTransport(transport string, conn *ws.Conn) {
	if transport == TransportWebSocket {
		if conn.StartClose(ws.StatusNormalClosure, "") == nil {
			return // the reader ends the connection when the server's close frame comes
		}
	}
	c.fail(ReasonForcedClose, nil)
}
