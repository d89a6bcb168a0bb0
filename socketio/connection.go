package socketio

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/duplexio/duplex/engineio"
)

// connection is one Engine.IO connection and the sockets it multiplexes, one per namespace.
type connection struct {
	srv     *Server
	conn    *engineio.Session
	dec     Decoder
	started time.Time

	mu           sync.Mutex
	sockets      []*Socket // one per namespace joined: few, so a slice, smaller than a map
	connectTimer *time.Timer
	closed       bool
}

func newConnection(srv *Server, conn *engineio.Session) *connection {
	c := &connection{
		srv:     srv,
		conn:    conn,
		dec:     Decoder{MaxAttachments: srv.maxAttachments},
		started: time.Now(),
	}
	conn.OnMessage = c.onMessage
	conn.OnClose = c.onClose
	c.connectTimer = time.AfterFunc(srv.connectTimeout, c.connectTimeout)
	return c
}

// connectTimeout closes a connection that joined no namespace in time.
func (c *connection) connectTimeout() {
	c.mu.Lock()
	idle := len(c.sockets) == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.srv.logger.Debug("socketio: no namespace joined in time", "remote", c.conn.RemoteAddr())
		_ = c.conn.Close()
	}
}

// handshake describes the connection for a socket that sent auth.
func (c *connection) handshake(auth []byte) Handshake {
	r := c.conn.Request()
	return Handshake{
		Headers: r.Header,
		Query:   r.URL.Query(),
		Address: r.RemoteAddr,
		Time:    c.started,
		Secure:  r.TLS != nil,
		URL:     r.URL.RequestURI(),
		Auth:    auth,
	}
}

// onMessage handles one Engine.IO message, on the connection's reading goroutine.
func (c *connection) onMessage(data []byte, binary bool) {
	m, err := c.dec.Add(data, binary)
	if err != nil {
		c.protocolError(err)
		return
	}
	if m == nil {
		return // waiting for attachments
	}
	switch m.Type {
	case Connect:
		c.connect(m.Namespace, m.Data)
		return
	case ConnectErrorPacket:
		c.protocolError(errors.New("socketio: CONNECT_ERROR from a client"))
		return
	}
	s := c.socket(m.Namespace)
	if s == nil {
		return // not (or no longer) connected there: the Node server ignores it too
	}
	switch m.Type {
	case Disconnect:
		s.onClose(ReasonClientNamespaceDisconnect)
	case Event, BinaryEvent:
		name, args, err := EventArgs(m)
		if err != nil {
			c.protocolError(err)
			return
		}
		s.onEvent(name, args, m.ID, m.HasID)
	case Ack, BinaryAck:
		args, err := AckArgs(m)
		if err != nil {
			c.protocolError(err)
			return
		}
		s.onAck(m.ID, args)
	}
}

// protocolError closes the connection of a client that broke the protocol.
func (c *connection) protocolError(err error) {
	c.srv.logger.Info("socketio: closing a connection on a protocol error", "remote", c.conn.RemoteAddr(), "error", err)
	c.closeSockets(string(engineio.ReasonParseError))
	_ = c.conn.Close()
}

func (c *connection) socket(nsp string) *Socket {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i := c.indexLocked(nsp); i >= 0 {
		return c.sockets[i]
	}
	return nil
}

// indexLocked returns the index in c.sockets of the socket of the namespace, or -1.
func (c *connection) indexLocked(nsp string) int {
	return slices.IndexFunc(c.sockets, func(s *Socket) bool { return s.nsp.name == nsp })
}

// connect handles a CONNECT: the namespace's middleware decides, on this goroutine.
func (c *connection) connect(name string, auth []byte) {
	nsp := c.srv.namespaceFor(name, auth)
	if nsp == nil {
		c.sendConnectError(name, &ConnectError{Message: "Invalid namespace"})
		return
	}
	c.mu.Lock()
	if c.indexLocked(name) >= 0 || c.closed {
		c.mu.Unlock()
		return // already connected there
	}
	var restored *PersistedSession
	var formerRooms []Room
	var missed []*EncodedPacket
	if pid, offset, ok := recoveryAuth(auth); ok && c.srv.recovery != nil {
		if ps, packets, ok := nsp.adapter.RestoreSession(pid, offset); ok {
			restored, formerRooms, missed = &ps, ps.Rooms, packets
		}
	}
	s := newSocket(nsp, c, auth, restored)
	c.sockets = append(c.sockets, s)
	c.mu.Unlock()
	if err := nsp.admit(s, formerRooms, missed); err != nil {
		c.forget(s)
		s.connected.Store(false)
		var ce *ConnectError
		if !errors.As(err, &ce) {
			ce = &ConnectError{Message: err.Error()}
		}
		c.sendConnectError(name, ce)
		return
	}
	c.stopConnectTimer()
}

