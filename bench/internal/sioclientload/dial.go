package sioclientload

import (
	"context"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/socketio"
)

// dial connects one client to url's main namespace the plain way: its own
// Manager (socketio.Dial), WebSocket only, no reconnection, every other
// option the default.
func dial(ctx context.Context, url string) (client, error) {
	s, err := socketio.Dial(ctx, url, &socketio.ManagerOptions{
		Engine:      engineio.ClientOptions{Transports: []string{"websocket"}},
		NoReconnect: true,
	}, nil)
	if err != nil {
		return nil, err
	}
	return goClient{s}, nil
}

// goClient is a connected socketio.ClientSocket.
type goClient struct{ *socketio.ClientSocket }

// Close disconnects the socket; its Manager then closes the connection.
func (c goClient) Close() { c.Disconnect() }
