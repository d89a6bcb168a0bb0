package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// benchConn is what every mode keeps of a connection: whether it was lost.
type benchConn struct {
	once sync.Once
	dead chan struct{} // closed when the connection was lost
}

func newBenchConn() benchConn { return benchConn{dead: make(chan struct{})} }

// drop counts the connection as lost (once) with the error that ended it.
func (c *benchConn) drop(r *benchRun, err error) {
	c.once.Do(func() {
		close(c.dead)
		r.connDropped(err)
	})
}

// closeAll runs f for each element of items, concurrently, and returns when all returned.
func closeAll[T any](items []T, f func(T)) {
	var wg sync.WaitGroup
	for _, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(it)
		}()
	}
	wg.Wait()
}

// --- WebSocket ---

type wsBenchConn struct {
	benchConn
	c *ws.Conn
}

// dialWS opens one WebSocket connection for the ws modes.
func (r *benchRun) dialWS(ctx context.Context) (*wsBenchConn, error) {
	opts := &ws.DialOptions{
		Header:           r.cfg.header(),
		TLSConfig:        r.cfg.tlsConfig(),
		HandshakeTimeout: r.cfg.timeout,
		ReadLimit:        max(int64(r.cfg.size)+1024, ws.DefaultReadLimit),
	}
	c, _, err := ws.Dial(ctx, r.cfg.url, opts)
	if err != nil {
		return nil, err
	}
	return &wsBenchConn{benchConn: newBenchConn(), c: c}, nil
}

// wsEchoMode: each connection has a writer, which keeps up to --in-flight messages
// outstanding, and a reader, which matches each echo with the oldest send time (an echo
// server answers in order).
type wsEchoMode struct {
	r     *benchRun
	conns []*wsBenchConn
	wg    sync.WaitGroup
}

func (m *wsEchoMode) open(ctx context.Context) {
	m.conns = openAll(ctx, m.r, m.r.cfg.connections, func(ctx context.Context, _ int) (*wsBenchConn, error) {
		return m.r.dialWS(ctx)
	})
}

func (m *wsEchoMode) start(ctx context.Context) {
	payload := bytes.Repeat([]byte{'x'}, m.r.cfg.size)
	for _, c := range m.conns {
		sent := make(chan time.Time, m.r.cfg.inFlight)
		m.wg.Add(2)
		go m.read(ctx, c, sent)
		go m.write(ctx, c, sent, payload)
	}
}

func (m *wsEchoMode) write(ctx context.Context, c *wsBenchConn, sent chan<- time.Time, payload []byte) {
	defer m.wg.Done()
	p := newPacer(m.r.cfg.rate, len(m.conns))
	for p.wait(ctx) {
		select {
		case sent <- time.Now(): // a free in-flight slot, taken before the write
		case <-ctx.Done():
			return
		case <-c.dead:
			return
		}
		if err := c.c.WriteMessage(ctx, ws.MessageText, payload); err != nil {
			if ctx.Err() == nil {
				c.drop(m.r, fmt.Errorf("write: %w", err))
				c.c.CloseNow() // ends the reader
			}
			return
		}
	}
}

func (m *wsEchoMode) read(ctx context.Context, c *wsBenchConn, sent <-chan time.Time) {
	defer m.wg.Done()
	var buf []byte
	for {
		_, msg, err := c.c.AppendMessage(context.Background(), buf[:0])
		if err != nil {
			if ctx.Err() == nil {
				c.drop(m.r, fmt.Errorf("read: %w", err))
			}
			return
		}
		buf = msg
		select {
		case t := <-sent:
			if len(msg) != m.r.cfg.size {
				m.r.fail(fmt.Errorf("echo of %d bytes, want %d", len(msg), m.r.cfg.size))
				continue
			}
			m.r.record(time.Since(t))
		default:
			m.r.fail(errors.New("a message came that was not an echo"))
		}
	}
}

func (m *wsEchoMode) close() {
	// Close's handshake ends each reader, which reads the peer's close frame; the writers
	// end with the window.
	closeAll(m.conns, func(c *wsBenchConn) { _ = c.c.Close(ws.StatusNormalClosure, "") })
	m.wg.Wait()
}

