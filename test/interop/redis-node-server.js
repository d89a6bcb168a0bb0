// A Node socket.io 4.8.4 server on @socket.io/redis-adapter 8.3.0 for the mixed-cluster
// tests (redis_test.go), plus official socket.io-client clients and a
// @socket.io/redis-emitter 5.1.0 emitter, all driven through stdin.
//
// usage: node redis-node-server.js '{"port":N, "redis":"redis://127.0.0.1:P", "key":K,
//                                    "sharded":bool, "mode":"dynamic"|"static"|...,
//                                    "specific":bool (publishOnSpecificResponseChannel)}'
// Prints {"op":"listening","port":N} once the server listens and the adapter subscribed.
//
// The server: a socket joins the rooms of its "rooms" query parameter (comma-separated) and
// gets data {name} from its "name" query parameter. io.on("hi", (x, cb) => cb("node:" + x))
// answers server-side emits; each one received is printed {op:'sse', args}.
//
// Commands, one JSON object per stdin line, run in order; each prints one result line:
//   {cmd:'client', name, url, rooms}   connect a client (websocket) to url; prints
//       {op:'connected', name, id}. Events it gets print {op:'event', name, event, args}
//       (Buffers as {bin: hex}); it answers "ask" with "from-<name>"; a disconnection prints
//       {op:'disconnect', name, reason}.
//   {cmd:'broadcast', rooms, except, event, args}   io.to(rooms).except(except).emit(...);
//       args items {bin: hex} are sent as Buffers. Prints {op:'done', cmd}.
//   {cmd:'fetch', rooms}       io.in(rooms).fetchSockets(); prints {op:'fetch', sockets:
//       [{id, name, rooms}]} or {op:'fetch', err}.
//   {cmd:'join', rooms, room} / {cmd:'leave', rooms, room} / {cmd:'disconnect', rooms}
//       io.in(rooms).socketsJoin / socketsLeave / disconnectSockets(); prints {op:'done', cmd}.
//   {cmd:'sse', event, args}   io.serverSideEmitWithAck(event, ...args); prints
//       {op:'sse-ack', answers} or {op:'sse-ack', err, answers}.
//   {cmd:'emitAck', rooms, event}   io.timeout(3000).to(rooms).emitWithAck(event); prints
//       {op:'emit-ack', answers} or {op:'emit-ack', err}.
//   {cmd:'emitter', nsp, rooms, except, event, args}   the same broadcast through the
//       redis-emitter; prints {op:'done', cmd}.
//   {cmd:'emitterJoin', rooms, room} / {cmd:'emitterDisconnect', rooms}   emitter's
//       socketsJoin / disconnectSockets.
//   {cmd:'allRooms'}           the adapter's allRooms() (classic adapter only); prints
//       {op:'rooms', rooms} or {op:'rooms', err}.
//   {cmd:'mark', id}           prints {op:'mark', id}.
// Exits when stdin closes.
'use strict';
const http = require('http');
const readline = require('readline');
const { Server } = require('socket.io');
const { io: ioc } = require('socket.io-client');
const { createClient } = require('redis');
const { createAdapter, createShardedAdapter } = require('@socket.io/redis-adapter');
const { Emitter } = require('@socket.io/redis-emitter');
const { emit, fail } = require('./common');

const cfg = JSON.parse(process.argv[2] || '{}');

const toWire = (v) => {
  if (Buffer.isBuffer(v)) return { bin: v.toString('hex') };
  if (v instanceof ArrayBuffer) return { bin: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(toWire);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v)) o[k] = toWire(v[k]);
    return o;
  }
  return v;
};
const fromWire = (v) => {
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === 'object') {
    if (typeof v.bin === 'string') return Buffer.from(v.bin, 'hex');
    const o = {};
    for (const k of Object.keys(v)) o[k] = fromWire(v[k]);
    return o;
  }
  return v;
};

