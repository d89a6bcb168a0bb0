// Deterministic payloads shared by the Node peers, the browser page and the Go
// tests (patternText/patternBinary in helpers_test.go must stay identical).
//
// binary(n): byte i = (i*31 + (i >>> 11)) & 0xff
// text(n):   the 16-byte unit "duplex é€𝄞" (1-, 2-, 3- and 4-byte UTF-8
//            characters) repeated, then a tail of n%16 bytes built from the
//            unit's characters in order, using "." when the next one does not fit.
// Both are exactly n bytes long (text in UTF-8).
//
// data(kind, type, n) adds payloads for the permessage-deflate tests (Go mirror:
// deflate_payload_test.go), a string for 'text' and a Uint8Array for 'binary':
//   'pattern': text(n) or binary(n);
//   'json':    compressible ASCII, the records
//              {"id":I,"user":"user-U","active":A,"score":S,"tags":["duplex","websocket","deflate"]}
//              (U = I*7919 % 10007, A = I%3 == 0, S = I*7877 % 100000) for I = 0, 1, ...
//              joined by "," after a "[", cut at n bytes;
//   'random':  incompressible: xorshift32 (x ^= x<<13, x ^= x>>>17, x ^= x<<5; seed
//              0x2545f491), one byte (x>>>24) per step; for text the printable ASCII
//              character 0x21 + byte%94;
//   'repeat':  the first 1500 bytes of 'random' but with seed 0x1b873593, repeated:
//              long-distance matches only, to probe a compressor's window.
(function (root) {
  'use strict';
  const UNIT = ['d', 'u', 'p', 'l', 'e', 'x', ' ', '\u00e9', '\u20ac', '\u{1d11e}'];
  const utf8Len = (ch) => { const c = ch.codePointAt(0); return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; };

  function text(n) {
    let tail = '';
    let left = n % 16;
    for (let i = 0; left > 0; i++) {
      let ch = UNIT[i % UNIT.length];
      if (utf8Len(ch) > left) ch = '.';
      tail += ch;
      left -= utf8Len(ch);
    }
    return UNIT.join('').repeat(Math.floor(n / 16)) + tail;
  }

  function binary(n) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 11)) & 0xff;
    return b;
  }

  function xorshift(seed) {
    let x = seed >>> 0;
    return () => {
      x ^= x << 13; x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5; x >>>= 0;
      return x >>> 24;
    };
  }

  function randomBytes(type, n, seed) {
    const next = xorshift(seed);
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = type === 'text' ? 0x21 + (next() % 94) : next();
    return b;
  }

  function jsonText(n) {
    const parts = ['['];
    let len = 1;
    for (let i = 0; len < n; i++) {
      const rec = (i > 0 ? ',' : '') + '{"id":' + i + ',"user":"user-' + ((i * 7919) % 10007) +
        '","active":' + (i % 3 === 0) + ',"score":' + ((i * 7877) % 100000) +
        ',"tags":["duplex","websocket","deflate"]}';
      parts.push(rec);
      len += rec.length;
    }
    return parts.join('').slice(0, n);
  }

  const ascii = (bytes) => new TextDecoder().decode(bytes);
  const asciiBytes = (s) => new TextEncoder().encode(s);

  function data(kind, type, n) {
    let b;
    switch (kind || 'pattern') {
      case 'pattern': return type === 'text' ? text(n) : binary(n);
      case 'json': return type === 'text' ? jsonText(n) : asciiBytes(jsonText(n));
      case 'random': b = randomBytes(type, n, 0x2545f491); break;
      case 'repeat': {
        const block = randomBytes(type, 1500, 0x1b873593);
        b = new Uint8Array(n);
        for (let i = 0; i < n; i += block.length) b.set(block.subarray(0, Math.min(block.length, n - i)), i);
        break;
      }
      default: throw new Error('unknown payload kind ' + kind);
    }
    return type === 'text' ? ascii(b) : b;
  }

  const api = { text, binary, data };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.duplexPattern = api;
})(this);
