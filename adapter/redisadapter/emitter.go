package redisadapter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/socketio"
)

// EmitterOptions configures an Emitter.
type EmitterOptions struct {
	// Key is the prefix of the channel names ("" means DefaultKey); it must be the
	// servers' (Options.Key, Node's key).
	Key string
	// Timeout bounds each PUBLISH (0: DefaultRequestsTimeout).
	Timeout time.Duration
}

// Emitter sends events to the sockets of a cluster of servers on the classic pub/sub
// adapter (Go or Node) without being a server, as @socket.io/redis-emitter 5.1.0 does:
// it publishes the same messages with the uid "emitter". Its methods return once Redis
// took the message. An Emitter is immutable and safe for concurrent use: To, In, Except,
// Of and the flags return new ones.
type Emitter struct {
	client  redis.UniversalClient
	key     string
	timeout time.Duration
	nsp     string
	opts    socketio.BroadcastOptions
}

// NewEmitter returns an emitter on the main namespace "/".
func NewEmitter(client redis.UniversalClient, opts *EmitterOptions) *Emitter {
	e := &Emitter{client: client, key: DefaultKey, timeout: DefaultRequestsTimeout, nsp: "/"}
	if opts != nil {
		if opts.Key != "" {
			e.key = opts.Key
		}
		if opts.Timeout > 0 {
			e.timeout = opts.Timeout
		}
	}
	return e
}

func (e *Emitter) with(f func(c *Emitter)) *Emitter {
	c := *e
	c.opts.Rooms = append([]socketio.Room(nil), e.opts.Rooms...)
	c.opts.Except = append([]socketio.Room(nil), e.opts.Except...)
	f(&c)
	return &c
}

// Of returns an emitter on namespace nsp (a leading "/" is added when missing), with no
// rooms nor flags.
func (e *Emitter) Of(nsp string) *Emitter {
	if nsp == "" || nsp[0] != '/' {
		nsp = "/" + nsp
	}
	return &Emitter{client: e.client, key: e.key, timeout: e.timeout, nsp: nsp}
}

// To adds rooms: the event reaches the sockets in any of them.
func (e *Emitter) To(rooms ...socketio.Room) *Emitter {
	return e.with(func(c *Emitter) { c.opts.Rooms = append(c.opts.Rooms, rooms...) })
}

// In is To.
func (e *Emitter) In(rooms ...socketio.Room) *Emitter { return e.To(rooms...) }

// Except leaves out the sockets in any of rooms.
func (e *Emitter) Except(rooms ...socketio.Room) *Emitter {
	return e.with(func(c *Emitter) { c.opts.Except = append(c.opts.Except, rooms...) })
}

// Volatile lets the servers drop the event for sockets not ready to take it.
func (e *Emitter) Volatile() *Emitter { return e.with(func(c *Emitter) { c.opts.Volatile = true }) }

// Compress turns compression of the event on (the default) or off.
func (e *Emitter) Compress(on bool) *Emitter {
	return e.with(func(c *Emitter) { c.opts.NoCompress = !on })
}

func (e *Emitter) publish(channel string, payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), e.timeout)
	defer cancel()
	return e.client.Publish(ctx, channel, payload).Err()
}

func (e *Emitter) channel() string        { return e.key + "#" + e.nsp + "#" }
func (e *Emitter) requestChannel() string { return e.key + "-request#" + e.nsp + "#" }

// Emit sends an event to the selected sockets. Arguments are encoded as socketio's Emit
// encodes them ([]byte values travel as binary). Acknowledgements are not supported, as
// with the Node emitter.
func (e *Emitter) Emit(event string, args ...any) error {
	if socketio.IsReservedEvent(event) {
		return fmt.Errorf("%w: %q", socketio.ErrReservedEvent, event)
	}
	vals, err := jsonValues(args)
	if err != nil {
		return err
	}
	b, err := encodeMsgpack([]any{EmitterUID, packetObject(e.nsp, event, vals), encodeOpts(e.opts, 0)})
	if err != nil {
		return err
	}
	channel := e.channel()
	if len(e.opts.Rooms) == 1 {
		channel += string(e.opts.Rooms[0]) + "#"
	}
	return e.publish(channel, b)
}

func (e *Emitter) request(typ int, fields map[string]any) error {
	m := map[string]any{"type": typ, "opts": map[string]any{"rooms": roomList(e.opts.Rooms), "except": roomList(e.opts.Except)}}
	for k, v := range fields {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return e.publish(e.requestChannel(), b)
}

// SocketsJoin makes the selected sockets join rooms.
func (e *Emitter) SocketsJoin(rooms ...socketio.Room) error {
	return e.request(reqRemoteJoin, map[string]any{"rooms": roomList(rooms)})
}

// SocketsLeave makes the selected sockets leave rooms.
func (e *Emitter) SocketsLeave(rooms ...socketio.Room) error {
	return e.request(reqRemoteLeave, map[string]any{"rooms": roomList(rooms)})
}

// DisconnectSockets disconnects the selected sockets, closing their connections when
// closeConn is set.
func (e *Emitter) DisconnectSockets(closeConn bool) error {
	return e.request(reqRemoteDisconnect, map[string]any{"close": closeConn})
}

// ServerSideEmit sends an event to every server's OnServerSideEmit handlers (without
// acknowledgement, as with the Node emitter).
func (e *Emitter) ServerSideEmit(event string, args ...any) error {
	if socketio.IsReservedEvent(event) {
		return fmt.Errorf("%w: %q", socketio.ErrReservedEvent, event)
	}
	data, err := serverSideData(event, args)
	if err != nil {
		return err
	}
	b, err := encodeMessage(map[string]any{"uid": EmitterUID, "type": reqServerSideEmit, "data": data})
	if err != nil {
		return err
	}
	return e.publish(e.requestChannel(), b)
}
