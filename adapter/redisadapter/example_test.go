package redisadapter_test

import (
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/duplexio/duplex/adapter/redisadapter"
	"github.com/duplexio/duplex/socketio"
)

// A server that shares its rooms and broadcasts with the other servers (Go or Node, on
// @socket.io/redis-adapter) of the cluster.
func ExampleNew() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	srv := socketio.NewServer(&socketio.Options{NewAdapter: redisadapter.New(rdb, nil)})
	srv.OnConnection(func(s *socketio.Socket) {
		s.Join("news")
	})
	// reaches the sockets in "news" on every server
	_ = srv.To("news").Emit("headline", "hello")
	http.Handle("/socket.io/", srv)
}

// Sharded pub/sub on a Redis Cluster, as createShardedAdapter.
func ExampleNew_sharded() {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:7000"}})
	_ = socketio.NewServer(&socketio.Options{NewAdapter: redisadapter.New(rdb, &redisadapter.Options{Sharded: true})})
}

// A process that is not a server sends events to the clients of the cluster.
func ExampleEmitter() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	e := redisadapter.NewEmitter(rdb, nil)
	_ = e.To("news").Except("muted").Emit("headline", "hello", []byte{1, 2})
	_ = e.Of("/admin").In("ops").SocketsJoin("alerts")
}
