package interop

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
	"unicode/utf8"
)

// Payload generators for the permessage-deflate tests, mirroring data() in
// pattern.js byte for byte (TestPayloadsMatchNode checks it):
//
//	pattern: patternText / patternBinary
//	json:    compressible ASCII records
//	random:  incompressible xorshift32 bytes (printable ASCII for text)
//	repeat:  a 1500-byte random block repeated: matches only at distance 1500,
//	         which a compressor with a window of 2^10 bytes or less cannot use
const (
	dataPattern = "pattern"
	dataJSON    = "json"
	dataRandom  = "random"
	dataRepeat  = "repeat"

	repeatBlock = 1500
)

func xorshift(seed uint32) func() byte {
	x := seed
	return func() byte {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		return byte(x >> 24)
	}
}

func randomBytes(typ string, n int, seed uint32) []byte {
	next := xorshift(seed)
	b := make([]byte, n)
	for i := range b {
		if typ == "text" {
			b[i] = 0x21 + next()%94
		} else {
			b[i] = next()
		}
	}
	return b
}

func jsonText(n int) []byte {
	b := make([]byte, 0, n+128)
	b = append(b, '[')
	for i := 0; len(b) < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"user":"user-`...)
		b = strconv.AppendInt(b, int64(i*7919%10007), 10)
		b = append(b, `","active":`...)
		b = strconv.AppendBool(b, i%3 == 0)
		b = append(b, `,"score":`...)
		b = strconv.AppendInt(b, int64(i*7877%100000), 10)
		b = append(b, `,"tags":["duplex","websocket","deflate"]}`...)
	}
	return b[:n]
}

// payload returns the bytes of generator kind (dataPattern when "") for a message of typ.
func payload(kind, typ string, n int) []byte {
	switch kind {
	case "", dataPattern:
		return pattern(typ, n)
	case dataJSON:
		return jsonText(n)
	case dataRandom:
		return randomBytes(typ, n, 0x2545f491)
	case dataRepeat:
		block := randomBytes(typ, repeatBlock, 0x1b873593)
		b := make([]byte, n)
		for i := 0; i < n; i += len(block) {
			copy(b[i:], block)
		}
		return b
	}
	panic("unknown payload kind " + kind)
}

// payloadSHA is the hex SHA-256 of payload(kind, typ, n), cached.
func payloadSHA(kind, typ string, n int) string {
	if kind == "" || kind == dataPattern {
		return patternSHA(typ, n)
	}
	key := fmt.Sprintf("%s/%s/%d", kind, typ, n)
	if v, ok := shaCache.Load(key); ok {
		return v.(string)
	}
	s := sha256Hex(payload(kind, typ, n))
	shaCache.Store(key, s)
	return s
}

// The Go and JavaScript generators agree byte for byte, have the requested
// length, and their text is valid UTF-8.
func TestPayloadsMatchNode(t *testing.T) {
	requireNode(t)
	type probe struct {
		Kind, Type string
		N          int
	}
	var probes []probe
	for _, kind := range []string{dataJSON, dataRandom, dataRepeat} {
		for _, typ := range msgTypes {
			for _, n := range []int{0, 1, 125, 1499, 1500, 1501, 4500, 65536, 16 << 20} {
				probes = append(probes, probe{kind, typ, n})
			}
		}
	}
	js, _ := json.Marshal(probes)
	script := `const p = require('./pattern'), c = require('crypto');
const h = (d) => c.createHash('sha256').update(typeof d === 'string' ? Buffer.from(d, 'utf8') : d).digest('hex');
console.log(JSON.stringify(` + string(js) + `.map((q) => h(p.data(q.Kind, q.Type, q.N)))));`
	out, err := exec.Command("node", "-e", script).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var sums []string
	if err := json.Unmarshal(out, &sums); err != nil || len(sums) != len(probes) {
		t.Fatalf("node printed %q: %v", out, err)
	}
	for i, q := range probes {
		b := payload(q.Kind, q.Type, q.N)
		if len(b) != q.N || (q.Type == "text" && !utf8.Valid(b)) {
			t.Errorf("payload(%s, %s, %d): %d bytes, valid UTF-8 %v", q.Kind, q.Type, q.N, len(b), utf8.Valid(b))
		}
		if sums[i] != payloadSHA(q.Kind, q.Type, q.N) {
			t.Errorf("%s %s payload of %d bytes differs between Go and pattern.js", q.Kind, q.Type, q.N)
		}
	}
}
