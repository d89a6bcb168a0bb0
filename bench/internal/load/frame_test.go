package load

import (
	"bytes"
	"testing"

	"github.com/duplexio/duplex/ws"
)

// TestClientFrameParses cross-checks the load generator's frames with ws's
// codec: same header, and the payload unmasks to the original.
func TestClientFrameParses(t *testing.T) {
	key := [4]byte{9, 8, 7, 6}
	for _, n := range []int{1, 125, 126, 65535, 65536} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i)
		}
		f := appendClientFrame(nil, key, p)
		h, hl, err := ws.ParseHeader(f)
		if err != nil || hl == 0 {
			t.Fatalf("n=%d: ParseHeader: %d, %v", n, hl, err)
		}
		if !h.Fin || h.Opcode != ws.OpBinary || !h.Masked || h.Mask != key || h.Length != int64(n) || h.Rsv != 0 {
			t.Fatalf("n=%d: header %+v", n, h)
		}
		body := append([]byte(nil), f[hl:]...)
		ws.MaskBytes(key, 0, body)
		if !bytes.Equal(body, p) {
			t.Fatalf("n=%d: payload does not unmask", n)
		}
	}
}
