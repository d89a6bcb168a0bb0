// Node `ws` client peer.
// usage: node ws-client.js URL '{"protocols":[...], "perMessageDeflate":bool|{ws options}, "steps":[...]}'
// perMessageDeflate is passed to ws as is (e.g. {"threshold":0, "serverNoContextTakeover":true}).
// Prints {"op":"open","protocol":...,"extensions":names,"negotiated":response's
// Sec-WebSocket-Extensions}, then one line per step (see common.js).
'use strict';
const WebSocket = require('ws');
const { emit, fail, Inbox, runSteps, splitBuffer } = require('./common');

const url = process.argv[2];
const opts = JSON.parse(process.argv[3] || '{}');
setTimeout(() => fail('ws-client: timeout'), opts.timeoutMs || 60000).unref();

const clientOpts = { maxPayload: 64 << 20 };
if (opts.perMessageDeflate !== undefined) clientOpts.perMessageDeflate = opts.perMessageDeflate;
const socket = new WebSocket(url, opts.protocols || [], clientOpts);
const inbox = new Inbox();
let negotiated = '';
socket.on('upgrade', (res) => { negotiated = res.headers['sec-websocket-extensions'] || ''; });

socket.on('message', (data, isBinary) => inbox.push({ kind: 'message', type: isBinary ? 'binary' : 'text', data }));
socket.on('close', (code, reason) => inbox.push({ kind: 'close', code, reason: reason.toString() }));
// Before the handshake an error is fatal; after it, the 'close' event still follows.
socket.on('error', (err) => (socket.readyState === WebSocket.CONNECTING ? fail(err) : emit({ op: 'socketError', message: String(err) })));
socket.on('unexpected-response', (req, res) => fail(`ws-client: unexpected response ${res.statusCode}`));

const peer = {
  send(type, buf, fragments, compress) {
    const parts = splitBuffer(buf, fragments);
    const opts = { binary: type === 'binary' };
    if (compress !== undefined) opts.compress = compress;
    parts.forEach((part, i) => socket.send(part, { ...opts, fin: i === parts.length - 1 }));
  },
  close: (code, reason) => socket.close(code, reason),
};

socket.on('open', () => {
  emit({ op: 'open', protocol: socket.protocol, extensions: socket.extensions, negotiated });
  runSteps(opts.steps || [], peer, inbox).then(() => process.exit(0), fail);
});
