package socketio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/duplexio/duplex/engineio"
)

// DefaultMaxBufferedPackets is how many emits a ClientSocket holds while disconnected when
// ClientSocketOptions.MaxBufferedPackets is 0.
const DefaultMaxBufferedPackets = 1024

// ErrBufferFull is returned by ClientSocket.Emit and EmitWithAck while the socket is
// disconnected and already holds MaxBufferedPackets emits for its next connection.
var ErrBufferFull = errors.New("socketio: client send buffer full")

// maxClientInbox is the number of events a ClientSocket keeps waiting for its handlers
// before the Manager stops reading the connection.
const maxClientInbox = 1024

// ClientSocketOptions configure a ClientSocket.
type ClientSocketOptions struct {
	// Auth is sent in each CONNECT packet; it must encode (json.Marshal) to a JSON object,
	// or be nil. The server reads it as Handshake().Auth.
	Auth any
	// AuthFunc, when set, is called before each CONNECT (first connection and
	// reconnections) and its value is sent instead of Auth; an error refuses to connect
	// (OnConnectError; the socket stays disconnected). It is called on the goroutine that
	// opens the socket, or on the Manager's dialing goroutine: it should not block long,
	// and must not call Manager.Close (which waits for that goroutine).
	AuthFunc func() (any, error)
	// MaxBufferedPackets bounds the emits held while the socket is disconnected (0:
	// DefaultMaxBufferedPackets); past it Emit fails with ErrBufferFull.
	MaxBufferedPackets int
}

// ClientSocket is the client side of one namespace, on a Manager's connection. It connects
// when opened (Open, Connect), and again after each reconnection of its Manager, until it
// is disconnected by the application (Disconnect, Manager.Close) or by the server.
//
// Emit and EmitWithAck while the socket is not connected hold the event (up to
// MaxBufferedPackets) and send it, in order, as soon as the socket connects, before any
// later emit; Volatile drops it instead. When the socket disconnects, EmitWithAck calls
// whose event was sent fail with ErrDisconnected (the answer cannot come any more); those
// still held go on waiting for the next connection, unless the socket will not reconnect.
//
// With connection-state recovery on the server, the socket keeps the server's private id
// and the offset of the last event it received, and presents them when it reconnects:
// the server then restores the same socket (Recovered reports true) and sends the events
// missed meanwhile.
//
// Concurrency: every method is safe to call from any goroutine, handlers included. The
// handlers of a socket (events, OnAny, OnConnect, OnConnectError, OnDisconnect) run one at
// a time, in the order things happened, on a goroutine of the socket's own — never on the
// goroutine that reads the connection, which meanwhile goes on delivering acks and the
// events of other namespaces, so a handler may call EmitWithAck. A handler that blocks
// holds up its own socket's later events only; when 1,024 events wait for it, the Manager
// stops reading the connection (nothing is dropped) until the handler catches up, so a
// handler that waits for an answer to EmitWithAck must give it a deadline. Register
// handlers before opening the socket: one added later sees only later events.
type ClientSocket struct {
	m         *Manager
	nsp       string
	auth      any
	authFunc  func() (any, error)
	maxBuffer int

	hmu          sync.Mutex
	handlers     map[string][]EventHandler
	anyHandlers  []func(event string, args Args)
	onConnect    []func()
	onConnectErr []func(err error)
	onDisconnect []func(reason string)

	mu        sync.Mutex
	active    bool        // wants to be connected: opened, and not disconnected since
	connected bool        // the server accepted the CONNECT on ec
	ec        *engineConn // the connection the CONNECT was sent on; nil when none
	id        string
	pid       string // the server's private id for recovery; "" when it has none
	offset    string // the recovery offset of the last event received
	recovered bool
	nextAckID uint64
	acks      map[uint64]*pendingAck
	buffer    []*outPacket // emits held while disconnected
	waiters   []chan error // Connect calls
	early     []func()     // events that came on ec before the CONNECT answer
	inbox     []func()
	running   bool       // a goroutine runs the inbox
	space     *sync.Cond // signals room in the inbox, or a state change
}

