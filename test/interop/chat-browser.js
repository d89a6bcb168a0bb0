// The chat page of "duplex serve" driven in two tabs of headless Chromium (Debian's
// /usr/bin/chromium through playwright-core), as two people would use it.
// usage: node chat-browser.js   then, on stdin, the page's URL (e.g. http://127.0.0.1:3000/):
// Chromium starts at once, while the test builds and starts the server.
//
// alice clicks "Enter chat", bob presses Enter; both are in #lobby and see each other
// online; bob types (alice sees "bob is typing…"), presses Enter (both see the message,
// alice's indicator goes); bob leaves (alice sees the list change). Then the server goes
// away and comes back: the script prints {"op":"stop-server"} and waits for a "stopped" line
// on stdin, then prints what alice's page shows ("offline") and waits for "restarted", then
// prints "reconnected" once her page is back in #lobby. Last the server freezes: the script
// prints {"op":"freeze-server"}, waits for "frozen", prints "silent" once alice's page took
// the silence (no ping for pingInterval + pingTimeout) for a lost connection, prints
// {"op":"thaw-server"}, waits for "thawed" and prints "back" once she is in #lobby again.
// Each checkpoint is one JSON line of
// what the pages show; the last is {"op":"done","errors":[...]} (the pages' uncaught
// exceptions and console errors), or {"op":"error","message":...} when a wait failed.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { chromium } = require('playwright-core');
const { emit, fail } = require('./common');

const TIMEOUT = 10000;
const stdin = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

// What a page shows, read in the page.
const shown = (page) => page.evaluate(() => {
  const texts = (sel) => Array.from(document.querySelectorAll(sel), (e) => e.textContent);
  return {
    status: document.getElementById('status').textContent,
    state: document.getElementById('status').dataset.state,
    room: document.getElementById('room-title').textContent,
    members: texts('#members li .nick'),
    typing: document.getElementById('typing').textContent,
    messages: Array.from(document.querySelectorAll('.log:not([hidden]) li.msg'),
      (e) => ({ nick: e.querySelector('.nick').textContent, text: e.querySelector('.text').textContent, mine: e.classList.contains('mine') })),
    system: texts('.log:not([hidden]) li.system'),
    empty: !document.getElementById('empty').hidden,
    input: document.getElementById('message').value,
  };
});

// waitShown waits until ok(arg), run in the page, is true, then returns what the page
// shows. ok is a function, not source text: the page's Content-Security-Policy forbids eval.
async function waitShown(page, what, ok, arg) {
  try {
    await page.waitForFunction(ok, arg, { timeout: TIMEOUT, polling: 50 });
  } catch (err) {
    throw new Error(`${what}: not seen within ${TIMEOUT} ms; the page shows ${JSON.stringify(await shown(page))}`);
  }
  return shown(page);
}

const membersAre = (page, list) => waitShown(page, `members ${list.join(', ')}`,
  (want) => JSON.stringify(Array.from(document.querySelectorAll('#members li .nick'), (e) => e.textContent)) === want,
  JSON.stringify(list));
const stateIs = (page, state) => waitShown(page, `status ${state}`,
  (want) => document.getElementById('status').dataset.state === want, state);

async function nextLine(want) {
  const { value, done } = await stdin.next();
  if (done || (want !== undefined && value.trim() !== want)) {
    throw new Error(`stdin: got ${done ? 'EOF' : JSON.stringify(value)}, want ${want || 'a line'}`);
  }
  return value.trim();
}

(async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duplex-chat-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.DUPLEX_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const url = await nextLine();
  const errors = [];
  let serverDown = false;
  const open = async (who) => {
    const page = await context.newPage();
    page.on('pageerror', (err) => errors.push(`${who}: uncaught ${err.message}`));
    page.on('console', (m) => {
      // While the server is down, Chromium reports each failed WebSocket: expected then.
      if (m.type() === 'error' && !(serverDown && /WebSocket connection to .* failed/.test(m.text()))) {
        errors.push(`${who}: console: ${m.text()}`);
      }
    });
    await page.goto(url);
    return page;
  };
  try {
    const alice = await open('alice');
    const bob = await open('bob');
    for (const page of [alice, bob]) await stateIs(page, 'online');
    emit({ op: 'connected', alice: await shown(alice), bob: await shown(bob) });

    // alice uses the mouse, bob the keyboard.
    await alice.getByLabel('Nickname', { exact: true }).fill('alice');
    await alice.getByRole('button', { name: 'Enter chat' }).click();
    await membersAre(alice, ['alice']);
    await bob.getByLabel('Nickname', { exact: true }).fill('bob');
    await bob.getByLabel('Nickname', { exact: true }).press('Enter');
    emit({ op: 'joined', alice: await membersAre(alice, ['alice', 'bob']), bob: await membersAre(bob, ['alice', 'bob']) });

    // bob types: the focus is in the message box after joining.
    await bob.keyboard.type('hello alice', { delay: 30 });
    const typing = await waitShown(alice, 'the typing indicator', () => document.getElementById('typing').textContent !== '');
    emit({ op: 'typing', alice: typing, bob: await shown(bob) });

    await bob.keyboard.press('Enter');
    const hasMessage = (text) => Array.from(document.querySelectorAll('.log:not([hidden]) li.msg .text'), (e) => e.textContent).includes(text);
    const aliceGot = await waitShown(alice, 'bob\'s message', hasMessage, 'hello alice');
    const bobGot = await waitShown(bob, 'bob\'s own message', hasMessage, 'hello alice');
    emit({ op: 'message', alice: aliceGot, bob: bobGot });

    await bob.getByRole('button', { name: 'Leave #lobby' }).click();
    emit({ op: 'left', alice: await membersAre(alice, ['alice']), bob: await waitShown(bob, 'no room', () => !document.getElementById('empty').hidden) });

    serverDown = true;
    emit({ op: 'stop-server' });
    await nextLine('stopped');
    emit({ op: 'offline', alice: await stateIs(alice, 'offline') });
    await nextLine('restarted');
    await stateIs(alice, 'online');
    serverDown = false;
    emit({ op: 'reconnected', alice: await membersAre(alice, ['alice']) });

    // A server that stops answering (frozen): the page notices the missing pings by itself.
    emit({ op: 'freeze-server' });
    await nextLine('frozen');
    serverDown = true;
    emit({ op: 'silent', alice: await stateIs(alice, 'offline') });
    emit({ op: 'thaw-server' });
    await nextLine('thawed');
    await stateIs(alice, 'online');
    serverDown = false;
    emit({ op: 'back', alice: await membersAre(alice, ['alice']) });
    emit({ op: 'done', errors });
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(0);
})().catch(fail);
