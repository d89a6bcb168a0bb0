// Engine.IO v4 echo server on the official Node `engine.io` package, the peer
// of bench/cmd/eioserver. It echoes every message back as it came (text or
// binary) and prints "listening HOST:PORT" once it listens.
//
//   NODE_PATH=../test/interop/node_modules node node/eioserver.js [port] [pingIntervalMs] [pingTimeoutMs]
//
// engine.io is pinned in test/interop/package.json (cd test/interop && npm ci).
// Every other option is engine.io's default: maxHttpBufferSize 1e6, HTTP
// compression of polling responses ≥ 1 KiB, no permessage-deflate, both
// transports and upgrades. SIGTERM/SIGINT end it.
"use strict";

const http = require("http");
const { Server } = require("engine.io");

const port = Number(process.argv[2] || 0);
const pingInterval = Number(process.argv[3] || 300000);
const pingTimeout = Number(process.argv[4] || 300000);

const httpServer = http.createServer();
const eio = new Server({ pingInterval, pingTimeout });
eio.attach(httpServer); // path /engine.io/

eio.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});

httpServer.listen(port, "127.0.0.1", () => {
  const a = httpServer.address();
  process.stdout.write(`listening ${a.address}:${a.port}\n`);
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}
