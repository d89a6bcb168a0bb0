// Socket.IO client load on the official Node `socket.io-client` package, the
// peer of bench/cmd/sioclientload (the duplex Go client) in cmd/sioclientcompare.
//
//   NODE_PATH=../test/interop/node_modules node node/sioclient.js \
//     URL CLIENTS INFLIGHT SIZE WARMUP_MS DURATION_MS [SERVER_PID] [GRACE_MS]
//
// It connects CLIENTS sockets to URL's main namespace, each on its own
// Manager (forceNew) over WebSocket only (transports: ["websocket"], no
// reconnection), every other option socket.io-client's default. Once all are
// connected, each socket runs INFLIGHT independent loops of
// emit("echo", text, ack): the ack's callback checks that the server answered
// with exactly the text it sent, then emits the next one. text is SIZE
// characters: "<client>.<sequence in hex>:" then a fixed pattern from that
// position on (so every event of the run is distinct).
//
// The measured window starts WARMUP_MS after all sockets are connected and
// lasts DURATION_MS. A round trip counts when its ack arrives inside the
// window; its latency is from just before emit to the ack's callback. After
// the window no loop emits again; an ack missing GRACE_MS (default 5000)
// after the window, a wrong ack or a disconnect fails the run. At the window's
// edges it samples its own CPU time and, with SERVER_PID, the server's CPU
// time and read+write system calls from /proc, and its own system calls.
//
// It prints one JSON line with the fields of the Go load's result
// (internal/load.Result): conns, payload, inflight, msgs, seconds,
// msgs_per_sec, p50_us, p90_us, p99_us (exact, from every round trip in the
// window), verified, errors, first_error, server_cpu_s,
// server_cpu_per_msg_us, server_syscalls_per_msg, load_cpu_s, load_syscalls_per_msg; then exits 1
// when a socket failed, 0 otherwise.
//
// socket.io-client is pinned in test/interop/package.json (cd test/interop && npm ci).
"use strict";

const fs = require("fs");
const { io } = require("socket.io-client");

const [url, clientsArg, inflightArg, sizeArg, warmupArg, durationArg, pidArg, graceArg] = process.argv.slice(2);
const clients = Number(clientsArg);
const inflight = Number(inflightArg);
const size = Number(sizeArg);
const warmupMs = Number(warmupArg);
const durationMs = Number(durationArg);
const serverPid = Number(pidArg || 0);
const graceMs = Number(graceArg || 5000);
for (const [name, v, least] of [["CLIENTS", clients, 1], ["INFLIGHT", inflight, 1], ["SIZE", size, 1],
  ["WARMUP_MS", warmupMs, 0], ["DURATION_MS", durationMs, 1]]) {
  if (!Number.isInteger(v) || v < least) {
    process.stderr.write(`sioclient.js: bad ${name} ${v}\nusage: node sioclient.js URL CLIENTS INFLIGHT SIZE WARMUP_MS DURATION_MS [SERVER_PID] [GRACE_MS]\n`);
    process.exit(2);
  }
}

const CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
let pattern = "";
while (pattern.length < size) pattern += CHARS;
pattern = pattern.slice(0, size);

// /proc readers: utime+stime in seconds (USER_HZ is 100), syscr+syscw.
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}
function syscalls(pid) {
  let n = 0;
  for (const line of fs.readFileSync(`/proc/${pid}/io`, "latin1").split("\n")) {
    const m = /^(syscr|syscw):\s*(\d+)/.exec(line);
    if (m) n += Number(m[2]);
  }
  return n;
}
// sample returns f(), or null when /proc cannot be read.
function sample(f, pid) {
  try {
    return f(pid);
  } catch (e) {
    return null;
  }
}

const now = () => Number(process.hrtime.bigint()); // ns, monotonic

const result = {
  conns: clients, payload: size, inflight,
  msgs: 0, seconds: durationMs / 1e3, msgs_per_sec: 0, p50_us: 0, p90_us: 0, p99_us: 0,
  verified: 0, errors: 0,
  server_cpu_s: -1, server_cpu_per_msg_us: -1, server_syscalls_per_msg: -1, load_cpu_s: -1, load_syscalls_per_msg: -1,
};
let firstError = "";
const latencies = []; // ns, round trips completed in the window

function connect(i) {
  return new Promise((resolve, reject) => {
    const s = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
    s.once("connect", () => resolve(s));
    s.once("connect_error", (err) => reject(new Error(`client ${i}: connect: ${err.message}`)));
  });
}

