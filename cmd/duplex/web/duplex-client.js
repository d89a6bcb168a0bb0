/*
 * duplex-client.js: a small Socket.IO client for the browser, written for the chat demo
 * of "duplex serve". Plain ES2017, no build step, no dependency.
 *
 * What it speaks: Engine.IO v4 over WebSocket only (the open packet, pongs to the server's
 * pings, a server that stays silent for pingInterval + pingTimeout is taken for gone) and
 * Socket.IO v5 text packets on the main namespace "/": CONNECT with an auth object, events,
 * acknowledgements both ways, DISCONNECT. A lost connection is retried with exponential
 * backoff (with jitter); each new connection is a new socket (new id, rooms to join again).
 *
 * Limits: no HTTP long-polling (a network that blocks WebSocket cannot connect); no other
 * namespace; no binary: a binary event or ack (packet types 5 and 6) and the binary frames
 * of its attachments are dropped, and arguments must be JSON; no connection-state recovery;
 * nothing is buffered while disconnected (emit returns false, an ack callback fails).
 *
 *   const socket = new DuplexSocket({ auth: { token: 'x' } });  // same host, /socket.io/
 *   socket.on('connect', () => console.log('connected as', socket.id));
 *   socket.on('news', (item, ack) => { show(item); if (ack) ack('thanks'); });
 *   socket.emit('hello', { a: 1 }, (err, answer) => { ... });    // err: timeout, disconnect
 *   const answer = await socket.emitWithAck('hello', { a: 1 });  // the ack's first argument
 *
 * Its own events: 'connect', 'disconnect' (reason), 'connect_error' (Error: a connection
 * that failed before the server accepted the socket), 'reconnecting' ({attempt, delay} in
 * ms, before each wait).
 */
