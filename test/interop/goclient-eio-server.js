// Node `engine.io` 6.6.12 server for the Go client's Engine.IO tests
// (goclient_engineio_test.go, whose Go twin, goEIOApp, must behave the same).
// usage: node goclient-eio-server.js '{"port":N, "pingInterval":ms, "pingTimeout":ms,
//                                      "maxHttpBufferSize":bytes}'
// Listens on 127.0.0.1:port at /engine.io/ and prints {"op":"listening","port":N}. Exits
// when stdin closes.
//
// Every message is echoed back as it came (text as text, binary as binary), except the text
// "__request", answered with the JSON {"header": the X-Duplex-Test header of the request
// that opened the session, "query": its "duplex" query parameter, "transport"}.
// Prints, as they happen: {"op":"open", id, transport}, {"op":"upgrade", id, transport},
// {"op":"message", id, size, binary, text (the first 40 characters of a text message)},
// {"op":"close", id, reason}.
'use strict';
const http = require('http');
const engine = require('engine.io');
const { emit, fail } = require('./common');

const cfg = JSON.parse(process.argv[2] || '{}');
const httpServer = http.createServer();
const server = engine.attach(httpServer, {
  pingInterval: cfg.pingInterval || 25000,
  pingTimeout: cfg.pingTimeout || 20000,
  maxHttpBufferSize: cfg.maxHttpBufferSize || 1e6,
});

server.on('connection', (socket) => {
  const req = socket.request;
  const query = new URL(req.url, 'http://localhost').searchParams;
  emit({ op: 'open', id: socket.id, transport: socket.transport.name });
  socket.on('upgrade', () => emit({ op: 'upgrade', id: socket.id, transport: socket.transport.name }));
  socket.on('message', (data) => {
    const binary = typeof data !== 'string';
    emit({ op: 'message', id: socket.id, size: binary ? data.length : Buffer.byteLength(data), binary,
      text: binary ? '' : data.slice(0, 40) });
    if (data === '__request') {
      socket.send(JSON.stringify({ header: req.headers['x-duplex-test'] || '', query: query.get('duplex') || '',
        transport: socket.transport.name }));
      return;
    }
    socket.send(data);
  });
  socket.on('close', (reason) => emit({ op: 'close', id: socket.id, reason }));
});

httpServer.on('error', fail);
httpServer.listen(cfg.port || 0, '127.0.0.1', () => emit({ op: 'listening', port: httpServer.address().port }));
process.stdin.on('end', () => process.exit(0)); // the Go test closed our stdin
process.stdin.resume();