// wsIdleMode holds WebSocket connections open, reading (so that pings are answered and an
// end is seen) and sending nothing.
type wsIdleMode struct {
	r     *benchRun
	conns []*wsBenchConn
	wg    sync.WaitGroup
}

func (m *wsIdleMode) open(ctx context.Context) {
	m.conns = openAll(ctx, m.r, m.r.cfg.connections, func(ctx context.Context, _ int) (*wsBenchConn, error) {
		c, err := m.r.dialWS(ctx)
		if err != nil {
			return nil, err
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			for {
				if _, _, err := c.c.ReadMessage(context.Background()); err != nil {
					c.drop(m.r, fmt.Errorf("read: %w", err))
					return
				}
			}
		}()
		return c, nil
	})
}

func (m *wsIdleMode) start(context.Context) {}

func (m *wsIdleMode) close() {
	closeAll(m.conns, func(c *wsBenchConn) { _ = c.c.Close(ws.StatusNormalClosure, "") })
	m.wg.Wait()
}

// --- Socket.IO ---

type sioBenchConn struct {
	benchConn
	m *socketio.Manager
	s *socketio.ClientSocket
}

// dialSIO opens one Socket.IO socket on the main namespace, on a connection of its own
// that does not reconnect: a lost one counts as dropped. setup registers the socket's
// handlers before it connects.
func (r *benchRun) dialSIO(ctx context.Context, setup func(*sioBenchConn)) (*sioBenchConn, error) {
	var transports []string
	if r.cfg.transport != "" {
		transports = []string{r.cfg.transport}
	}
	m := socketio.NewManager(r.cfg.url, &socketio.ManagerOptions{
		Engine: engineio.ClientOptions{
			Transports: transports,
			Header:     r.cfg.header(),
			TLSConfig:  r.cfg.tlsConfig(),
			ReadLimit:  max(int64(r.cfg.size)*2+1024, engineio.DefaultClientReadLimit),
		},
		NoReconnect: true,
		Timeout:     r.cfg.timeout,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)), // errors are counted instead
	})
	c := &sioBenchConn{benchConn: newBenchConn(), m: m, s: m.Socket("/", nil)}
	c.s.OnDisconnect(func(reason string) {
		c.drop(r, fmt.Errorf("disconnected: %s", reason))
	})
	if setup != nil {
		setup(c)
	}
	if err := c.s.Connect(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return c, nil
}

// closeSIO closes the connections of a Socket.IO mode.
func closeSIO(conns []*sioBenchConn) {
	closeAll(conns, func(c *sioBenchConn) { c.m.Close() })
}

// sioEchoMode: --in-flight workers per connection, each emitting "echo" and waiting for
// its ack.
type sioEchoMode struct {
	r     *benchRun
	conns []*sioBenchConn
	wg    sync.WaitGroup
}

func (m *sioEchoMode) open(ctx context.Context) {
	m.conns = openAll(ctx, m.r, m.r.cfg.connections, func(ctx context.Context, _ int) (*sioBenchConn, error) {
		return m.r.dialSIO(ctx, nil)
	})
}

func (m *sioEchoMode) start(ctx context.Context) {
	payload := strings.Repeat("x", m.r.cfg.size)
	senders := len(m.conns) * m.r.cfg.inFlight
	for _, c := range m.conns {
		for range m.r.cfg.inFlight {
			m.wg.Add(1)
			go func() {
				defer m.wg.Done()
				p := newPacer(m.r.cfg.rate, senders)
				for p.wait(ctx) {
					t0 := time.Now()
					args, err := c.s.EmitWithAck(ctx, "echo", payload)
					switch {
					case ctx.Err() != nil:
						return
					case err != nil:
						select {
						case <-c.dead:
							return // counted as dropped
						default:
						}
						m.r.fail(fmt.Errorf("echo: %w", err))
						if !c.s.Connected() {
							return
						}
					case len(args.Raw(0)) != len(payload)+2 || args.Len() != 1:
						m.r.fail(fmt.Errorf("echo: ack of %d args, the first of %d bytes; want the %d-byte string sent", args.Len(), len(args.Raw(0)), len(payload)))
					default:
						m.r.record(time.Since(t0))
					}
				}
			}()
		}
	}
}

