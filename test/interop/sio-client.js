// Socket.IO client peer: the official socket.io-client (Node) driven by the Go tests
// (socketio_test.go) through stdin.
//
// usage: node sio-client.js BASE_URL '{"opts":{...}, "timeoutMs":N}'
//   opts are the Manager options every manager starts from (transports, ...); reconnection
//   is always off, so every disconnection is final and reported once.
//
// Commands, one JSON object per stdin line, run one after the other (a command that waits
// holds up the next ones); the script exits 0 when stdin closes or on {cmd:'exit'}.
//   {cmd:'connect', sock, mgr?, nsp?, auth?, opts?}   open socket `sock` on namespace nsp
//       (default "/") through manager `mgr` (default "m"; created on first use with the base
//       options merged with opts: sockets of one manager share one Engine.IO connection).
//       auth defaults to {name: sock}. probeDelayMs (new manager only) delays the start of the
//       engine's upgrade probe by that long after its open, so that traffic flows over polling
//       first and the upgrade happens in the middle of it (the client's own upgrade mechanism,
//       only later). Waits for the outcome: prints {op:'connect', sock, mgr,
//       id, engineId, transport} or {op:'connect_error', sock, message, data}.
//   {cmd:'emit', sock, event, args, ack?, timeoutMs?, req?}   emit; with ack, the answer is
//       printed as {op:'ack', sock, req, args} or, on an error (timeout), {op:'ack', sock, req,
//       err}. timeoutMs uses socket.timeout(ms).emit. Does not wait for the answer.
//   {cmd:'disconnect', sock}         socket.disconnect() (the disconnect event is printed).
//   {cmd:'awaitUpgrade', mgr?}       wait until the manager's engine runs on websocket; prints
//       {op:'upgraded', mgr, transport}.
//   {cmd:'seq', sock, count}         emit count numbered events at once (see below).
//   {cmd:'awaitNums', sock, count}   wait until count numbered events came; prints {op:'nums',
//       sock, received, ordered, firstBad, got}.
//   {cmd:'stream', sock, mgr?, after, max, intervalMs, perTick}   emit perTick numbered events
//       every intervalMs until the manager's engine upgraded and `after` more were sent (or max
//       in all), then emit numEnd(N); meanwhile wait for the server's numEnd(M) after its
//       numbered events. Prints {op:'stream', sock, sent, sentBefore, received, receivedBefore,
//       serverTotal, ordered, firstBad, got, upgraded}.
//   {cmd:'mark', id}                 print {op:'mark', id}.
//   {cmd:'exit'}                     exit 0 at once (the connections close abruptly).
//
// Printed as they happen: every event other than "num" a socket receives, {op:'event', sock,
// event, args, ack (whether the server asked for an ack), transport}; {op:'disconnect', sock,
// reason, desc}; {op:'upgrade', mgr, transport}; {op:'mgrClose', mgr, reason}.
//
// Acknowledgements the server asks for: events whose name starts with "noack" are never
// answered; "whoami" is answered with [auth.name]; every other event with its own arguments.
//
// Values: binary travels in these JSON lines as {"$bin": HEX}; in commands "$as" picks the
// form sent ("buffer" (default), "arraybuffer", "uint8array"); in printed values "$cls" names
// the class received (Buffer, ArrayBuffer, ...).
//
// Numbered events: event i of a sender is "num" with arguments [i] when i is even and
// [i, <binary "c<i>" (client) or "s<i>" (server)>] when i is odd; the receiver checks each.
'use strict';
const readline = require('readline');
const { Manager } = require('socket.io-client');
const { emit, fail } = require('./common');

const base = process.argv[2];
const args = JSON.parse(process.argv[3] || '{}');
setTimeout(() => fail('sio-client: timeout'), args.timeoutMs || 60000).unref();

const managers = new Map(); // id -> {m, upgraded, waiters}
const sockets = new Map(); // sock -> {s, mgr, name, nums: Checker, end: number, endWaiters, numWaiters}

const isBinary = (v) => Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
const classOf = (v) => (Buffer.isBuffer(v) ? 'Buffer' : v instanceof ArrayBuffer ? 'ArrayBuffer' : Object.prototype.toString.call(v).slice(8, -1));
const bytesOf = (v) => (Buffer.isBuffer(v) ? v : v instanceof ArrayBuffer ? Buffer.from(v) : Buffer.from(v.buffer, v.byteOffset, v.byteLength));

