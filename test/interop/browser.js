// Headless Chromium peer (Debian's /usr/bin/chromium driven by playwright-core).
// usage: node browser.js   then one JSON command per stdin line:
//   {"id":N, "page":"http://127.0.0.1:P/", "scenario":"echo"|"close"|"awaitClose"|"connect"|"call", "args":{...}}
// Each command opens a fresh tab on `page`, loads pattern.js into it and runs the
// scenario there (echo: args.steps are {type, size, data?}, data naming a payload
// generator of pattern.js); the answer is {"id":N, "result":...} or {"id":N, "error":"..."}.
// Prints {"op":"ready"} once the browser runs; exits when stdin closes.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');
const { emit, fail } = require('./common');

// The scenarios run inside the page: they may use only browser APIs and window.duplexPattern.
const scenarios = {
  async echo({ url, steps }) {
    const hex = async (bytes) => [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
      .map((b) => b.toString(16).padStart(2, '0')).join('');
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
    // The first result reports the negotiated extensions (the response's
    // Sec-WebSocket-Extensions as the browser exposes it) and subprotocol.
    const results = [{ op: 'open', extensions: ws.extensions, protocol: ws.protocol }];
    for (const { type, size, data } of steps) {
      const sent = window.duplexPattern.data(data || 'pattern', type, size);
      const got = await new Promise((resolve, reject) => {
        ws.onmessage = (e) => resolve(e.data);
        ws.onclose = (e) => reject(new Error(`closed ${e.code} ${e.reason}`));
        ws.send(sent);
      });
      const gotType = typeof got === 'string' ? 'text' : 'binary';
      const gotBytes = gotType === 'text' ? new TextEncoder().encode(got) : new Uint8Array(got);
      const sentBytes = type === 'text' ? new TextEncoder().encode(sent) : sent;
      const sha256 = await hex(gotBytes);
      results.push({ op: 'echo', type, size, gotType, len: gotBytes.length, sha256,
        match: gotType === type && gotBytes.length === sentBytes.length && sha256 === (await hex(sentBytes)) });
    }
    ws.onclose = null;
    ws.close(1000);
    return results;
  },

  // close: the page closes with args.code/args.reason; awaitClose: the server closes.
  async close({ url, code, reason }) {
    const ws = new WebSocket(url);
    await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
    return new Promise((resolve) => {
      ws.onclose = (e) => resolve({ op: 'close', code: e.code, reason: e.reason, wasClean: e.wasClean });
      ws.close(code, reason);
    });
  },
  async awaitClose({ url }) {
    const ws = new WebSocket(url);
    return new Promise((resolve) => {
      ws.onclose = (e) => resolve({ op: 'close', code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
  },
  // connect: opens (offering args.protocols) and waits for the close; reports
  // whether it opened or erred and the negotiated protocol.
  async connect({ url, protocols }) {
    const ws = new WebSocket(url, protocols || []);
    let opened = false;
    let errored = false;
    ws.onopen = () => { opened = true; };
    ws.onerror = () => { errored = true; };
    return new Promise((resolve) => {
      ws.onclose = (e) => resolve({ op: 'close', opened, errored, protocol: ws.protocol, code: e.code, reason: e.reason, wasClean: e.wasClean });
    });
  },
  // call: runs window[args.fn](args.args), a function of a script the page loaded itself
  // (the Socket.IO tests' page loads socket.io-client's bundle and sio-browser.js).
  async call({ fn, args }) {
    if (typeof window[fn] !== 'function') throw new Error(`the page has no function ${fn}`);
    return window[fn](args);
  },
};

async function run(context, cmd) {
  const page = await context.newPage();
  try {
    await page.goto(cmd.page);
    await page.addScriptTag({ path: path.join(__dirname, 'pattern.js') });
    return await page.evaluate(scenarios[cmd.scenario], cmd.args || {});
  } finally {
    await page.close();
  }
}

(async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.DUPLEX_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  emit({ op: 'ready' });
  const pending = [];
  for await (const line of readline.createInterface({ input: process.stdin })) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    if (!scenarios[cmd.scenario]) { emit({ id: cmd.id, error: `unknown scenario ${cmd.scenario}` }); continue; }
    pending.push(run(context, cmd).then(
      (result) => emit({ id: cmd.id, result }),
      (err) => emit({ id: cmd.id, error: String((err && err.message) || err) })));
  }
  await Promise.allSettled(pending);
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
  process.exit(0);
})().catch(fail);
