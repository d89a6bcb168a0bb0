package main

import (
	"encoding/json"

	"github.com/duplexio/duplex/internal/fixture"
	"github.com/duplexio/duplex/socketio"
)

// addDemoHandlers gives the main namespace of the Socket.IO server that "duplex serve" mounts
// at /socket.io/ the demo events (besides the fixture's, from fixture.AddHandlers):
//   - "echo": acknowledged with the same arguments (binary ones stay binary);
//   - "join" (room) and "leave" (room): the socket joins or leaves the room, then an empty
//     ack;
//   - "broadcast" (room, payload...): "msg" with the payload goes to every other socket in
//     the room, then an empty ack.
func addDemoHandlers(srv *socketio.Server) {
	srv.OnConnection(func(s *socketio.Socket) {
		s.On("echo", func(args socketio.Args, ack socketio.AckFunc) {
			answer(ack, fixture.SameArgs(args)...)
		})
		s.On("join", roomHandler("join", func(room socketio.Room) { s.Join(room) }))
		s.On("leave", roomHandler("leave", s.Leave))
		s.On("broadcast", func(args socketio.Args, ack socketio.AckFunc) {
			room, ok := roomArg(args)
			if !ok {
				answer(ack, map[string]string{"error": "broadcast needs a room"})
				return
			}
			payload := fixture.SameArgs(args)[1:]
			if err := s.To(room).Emit("msg", payload...); err != nil {
				answer(ack, map[string]string{"error": err.Error()})
				return
			}
			answer(ack)
		})
	})
}

// roomHandler returns the handler of the event that applies change to the room its first
// argument names, then sends an empty ack (or an error when there is no room).
func roomHandler(event string, change func(socketio.Room)) func(socketio.Args, socketio.AckFunc) {
	return func(args socketio.Args, ack socketio.AckFunc) {
		room, ok := roomArg(args)
		if !ok {
			answer(ack, map[string]string{"error": event + " needs a room"})
			return
		}
		change(room)
		answer(ack)
	}
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
