// Package redisadapter scales socketio servers out over Redis, wire-compatible
// with the Node packages @socket.io/redis-adapter 8.3.0 (pub/sub and sharded
// pub/sub) and @socket.io/redis-emitter 5.1.0, so Go and Node servers can
// serve one cluster.
package redisadapter

import (
	// The adapter is built on these; imported here until the code using them
	// lands so that go.mod keeps them.
	_ "github.com/redis/go-redis/v9"
	_ "github.com/vmihailenco/msgpack/v5"
)
