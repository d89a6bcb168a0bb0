// Package redisadapter scales socketio servers out over Redis, wire-compatible with the
// Node packages @socket.io/redis-adapter 8.3.0 (createAdapter: classic pub/sub;
// createShardedAdapter: Redis 7 sharded pub/sub) and @socket.io/redis-emitter 5.1.0, so Go
// and Node servers can serve one cluster on one Redis (standalone or Redis Cluster).
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	srv := socketio.NewServer(&socketio.Options{NewAdapter: redisadapter.New(rdb, nil)})
//
// A broadcast is delivered to this server's sockets at once and published once for the
// others (through a bounded queue: a slow or unreachable Redis never blocks the caller);
// each server that receives it encodes the packet once for its own sockets. Requests that
// expect answers from the other servers (FetchSockets, ServerSideEmitWithAck, the client
// counts of EmitWithAck) wait at most Options.RequestsTimeout and return what the live
// servers answered, with an error matching ErrTimeout when some did not.
//
// go-redis reconnects with backoff after a Redis restart or a network cut, and the
// adapter's subscriptions are re-established on the new connection; messages that could
// not be published meanwhile are counted (Adapter.Stats) and logged.
//
// Emitter publishes broadcasts and room operations without a server, as
// @socket.io/redis-emitter does.
package redisadapter