func (m *sioEchoMode) close() {
	m.wg.Wait() // the workers end with the window
	closeSIO(m.conns)
}

// sioBroadcastMode: every connection joins a room of the run; one of them (the sender)
// emits "broadcast" [room, payload], the server sends "msg" [payload] to the others. The
// payload is "<ns since the run's epoch>:xxx...", so that each receiver measures the
// delivery latency.
type sioBroadcastMode struct {
	r      *benchRun
	room   string
	conns  []*sioBenchConn
	sender *sioBenchConn
	wg     sync.WaitGroup
}

func (m *sioBroadcastMode) open(ctx context.Context) {
	m.room = fmt.Sprintf("duplex-bench-%d", time.Now().UnixNano())
	m.conns = openAll(ctx, m.r, m.r.cfg.connections, func(ctx context.Context, _ int) (*sioBenchConn, error) {
		return m.r.dialSIO(ctx, func(c *sioBenchConn) { c.s.On("msg", m.received) })
	})
	// Join the room, 64 at a time, each bounded by --timeout.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for _, c := range m.conns {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			jctx, cancel := context.WithTimeout(ctx, m.r.cfg.timeout)
			defer cancel()
			if _, err := c.s.EmitWithAck(jctx, "join", m.room); err != nil {
				m.r.fail(fmt.Errorf("join: %w", err))
			}
		}()
	}
	wg.Wait()
	if len(m.conns) > 0 {
		m.sender = m.conns[0]
	}
}

// received handles a "msg" at a receiver.
func (m *sioBroadcastMode) received(args socketio.Args, _ socketio.AckFunc) {
	now := time.Since(m.r.epoch)
	raw := args.Raw(0)
	i := bytes.IndexByte(raw, ':')
	if len(raw) < 2 || raw[0] != '"' || i < 0 {
		m.r.fail(fmt.Errorf("msg: payload %.40q has no send time", raw))
		return
	}
	sentAt, err := strconv.ParseInt(string(raw[1:i]), 10, 64)
	if err != nil {
		m.r.fail(fmt.Errorf("msg: payload %.40q has no send time", raw))
		return
	}
	m.r.record(now - time.Duration(sentAt))
}

func (m *sioBroadcastMode) start(ctx context.Context) {
	if len(m.conns) < 2 {
		m.r.fail(errors.New("broadcast: fewer than 2 connections opened, no receiver"))
		m.r.stopRun()
		return
	}
	for range m.r.cfg.inFlight {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			p := newPacer(m.r.cfg.rate, m.r.cfg.inFlight)
			buf := make([]byte, 0, max(m.r.cfg.size, 24))
			for p.wait(ctx) {
				buf = strconv.AppendInt(buf[:0], int64(time.Since(m.r.epoch)), 10)
				buf = append(buf, ':')
				for len(buf) < m.r.cfg.size {
					buf = append(buf, 'x')
				}
				_, err := m.sender.s.EmitWithAck(ctx, "broadcast", m.room, string(buf))
				switch {
				case ctx.Err() != nil:
					return
				case err != nil:
					select {
					case <-m.sender.dead:
						m.r.stopRun() // nothing more will be sent
						return
					default:
					}
					m.r.fail(fmt.Errorf("broadcast: %w", err))
				default:
					if m.r.inWindow() {
						m.r.sent.Add(1)
					}
				}
			}
		}()
	}
}

func (m *sioBroadcastMode) close() {
	m.wg.Wait()
	closeSIO(m.conns)
}

// sioIdleMode holds Socket.IO sockets connected, sending nothing (the heartbeat goes on).
type sioIdleMode struct {
	r     *benchRun
	conns []*sioBenchConn
}

func (m *sioIdleMode) open(ctx context.Context) {
	m.conns = openAll(ctx, m.r, m.r.cfg.connections, func(ctx context.Context, _ int) (*sioBenchConn, error) {
		return m.r.dialSIO(ctx, nil)
	})
}

func (m *sioIdleMode) start(context.Context) {}

func (m *sioIdleMode) close() { closeSIO(m.conns) }