// toJSON describes a received value for the Go side.
function toJSON(v, depth = 0) {
  if (depth > 100) throw new Error('value nested too deeply');
  if (v === undefined) return { $undefined: true };
  if (v === null || typeof v !== 'object') return v;
  if (isBinary(v)) return { $bin: bytesOf(v).toString('hex'), $cls: classOf(v) };
  if (Array.isArray(v)) return v.map((x) => toJSON(x, depth + 1));
  const o = {};
  for (const k of Object.keys(v)) o[k] = toJSON(v[k], depth + 1);
  return o;
}

// fromJSON builds a value to send from its JSON description.
function fromJSON(v) {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(fromJSON);
  if (typeof v.$bin === 'string') {
    const b = Buffer.from(v.$bin, 'hex');
    switch (v.$as || 'buffer') {
      case 'buffer': return b;
      case 'arraybuffer': return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
      case 'uint8array': return new Uint8Array(b);
      default: throw new Error(`unknown binary form ${v.$as}`);
    }
  }
  const o = {};
  for (const k of Object.keys(v)) o[k] = fromJSON(v[k]);
  return o;
}

// numbered returns the arguments of numbered event i from prefix p.
const numbered = (p, i) => (i % 2 === 0 ? [i] : [i, Buffer.from(p + i, 'utf8')]);

// Checker checks incoming numbered events from prefix p.
class Checker {
  constructor(p) { this.p = p; this.n = 0; this.before = 0; this.firstBad = -1; this.got = ''; }
  add(a, upgraded) {
    const i = this.n;
    let ok = a.length === (i % 2 === 0 ? 1 : 2) && a[0] === i;
    if (ok && i % 2 === 1) ok = isBinary(a[1]) && bytesOf(a[1]).toString('utf8') === this.p + i;
    if (!ok && this.firstBad < 0) {
      this.firstBad = i;
      this.got = JSON.stringify(toJSON(a)).slice(0, 200);
    }
    this.n++;
    if (!upgraded) this.before++;
  }
}

function manager(id, opts, probeDelayMs) {
  let st = managers.get(id);
  if (st) return st;
  const m = new Manager(base, { ...(args.opts || {}), ...(opts || {}), reconnection: false });
  if (probeDelayMs && m.engine) {
    const engine = m.engine;
    const probe = engine._probe.bind(engine);
    engine._probe = (name) => setTimeout(() => { if (engine.readyState === 'open') probe(name); }, probeDelayMs);
  }
  st = { m, upgraded: false, waiters: [] };
  managers.set(id, st);
  m.on('open', () => {
    const engine = m.engine;
    if (engine.transport && engine.transport.name === 'websocket') st.upgraded = true;
    engine.on('upgrade', (t) => {
      st.upgraded = true;
      emit({ op: 'upgrade', mgr: id, transport: t.name });
      st.waiters.splice(0).forEach((w) => w());
    });
  });
  m.on('close', (reason) => emit({ op: 'mgrClose', mgr: id, reason: String(reason) }));
  return st;
}

const transportOf = (st) => (st.m.engine && st.m.engine.transport ? st.m.engine.transport.name : '');

function connect(cmd) {
  const mgrID = cmd.mgr || 'm';
  const st = manager(mgrID, cmd.opts, cmd.probeDelayMs);
  const name = cmd.sock;
  const s = st.m.socket(cmd.nsp || '/', { auth: cmd.auth || { name } });
  const sk = { s, mgr: mgrID, st, name: (cmd.auth && cmd.auth.name) || name, nums: new Checker('s'), end: -1, waiters: [] };
  sockets.set(cmd.sock, sk);
  const notify = () => sk.waiters.splice(0).forEach((w) => w());
  s.onAny((event, ...a) => {
    let ackFn = null;
    if (a.length && typeof a[a.length - 1] === 'function') ackFn = a.pop();
    if (event === 'num') {
      sk.nums.add(a, st.upgraded);
    } else if (event === 'numEnd') {
      sk.end = a[0];
    } else {
      emit({ op: 'event', sock: cmd.sock, event, args: toJSON(a), ack: ackFn !== null, transport: transportOf(st) });
    }
    if (ackFn && !event.startsWith('noack')) {
      if (event === 'whoami') ackFn(sk.name);
      else ackFn(...a);
    }
    notify();
  });
  s.on('disconnect', (reason, desc) => {
    emit({ op: 'disconnect', sock: cmd.sock, reason, desc: desc ? String((desc && desc.description) || desc.message || desc) : '' });
    notify();
  });
  return new Promise((resolve) => {
    s.once('connect', () => {
      emit({ op: 'connect', sock: cmd.sock, mgr: mgrID, id: s.id, engineId: st.m.engine.id, transport: transportOf(st) });
      resolve();
    });
    s.once('connect_error', (err) => {
      emit({ op: 'connect_error', sock: cmd.sock, message: String(err && err.message), data: err && err.data !== undefined ? toJSON(err.data) : null });
      resolve();
    });
  });
}

