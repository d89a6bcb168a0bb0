package interop

import (
	"encoding/json"
	"os/exec"
	"testing"
	"unicode/utf8"
)

// The Go and JavaScript payload generators agree byte for byte, and the text
// pattern is valid UTF-8 of exactly the requested length. (The echo tests
// rely on this to compare what a peer received with what Go expects.)
func TestPatternsMatchNode(t *testing.T) {
	requireNode(t)
	lens := []int{0, 1, 15, 16, 17, 31, 125, 126, 65535, 65536, 16 << 20}
	for _, n := range lens {
		if b := patternText(n); len(b) != n || !utf8.Valid(b) {
			t.Errorf("patternText(%d): %d bytes, valid UTF-8 %v", n, len(b), utf8.Valid(b))
		}
	}
	js, _ := json.Marshal(lens)
	script := `const p = require('./pattern'), c = require('crypto');
const h = (b) => c.createHash('sha256').update(b).digest('hex');
console.log(JSON.stringify(` + string(js) + `.map((n) => [h(Buffer.from(p.text(n), 'utf8')), h(p.binary(n))])));`
	out, err := exec.Command("node", "-e", script).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var sums [][2]string
	if err := json.Unmarshal(out, &sums); err != nil || len(sums) != len(lens) {
		t.Fatalf("node printed %q: %v", out, err)
	}
	for i, n := range lens {
		if sums[i][0] != patternSHA("text", n) {
			t.Errorf("text pattern of %d bytes differs between Go and pattern.js", n)
		}
		if sums[i][1] != patternSHA("binary", n) {
			t.Errorf("binary pattern of %d bytes differs between Go and pattern.js", n)
		}
	}
}