// encodeBuffers hold the scratch buffers emit encodes arguments into before the packet,
// sized once, is built.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledEncodeBuffer is the largest scratch buffer put back in encodeBuffers.
const maxPooledEncodeBuffer = 64 << 10

// outPacket is an encoded packet: its text and binary attachments.
type outPacket struct {
	text        []byte
	attachments [][]byte
	ackID       uint64
	hasAck      bool
}

// pendingAck is an EmitWithAck waiting for its answer.
type pendingAck struct {
	answer chan ackAnswer // buffered: written once
	sent   bool           // the event was sent (not only held in the buffer)
}

type ackAnswer struct {
	args Args
	err  error
	// cork, when set, is the connection the reader corked before handing over the answer
	// (see onPacket): the waiter uncorks it once it has the answer.
	cork *engineio.Client
}

// take returns the answer's outcome, uncorking its connection.
func (a ackAnswer) take() (Args, error) {
	if a.cork != nil {
		a.cork.Uncork()
	}
	return a.args, a.err
}

func newClientSocket(m *Manager, nsp string, opts *ClientSocketOptions) *ClientSocket {
	s := &ClientSocket{m: m, nsp: nsp, handlers: make(map[string][]EventHandler), acks: make(map[uint64]*pendingAck)}
	if opts != nil {
		s.auth, s.authFunc, s.maxBuffer = opts.Auth, opts.AuthFunc, opts.MaxBufferedPackets
	}
	if s.maxBuffer <= 0 {
		s.maxBuffer = DefaultMaxBufferedPackets
	}
	s.space = sync.NewCond(&s.mu)
	return s
}

// Namespace returns the socket's namespace ("/", "/admin", ...).
func (s *ClientSocket) Namespace() string { return s.nsp }

// Manager returns the Manager the socket belongs to.
func (s *ClientSocket) Manager() *Manager { return s.m }