function sock(id) {
  const sk = sockets.get(id);
  if (!sk) throw new Error(`unknown socket ${id}`);
  return sk;
}

// until waits (bounded by the script's timeout) for cond, re-checked on every socket event.
function until(sk, cond) {
  if (cond()) return Promise.resolve();
  return new Promise((resolve) => {
    const check = () => (cond() ? resolve() : sk.waiters.push(check));
    sk.waiters.push(check);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const awaitUpgrade = (st) => (st.upgraded ? Promise.resolve() : new Promise((resolve) => st.waiters.push(resolve)));

async function run(cmd) {
  switch (cmd.cmd) {
    case 'connect':
      return connect(cmd);
    case 'emit': {
      const sk = sock(cmd.sock);
      const a = (cmd.args || []).map(fromJSON);
      if (!cmd.ack) return void sk.s.emit(cmd.event, ...a);
      const report = (err, res) => emit(err
        ? { op: 'ack', sock: cmd.sock, req: cmd.req || '', err: String(err.message || err) }
        : { op: 'ack', sock: cmd.sock, req: cmd.req || '', args: toJSON(res) });
      if (cmd.timeoutMs) sk.s.timeout(cmd.timeoutMs).emit(cmd.event, ...a, (err, ...res) => report(err, res));
      else sk.s.emit(cmd.event, ...a, (...res) => report(null, res));
      return undefined;
    }
    case 'disconnect':
      return void sock(cmd.sock).s.disconnect();
    case 'awaitUpgrade': {
      const st = managers.get(cmd.mgr || 'm');
      await awaitUpgrade(st);
      return void emit({ op: 'upgraded', mgr: cmd.mgr || 'm', transport: transportOf(st) });
    }
    case 'seq': {
      const sk = sock(cmd.sock);
      for (let i = 0; i < cmd.count; i++) sk.s.emit('num', ...numbered('c', i));
      return undefined;
    }
    case 'awaitNums': {
      const sk = sock(cmd.sock);
      await until(sk, () => sk.nums.n >= cmd.count || !sk.s.connected);
      const c = sk.nums;
      return void emit({ op: 'nums', sock: cmd.sock, received: c.n, ordered: c.firstBad < 0, firstBad: c.firstBad, got: c.got });
    }
    case 'stream':
      return stream(cmd);
    case 'mark':
      return void emit({ op: 'mark', id: cmd.id });
    case 'exit':
      return process.exit(0);
    default:
      throw new Error(`unknown command ${JSON.stringify(cmd)}`);
  }
}

async function stream(cmd) {
  const sk = sock(cmd.sock);
  const st = sk.st;
  const after = cmd.after || 200;
  const max = cmd.max || 20000;
  let sent = 0;
  let sentBefore = 0;
  let sentAfter = 0;
  for (let tick = 0; tick < 1000000 && sk.s.connected; tick++) {
    for (let k = 0; k < (cmd.perTick || 2) && sent < max; k++) {
      sk.s.emit('num', ...numbered('c', sent));
      sent++;
      if (st.upgraded) sentAfter++; else sentBefore++;
    }
    if (sent >= max || (st.upgraded && sentAfter >= after)) break;
    await sleep(cmd.intervalMs || 2);
  }
  sk.s.emit('numEnd', sent);
  await until(sk, () => sk.end >= 0 || !sk.s.connected);
  const c = sk.nums;
  emit({ op: 'stream', sock: cmd.sock, sent, sentBefore, received: c.n, receivedBefore: c.before, serverTotal: sk.end,
    ordered: c.firstBad < 0, firstBad: c.firstBad, got: c.got, upgraded: st.upgraded });
}

(async () => {
  emit({ op: 'ready' });
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    await run(JSON.parse(line));
  }
  process.exit(0);
})().catch(fail);
