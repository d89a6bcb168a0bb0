// Deterministic payloads shared by the Node peers, the browser page and the Go
// tests (patternText/patternBinary in helpers_test.go must stay identical).
//
// binary(n): byte i = (i*31 + (i >>> 11)) & 0xff
// text(n):   the 16-byte unit "duplex é€𝄞" (1-, 2-, 3- and 4-byte UTF-8
//            characters) repeated, then a tail of n%16 bytes built from the
//            unit's characters in order, using "." when the next one does not fit.
// Both are exactly n bytes long (text in UTF-8).
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

  const api = { text, binary };
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.duplexPattern = api;
})(this);