// stopConnectTimer stops the connect timeout and lets go of its timer.
func (c *connection) stopConnectTimer() {
	c.mu.Lock()
	if c.connectTimer != nil {
		c.connectTimer.Stop()
		c.connectTimer = nil
	}
	c.mu.Unlock()
}

// forget drops a disconnected socket.
func (c *connection) forget(s *Socket) {
	c.mu.Lock()
	if i := slices.Index(c.sockets, s); i >= 0 {
		c.sockets = slices.Delete(c.sockets, i, i+1)
	}
	c.mu.Unlock()
}

// onClose disconnects every socket when the connection ends.
func (c *connection) onClose(reason engineio.CloseReason, _ error) {
	c.stopConnectTimer()
	c.closeSockets(string(reason))
}

func (c *connection) closeSockets(reason string) {
	c.mu.Lock()
	c.closed = true
	sockets := slices.Clone(c.sockets)
	c.mu.Unlock()
	for _, s := range sockets {
		s.onClose(reason)
	}
}

// disconnectAll disconnects every socket of the connection from the server side, then
// closes the connection.
func (c *connection) disconnectAll() {
	c.mu.Lock()
	sockets := slices.Clone(c.sockets)
	c.mu.Unlock()
	for _, s := range sockets {
		s.Disconnect(false)
	}
	_ = c.conn.Close()
}

// write queues an encoded packet on the connection. A volatile packet that the connection
// cannot take at once is dropped with engineio.ErrDropped.
func (c *connection) write(p *EncodedPacket, volatile, noCompress bool) error {
	var flags engineio.SendFlag
	if noCompress {
		flags = engineio.NoCompress
	}
	if volatile {
		flags |= engineio.Volatile
	}
	if len(p.Attachments) == 0 {
		return c.conn.Send(p.Text, flags)
	}
	batch := make([]engineio.Outgoing, 0, 1+len(p.Attachments))
	batch = append(batch, engineio.Outgoing{Data: p.Text})
	for _, a := range p.Attachments {
		batch = append(batch, engineio.Outgoing{Data: a, Binary: true})
	}
	return c.conn.SendBatch(batch, flags)
}

func (c *connection) sendConnect(s *Socket) {
	data, _ := json.Marshal(struct {
		SID string `json:"sid"`
		PID string `json:"pid,omitempty"`
	}{s.id, s.pid})
	c.sendPacket(&Packet{Type: Connect, Namespace: s.nsp.name, Data: data})
}

func (c *connection) sendConnectError(nsp string, ce *ConnectError) {
	data, err := json.Marshal(struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{ce.Message, ce.Data})
	if err != nil {
		data, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{ce.Message})
	}
	c.sendPacket(&Packet{Type: ConnectErrorPacket, Namespace: nsp, Data: data})
}

func (c *connection) sendDisconnect(nsp string) {
	c.sendPacket(&Packet{Type: Disconnect, Namespace: nsp})
}

func (c *connection) sendAck(nsp string, id uint64, args []any) error {
	data, attachments, err := AppendArgs(nil, "", args)
	if err != nil {
		return err
	}
	p := Packet{Type: Ack, Namespace: nsp, ID: id, HasID: true, Data: data}
	if len(attachments) > 0 {
		p.Type = BinaryAck
		p.Attachments = len(attachments)
	}
	return c.write(&EncodedPacket{Text: AppendPacket(nil, &p), Attachments: attachments}, false, false)
}

func (c *connection) sendPacket(p *Packet) {
	_ = c.conn.Send(AppendPacket(nil, p), 0)
}

// newID returns a socket id: 15 random bytes (120 bits) in URL-safe base64.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