// ID returns the socket id the server gave, or "" while the socket is not connected.
func (s *ClientSocket) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Connected reports whether the socket is connected to its namespace.
func (s *ClientSocket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Recovered reports whether the last connection restored the socket's previous session
// (connection-state recovery): same id, and the events missed while disconnected were
// delivered.
func (s *ClientSocket) Recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

// On adds a handler for an event from the server. ack is nil unless the server asked for
// an acknowledgement; only its first call sends one.
func (s *ClientSocket) On(event string, h EventHandler) {
	s.hmu.Lock()
	s.handlers[event] = append(s.handlers[event], h)
	s.hmu.Unlock()
}

// OnAny adds a handler called with every event from the server, before the event's own
// handlers.
func (s *ClientSocket) OnAny(h func(event string, args Args)) {
	s.hmu.Lock()
	s.anyHandlers = append(s.anyHandlers, h)
	s.hmu.Unlock()
}

// OnConnect adds a handler called each time the socket connects (first connection and
// each reconnection), after the emits buffered meanwhile were sent.
func (s *ClientSocket) OnConnect(h func()) {
	s.hmu.Lock()
	s.onConnect = append(s.onConnect, h)
	s.hmu.Unlock()
}

// OnConnectError adds a handler called when connecting fails: with a *ConnectError when
// the server refused the socket (its middleware's message, and its data as a
// json.RawMessage; the socket then stays disconnected, with no automatic retry), with
// the error of AuthFunc or of an Auth that does not encode to an object (likewise), or
// with the dial error of each failed connection attempt of the Manager while the socket
// waits to connect.
func (s *ClientSocket) OnConnectError(h func(err error)) {
	s.hmu.Lock()
	s.onConnectErr = append(s.onConnectErr, h)
	s.hmu.Unlock()
}

// OnDisconnect adds a handler called each time a connected socket disconnects, with the
// reason: ReasonIOServerDisconnect, ReasonIOClientDisconnect, or the reason the
// connection was lost ("transport close", "transport error", "ping timeout", "parse
// error"; "forced close" when the application closed Manager.Engine()). The socket
// reconnects afterwards unless the reason is one of the first two or reconnection is off.
func (s *ClientSocket) OnDisconnect(h func(reason string)) {
	s.hmu.Lock()
	s.onDisconnect = append(s.onDisconnect, h)
	s.hmu.Unlock()
}

// Open starts connecting the socket and returns at once: the Manager dials when it has no
// connection, and the socket sends its CONNECT once the connection is open. It does
// nothing on a connected socket. See Connect to wait for the outcome.
func (s *ClientSocket) Open() {
	s.mu.Lock()
	if s.connected {
		s.mu.Unlock()
		return
	}
	s.active = true
	s.mu.Unlock()
	s.m.openSocket(s)
}

// Connect opens the socket (see Open) and waits until it is connected (nil), refused by the
// server (a *ConnectError) or by AuthFunc (its error), or until the Manager gives up: the
// dial error with reconnection off, an error matching ErrReconnectFailed when the
// reconnection attempts are used up, ErrDisconnected when Disconnect or Manager.Close
// comes first. When ctx ends first it returns ctx.Err(), and the socket goes on trying
// (call Disconnect to stop it).
func (s *ClientSocket) Connect(ctx context.Context) error {
	ch := make(chan error, 1)
	s.mu.Lock()
	if s.connected {
		s.mu.Unlock()
		return nil
	}
	s.waiters = append(s.waiters, ch)
	s.mu.Unlock()
	s.Open()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		for i, w := range s.waiters {
			if w == ch {
				s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		select {
		case err := <-ch:
			return err
		default:
			return ctx.Err()
		}
	}
}

// Disconnect leaves the namespace: a connected socket sends DISCONNECT and gets
// OnDisconnect with ReasonIOClientDisconnect. The socket does not reconnect (Open does it
// again). Pending EmitWithAck calls fail with ErrDisconnected (those held in the buffer
// leave it); the Emit calls held in the buffer are kept for a later connection. When no other socket of the Manager is active,
// the Manager closes its connection.
func (s *ClientSocket) Disconnect() {
	s.disconnect()
	s.m.socketInactive()
}

// disconnect is Disconnect without the Manager's part.
func (s *ClientSocket) disconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ec != nil {
		// Also when the CONNECT answer is still to come: the server then drops the socket
		// it is about to accept.
		_ = s.ec.send(&outPacket{text: AppendPacket(nil, &Packet{Type: Disconnect, Namespace: s.nsp})})
	}
	s.endLocked(ReasonIOClientDisconnect, true, ErrDisconnected)
}

// Emit sends an event with args to the server. Arguments are encoded as AppendArgs does:
// []byte values, even nested in []any and map[string]any, travel as binary attachments,
// and the packet goes out atomically with them. While the socket is not connected the
// event is held for the next connection (ErrBufferFull past MaxBufferedPackets). Other
// errors: a reserved event name (ErrReservedEvent), arguments that do not encode, and
// engineio.ErrQueueFull when the connection's send queue is full.
func (s *ClientSocket) Emit(event string, args ...any) error {
	_, err := s.emit(event, args, false, nil)
	return err
}

// Volatile is Emit for an event that may be lost: while the socket is not connected it
// is dropped, with a nil error.
func (s *ClientSocket) Volatile(event string, args ...any) error {
	_, err := s.emit(event, args, true, nil)
	return err
}

// EmitWithAck sends an event as Emit does, asking the server for an acknowledgement, and
// returns the arguments of the answer. When ctx ends first it forgets the request (an
// answer arriving later is ignored; an event still held in the buffer is not sent) and
// returns ctx.Err(). It fails with ErrDisconnected when the socket disconnects after
// sending the event, and with an error matching ErrReconnectFailed when the event was held
// and the Manager gave up reconnecting.
func (s *ClientSocket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	if err := ctx.Err(); err != nil {
		return Args{}, err
	}
	pa := &pendingAck{answer: make(chan ackAnswer, 1)}
	id, err := s.emit(event, args, false, pa)
	if err != nil {
		return Args{}, err
	}
	select {
	case a := <-pa.answer:
		return a.take()
	case <-ctx.Done():
		s.mu.Lock()
		mine := s.acks[id] == pa
		if mine {
			delete(s.acks, id)
			s.dropBufferedLocked(id)
		}
		s.mu.Unlock()
		if mine {
			return Args{}, ctx.Err()
		}
		// Whoever took it out of s.acks (the reader with the answer, or a disconnect with
		// its error) is sending the outcome, if it has not yet: it came meanwhile.
		return (<-pa.answer).take()
	}
}

// emit encodes an event and sends it, or buffers it while the socket is not connected. pa,
// when set, asks for an ack; the id is returned.
func (s *ClientSocket) emit(event string, args []any, volatile bool, pa *pendingAck) (uint64, error) {
	if err := checkEvent(event); err != nil {
		return 0, err
	}
	scratch := encodeBuffers.Get().(*[]byte)
	defer func() {
		if cap(*scratch) <= maxPooledEncodeBuffer {
			encodeBuffers.Put(scratch)
		}
	}()
	data, attachments, err := AppendArgs((*scratch)[:0], event, args)
	*scratch = data
	if err != nil {
		return 0, err
	}
	p := Packet{Type: Event, Namespace: s.nsp, Data: data}
	if len(attachments) > 0 {
		p.Type, p.Attachments = BinaryEvent, len(attachments)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected && (volatile || len(s.buffer) >= s.maxBuffer) {
		if volatile {
			return 0, nil
		}
		return 0, ErrBufferFull
	}
	out := &outPacket{attachments: attachments}
	if pa != nil {
		out.ackID, out.hasAck = s.nextAckID, true
		p.ID, p.HasID = s.nextAckID, true
		s.nextAckID++
	}
	out.text = AppendPacket(make([]byte, 0, len(data)+len(s.nsp)+24), &p)
	if s.connected {
		err := s.ec.send(out)
		switch {
		case err == nil:
			if pa != nil {
				pa.sent = true
				s.acks[out.ackID] = pa
			}
			return out.ackID, nil
		case volatile && errors.Is(err, engineio.ErrClientClosed):
			return 0, nil
		case !errors.Is(err, engineio.ErrClientClosed):
			return 0, err
		case len(s.buffer) >= s.maxBuffer:
			return 0, ErrBufferFull
		}
		// The connection ended under us: hold the event for the next one.
	}
	if pa != nil {
		s.acks[out.ackID] = pa
	}
	s.buffer = append(s.buffer, out)
	return out.ackID, nil
}

// dropBufferedLocked takes the event with ack id out of the buffer, if it is there.
func (s *ClientSocket) dropBufferedLocked(id uint64) {
	for i, p := range s.buffer {
		if p.hasAck && p.ackID == id {
			s.buffer = append(s.buffer[:i], s.buffer[i+1:]...)
			return
		}
	}
}

// isActive reports whether the socket wants a connection.
func (s *ClientSocket) isActive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// sendConnect sends the socket's CONNECT on ec, unless it is connected or did already.
func (s *ClientSocket) sendConnect(ec *engineConn) {
	auth, err := s.auth, error(nil)
	if s.authFunc != nil {
		auth, err = s.authFunc()
	}
	var authJSON []byte
	if err == nil && auth != nil {
		authJSON, err = json.Marshal(auth)
		if err == nil && !bytes.Equal(authJSON, []byte("null")) && (len(authJSON) == 0 || authJSON[0] != '{') {
			err = errors.New("socketio: the auth value does not encode to a JSON object")
		}
		if bytes.Equal(authJSON, []byte("null")) {
			authJSON = nil
		}
	}
	s.mu.Lock()
	if !s.active || s.connected || s.ec == ec || ec.dead.Load() {
		s.mu.Unlock()
		return
	}
	if err != nil {
		s.endLocked("", true, err)
		s.postLocked(s.connectErrorCall(err))
		s.mu.Unlock()
		s.m.socketInactive()
		return
	}
	if s.pid != "" {
		authJSON = s.recoveryAuthLocked(authJSON)
	}
	s.ec = ec
	_ = ec.send(&outPacket{text: AppendPacket(nil, &Packet{Type: Connect, Namespace: s.nsp, Data: authJSON})})
	s.mu.Unlock()
}

// recoveryAuthLocked adds pid and offset to the auth object, as socket.io-client does
// (the application's own "pid" and "offset" keys, if any, win).
func (s *ClientSocket) recoveryAuthLocked(authJSON []byte) []byte {
	obj := map[string]json.RawMessage{}
	if len(authJSON) > 0 {
		if json.Unmarshal(authJSON, &obj) != nil {
			return authJSON
		}
	}
	put := func(k, v string) {
		if _, ok := obj[k]; !ok && v != "" {
			b, _ := json.Marshal(v)
			obj[k] = b
		}
	}
	put("pid", s.pid)
	put("offset", s.offset)
	b, err := json.Marshal(obj)
	if err != nil {
		return authJSON
	}
	return b
}

// onPacket handles a packet of the socket's namespace, on the reading goroutine of ec. An
// error is a protocol error: the Manager closes the connection.
func (s *ClientSocket) onPacket(ec *engineConn, msg *Message) error {
	switch msg.Type {
	case Connect:
		var answer struct {
			SID string `json:"sid"`
			PID string `json:"pid"`
		}
		if len(msg.Data) > 0 {
			if err := json.Unmarshal(msg.Data, &answer); err != nil {
				return &PacketError{Offset: -1, Reason: "CONNECT answer is not an object with string fields", Err: err}
			}
		}
		if answer.SID == "" {
			return &PacketError{Offset: -1, Reason: "CONNECT answer without a sid"}
		}
		s.onConnectAnswer(ec, answer.SID, answer.PID)
	case ConnectErrorPacket:
		s.onConnectError(ec, parseConnectError(msg.Data))
	case Disconnect:
		s.mu.Lock()
		if s.ec != ec {
			s.mu.Unlock()
			return nil
		}
		s.endLocked(ReasonIOServerDisconnect, true, ErrDisconnected)
		s.mu.Unlock()
		s.m.socketInactive()
	case Event, BinaryEvent:
		name, args, err := EventArgs(msg)
		if err != nil {
			return err
		}
		s.onEvent(ec, name, args, msg.ID, msg.HasID)
	case Ack, BinaryAck:
		args, err := AckArgs(msg)
		if err != nil {
			return err
		}
		s.mu.Lock()
		pa := s.acks[msg.ID]
		if pa == nil || !pa.sent || s.ec != ec {
			s.mu.Unlock()
			return nil // an answer nobody waits for: ignored
		}
		delete(s.acks, msg.ID)
		s.mu.Unlock()
		// The waiter will most likely emit again as soon as it has the answer, and so may
		// the waiters of the other answers this read brought: the connection stays corked
		// until each has taken its answer, so that their emits leave in one write.
		c := ec.client.Load()
		if c != nil {
			c.Cork()
		}
		pa.answer <- ackAnswer{args: args, cork: c}
	}
	return nil
}

// parseConnectError reads the data of a CONNECT_ERROR: {"message","data"}, or a string
// from older servers.
func parseConnectError(data []byte) *ConnectError {
	ce := &ConnectError{}
	var obj struct {
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if json.Unmarshal(data, &ce.Message) == nil {
		return ce
	}
	if json.Unmarshal(data, &obj) == nil {
		ce.Message = obj.Message
		if len(obj.Data) > 0 {
			ce.Data = obj.Data
		}
	}
	return ce
}

// onConnectAnswer connects the socket: the buffered emits go out, then OnConnect runs.
func (s *ClientSocket) onConnectAnswer(ec *engineConn, sid, pid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ec != ec || s.connected || !s.active {
		return
	}
	s.connected, s.id = true, sid
	s.recovered = pid != "" && pid == s.pid
	s.pid = pid
	for i, p := range s.buffer {
		err := ec.send(p)
		if err == nil {
			if pa := s.acks[p.ackID]; p.hasAck && pa != nil {
				pa.sent = true
			}
			continue
		}
		if errors.Is(err, engineio.ErrClientClosed) {
			// Ended meanwhile: keep the rest for the next connection.
			s.buffer = append(s.buffer[:0], s.buffer[i:]...)
			s.notifyLocked(nil)
			s.postLocked(s.connectCall())
			s.postEarlyLocked()
			return
		}
		// The send queue is full: what is left cannot keep its order, it is dropped.
		s.m.logger.Warn("socketio: dropping buffered emits", "namespace", s.nsp, "count", len(s.buffer)-i, "error", err)
		for _, q := range s.buffer[i:] {
			if pa := s.acks[q.ackID]; q.hasAck && pa != nil {
				delete(s.acks, q.ackID)
				pa.answer <- ackAnswer{err: err}
			}
		}
		break
	}
	clear(s.buffer)
	s.buffer = s.buffer[:0]
	s.notifyLocked(nil)
	s.postLocked(s.connectCall())
	s.postEarlyLocked()
}

// postEarlyLocked hands the events that came before the CONNECT answer to the handlers,
// after OnConnect.
func (s *ClientSocket) postEarlyLocked() {
	for i, f := range s.early {
		s.postLocked(f)
		s.early[i] = nil
	}
	s.early = s.early[:0]
}

// onConnectError handles the server's refusal: the socket stays disconnected.
func (s *ClientSocket) onConnectError(ec *engineConn, ce *ConnectError) {
	s.mu.Lock()
	if s.ec != ec || s.connected {
		s.mu.Unlock()
		return
	}
	s.endLocked("", true, ce)
	s.postLocked(s.connectErrorCall(ce))
	s.mu.Unlock()
	s.m.socketInactive()
}

// onEvent queues an event for the handlers. It waits while the inbox is full.
func (s *ClientSocket) onEvent(ec *engineConn, name string, args Args, id uint64, hasID bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.connected && s.ec == ec && len(s.inbox) >= maxClientInbox && !ec.dead.Load() {
		s.space.Wait()
	}
	if s.ec != ec || !s.active {
		return // not connected there (any more): socket.io-client ignores it too
	}
	if !s.connected && len(s.early) >= maxClientInbox {
		s.m.logger.Warn("socketio: dropping an event sent before the CONNECT answer", "namespace", s.nsp, "event", name)
		return
	}
	if s.pid != "" && !hasID && args.Len() > 0 {
		if raw := args.Raw(args.Len() - 1); len(raw) > 0 && raw[0] == '"' {
			var off string
			if json.Unmarshal(raw, &off) == nil {
				s.offset = off
			}
		}
	}
	var ack AckFunc
	if hasID {
		var once atomic.Bool
		ack = func(a ...any) error {
			if !once.CompareAndSwap(false, true) {
				return nil
			}
			return s.sendAck(ec, id, a)
		}
	}
	call := func() {
		s.hmu.Lock()
		anys, hs := s.anyHandlers, s.handlers[name]
		s.hmu.Unlock()
		for _, h := range anys {
			h(name, args)
		}
		for _, h := range hs {
			h(args, ack)
		}
	}
	if !s.connected {
		// The Node server sends the events a recovered socket missed before its CONNECT
		// answer: they wait for it, as in socket.io-client.
		s.early = append(s.early, call)
		return
	}
	s.postLocked(call)
}

// sendAck answers the server's event id on the connection it came on.
func (s *ClientSocket) sendAck(ec *engineConn, id uint64, args []any) error {
	data, attachments, err := AppendArgs(nil, "", args)
	if err != nil {
		return err
	}
	p := Packet{Type: Ack, Namespace: s.nsp, ID: id, HasID: true, Data: data}
	if len(attachments) > 0 {
		p.Type, p.Attachments = BinaryAck, len(attachments)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected || s.ec != ec {
		return ErrDisconnected
	}
	return ec.send(&outPacket{text: AppendPacket(nil, &p), attachments: attachments})
}

// engineClosed handles the end of the Manager's connection ec; will tells whether the
// Manager reconnects.
func (s *ClientSocket) engineClosed(ec *engineConn, reason string, will bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ec == ec {
		s.endLocked(reason, false, nil)
	}
	if !will && s.active {
		s.notifyLocked(fmt.Errorf("%w: the connection ended (%s)", ErrDisconnected, reason))
	}
	s.space.Broadcast()
}

// dialFailed handles a failed dial of the Manager: err for OnConnectError, endErr for
// Connect when the Manager does not try again (will false).
func (s *ClientSocket) dialFailed(err, endErr error, will bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active || s.connected {
		return
	}
	if !will {
		s.notifyLocked(endErr)
		if errors.Is(endErr, ErrReconnectFailed) {
			s.failAcksLocked(endErr, true)
		}
	}
	s.postLocked(s.connectErrorCall(err))
}

// endLocked disconnects the socket from its connection. reason, when not empty, is given
// to OnDisconnect if the socket was connected. With final the socket becomes inactive (no
// reconnection): pending acks, those held in the buffer too, fail with err, and so do
// Connect calls. Without it only the acks of events already sent fail, with
// ErrDisconnected.
func (s *ClientSocket) endLocked(reason string, final bool, err error) {
	wasConnected := s.connected
	s.connected, s.id, s.ec = false, "", nil
	clear(s.early)
	s.early = s.early[:0]
	if final {
		s.active = false
		s.failAcksLocked(err, true)
		s.notifyLocked(err)
	} else {
		s.failAcksLocked(ErrDisconnected, false)
	}
	s.space.Broadcast()
	if wasConnected && reason != "" {
		s.postLocked(func() {
			for _, h := range snapshot(&s.hmu, &s.onDisconnect) {
				h(reason)
			}
		})
	}
}

// failAcksLocked fails the pending acks of sent events, and with all those of buffered
// events too (which leave the buffer).
func (s *ClientSocket) failAcksLocked(err error, all bool) {
	for id, pa := range s.acks {
		if !pa.sent && !all {
			continue
		}
		delete(s.acks, id)
		if !pa.sent {
			s.dropBufferedLocked(id)
		}
		pa.answer <- ackAnswer{err: err}
	}
}

// notifyLocked ends the waiting Connect calls with err (nil: connected).
func (s *ClientSocket) notifyLocked(err error) {
	for _, w := range s.waiters {
		w <- err
	}
	s.waiters = nil
}

func (s *ClientSocket) connectCall() func() {
	return func() {
		for _, h := range snapshot(&s.hmu, &s.onConnect) {
			h()
		}
	}
}

func (s *ClientSocket) connectErrorCall(err error) func() {
	return func() {
		for _, h := range snapshot(&s.hmu, &s.onConnectErr) {
			h(err)
		}
	}
}

// postLocked adds f to the inbox and makes sure a goroutine runs it.
func (s *ClientSocket) postLocked(f func()) {
	s.inbox = append(s.inbox, f)
	if !s.running {
		s.running = true
		go s.dispatch()
	}
}

// dispatch runs the inbox until it is empty.
func (s *ClientSocket) dispatch() {
	for {
		s.mu.Lock()
		if len(s.inbox) == 0 {
			s.running = false
			s.inbox = nil
			s.mu.Unlock()
			return
		}
		f := s.inbox[0]
		s.inbox[0] = nil
		s.inbox = s.inbox[1:]
		s.space.Broadcast()
		s.mu.Unlock()
		f()
	}
}
