package main

import (
	"io"
	"log/slog"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"
	"github.com/duplexio/duplex/socketio"
)

// adapters keeps the adapters a Socket.IO server made, to close them when the node stops.
type adapters struct {
	mu   sync.Mutex
	list []io.Closer
}

// newRedisAdapter returns the Redis pub/sub adapter of the node's namespaces, with key as
// the prefix of its channels (that of the Node adapter's key option).
func (a *adapters) newRedisAdapter(rdb *redis.Client, key string, logger *slog.Logger) socketio.NewAdapterFunc {
	newAdapter := redisadapter.New(rdb, &redisadapter.Options{Key: key, Logger: logger})
	return func(nsp *socketio.Namespace) socketio.Adapter {
		ad := newAdapter(nsp)
		if c, ok := ad.(io.Closer); ok {
			a.mu.Lock()
			a.list = append(a.list, c)
			a.mu.Unlock()
		}
		return ad
	}
}

// close closes every adapter (closing one twice is harmless).
func (a *adapters) close() {
	a.mu.Lock()
	list := a.list
	a.list = nil
	a.mu.Unlock()
	for _, c := range list {
		_ = c.Close()
	}
}
