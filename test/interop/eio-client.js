// Node `engine.io-client` peer of the duplex Engine.IO server (engineio_test.go).
// usage: node eio-client.js URL '{"opts":{engine.io-client options}, "binaryType":"nodebuffer"|"arraybuffer",
//                                 "steps":[...], "timeoutMs":N, "probeDelayMs":N}'
// URL is the origin (http://127.0.0.1:PORT); opts go to `new Socket(URL, opts)` as they are
// (transports, upgrade, forceBase64, path...).
//
// Prints one JSON line per event, as they happen:
//   {"op":"open","transport","id","upgrades","pingInterval","pingTimeout","maxPayload"} (the open
//     packet's fields as the server sent them)
//   {"op":"upgrading","transport"}, {"op":"upgrade","transport"}, {"op":"upgradeError","message"}
//   {"op":"close","reason","message","code"}: the socket's close event (message: the
//     description's text, code: the WebSocket close code when there is one)
// and one line per step:
//   {op:'echo', type, size, as?}   send the pattern (text: a string; binary: as 'buffer' (default),
//       'arraybuffer' or 'uint8array') and wait for the next message; prints {op:'echo', type, size,
//       as, gotType, gotClass (String|Buffer|ArrayBuffer|undefined), len, match, sha256, transport
//       (the one that brought the answer), wire}.
//       wire: how the answer travelled: 'polling', or for a WebSocket the frame that carried it:
//       'binary' (binary frame), 'base64' (text frame "b..."), 'text' (text frame "4...").
//   {op:'send', type, size}        send without waiting.
//   {op:'seq', count}              send count numbered messages at once and read count numbered
//       messages from the server (see "numbered messages" below); prints {op:'seq', sent, received,
//       ordered, firstBad, got}.
//   {op:'stream', after, max, intervalMs, perTick}   a stream both ways across the upgrade (run it as
//       the first step): from the open on, send perTick numbered messages every intervalMs until the
//       upgrade is done and after more have been sent over the WebSocket (or max in all); then send
//       "end:N" (N = how many were sent). Meanwhile read numbered messages until the server's
//       "end:M". Prints {op:'stream', sent, sentBefore (before the upgrade event), received,
//       receivedBefore, serverTotal, ordered, firstBad, got, upgraded}.
//   {op:'awaitUpgrade'}            wait for the upgrade event (no-op if already upgraded).
//   {op:'mark', id}                print {op:'mark', id, transport}: the Go test acts on it.
//   {op:'sleep', ms}               idle; prints {op:'slept', pings (server pings seen meanwhile),
//       closed (whether the socket closed meanwhile)}.
//   {op:'mutePongs'}               stop answering the server's pings (the client still sees them).
//   {op:'close'}                   socket.close(), then wait for the close event (and up to 2 s for the
//       close packet or the WebSocket closing handshake to go out).
//   {op:'awaitClose'}              wait for the close event.
// After the last step the script exits 0; any failure prints {"op":"error","message"} and exits 1.
//
// Numbered messages: message i of a sender is the text "<p><i>" (p = "c" from the client, "s"
// from the server), sent as a text message when i is even and as a binary message (the UTF-8
// bytes) when i is odd; the receiver checks number, prefix and kind of each.
'use strict';
const { Socket } = require('engine.io-client');
const { emit, fail, sha256, payload, Inbox } = require('./common');

const url = process.argv[2];
const args = JSON.parse(process.argv[3] || '{}');
setTimeout(() => fail('eio-client: timeout'), args.timeoutMs || 60000).unref();

const socket = new Socket(url, args.opts || {});
if (args.binaryType) socket.binaryType = args.binaryType;
if (args.probeDelayMs) {
  // Start the upgrade probe that long after the open, so that traffic flows over polling
  // first (the stream test needs messages on both sides of the switch).
  const probe = socket._probe.bind(socket);
  socket._probe = (name) => setTimeout(() => { if (socket.readyState === 'open') probe(name); }, args.probeDelayMs);
}
const inbox = new Inbox();
let upgraded = false;
let closed = false;
let pings = 0;
const upgradeWaiters = [];
const closeWaiters = [];

// The WebSocket frames that carried messages, counted per kind (see 'wire' above).
const wire = { binary: 0, base64: 0, text: 0 };
function tapWire(transport) {
  if (!transport || transport.name !== 'websocket' || !transport.ws || transport.ws.__tapped) return;
  transport.ws.__tapped = true;
  transport.ws.on('message', (data, isBinary) => {
    if (isBinary) wire.binary++;
    else if (data.length && data[0] === 0x62 /* b */) wire.base64++;
    else if (data.length && data[0] === 0x34 /* 4 */) wire.text++;
  });
}
tapWire(socket.transport);

