// Node `websocket` (WebSocket-Node) client peer; same steps and output as ws-client.js.
// usage: node websocket-client.js URL '{"protocols":[...], "steps":[...]}'
// WebSocket-Node fragments outgoing messages over 16 KiB by itself.
'use strict';
const { client: WebSocketClient } = require('websocket');
const { emit, fail, Inbox, runSteps } = require('./common');

const url = process.argv[2];
const opts = JSON.parse(process.argv[3] || '{}');
setTimeout(() => fail('websocket-client: timeout'), opts.timeoutMs || 60000).unref();

// The defaults (64 KiB frames, 1 MiB messages) are too small for the 16 MiB cases.
const client = new WebSocketClient({ maxReceivedFrameSize: 64 << 20, maxReceivedMessageSize: 64 << 20 });
const inbox = new Inbox();

client.on('connectFailed', fail);
client.on('connect', (conn) => {
  conn.on('message', (m) => inbox.push(m.type === 'utf8'
    ? { kind: 'message', type: 'text', data: Buffer.from(m.utf8Data, 'utf8') }
    : { kind: 'message', type: 'binary', data: m.binaryData }));
  conn.on('close', (code, reason) => inbox.push({ kind: 'close', code, reason }));
  // After the handshake an error (e.g. ECONNRESET) is reported, and the 'close' event still follows.
  conn.on('error', (err) => emit({ op: 'socketError', message: String(err) }));
  const peer = {
    send: (type, buf) => (type === 'text' ? conn.sendUTF(buf.toString('utf8')) : conn.sendBytes(buf)),
    close: (code, reason) => conn.close(code, reason),
  };
  emit({ op: 'open', protocol: conn.protocol || '' });
  runSteps(opts.steps || [], peer, inbox).then(() => process.exit(0), fail);
});
client.connect(url, opts.protocols && opts.protocols.length ? opts.protocols : null);