async function main() {
  const pub = createClient({ url: cfg.redis });
  const sub = pub.duplicate();
  const emitterClient = pub.duplicate();
  for (const c of [pub, sub, emitterClient]) {
    c.on('error', (err) => process.stderr.write(`redis: ${err}\n`));
    await c.connect();
  }
  const adapter = cfg.sharded
    ? createShardedAdapter(pub, sub, { channelPrefix: cfg.key, subscriptionMode: cfg.mode || 'dynamic' })
    : createAdapter(pub, sub, { key: cfg.key, requestsTimeout: 3000,
      publishOnSpecificResponseChannel: !!cfg.specific });
  const httpServer = http.createServer();
  const io = new Server(httpServer, { adapter });
  io.on('connection', (socket) => {
    const q = socket.handshake.query;
    socket.data = { name: q.name };
    if (q.rooms) socket.join(String(q.rooms).split(','));
  });
  io.on('hi', (...args) => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    emit({ op: 'sse', args: toWire(args) });
    if (cb) cb('node:' + args[0]);
  });
  const emitter = new Emitter(emitterClient, { key: cfg.key });

  await new Promise((resolve) => httpServer.listen(cfg.port, '127.0.0.1', resolve));
  // let the subscriptions settle (they are sent in the background)
  await new Promise((r) => setTimeout(r, 200));
  emit({ op: 'listening', port: httpServer.address().port });

  const clients = new Map();
  const sel = (op, c) => {
    let o = op;
    if (c.rooms && c.rooms.length) o = o.to(c.rooms);
    if (c.except && c.except.length) o = o.except(c.except);
    return o;
  };

  const rl = readline.createInterface({ input: process.stdin });
  const queue = [];
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    while (queue.length) {
      const c = queue.shift();
      try {
        await handle(c);
      } catch (err) {
        fail(err);
      }
    }
    running = false;
  };
  rl.on('line', (line) => { if (line.trim()) { queue.push(JSON.parse(line)); run(); } });
  rl.on('close', () => process.exit(0));

  async function handle(c) {
    switch (c.cmd) {
      case 'client': {
        const s = ioc(c.url, { transports: ['websocket'], reconnection: false, forceNew: true,
          query: { name: c.name, rooms: c.rooms || '' } });
        clients.set(c.name, s);
        s.onAny((event, ...args) => emit({ op: 'event', name: c.name, event, args: toWire(args) }));
        s.on('ask', (cb) => cb('from-' + c.name));
        s.on('disconnect', (reason) => emit({ op: 'disconnect', name: c.name, reason }));
        await new Promise((resolve, reject) => {
          s.once('connect', resolve);
          s.once('connect_error', reject);
        });
        emit({ op: 'connected', name: c.name, id: s.id });
        break;
      }
      case 'broadcast':
        sel(io, c).emit(c.event, ...fromWire(c.args || []));
        emit({ op: 'done', cmd: c.cmd });
        break;
      case 'fetch':
        try {
          const sockets = await io.in(c.rooms || []).fetchSockets();
          emit({ op: 'fetch', sockets: sockets.map((s) => ({ id: s.id, name: s.data && s.data.name, rooms: [...s.rooms] })) });
        } catch (err) {
          emit({ op: 'fetch', err: String(err) });
        }
        break;
      case 'join':
        io.in(c.rooms || []).socketsJoin(c.room);
        emit({ op: 'done', cmd: c.cmd });
        break;
      case 'leave':
        io.in(c.rooms || []).socketsLeave(c.room);
        emit({ op: 'done', cmd: c.cmd });
        break;
      case 'disconnect':
        io.in(c.rooms || []).disconnectSockets();
        emit({ op: 'done', cmd: c.cmd });
        break;
      case 'sse':
        try {
          const answers = await io.serverSideEmitWithAck(c.event, ...fromWire(c.args || []));
          emit({ op: 'sse-ack', answers: toWire(answers) });
        } catch (err) {
          emit({ op: 'sse-ack', err: String(err) });
        }
        break;
      case 'emitAck':
        try {
          const answers = await sel(io.timeout(3000), c).emitWithAck(c.event);
          emit({ op: 'emit-ack', answers: toWire(answers) });
        } catch (err) {
          emit({ op: 'emit-ack', err: String(err) });
        }
        break;
      case 'emitter':
        sel(emitter.of(c.nsp || '/'), c).emit(c.event, ...fromWire(c.args || []));
        emit({ op: 'done', cmd: c.cmd });
        break;
      case 'emitterJoin':
        sel(emitter, c).socketsJoin(c.room);
        emit({ op: 'done', cmd: c.cmd });
        break;
      case 'emitterDisconnect':
        sel(emitter, c).disconnectSockets();
        emit({ op: 'done', cmd: c.cmd });
        break;
      case 'allRooms':
        try {
          const rooms = await io.of('/').adapter.allRooms();
          emit({ op: 'rooms', rooms: [...rooms] });
        } catch (err) {
          emit({ op: 'rooms', err: String(err) });
        }
        break;
      case 'mark':
        emit({ op: 'mark', id: c.id });
        break;
      default:
        throw new Error('unknown command ' + c.cmd);
    }
  }
}

main().catch(fail);
