// Node socket.io server on @socket.io/redis-streams-adapter, for the mixed Go/Node cluster
// test (redis_streams_test.go).
// usage: node redis-streams-node-server.js REDIS_URL
// Listens on a free loopback port with connection-state recovery (1 min); every socket that
// was not recovered joins "news". Prints one JSON line per event: {"op":"listening","port"},
// {"op":"connect","id","match":recovered}, {"op":"disconnect","id","reason"},
// {"op":"sent"} after each command. Reads commands on stdin, one JSON array a line:
// ["emit", room or "", event, arg], ["emitbin", room or "", event, hex], "exit" ends;
// ["sse", "", event, arg] io.serverSideEmit(event, arg); ["sseack", "", event, arg]
// io.serverSideEmitWithAck(event, arg), then prints {"op":"sseack","data":JSON of the
// answers}; ["ack", room or "", event, arg] io.timeout(5000).emitWithAck(event, arg), then
// prints {"op":"acks","data":JSON of the answers} (or {"op":"ackerr","message"}).
// Server-side "hello" events from other servers print {"op":"sse","data":arg} and are
// answered "node got " + arg.
'use strict';
const http = require('http');
const { Server } = require('socket.io');
const { createClient } = require('redis');
const { createAdapter } = require('@socket.io/redis-streams-adapter');
const { emit, fail } = require('./common');

setTimeout(() => fail('redis-streams-node-server: timeout'), 60000).unref();

async function main() {
  const redis = createClient({ url: process.argv[2] });
  redis.on('error', () => {});
  await redis.connect();
  const httpServer = http.createServer();
  const io = new Server(httpServer, {
    adapter: createAdapter(redis, { blockTimeInMs: 200 }),
    connectionStateRecovery: { maxDisconnectionDuration: 60000, skipMiddlewares: true },
  });
  io.on('hello', (arg, cb) => {
    emit({ op: 'sse', data: String(arg) });
    if (typeof cb === 'function') cb('node got ' + arg);
  });
  io.on('connection', (socket) => {
    if (!socket.recovered) socket.join('news');
    emit({ op: 'connect', id: socket.id, match: socket.recovered });
    socket.on('disconnect', (reason) => emit({ op: 'disconnect', id: socket.id, reason }));
  });
  httpServer.listen(0, '127.0.0.1', () => emit({ op: 'listening', port: httpServer.address().port }));

  let input = '';
  process.stdin.on('data', (chunk) => {
    input += chunk;
    let nl;
    while ((nl = input.indexOf('\n')) >= 0) {
      const line = input.slice(0, nl).trim();
      input = input.slice(nl + 1);
      if (line === 'exit') process.exit(0);
      if (!line) continue;
      const [cmd, room, event, arg] = JSON.parse(line);
      const target = room ? io.to(room) : io;
      if (cmd === 'emit') target.emit(event, arg);
      if (cmd === 'emitbin') target.emit(event, Buffer.from(arg, 'hex'));
      if (cmd === 'sse') io.serverSideEmit(event, arg);
      if (cmd === 'sseack') {
        io.serverSideEmitWithAck(event, arg)
          .then((res) => emit({ op: 'sseack', data: JSON.stringify(res) }))
          .catch((err) => emit({ op: 'ackerr', message: String(err) }));
      }
      if (cmd === 'ack') {
        (room ? io.timeout(5000).to(room) : io.timeout(5000)).emitWithAck(event, arg)
          .then((res) => emit({ op: 'acks', data: JSON.stringify(res.sort()) }))
          .catch((err) => emit({ op: 'ackerr', message: String(err) }));
      }
      emit({ op: 'sent' });
    }
  });
  process.stdin.on('end', () => process.exit(0));
}

main().catch(fail);
