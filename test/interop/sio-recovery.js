// Node `socket.io-client` peer for the connection-state recovery test (recovery_test.go).
// usage: node sio-recovery.js URL
// Connects over WebSocket with fast, deterministic reconnection; prints one JSON line per
// event: {"op":"connect","id","match":recovered}, {"op":"event","data":JSON of [name, ...args]},
// {"op":"disconnect","reason"}. Reads commands on stdin: "drop" closes the Engine.IO
// connection under the socket (a lost connection, which the client mends by reconnecting),
// "exit" ends.
'use strict';
const { io } = require('socket.io-client');
const { emit, fail } = require('./common');

setTimeout(() => fail('sio-recovery: timeout'), 30000).unref();
const socket = io(process.argv[2], {
  transports: ['websocket'],
  reconnectionDelay: 300,
  reconnectionDelayMax: 300,
  randomizationFactor: 0,
});
socket.on('connect', () => emit({ op: 'connect', id: socket.id, match: socket.recovered }));
socket.on('disconnect', (reason) => emit({ op: 'disconnect', reason }));
socket.on('connect_error', (err) => fail('connect_error: ' + err.message));
socket.onAny((...args) => emit({ op: 'event', data: JSON.stringify(args) }));

let input = '';
process.stdin.on('data', (chunk) => {
  input += chunk;
  let nl;
  while ((nl = input.indexOf('\n')) >= 0) {
    const cmd = input.slice(0, nl).trim();
    input = input.slice(nl + 1);
    if (cmd === 'drop') socket.io.engine.close();
    if (cmd === 'exit') { socket.close(); process.exit(0); }
  }
});
process.stdin.on('end', () => process.exit(0));
