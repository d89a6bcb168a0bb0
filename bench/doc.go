// Package bench holds the side-by-side benchmark harness for duplex's ws
// package: echo servers per library (internal/servers), a library-neutral load
// generator (internal/load, cmd/load), the runner (cmd/compare), the smoke
// tests that keep them honest and Go microbenchmarks; and the comparisons of
// duplex's engineio and socketio servers with Node's engine.io and socket.io
// (cmd/eiocompare, cmd/siocompare), and of duplex's Go Socket.IO client with
// Node's socket.io-client (cmd/sioclientcompare, internal/sioclientload,
// node/sioclient.js), and of a broadcast over two Socket.IO nodes clustered
// through Redis, duplex's redisadapter against Node's
// @socket.io/redis-adapter (cmd/rediscompare). The comparisons share how they run their processes
// (internal/harness) and report their runs (internal/report); the three
// servers share their main (internal/servermain).
// See README.md.
package bench
