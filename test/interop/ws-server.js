// Node `ws` echo server peer.
// usage: node ws-server.js '{"perMessageDeflate":bool|{ws options}, "protocols":[...]}'
// perMessageDeflate is passed to ws as is (e.g. {"threshold":0, "clientMaxWindowBits":10}).
// Prints {"op":"listening","port":N}, then per connection (id = ?id= of the URL):
//   open (extensions: the offered Sec-WebSocket-Extensions, negotiated: the one answered),
//   message (type, len, sha256; the message is echoed), pong, close.
// Query parameters: ?close=CODE&reason=R closes right after the handshake;
// ?ping=DATA pings, and answers the pong with the text message "pong:DATA";
// ?compress=false|true|alt sets ws's per-message compress option of the echoes
// (alt: true, false, true, ...); ?fragments=N echoes each message in N frames.
'use strict';
const { WebSocketServer } = require('ws');
const { emit, sha256, fail, splitBuffer } = require('./common');

const opts = JSON.parse(process.argv[2] || '{}');
const pmd = opts.perMessageDeflate;
const serverOpts = { host: '127.0.0.1', port: 0, maxPayload: 64 << 20, perMessageDeflate: typeof pmd === 'object' && pmd ? pmd : !!pmd };
if (opts.protocols) {
  serverOpts.handleProtocols = (offered) => [...offered].find((p) => opts.protocols.includes(p)) || false;
}
const wss = new WebSocketServer(serverOpts);
wss.on('error', fail);
const negotiated = new WeakMap(); // request -> the Sec-WebSocket-Extensions answered
wss.on('headers', (headers, req) => {
  const h = headers.find((line) => /^sec-websocket-extensions:/i.test(line));
  negotiated.set(req, h ? h.slice(h.indexOf(':') + 1).trim() : '');
});
wss.on('listening', () => emit({ op: 'listening', port: wss.address().port }));
process.stdin.on('end', () => process.exit(0)); // the Go test closed our stdin
process.stdin.resume();

wss.on('connection', (socket, req) => {
  const q = new URL(req.url, 'http://localhost').searchParams;
  const id = q.get('id') || '';
  emit({ op: 'open', id, protocol: socket.protocol, extensions: req.headers['sec-websocket-extensions'] || '',
    negotiated: negotiated.get(req) || '' });
  const compress = q.get('compress');
  const fragments = Number(q.get('fragments') || 1);
  let count = 0;
  socket.on('message', (data, isBinary) => {
    emit({ op: 'message', id, type: isBinary ? 'binary' : 'text', len: data.length, sha256: sha256(data) });
    const sendOpts = { binary: isBinary };
    if (compress === 'alt') sendOpts.compress = count % 2 === 0;
    else if (compress) sendOpts.compress = compress === 'true';
    count++;
    const parts = splitBuffer(data, fragments);
    parts.forEach((part, i) => socket.send(part, { ...sendOpts, fin: i === parts.length - 1 }));
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
