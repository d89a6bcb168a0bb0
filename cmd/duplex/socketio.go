package main

import (
	"encoding/json"
	"log/slog"
	"time"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
)

// fixtureConnectTimeout is the connect timeout the official Socket.IO protocol test suite
// (socketio/socket.io-protocol) expects of the server it tests.
const fixtureConnectTimeout = time.Second

// newSocketIO returns the Socket.IO server that "duplex serve" mounts at /socket.io/, over
// engine (whose Path it sets). connectTimeout 0 keeps the package default.
//
// The main namespace answers the demo events:
//   - "echo": acknowledged with the same arguments (binary ones stay binary);
//   - "join" (room) and "leave" (room): the socket joins or leaves the room, then an empty
//     ack;
//   - "broadcast" (room, payload...): "msg" with the payload goes to every other socket in
//     the room, then an empty ack.
//
// On "/" and "/custom" it also behaves as the fixture of the official protocol test suite:
// each socket is sent "auth" with its handshake auth ({} when none) as it connects; on "/",
// "message" is sent back as "message-back" with the same arguments and "message-with-ack"
// is acknowledged with them.
func newSocketIO(engine *engineio.Server, connectTimeout time.Duration, logger *slog.Logger) *socketio.Server {
	engine.Path = socketio.DefaultPath
	srv := socketio.NewServer(&socketio.Options{
		Engine:         engine,
		ConnectTimeout: connectTimeout,
		Logger:         logger,
	})
	for _, name := range []string{"/", "/custom"} {
		srv.Of(name).OnConnection(func(s *socketio.Socket) {
			auth := s.Handshake().Auth
			if auth == nil {
				auth = json.RawMessage("{}") // as socket.handshake.auth in Node
			}
			_ = s.Emit("auth", auth)
		})
	}
	srv.OnConnection(func(s *socketio.Socket) {
		s.On("message", func(args socketio.Args, _ socketio.AckFunc) {
			_ = s.Emit("message-back", sameArgs(args)...)
		})
		s.On("message-with-ack", func(args socketio.Args, ack socketio.AckFunc) {
			answer(ack, sameArgs(args)...)
		})
		s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
			answer(ack, sameArgs(args)...)
		})
		s.On("join", func(args socketio.Args, ack socketio.AckFunc) {
			room, ok := roomArg(args)
			if !ok {
				answer(ack, map[string]string{"error": "join needs a room"})
				return
			}
			s.Join(room)
			answer(ack)
		})
		s.On("leave", func(args socketio.Args, ack socketio.AckFunc) {
			room, ok := roomArg(args)
			if !ok {
				answer(ack, map[string]string{"error": "leave needs a room"})
				return
			}
			s.Leave(room)
			answer(ack)
		})
		s.On("broadcast", func(args socketio.Args, ack socketio.AckFunc) {
			room, ok := roomArg(args)
			if !ok {
				answer(ack, map[string]string{"error": "broadcast needs a room"})
				return
			}
			payload := sameArgs(args)[1:]
			if err := s.To(room).Emit("msg", payload...); err != nil {
				answer(ack, map[string]string{"error": err.Error()})
				return
			}
			answer(ack)
		})
	})
	return srv
}

// fixtureSocketIO returns the Socket.IO server of the conformance fixture: the Engine.IO
// settings of fixtureEngine (the suite's unless the command line overrides them) and a
// connect timeout of 1 s.
func fixtureSocketIO(o engineOptions, logger *slog.Logger) *socketio.Server {
	return newSocketIO(fixtureEngine(o, logger), fixtureConnectTimeout, logger)
}

// answer acknowledges an event when the client asked for it (ack is not nil).
func answer(ack socketio.AckFunc, args ...any) {
	if ack != nil {
		_ = ack(args...)
	}
}

// roomArg reads the room named by the first argument: a string, or a number as JavaScript
// writes it (Node's handler would take String(room)).
func roomArg(args socketio.Args) (socketio.Room, bool) {
	var name string
	if err := args.Decode(0, &name); err == nil {
		return socketio.Room(name), true
	}
	var n json.Number
	if err := args.Decode(0, &n); err == nil {
		return socketio.Room(n.String()), true
	}
	return "", false
}

// sameArgs returns the arguments of an event as values to send again unchanged: the JSON of
// each argument as it came, except that an argument holding binary values is decoded, so
// that they travel again as attachments.
func sameArgs(args socketio.Args) []any {
	out := make([]any, args.Len())
	for i := range out {
		if b, ok := args.Binary(i); ok {
			out[i] = b
			continue
		}
		var v any
		if err := args.Decode(i, &v); err == nil && holdsBytes(v) {
			out[i] = v
			continue
		}
		out[i] = json.RawMessage(args.Raw(i))
	}
	return out
}

// holdsBytes reports whether v, as Args.Decode gives it into an *any, holds a []byte.
func holdsBytes(v any) bool {
	switch x := v.(type) {
	case []byte:
		return true
	case []any:
		for _, e := range x {
			if holdsBytes(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if holdsBytes(e) {
				return true
			}
		}
	}
	return false
}
