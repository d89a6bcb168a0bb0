// The chat page of "duplex serve": rooms, nicknames, who is online, typing indicators.
// It talks to the server's chat events (see cmd/duplex/chat.go) through DuplexSocket
// (duplex-client.js). Everything from the network is shown as text, never as HTML.
(function () {
  'use strict';

  const TYPING_IDLE = 3000;    // stop saying "typing" this long after the last key
  const TYPING_REFRESH = 2000; // while typing, say it again this often
  const TYPING_EXPIRY = 4000;  // forget another's "typing" not refreshed for this long

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  const state = {
    nick: '',
    rooms: new Map(), // name → room (see addRoom)
    active: null,     // the room shown
    wasConnected: false,
    typing: { room: null, sent: 0, idle: null }, // what this page said about its own typing
  };

  const socket = new DuplexSocket();

  // ---- connection status ----

  function setStatus(kind, text) {
    const s = $('status');
    s.dataset.state = kind;
    s.textContent = text;
  }

  socket.on('connect', () => {
    setStatus('online', 'Connected');
    if (state.wasConnected) systemAll('Reconnected.');
    state.wasConnected = true;
    for (const room of state.rooms.values()) join(room.name, { again: true });
  });
  socket.on('disconnect', () => {
    setStatus('offline', 'Connection lost');
    systemAll('Connection lost. Reconnecting…');
    for (const room of state.rooms.values()) {
      room.typing.forEach((t) => clearTimeout(t.timer));
      room.typing.clear();
      room.members = [];
    }
    state.typing.room = null;
    renderRoom();
  });
  socket.on('reconnecting', ({ attempt, delay }) => {
    const secs = Math.max(1, Math.round(delay / 1000));
    setStatus('offline', `Reconnecting in ${secs} s (attempt ${attempt})…`);
  });

  // connected resolves once the socket is connected, at once if it is (and rejects after ms).
  function connected(ms) {
    if (socket.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => { clearTimeout(timer); socket.off('connect', done); resolve(); };
      const timer = setTimeout(() => { socket.off('connect', done); reject(new Error('not connected')); }, ms);
      socket.on('connect', done);
    });
  }

  // ---- rooms ----

  function addRoom(name) {
    const log = el('ol', 'log');
    log.setAttribute('role', 'log');
    log.setAttribute('aria-label', `Messages in #${name}`);
    log.hidden = true;
    $('logs').append(log);
    const button = el('button', 'room', `#${name}`);
    button.type = 'button';
    const badge = el('span', 'badge');
    badge.hidden = true;
    button.append(badge);
    button.addEventListener('click', () => show(name));
    const item = el('li');
    item.append(button);
    $('room-list').append(item);
    const room = { name, members: [], typing: new Map(), log, button, badge, item, unread: 0, you: null };
    state.rooms.set(name, room);
    return room;
  }

  function removeRoom(name) {
    const room = state.rooms.get(name);
    if (!room) return;
    room.typing.forEach((t) => clearTimeout(t.timer));
    room.log.remove();
    room.item.remove();
    state.rooms.delete(name);
    if (state.active === name) {
      const next = state.rooms.keys().next();
      state.active = next.done ? null : next.value;
      show(state.active);
    }
  }

  // join asks to join a room; again: a rejoin after a reconnection.
  async function join(name, { again = false, errorBox = 'join-error' } = {}) {
    $(errorBox).textContent = '';
    let ack;
    try {
      if (!again) await connected(5000);
      ack = await socket.emitWithAck('chat:join', { room: name, nick: state.nick });
    } catch (err) {
      $(errorBox).textContent = socket.connected ? `Could not join: ${err.message}` : 'Not connected: try again in a moment.';
      return false;
    }
    if (ack.error) {
      $(errorBox).textContent = ack.error;
      return false;
    }
    const room = state.rooms.get(ack.room) || addRoom(ack.room);
    room.members = ack.members;
    room.you = ack.you;
    if (!again) {
      system(room, `You joined #${room.name} as ${state.nick}.`);
      show(room.name);
    } else if (state.active === room.name) {
      renderRoom();
    }
    return true;
  }

  async function leave(name) {
    stopTyping();
    try {
      await socket.emitWithAck('chat:leave', { room: name });
    } catch (err) {
      // Not connected: the server forgot this socket's rooms already.
    }
    removeRoom(name);
  }

  function show(name) {
    stopTyping();
    state.active = name;
    for (const room of state.rooms.values()) {
      const on = room.name === name;
      room.log.hidden = !on;
      if (on) {
        room.unread = 0;
        room.button.setAttribute('aria-current', 'true');
      } else {
        room.button.removeAttribute('aria-current');
      }
    }
    renderRoom();
    $(name ? 'message' : 'join-room').focus();
  }

  // ---- rendering ----

  // hue gives every nickname a colour of its own.
  function hue(nick) {
    let h = 0;
    for (const c of nick) h = (h * 31 + c.codePointAt(0)) % 360;
    return h;
  }

  function nickSpan(nick) {
    const s = el('span', 'nick', nick);
    s.style.setProperty('--hue', hue(nick));
    return s;
  }

  function append(room, item) {
    const log = room.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(item);
    if (atBottom || log.hidden) log.scrollTop = log.scrollHeight;
  }

  function system(room, text) {
    append(room, el('li', 'system', text));
  }

  function systemAll(text) {
    for (const room of state.rooms.values()) system(room, text);
  }

  function renderMessage(room, m) {
    const item = el('li', m.member === room.you ? 'msg mine' : 'msg');
    const meta = el('p', 'meta');
    const when = new Date(m.time);
    const time = el('time', '', when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    time.dateTime = when.toISOString();
    meta.append(nickSpan(m.nick), ' ', time);
    item.append(meta, el('p', 'text', m.text));
    append(room, item);
    if (room.name !== state.active) {
      room.unread++;
      renderRooms();
    }
  }

  function renderRooms() {
    for (const room of state.rooms.values()) {
      room.badge.replaceChildren();
      if (room.unread) room.badge.append(String(room.unread), el('span', 'visually-hidden', ' unread'));
      room.badge.hidden = !room.unread;
    }
  }

  function renderTyping() {
    const room = state.rooms.get(state.active);
    const nicks = room ? Array.from(room.typing.values(), (t) => t.nick) : [];
    let text = '';
    if (nicks.length === 1) text = `${nicks[0]} is typing…`;
    else if (nicks.length === 2) text = `${nicks[0]} and ${nicks[1]} are typing…`;
    else if (nicks.length > 2) text = `${nicks.length} people are typing…`;
    $('typing').textContent = text;
  }

  function renderRoom() {
    const room = state.rooms.get(state.active);
    $('empty').hidden = !!room;
    $('composer').hidden = !room;
    $('leave').hidden = !room;
    $('room-title').textContent = room ? `#${room.name}` : 'No room';
    $('message').placeholder = room ? `Message #${room.name}` : 'Message';
    $('message').labels[0].textContent = room ? `Message #${room.name}` : 'Message';
    $('leave').textContent = room ? `Leave #${room.name}` : 'Leave';
    $('people-title').textContent = room ? `Online in #${room.name} (${room.members.length})` : 'Online';
    const list = $('members');
    list.replaceChildren();
    for (const m of room ? room.members : []) {
      const item = el('li');
      item.append(nickSpan(m.nick));
      if (m.id === room.you) item.append(el('span', 'you', ' (you)'));
      list.append(item);
    }
    renderRooms();
    renderTyping();
  }

  // ---- events from the server ----

  socket.on('chat:presence', (p) => {
    const room = state.rooms.get(p.room);
    if (!room) return;
    room.members = p.members;
    const verb = { joined: 'joined', left: 'left', disconnected: 'disconnected' }[p.change] || p.change;
    system(room, `${p.member.nick} ${verb}.`);
    if (p.change !== 'joined') forgetTyping(room, p.member.id);
    if (room.name === state.active) renderRoom();
  });

  socket.on('chat:message', (m) => {
    const room = state.rooms.get(m.room);
    if (!room) return;
    forgetTyping(room, m.member);
    renderMessage(room, m);
  });

  socket.on('chat:typing', (t) => {
    const room = state.rooms.get(t.room);
    if (!room) return;
    forgetTyping(room, t.member, true);
    if (t.typing) {
      const timer = setTimeout(() => forgetTyping(room, t.member), TYPING_EXPIRY);
      room.typing.set(t.member, { nick: t.nick, timer });
    }
    if (room.name === state.active) renderTyping();
  });

  function forgetTyping(room, member, quiet) {
    const t = room.typing.get(member);
    if (!t) return;
    clearTimeout(t.timer);
    room.typing.delete(member);
    if (!quiet && room.name === state.active) renderTyping();
  }

  // ---- this page's own typing ----

  function typed() {
    const room = state.active;
    if (!room || !socket.connected) return;
    if ($('message').value.trim() === '') {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (state.typing.room !== room || now - state.typing.sent > TYPING_REFRESH) {
      socket.emit('chat:typing', { room, typing: true });
      state.typing.room = room;
      state.typing.sent = now;
    }
    clearTimeout(state.typing.idle);
    state.typing.idle = setTimeout(stopTyping, TYPING_IDLE);
  }

  function stopTyping() {
    clearTimeout(state.typing.idle);
    if (state.typing.room && socket.connected && state.rooms.has(state.typing.room)) {
      socket.emit('chat:typing', { room: state.typing.room, typing: false });
    }
    state.typing.room = null;
  }

  // ---- forms ----

  $('welcome-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const nick = $('nick').value.trim();
    const room = $('first-room').value.trim();
    if (!nick) {
      $('welcome-error').textContent = 'Pick a nickname first.';
      $('nick').focus();
      return;
    }
    if (!room) {
      $('welcome-error').textContent = 'Name a room to start in.';
      $('first-room').focus();
      return;
    }
    state.nick = nick;
    if (await join(room, { errorBox: 'welcome-error' })) {
      try { localStorage.setItem('duplex-chat-nick', nick); } catch (err) { /* private mode */ }
      $('me').textContent = nick;
      $('welcome').hidden = true;
      $('chat').hidden = false;
      $('message').focus();
    }
  });

  $('join-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('join-room').value.trim();
    if (!name) {
      $('join-error').textContent = 'Name the room to join.';
      return;
    }
    const known = state.rooms.get(name.toLowerCase());
    if (known) {
      $('join-room').value = '';
      show(known.name);
      return;
    }
    if (await join(name)) $('join-room').value = '';
  });

  $('leave').addEventListener('click', () => {
    if (state.active) leave(state.active);
  });

  $('message').addEventListener('input', typed);
  $('message').addEventListener('blur', stopTyping);

  $('composer').addEventListener('submit', async (e) => {
    e.preventDefault(); // Enter in the field submits the form: that is how Enter sends
    const input = $('message');
    const text = input.value.trim();
    const room = state.active;
    if (!text || !room) return;
    $('send-error').textContent = '';
    stopTyping();
    let ack;
    try {
      ack = await socket.emitWithAck('chat:message', { room, text });
    } catch (err) {
      $('send-error').textContent = socket.connected ? `Not sent: ${err.message}` : 'Not sent: no connection. It is still in the box.';
      return;
    }
    if (ack.error) {
      $('send-error').textContent = `Not sent: ${ack.error}`;
      return;
    }
    if (input.value.trim() === text) input.value = '';
  });

  try { $('nick').value = localStorage.getItem('duplex-chat-nick') || ''; } catch (err) { /* private mode */ }
  renderRoom();
})();
