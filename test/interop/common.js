// Helpers shared by the Node peers (not by the browser page).
'use strict';
const crypto = require('crypto');
const pattern = require('./pattern');

// emit prints one JSON object as one line on stdout: the Go tests read these.
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// fail reports an error line and exits non-zero.
function fail(err) {
  emit({ op: 'error', message: String((err && err.stack) || err) });
  process.exit(1);
}

// payload returns the payload of the given type and size as a Buffer: the pattern,
// or the generator kind named by data (see pattern.js).
function payload(type, size, data) {
  const p = pattern.data(data || 'pattern', type, size);
  return type === 'text' ? Buffer.from(p, 'utf8') : Buffer.from(p.buffer, p.byteOffset, p.length);
}

// Inbox is a FIFO of events with promise-based reads.
class Inbox {
  constructor() { this.items = []; this.waiters = []; }
  push(item) {
    const w = this.waiters.shift();
    if (w) w(item); else this.items.push(item);
  }
  next() {
    if (this.items.length) return Promise.resolve(this.items.shift());
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

// runSteps runs the scenario steps against a connected peer adapter:
//   peer.send(type, buf, fragments, compress), peer.close(code, reason), inbox of
//   {kind:'message', type, data} / {kind:'close', code, reason}.
// Steps: {op:'echo', type, size, data?, fragments?, compress?}, {op:'send', type, size | hex}
// (no echo expected), {op:'close', code, reason}, {op:'awaitClose'}. data names the
// payload generator (pattern.js, default 'pattern'); compress (ws only) is the
// per-message compress option of ws's send (undefined: ws's default).
async function runSteps(steps, peer, inbox) {
  for (const step of steps) {
    if (step.op === 'echo') {
      const sent = payload(step.type, step.size, step.data);
      peer.send(step.type, sent, step.fragments || 1, step.compress);
      const got = await inbox.next();
      if (got.kind !== 'message') throw new Error(`echo ${step.type}/${step.size}: got ${JSON.stringify(got)}`);
      emit({ op: 'echo', type: step.type, size: step.size, gotType: got.type, len: got.data.length,
        match: got.type === step.type && sent.equals(got.data), sha256: sha256(got.data) });
    } else if (step.op === 'send') {
      peer.send(step.type, step.hex ? Buffer.from(step.hex, 'hex') : payload(step.type, step.size, step.data), 1, step.compress);
    } else if (step.op === 'close' || step.op === 'awaitClose') {
      if (step.op === 'close') peer.close(step.code, step.reason);
      let got;
      do { got = await inbox.next(); } while (got.kind !== 'close');
      emit({ op: 'close', code: got.code, reason: got.reason });
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
  }
}

// splitBuffer cuts buf into n nearly equal parts (possibly inside a UTF-8 character).
function splitBuffer(buf, n) {
  const parts = [];
  for (let i = 0; i < n; i++) parts.push(buf.subarray(Math.floor((i * buf.length) / n), Math.floor(((i + 1) * buf.length) / n)));
  return parts;
}

module.exports = { emit, sha256, fail, payload, Inbox, runSteps, splitBuffer };
