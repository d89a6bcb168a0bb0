// Node `ws` echo server peer.
// usage: node ws-server.js '{"perMessageDeflate":bool, "protocols":[...]}'
// Prints {"op":"listening","port":N}, then per connection (id = ?id= of the URL):
//   open, message (type, len, sha256; the message is echoed), pong, close.
// Query parameters: ?close=CODE&reason=R closes right after the handshake;
// ?ping=DATA pings, and answers the pong with the text message "pong:DATA".
'use strict';
const { WebSocketServer } = require('ws');
const { emit, sha256, fail } = require('./common');

const opts = JSON.parse(process.argv[2] || '{}');
const serverOpts = { host: '127.0.0.1', port: 0, maxPayload: 64 << 20, perMessageDeflate: !!opts.perMessageDeflate };
if (opts.protocols) {
  serverOpts.handleProtocols = (offered) => [...offered].find((p) => opts.protocols.includes(p)) || false;
}
const wss = new WebSocketServer(serverOpts);
wss.on('error', fail);
wss.on('listening', () => emit({ op: 'listening', port: wss.address().port }));
process.stdin.on('end', () => process.exit(0)); // the Go test closed our stdin
process.stdin.resume();

wss.on('connection', (socket, req) => {
  const q = new URL(req.url, 'http://localhost').searchParams;
  const id = q.get('id') || '';
  emit({ op: 'open', id, protocol: socket.protocol, extensions: req.headers['sec-websocket-extensions'] || '' });
  socket.on('message', (data, isBinary) => {
    emit({ op: 'message', id, type: isBinary ? 'binary' : 'text', len: data.length, sha256: sha256(data) });
    socket.send(data, { binary: isBinary });
  });
  socket.on('pong', (data) => {
    emit({ op: 'pong', id, data: data.toString() });
    socket.send('pong:' + data.toString());
  });
  socket.on('close', (code, reason) => emit({ op: 'close', id, code, reason: reason.toString() }));
  socket.on('error', (err) => emit({ op: 'socketError', id, message: String(err) }));
  if (q.has('close')) socket.close(Number(q.get('close')), q.get('reason') || '');
  if (q.has('ping')) socket.ping(q.get('ping'));
});