// An empty text message arrives as undefined (engine.io-parser drops empty data).
const kindOf = (data) => (typeof data === 'string' || data === undefined ? 'text' : 'binary');
const classOf = (data) => (data === undefined ? 'undefined' : typeof data === 'string' ? 'String' : Buffer.isBuffer(data) ? 'Buffer'
  : data instanceof ArrayBuffer ? 'ArrayBuffer' : Object.prototype.toString.call(data));
const bytesOf = (data) => (data === undefined ? Buffer.alloc(0) : typeof data === 'string' ? Buffer.from(data, 'utf8')
  : Buffer.isBuffer(data) ? data : Buffer.from(data));

let handshake = {};
socket.on('handshake', (h) => { handshake = h; });
socket.on('open', () => {
  const t = socket.transport;
  emit({ op: 'open', transport: t.name, id: socket.id, upgrades: handshake.upgrades,
    pingInterval: handshake.pingInterval, pingTimeout: handshake.pingTimeout, maxPayload: handshake.maxPayload });
  tapWire(t);
  runSteps(args.steps || []).then(() => process.exit(0), fail);
});
socket.on('upgrading', (t) => emit({ op: 'upgrading', transport: t.name }));
socket.on('upgrade', (t) => {
  upgraded = true;
  tapWire(t);
  emit({ op: 'upgrade', transport: t.name });
  upgradeWaiters.splice(0).forEach((w) => w());
});
socket.on('upgradeError', (err) => emit({ op: 'upgradeError', message: String(err && err.message) }));
socket.on('ping', () => { pings++; });
socket.on('message', (data) => inbox.push({ kind: 'message', data, via: socket.transport.name }));
socket.on('close', (reason, desc) => {
  closed = true;
  let message = '';
  let code = 0;
  if (desc instanceof Error) {
    message = desc.message + (desc.description !== undefined ? ` (${describe(desc.description)})` : '');
  } else if (desc) {
    message = String(desc.description || '');
  }
  const ctx = desc && desc.context;
  if (ctx && typeof ctx.code === 'number') code = ctx.code;
  emit({ op: 'close', reason, message, code });
  inbox.push({ kind: 'close', reason });
  closeWaiters.splice(0).forEach((w) => w());
});
// Before the open an error is fatal; after it, the close event follows and tells the story.
socket.on('error', (err) => {
  if (socket.readyState === 'opening') fail(`eio-client: connect failed: ${err && err.message} ${describe(err && err.description)}`);
});

function describe(d) {
  if (d === undefined || d === null) return '';
  if (typeof d === 'number' || typeof d === 'string') return String(d);
  if (d instanceof Error) return d.message;
  if (typeof d.message === 'string') return d.message;
  try { return JSON.stringify(d); } catch (e) { return String(d); }
}

