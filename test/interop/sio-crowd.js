// Many socket.io-client connections at once, for the rooms test (crowd_test.go).
// usage: node sio-crowd.js URL N '{"transports":[...]}'
// Opens N clients (each its own connection); each emits "join" with an ack. Prints
// {"op":"ready","size":N} once all joined. Each client then records the events it gets
// until "done": "news" arguments in order, and how many "relay" events. Prints
// {"op":"crowd","data":JSON of [{name, news:[...], relays}]} once every client got "done",
// then exits.
'use strict';
const { io } = require('socket.io-client');
const { emit, fail } = require('./common');

const [url, nArg, optsArg] = process.argv.slice(2);
const n = Number(nArg);
const opts = JSON.parse(optsArg || '{}');
setTimeout(() => fail('sio-crowd: timeout'), 60000).unref();

const results = [];
let joined = 0;
let done = 0;
for (let i = 0; i < n; i++) {
  const name = 'c' + i;
  const r = { name, news: [], relays: 0 };
  results.push(r);
  const s = io(url, { ...opts, forceNew: true, reconnection: false, auth: { name } });
  s.on('connect_error', (err) => fail(name + ' connect_error: ' + err.message));
  s.on('news', (v) => r.news.push(v));
  s.on('relay', () => { r.relays++; });
  s.on('done', () => {
    s.close();
    if (++done === n) {
      emit({ op: 'crowd', data: JSON.stringify(results) });
      process.exit(0);
    }
  });
  s.on('connect', () => {
    s.timeout(20000).emit('join', 'crowd', (err) => {
      if (err) fail(name + ' join: ' + err.message);
      if (++joined === n) emit({ op: 'ready', size: n });
    });
  });
}
