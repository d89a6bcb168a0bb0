package ws

import (
	"context"
	"errors"
	"sync"
)

// PreparedMessage is a message encoded once and written to many connections, as a broadcast
// does: the frame bytes are computed on first use for each way of sending it (uncompressed,
// or compressed without context takeover at a given level and window) and shared by every
// connection sending it that way. Connections that cannot share frames — clients, whose
// frames are masked per frame, and compression with context takeover, whose output depends
// on each connection's history — encode it for themselves.
//
// A PreparedMessage is safe for concurrent use. Its data must not change after
// NewPreparedMessage.
type PreparedMessage struct {
	typ  MessageType
	data []byte

	mu     sync.Mutex
	frames map[preparedKey][]byte
}

// preparedKey says how a prepared frame was encoded.
type preparedKey struct {
	compressed  bool
	level, bits int
}

// NewPreparedMessage prepares data as a message of type typ.
func NewPreparedMessage(typ MessageType, data []byte) (*PreparedMessage, error) {
	if typ != MessageText && typ != MessageBinary {
		return nil, errors.New("ws: NewPreparedMessage with an invalid message type")
	}
	return &PreparedMessage{typ: typ, data: data, frames: make(map[preparedKey][]byte, 1)}, nil
}

// frame returns the server frame for key, encoding it the first time.
func (pm *PreparedMessage) frame(key preparedKey) ([]byte, error) {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if f, ok := pm.frames[key]; ok {
		return f, nil
	}
	h := Header{Fin: true, Opcode: Opcode(pm.typ)}
	payload := pm.data
	if key.compressed {
		d := &deflateState{level: key.level, sendBits: key.bits}
		var out []byte
		if err := d.compress(&out, pm.data); err != nil {
			return nil, err
		}
		payload, h.Rsv = out, Rsv1
	}
	h.Length = int64(len(payload))
	f := append(AppendHeader(make([]byte, 0, h.Size()+len(payload)), h), payload...)
	pm.frames[key] = f
	return f, nil
}

// WritePreparedMessage sends pm, compressed under the same rule as WriteMessage. It is safe
// to call from several goroutines, like WriteMessage.
func (c *Conn) WritePreparedMessage(ctx context.Context, pm *PreparedMessage) error {
	d := c.cfg.deflate
	compress := d != nil && len(pm.data) >= d.threshold
	if !c.cfg.isServer || compress && d.sendTakeover {
		return c.writeMessage(ctx, pm.typ, pm.data, compress)
	}
	key := preparedKey{compressed: compress}
	if compress {
		key.level, key.bits = d.level, d.sendBits
	}
	frame, err := pm.frame(key)
	if err != nil {
		return err
	}
	c.dataMu.Lock()
	defer c.dataMu.Unlock()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent && c.writeErr == nil {
		return ErrClosed
	}
	return c.writeEncodedLocked(ctx, frame)
}
