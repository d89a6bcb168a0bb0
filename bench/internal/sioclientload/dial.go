package sioclientload

import (
	"context"
	"errors"
)

// dial connects one client to url's main namespace.
func dial(ctx context.Context, url string) (client, error) {
	return nil, errors.New("the duplex Go Socket.IO client has not landed yet")
}
