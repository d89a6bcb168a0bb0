// Socket.IO scenarios for headless Chromium: the page that socketio_test.go serves loads
// socket.io-client's browser bundle (dist/socket.io.min.js, served by the Go test server:
// no CDN) and this file; browser.js's "call" scenario runs one of these functions in it
// and hands its JSON result back to Go.
//
// Values cross to Go as JSON with binary as {"$bin": HEX, "$cls": CLASS}; values from Go use
// {"$bin": HEX, "$as": "arraybuffer" (default) | "uint8array"}.
(function () {
  'use strict';
  const TIMEOUT = 20000;

  const isBinary = (v) => v instanceof ArrayBuffer || ArrayBuffer.isView(v);
  const bytesOf = (v) => (v instanceof ArrayBuffer ? new Uint8Array(v) : new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
  const hex = (v) => [...bytesOf(v)].map((b) => b.toString(16).padStart(2, '0')).join('');
  function fromHex(h) {
    const b = new Uint8Array(h.length / 2);
    for (let i = 0; i < b.length; i++) b[i] = parseInt(h.substr(2 * i, 2), 16);
    return b;
  }

  function toJSON(v, depth = 0) {
    if (depth > 100) throw new Error('value nested too deeply');
    if (v === undefined) return { $undefined: true };
    if (v === null || typeof v !== 'object') return v;
    if (isBinary(v)) return { $bin: hex(v), $cls: Object.prototype.toString.call(v).slice(8, -1) };
    if (Array.isArray(v)) return v.map((x) => toJSON(x, depth + 1));
    const o = {};
    for (const k of Object.keys(v)) o[k] = toJSON(v[k], depth + 1);
    return o;
  }

  function fromJSON(v) {
    if (v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map(fromJSON);
    if (typeof v.$bin === 'string') {
      const b = fromHex(v.$bin);
      return v.$as === 'uint8array' ? b : b.buffer;
    }
    const o = {};
    for (const k of Object.keys(v)) o[k] = fromJSON(v[k]);
    return o;
  }

  // open connects a socket to the page's own server (no reconnection) and waits for the
  // connect event; a connect_error rejects.
  function open(opts, auth) {
    const socket = io(Object.assign({}, opts, { reconnection: false, forceNew: true, auth }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no connect within 20 s')), TIMEOUT);
      socket.once('connect', () => { clearTimeout(timer); resolve(socket); });
      socket.once('connect_error', (err) => { clearTimeout(timer); reject(new Error(`connect_error: ${err.message}`)); });
    });
  }

  function awaitUpgrade(socket) {
    const engine = socket.io.engine;
    if (engine.transport.name === 'websocket') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no upgrade within 20 s')), TIMEOUT);
      engine.once('upgrade', () => { clearTimeout(timer); resolve(); });
    });
  }

  // emitAck emits with an ack and resolves with every argument of the answer.
  const emitAck = (socket, event, ...args) => new Promise((resolve, reject) => {
    socket.timeout(TIMEOUT).emit(event, ...args, (err, ...res) => (err ? reject(err) : resolve(res)));
  });

  // disconnect disconnects the socket and resolves once the client has closed its engine,
  // which it does only after the DISCONNECT packet was written (for polling: its POST
  // answered), so that closing the tab afterwards cannot lose it.
  const disconnect = (socket) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('engine not closed within 20 s')), TIMEOUT);
    socket.io.engine.once('close', () => { clearTimeout(timer); resolve(); });
    socket.disconnect();
  });

  const once = (socket, event) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event within 20 s`)), TIMEOUT);
    socket.once(event, (...args) => { clearTimeout(timer); resolve(args); });
  });

  // sioBasic: connect (auth), optionally wait for the upgrade, emit "echo" with echoArgs and
  // an ack (the server answers with the same arguments); then emit "ready": the server asks
  // "question" with an ack (the page answers {got: <argument count>}, an ArrayBuffer
  // [9,8,7] and {nested: [Uint8Array [1,2]]}) and then emits "bye" with what it got.
  window.sioBasic = async ({ opts, auth, echoArgs, upgrade }) => {
    const socket = await open(opts, auth);
    const result = { id: socket.id, engineId: socket.io.engine.id, transport: socket.io.engine.transport.name };
    if (upgrade) await awaitUpgrade(socket);
    result.echo = toJSON(await emitAck(socket, 'echo', ...echoArgs.map(fromJSON)));
    socket.on('question', (...args) => {
      const cb = args.pop();
      result.question = toJSON(args);
      cb({ got: args.length }, new Uint8Array([9, 8, 7]).buffer, { nested: [new Uint8Array([1, 2])] });
    });
    const bye = once(socket, 'bye');
    socket.emit('ready');
    result.bye = toJSON(await bye);
    result.finalTransport = socket.io.engine.transport.name;
    await disconnect(socket);
    return result;
  };

  // sioRoom: connect as name, join room (ack), collect every event until "done". The
  // sender, once it got "news" (sent when the room holds both pages), emits "relay" with
  // [room, payload] and an ack; the server relays to the room without the sender.
  window.sioRoom = async ({ opts, name, room, sender, payload }) => {
    const socket = await open(opts, { name });
    const events = [];
    let newsSeen;
    const news = new Promise((resolve) => { newsSeen = resolve; });
    const done = new Promise((resolve) => {
      socket.onAny((event, ...args) => {
        events.push({ event, args: toJSON(args) });
        if (event === 'news') newsSeen();
        if (event === 'done') resolve();
      });
    });
    const joined = await emitAck(socket, 'join', room);
    if (sender) {
      await news;
      await emitAck(socket, 'relay', room, fromJSON(payload));
    }
    await Promise.race([done, new Promise((resolve, reject) => setTimeout(() => reject(new Error('no done event within 20 s')), TIMEOUT))]);
    const result = { id: socket.id, joined: toJSON(joined), events, transport: socket.io.engine.transport.name };
    await disconnect(socket);
    return result;
  };
})();