async function main() {
  const sockets = await Promise.all(Array.from({ length: clients }, (_, i) => connect(i)));
  const base = now();
  const warmEnd = base + warmupMs * 1e6;
  const end = warmEnd + durationMs * 1e6;

  const failed = new Set(); // client ids
  let pending = 0; // loops still running
  let allDone;
  const done = new Promise((resolve) => { allDone = resolve; });
  const loopEnded = () => { if (--pending === 0) allDone(); };
  const fail = (i, msg) => {
    if (failed.has(i)) return;
    failed.add(i);
    if (!firstError) firstError = `client ${i}: ${msg}`;
  };

  sockets.forEach((s, i) => {
    let seq = 0;
    s.on("disconnect", (reason) => fail(i, `disconnected: ${reason}`));
    const loop = () => {
      if (failed.has(i) || now() >= end) {
        loopEnded();
        return;
      }
      const prefix = `${i}.${(seq++).toString(16)}:`;
      const text = prefix.length >= size ? prefix : prefix + pattern.slice(prefix.length);
      const sent = now();
      s.emit("echo", text, (...args) => {
        const t = now();
        if (args.length !== 1 || args[0] !== text) {
          fail(i, `ack ${JSON.stringify(args).slice(0, 80)}, want [${JSON.stringify(text).slice(0, 80)}]`);
          loopEnded();
          return;
        }
        result.verified++;
        if (t >= warmEnd && t < end) {
          result.msgs++;
          latencies.push(t - sent);
        }
        loop();
      });
    };
    for (let k = 0; k < inflight; k++) {
      pending++;
      loop();
    }
  });

  let own0 = null, own1 = null, ownSys0 = null, ownSys1 = null, srv0 = null, srv1 = null, sys0 = null, sys1 = null;
  await new Promise((r) => setTimeout(r, Math.max(0, (warmEnd - now()) / 1e6)));
  own0 = sample(cpuSeconds, "self");
  ownSys0 = sample(syscalls, "self");
  if (serverPid > 0) {
    srv0 = sample(cpuSeconds, serverPid);
    sys0 = sample(syscalls, serverPid);
  }
  await new Promise((r) => setTimeout(r, Math.max(0, (end - now()) / 1e6)));
  own1 = sample(cpuSeconds, "self");
  ownSys1 = sample(syscalls, "self");
  if (serverPid > 0) {
    srv1 = sample(cpuSeconds, serverPid);
    sys1 = sample(syscalls, serverPid);
  }

  let graceTimer;
  const grace = new Promise((r) => { graceTimer = setTimeout(r, graceMs, "timeout"); });
  if ((await Promise.race([done, grace])) === "timeout") {
    sockets.forEach((_, i) => fail(i, `acks missing ${graceMs} ms after the window`));
  }
  clearTimeout(graceTimer);
  for (const s of sockets) {
    s.off("disconnect");
    s.disconnect();
  }

  result.errors = failed.size;
  if (firstError) result.first_error = firstError;
  result.msgs_per_sec = result.msgs / result.seconds;
  const lat = Float64Array.from(latencies).sort();
  // The same rank as the Go loads' histogram: the value at floor(q*(n-1)).
  const quantile = (q) => (lat.length ? lat[Math.floor(q * (lat.length - 1))] / 1e3 : 0);
  result.p50_us = quantile(0.5);
  result.p90_us = quantile(0.9);
  result.p99_us = quantile(0.99);
  if (own0 !== null && own1 !== null) result.load_cpu_s = own1 - own0;
  if (ownSys0 !== null && ownSys1 !== null && result.msgs > 0) result.load_syscalls_per_msg = (ownSys1 - ownSys0) / result.msgs;
  if (srv0 !== null && srv1 !== null) {
    result.server_cpu_s = srv1 - srv0;
    if (result.msgs > 0) result.server_cpu_per_msg_us = (result.server_cpu_s * 1e6) / result.msgs;
  }
  if (sys0 !== null && sys1 !== null && result.msgs > 0) result.server_syscalls_per_msg = (sys1 - sys0) / result.msgs;

  process.stdout.write(JSON.stringify(result) + "\n");
  process.stderr.write(`sioclient.js: ${clients} clients × ${inflight} in flight × ${size} characters: ` +
    `${result.msgs_per_sec.toFixed(0)} round trips/s, p50 ${result.p50_us.toFixed(1)} µs, p99 ${result.p99_us.toFixed(1)} µs, ` +
    `${result.verified} verified, ${result.errors} errors\n`);
  process.exit(result.errors > 0 ? 1 : 0);
}

main().catch((err) => {
  process.stderr.write(`sioclient.js: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
