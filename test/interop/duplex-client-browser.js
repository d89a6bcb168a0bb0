// Page functions for chat_test.go's TestChatClientInChromium: they exercise DuplexSocket
// (cmd/duplex/web/duplex-client.js, loaded by the page before this file) against the Go
// test server of that test; browser.js's "call" scenario runs them and hands back the result.
(function () {
  'use strict';
  const TIMEOUT = 10000;

  // once resolves with the arguments of the socket's next event.
  const once = (socket, event) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event within ${TIMEOUT} ms`)), TIMEOUT);
    const fn = (...args) => { clearTimeout(timer); socket.off(event, fn); resolve(args); };
    socket.on(event, fn);
  });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // duplexClientBasics: CONNECT with auth (the server emits "hello" with it), acks of the
  // client's events in both forms, an ack the server asks for, an ack that never comes,
  // then the server disconnects the socket: no reconnection follows.
  window.duplexClientBasics = async () => {
    const socket = new DuplexSocket({ auth: { token: 'abc' }, ackTimeout: 500 });
    const hello = once(socket, 'hello');
    await once(socket, 'connect');
    const result = { id: socket.id, hello: (await hello)[0] };
    result.echo = await socket.emitWithAck('echo', { n: [1, 'two', null, true] }, 'second');
    result.echoAll = await new Promise((resolve) => {
      socket.emit('echo', 1, 'é€𝄞', (err, ...args) => resolve({ err: err && err.message, args }));
    });
    socket.on('question', (n, ack) => ack(n * 6, 'from the page'));
    const answer = once(socket, 'answer');
    socket.emit('ask', 7);
    result.answer = await answer;
    try {
      await socket.emitWithAck('unanswered');
    } catch (err) {
      result.unanswered = err.message;
    }
    const reason = once(socket, 'disconnect');
    socket.emit('kick');
    result.kicked = (await reason)[0];
    await sleep(300);
    result.connectedAfterKick = socket.connected;
    result.emitWhileOff = socket.emit('echo', 1);
    return result;
  };
})();
