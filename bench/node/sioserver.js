// Socket.IO bench server on the official Node `socket.io` package, the peer of
// bench/cmd/sioserver (internal/sioecho). The main namespace answers:
//
//   echo   acked with the same arguments
//   join   (room) joins the room, then an empty ack
//   bcast  ({room, n, size, start, interval_us}) emits n events "m" to the
//          room, back to back (interval_us 0) or interval_us apart, then acks;
//          message i carries one string of size characters:
//          `${process.hrtime.bigint()}:${i}:` then the pattern from there on
//   stats  acked with {} (the Go server returns its allocation counters)
//
// It prints "listening HOST:PORT" once it listens.
//
//   NODE_PATH=../test/interop/node_modules node node/sioserver.js [port] [pingIntervalMs] [pingTimeoutMs] [redisHost:port]
//
// With a Redis address, the adapter is @socket.io/redis-adapter's
// createAdapter(pubClient, subClient) over two `redis` clients of that
// server (every option the default), so that several of these processes form
// one cluster (cmd/rediscompare); it prints its "listening" line once the
// adapter's subscriptions are in place (PUBSUB NUMSUB of its own response
// channel, subscribed after its pattern).
//
// socket.io, @socket.io/redis-adapter and redis are pinned in
// test/interop/package.json (cd test/interop && npm ci). Every other option is
// socket.io's default (both transports, no permessage-deflate,
// maxHttpBufferSize 1e6). SIGTERM/SIGINT end it.
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
const pingInterval = Number(process.argv[3] || 300000);
const pingTimeout = Number(process.argv[4] || 300000);
const redisAddr = process.argv[5] || "";

const MAX_MESSAGES = 1000000;
const MAX_SIZE = 1 << 20;
const MAX_INTERVAL_US = 1000000;

const CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
let pattern = "";
while (pattern.length < MAX_SIZE) pattern += CHARS;
pattern = pattern.slice(0, MAX_SIZE);

const httpServer = http.createServer();
const io = new Server(httpServer, { pingInterval, pingTimeout });
let pubClient = null;

function message(i, size) {
  const prefix = `${process.hrtime.bigint()}:${i}:`;
  return prefix.length < size ? prefix + pattern.slice(prefix.length, size) : prefix;
}

io.on("connection", (socket) => {
  socket.on("echo", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
  socket.on("join", (room, ack) => {
    socket.join(String(room));
    if (typeof ack === "function") ack();
  });
  socket.on("bcast", (req, ack) => {
    const done = typeof ack === "function" ? ack : () => {};
    const n = req && req.n, size = req && req.size, start = (req && req.start) || 0;
    const interval = (req && req.interval_us) || 0;
    if (!Number.isInteger(n) || n < 0 || n > MAX_MESSAGES || !Number.isInteger(size) || size < 0 || size > MAX_SIZE ||
        !Number.isInteger(interval) || interval < 0 || interval > MAX_INTERVAL_US) {
      done(`bad bcast request ${JSON.stringify(req)}`);
      return;
    }
    const to = io.to(String(req.room));
    if (interval === 0) {
      for (let i = 0; i < n; i++) to.emit("m", message(start + i, size));
      done();
      return;
    }
    const began = process.hrtime.bigint();
    let i = 0;
    const next = () => {
      to.emit("m", message(start + i, size));
      i++;
      if (i >= n) {
        done();
        return;
      }
      const due = began + BigInt(i * interval) * 1000n;
      const wait = Number(due - process.hrtime.bigint()) / 1e6;
      setTimeout(next, Math.max(0, wait));
    };
    if (n === 0) done();
    else next();
  });
  socket.on("stats", (ack) => {
    if (typeof ack === "function") ack({});
  });
});

async function useRedis(addr) {
  const { createClient } = require("redis");
  const { createAdapter } = require("@socket.io/redis-adapter");
  pubClient = createClient({ url: `redis://${addr}` });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on("error", (err) => console.error("redis:", err.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);
  io.adapter(createAdapter(pubClient, subClient));
  const channel = io.of("/").adapter.specificResponseChannel;
  for (let i = 0; i < 500; i++) { // at most ~10 s
    const [, n] = await pubClient.sendCommand(["PUBSUB", "NUMSUB", channel]);
    if (Number(n) >= 1) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`redis subscription of ${channel} not confirmed`);
}

(redisAddr ? useRedis(redisAddr) : Promise.resolve()).then(
  () => {
    httpServer.listen(port, "127.0.0.1", () => {
      const a = httpServer.address();
      process.stdout.write(`listening ${a.address}:${a.port}\n`);
    });
  },
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