const awaitUpgrade = () => (upgraded ? Promise.resolve() : new Promise((resolve) => upgradeWaiters.push(resolve)));
const awaitClose = () => (closed ? Promise.resolve() : new Promise((resolve) => closeWaiters.push(resolve)));
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// send sends the payload of type in the form `as` (binary only).
function send(type, buf, as) {
  if (type === 'text') return socket.send(buf.toString('utf8'));
  switch (as || 'buffer') {
    case 'buffer': return socket.send(buf);
    case 'arraybuffer': return socket.send(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
    case 'uint8array': return socket.send(new Uint8Array(buf));
    default: throw new Error(`unknown binary form ${as}`);
  }
}

// numbered returns message i of prefix p as [data, type].
function numbered(p, i) {
  const s = p + i;
  return i % 2 === 0 ? [s, 'text'] : [Buffer.from(s, 'utf8'), 'binary'];
}

// Checker checks incoming numbered messages from prefix p.
class Checker {
  constructor(p) { this.p = p; this.n = 0; this.firstBad = -1; this.got = ''; }
  // add checks one message; returns the server's total if it is the end marker, else -1.
  add(data) {
    const text = bytesOf(data).toString('utf8');
    if (typeof data === 'string' && text.startsWith('end:')) return Number(text.slice(4));
    const want = numbered(this.p, this.n);
    if (this.firstBad < 0 && (text !== want[0].toString() || kindOf(data) !== want[1])) {
      this.firstBad = this.n;
      this.got = `${kindOf(data)} ${JSON.stringify(text.slice(0, 40))}, want ${want[1]} ${JSON.stringify(String(want[0]))}`;
    }
    this.n++;
    return -1;
  }
}

async function runSteps(steps) {
  for (const step of steps) {
    switch (step.op) {
      case 'echo': {
        const sent = payload(step.type, step.size);
        const before = { ...wire };
        send(step.type, sent, step.as);
        const got = await inbox.next();
        if (got.kind !== 'message') throw new Error(`echo ${step.type}/${step.size}: socket closed (${got.reason})`);
        const data = bytesOf(got.data);
        // The frame kinds whose count moved during the step: exactly one frame of one kind is the answer.
        const moved = Object.keys(wire).filter((k) => wire[k] !== before[k]);
        let via = moved.length === 1 && wire[moved[0]] - before[moved[0]] === 1 ? moved[0] : 'mixed:' + moved.join(',');
        if (got.via === 'polling') via = 'polling';
        else if (moved.length === 0) via = '';
        emit({ op: 'echo', type: step.type, size: step.size, as: step.as || '', gotType: kindOf(got.data),
          gotClass: classOf(got.data), len: data.length, match: kindOf(got.data) === step.type && sent.equals(data),
          sha256: sha256(data), transport: got.via, wire: via });
        break;
      }
      case 'send':
        send(step.type, payload(step.type, step.size), step.as);
        break;
      case 'seq': {
        for (let i = 0; i < step.count; i++) socket.send(numbered('c', i)[0]);
        const check = new Checker('s');
        while (check.n < step.count) {
          const got = await inbox.next();
          if (got.kind !== 'message') throw new Error(`seq: socket closed (${got.reason}) after ${check.n} messages`);
          check.add(got.data);
        }
        emit({ op: 'seq', sent: step.count, received: check.n, ordered: check.firstBad < 0, firstBad: check.firstBad, got: check.got });
        break;
      }
      case 'stream':
        await stream(step);
        break;
      case 'awaitUpgrade':
        await awaitUpgrade();
        break;
      case 'mark':
        emit({ op: 'mark', id: step.id, transport: socket.transport.name });
        break;
      case 'sleep': {
        const p0 = pings;
        await sleep(step.ms);
        emit({ op: 'slept', pings: pings - p0, closed });
        break;
      }
      case 'mutePongs': {
        const orig = socket._sendPacket.bind(socket);
        socket._sendPacket = (type, ...rest) => (type === 'pong' ? undefined : orig(type, ...rest));
        break;
      }
      case 'close': {
        // Let the goodbye reach the server before the script exits: the polling
        // transport's close packet (a POST), or the WebSocket's closing handshake.
        const t = socket.transport;
        const ws = t.ws;
        socket.close();
        await awaitClose();
        for (let i = 0; i < 100 && (t.name === 'polling' ? !t.writable : ws && ws.readyState !== 3); i++) await sleep(20);
        break;
      }
      case 'awaitClose':
        await awaitClose();
        break;
      default:
        throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
}

// stream: see the header. Bounded by max messages; the timeout bounds the whole script.
async function stream(step) {
  const after = step.after || 200;
  const max = step.max || 20000;
  const interval = step.intervalMs || 2;
  const perTick = step.perTick || 2;
  let sent = 0;
  let sentBefore = 0;
  let sentAfter = 0;
  const sending = new Promise((resolve) => {
    const tick = () => {
      if (closed) return resolve();
      for (let k = 0; k < perTick && sent < max; k++) {
        socket.send(numbered('c', sent)[0]);
        sent++;
        if (upgraded) sentAfter++; else sentBefore++;
      }
      if (sent >= max || (upgraded && sentAfter >= after)) {
        socket.send('end:' + sent);
        return resolve();
      }
      setTimeout(tick, interval);
    };
    tick();
  });
  const check = new Checker('s');
  let receivedBefore = 0;
  let serverTotal = -1;
  for (let i = 0; i < 1000000 && serverTotal < 0; i++) {
    const got = await inbox.next();
    if (got.kind !== 'message') throw new Error(`stream: socket closed (${got.reason}) after ${check.n} messages`);
    serverTotal = check.add(got.data);
    if (serverTotal < 0 && !upgraded) receivedBefore++;
  }
  await sending;
  emit({ op: 'stream', sent, sentBefore, received: check.n, receivedBefore, serverTotal,
    ordered: check.firstBad < 0, firstBad: check.firstBad, got: check.got, upgraded });
}