(function (global) {
  'use strict';

  // Engine.IO packet types (the first character of each WebSocket text frame).
  const EIO_OPEN = '0', EIO_CLOSE = '1', EIO_PING = '2', EIO_PONG = '3', EIO_MESSAGE = '4';
  // Socket.IO packet types (the character after EIO_MESSAGE).
  const CONNECT = 0, DISCONNECT = 1, EVENT = 2, ACK = 3, CONNECT_ERROR = 4;
  const LOCAL_EVENTS = ['connect', 'disconnect', 'connect_error', 'reconnecting'];

  function defaultURL(path) {
    const scheme = global.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return scheme + '//' + global.location.host + path + '?EIO=4&transport=websocket';
  }

  // parse reads a Socket.IO text packet: type, namespace, ack id (null when none), data.
  function parse(text) {
    const type = text.charCodeAt(0) - 48;
    let i = 1, nsp = '/';
    if (text[i] === '/') {
      const comma = text.indexOf(',', i);
      nsp = comma < 0 ? text.slice(i) : text.slice(i, comma);
      i = comma < 0 ? text.length : comma + 1;
    }
    let digits = '';
    while (i < text.length && text[i] >= '0' && text[i] <= '9') digits += text[i++];
    const data = i < text.length ? JSON.parse(text.slice(i)) : undefined;
    return { type: type, nsp: nsp, id: digits === '' ? null : Number(digits), data: data };
  }

  class DuplexSocket {
    // opts: url (default: this page's host, path /socket.io/), auth (object sent with
    // CONNECT), reconnect (default true), minDelay and maxDelay of the backoff (ms, default
    // 500 and 10000), ackTimeout (ms, default 10000), connectTimeout (ms, default 20000).
    constructor(opts) {
      opts = opts || {};
      this.url = opts.url || defaultURL(opts.path || '/socket.io/');
      this.auth = opts.auth;
      this.reconnect = opts.reconnect !== false;
      this.minDelay = opts.minDelay || 500;
      this.maxDelay = opts.maxDelay || 10000;
      this.ackTimeout = opts.ackTimeout || 10000;
      this.connectTimeout = opts.connectTimeout || 20000;
      this.connected = false;
      this.id = null;            // the socket id the server gave, while connected
      this.handlers = new Map(); // event → [fn]
      this.acks = new Map();     // ack id → {fn, timer}
      this.nextAck = 0;
      this.attempt = 0;          // failed connections since the last success
      this.ws = null;
      this.timer = null;         // heartbeat, connect timeout or backoff
      this.closed = false;
      this.open();
    }

    on(event, fn) {
      if (!this.handlers.has(event)) this.handlers.set(event, []);
      this.handlers.get(event).push(fn);
      return this;
    }

    off(event, fn) {
      const list = this.handlers.get(event) || [];
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
      return this;
    }

    // emit sends an event; a function as last argument asks for an ack and is called as
    // fn(null, ...ackArgs), or fn(Error) on timeout or disconnection. It returns whether the
    // event was sent (false while disconnected).
    emit(event) {
      const args = Array.prototype.slice.call(arguments, 1);
      const fn = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      if (LOCAL_EVENTS.indexOf(event) >= 0) throw new Error('"' + event + '" is a reserved event name');
      if (!this.connected) {
        if (fn) setTimeout(() => fn(new Error('not connected')), 0);
        return false;
      }
      let id = '';
      if (fn) {
        id = String(this.nextAck++);
        const timer = setTimeout(() => this.settle(id, [new Error('ack timeout')]), this.ackTimeout);
        this.acks.set(id, { fn: fn, timer: timer });
      }
      this.send(EIO_MESSAGE + EVENT + id + JSON.stringify([event].concat(args)));
      return true;
    }

    // emitWithAck sends an event and resolves with the first argument of its ack.
    emitWithAck(event) {
      const args = Array.prototype.slice.call(arguments);
      return new Promise((resolve, reject) => {
        this.emit.apply(this, args.concat([(err, first) => (err ? reject(err) : resolve(first))]));
      });
    }

    // close disconnects for good: no reconnection.
    close() {
      this.closed = true;
      if (this.connected) this.send(EIO_MESSAGE + DISCONNECT);
      this.drop('io client disconnect');
    }

    // open starts one connection attempt.
    open() {
      this.timer = setTimeout(() => this.drop('connect timeout'), this.connectTimeout);
      let ws;
      try {
        ws = new WebSocket(this.url);
      } catch (err) {
        this.drop('transport error', err);
        return;
      }
      this.ws = ws;
      ws.onmessage = (e) => this.receive(e.data);
      ws.onclose = () => this.drop('transport close');
      // onerror is always followed by onclose.
    }

    send(frame) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
    }

    receive(frame) {
      if (typeof frame !== 'string') return; // a binary attachment: not supported (see top)
      switch (frame[0]) {
        case EIO_OPEN: {
          const hs = JSON.parse(frame.slice(1));
          this.heartbeat = hs.pingInterval + hs.pingTimeout;
          this.send(EIO_MESSAGE + CONNECT + (this.auth ? JSON.stringify(this.auth) : ''));
          break;
        }
        case EIO_PING: this.send(EIO_PONG); break;
        case EIO_CLOSE: this.drop('transport close'); return;
        case EIO_MESSAGE:
          try {
            this.packet(parse(frame.slice(1)));
          } catch (err) {
            this.drop('parse error', err);
            return;
          }
          break;
        default: // pong, noop: nothing to do but to note that the server is alive
      }
      if (this.heartbeat && this.ws) { // any packet shows the server is alive
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.drop('ping timeout'), this.heartbeat);
      }
    }

    packet(p) {
      if (p.nsp !== '/') return;
      switch (p.type) {
        case CONNECT:
          this.connected = true;
          this.id = p.data && p.data.sid;
          this.attempt = 0;
          this.fire('connect', []);
          break;
        case CONNECT_ERROR: // refused by the server: retrying would not help
          this.closed = true;
          this.fire('connect_error', [new Error((p.data && p.data.message) || 'connection refused')]);
          this.drop('io server disconnect');
          break;
        case DISCONNECT:
          this.closed = true;
          this.drop('io server disconnect');
          break;
        case EVENT: {
          const args = Array.isArray(p.data) ? p.data.slice(1) : [];
          if (p.id !== null) args.push(this.acker(p.id));
          this.fire(String(p.data[0]), args);
          break;
        }
        case ACK:
          this.settle(String(p.id), [null].concat(p.data || []));
          break;
        default: // BINARY_EVENT, BINARY_ACK: not supported (see top)
      }
    }

    // acker returns the function that answers the server's ack request id, once.
    acker(id) {
      const ws = this.ws;
      let done = false;
      return (...args) => {
        if (done || ws !== this.ws) return;
        done = true;
        this.send(EIO_MESSAGE + ACK + id + JSON.stringify(args));
      };
    }

    settle(id, args) {
      const pending = this.acks.get(id);
      if (!pending) return;
      this.acks.delete(id);
      clearTimeout(pending.timer);
      pending.fn.apply(null, args);
    }

    fire(event, args) {
      for (const fn of (this.handlers.get(event) || []).slice()) {
        try {
          fn.apply(null, args);
        } catch (err) {
          setTimeout(() => { throw err; }, 0); // report it, but keep the connection going
        }
      }
    }

    // drop ends the current connection (if any) for reason, fails the pending acks, tells
    // the page and, unless closed, schedules the next attempt.
    drop(reason, err) {
      clearTimeout(this.timer);
      this.timer = null;
      this.heartbeat = 0;
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        ws.onmessage = ws.onclose = null;
        try { ws.close(); } catch (e) { /* closing a socket that failed */ }
      }
      const wasConnected = this.connected;
      this.connected = false;
      this.id = null;
      for (const id of Array.from(this.acks.keys())) this.settle(id, [new Error('disconnected: ' + reason)]);
      if (wasConnected) this.fire('disconnect', [reason]);
      else if (reason !== 'io client disconnect' && reason !== 'io server disconnect') {
        this.fire('connect_error', [err || new Error(reason)]);
      }
      if (this.closed || !this.reconnect) return;
      const base = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt));
      const delay = Math.round(base * (0.75 + Math.random() * 0.5));
      this.attempt++;
      this.fire('reconnecting', [{ attempt: this.attempt, delay: delay }]);
      this.timer = setTimeout(() => this.open(), delay);
    }
  }

  global.DuplexSocket = DuplexSocket;
})(window);
