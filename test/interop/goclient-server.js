// Node `socket.io` 4.8.4 server for the Go client's tests (goclient_test.go, whose Go twin,
// goSIOApp, must behave the same).
// usage: node goclient-server.js '{"port":N, "pingInterval":ms, "pingTimeout":ms}'
// Listens on 127.0.0.1:port (the Go test picks the port, so that a restarted server comes
// back on the same one) and prints {"op":"listening","port":N}. Exits when stdin closes.
//
// Connection-state recovery is on (maxDisconnectionDuration 60 s, skipMiddlewares). The
// namespaces "/" and "/admin" have the same events; "/" also has a middleware that refuses
// auth {token:"bad"} with the error "unauthorized", data {code:401}.
//   echo (...args)               acks with the same arguments (binary included)
//   count (n)                    emits "seq" with 0, 1, ..., n-1, then acks n
//   ask (payload)                asks the client "question" (payload) for an ack, then emits
//                                "answer" with the first value the client acked (and acks it)
//   binary (size)                acks with a Buffer of size bytes (pattern.js binary)
//   relay (...args)              emits "relayed" with the same arguments
//   server-disconnect            socket.disconnect(): the client must not reconnect
//   close-transport              socket.conn.close(): a lost connection, recoverable
//   close-transport-and-emit (n) the same; once the socket is gone, emits "missed" 0..n-1 to
//                                its room, which only a recovery can deliver
//   whoami                       acks {id, nsp, recovered, auth, transport, engine (the
//                                Engine.IO session id)}
//   ignore                       no handler: an ack asked for never comes
// Prints, as they happen: {"op":"connection", nsp, id, recovered},
// {"op":"disconnect", nsp, id, reason}.
'use strict';
const http = require('http');
const { Server } = require('socket.io');
const pattern = require('./pattern');
const { emit, fail } = require('./common');

const cfg = JSON.parse(process.argv[2] || '{}');
const httpServer = http.createServer();
const io = new Server(httpServer, {
  pingInterval: cfg.pingInterval || 25000,
  pingTimeout: cfg.pingTimeout || 20000,
  connectionStateRecovery: { maxDisconnectionDuration: 60000, skipMiddlewares: true },
});

io.of('/').use((socket, next) => {
  const auth = socket.handshake.auth || {};
  if (auth.token === 'bad') {
    const err = new Error('unauthorized');
    err.data = { code: 401 };
    return next(err);
  }
  next();
});

// split separates an event's arguments from its ack callback (null when none was asked for).
function split(args) {
  const ack = args.length && typeof args[args.length - 1] === 'function' ? args.pop() : null;
  return [args, ack];
}

for (const name of ['/', '/admin']) {
  const nsp = io.of(name);
  nsp.on('connection', (socket) => {
    emit({ op: 'connection', nsp: name, id: socket.id, recovered: socket.recovered });
    socket.on('disconnect', (reason) => emit({ op: 'disconnect', nsp: name, id: socket.id, reason }));
    socket.on('echo', (...all) => {
      const [args, ack] = split(all);
      if (ack) ack(...args);
    });
    socket.on('count', (...all) => {
      const [[n], ack] = split(all);
      for (let i = 0; i < n; i++) socket.emit('seq', i);
      if (ack) ack(n);
    });
    socket.on('ask', (...all) => {
      const [[payload], ack] = split(all);
      socket.timeout(10000).emitWithAck('question', payload).then((answer) => {
        socket.emit('answer', answer);
        if (ack) ack(answer);
      }, (err) => socket.emit('answer-error', String(err)));
    });
    socket.on('binary', (...all) => {
      const [[size], ack] = split(all);
      const b = pattern.binary(size);
      if (ack) ack(Buffer.from(b.buffer, b.byteOffset, b.length));
    });
    socket.on('relay', (...all) => {
      const [args] = split(all);
      socket.emit('relayed', ...args);
    });
    socket.on('server-disconnect', () => socket.disconnect());
    socket.on('close-transport', () => socket.conn.close());
    socket.on('close-transport-and-emit', (...all) => {
      const [[n]] = split(all);
      socket.once('disconnect', () => {
        for (let i = 0; i < n; i++) nsp.to(socket.id).emit('missed', i);
      });
      socket.conn.close();
    });
    socket.on('whoami', (...all) => {
      const [, ack] = split(all);
      if (ack) {
        ack({ id: socket.id, nsp: name, recovered: socket.recovered, auth: socket.handshake.auth,
          transport: socket.conn.transport.name, engine: socket.conn.id });
      }
    });
  });
}

httpServer.on('error', fail);
httpServer.listen(cfg.port || 0, '127.0.0.1', () => emit({ op: 'listening', port: httpServer.address().port }));
process.stdin.on('end', () => process.exit(0)); // the Go test closed our stdin
process.stdin.resume();
