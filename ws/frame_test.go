package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strconv"
	"testing"
)

func TestHeaderRoundTripUsesMinimalLengthEncoding(t *testing.T) {
	tests := []struct {
		length int64
		size   int // header size unmasked
	}{
		{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {1 << 40, 10},
	}
	for _, tt := range tests {
		for _, masked := range []bool{false, true} {
			h := Header{Fin: true, Rsv: Rsv1, Opcode: OpBinary, Masked: masked, Length: tt.length}
			if masked {
				h.Mask = [4]byte{1, 2, 3, 4}
			}
			b := AppendHeader(nil, h)
			want := tt.size
			if masked {
				want += 4
			}
			if len(b) != want || h.Size() != want {
				t.Fatalf("length %d masked %v: encoded %d bytes, Size %d, want %d", tt.length, masked, len(b), h.Size(), want)
			}
			got, n, err := ParseHeader(b)
			if err != nil || n != len(b) || got != h {
				t.Fatalf("length %d: parsed %+v n=%d err=%v, want %+v", tt.length, got, n, err, h)
			}
			// Every strict prefix asks for more bytes.
			for i := 0; i < len(b); i++ {
				if _, n, err := ParseHeader(b[:i]); n != 0 || err != nil {
					t.Fatalf("prefix %d of %d: n=%d err=%v, want 0, nil", i, len(b), n, err)
				}
			}
		}
	}
}

func TestParseHeaderAcceptsNonMinimalLengths(t *testing.T) {
	b := []byte{0x82, 126, 0, 5}
	h, n, err := ParseHeader(b)
	if err != nil || n != 4 || h.Length != 5 {
		t.Fatalf("16-bit length 5: %+v %d %v", h, n, err)
	}
	b = append([]byte{0x82, 127}, binary.BigEndian.AppendUint64(nil, 7)...)
	h, n, err = ParseHeader(b)
	if err != nil || n != 10 || h.Length != 7 {
		t.Fatalf("64-bit length 7: %+v %d %v", h, n, err)
	}
}

func TestParseHeaderRejects64BitLengthWithMSBSet(t *testing.T) {
	b := append([]byte{0x82, 127}, binary.BigEndian.AppendUint64(nil, 1<<63)...)
	if _, _, err := ParseHeader(b); !errors.Is(err, ErrLengthOverflow) {
		t.Fatalf("err = %v, want ErrLengthOverflow", err)
	}
}

func TestParseHeaderDecodesBits(t *testing.T) {
	// FIN=0, RSV1..3 set, opcode 0xB, masked, length 3.
	h, n, err := ParseHeader([]byte{0x7B, 0x83, 9, 8, 7, 6})
	if err != nil || n != 6 {
		t.Fatal(n, err)
	}
	want := Header{Fin: false, Rsv: Rsv1 | Rsv2 | Rsv3, Opcode: 0xB, Masked: true, Mask: [4]byte{9, 8, 7, 6}, Length: 3}
	if h != want {
		t.Fatalf("got %+v, want %+v", h, want)
	}
	if !h.Opcode.IsControl() || !h.Opcode.IsReserved() {
		t.Fatal("0xB must be a reserved control opcode")
	}
}

func TestOpcodeClasses(t *testing.T) {
	for op := Opcode(0); op < 16; op++ {
		reserved := (op >= 3 && op <= 7) || op >= 0xB
		if op.IsReserved() != reserved {
			t.Errorf("%v: IsReserved = %v", op, op.IsReserved())
		}
		if op.IsControl() != (op >= 8) {
			t.Errorf("%v: IsControl = %v", op, op.IsControl())
		}
	}
}

func naiveMask(key [4]byte, pos int, b []byte) {
	for i := range b {
		b[i] ^= key[(pos+i)%4]
	}
}

func TestMaskBytesMatchesByteWiseMasking(t *testing.T) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	for _, size := range []int{0, 1, 3, 7, 8, 9, 31, 32, 33, 511, 1024, 1025, 4099, 70000} {
		for pos := 0; pos < 4; pos++ {
			src := make([]byte, size)
			for i := range src {
				src[i] = byte(i * 7)
			}
			want := bytes.Clone(src)
			naiveMask(key, pos, want)
			got := bytes.Clone(src)
			next := MaskBytes(key, pos, got)
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d pos %d: mismatch", size, pos)
			}
			if next != (pos+size)%4 {
				t.Fatalf("size %d pos %d: next = %d", size, pos, next)
			}
		}
	}
}

func TestMaskBytesInPiecesEqualsWhole(t *testing.T) {
	key := [4]byte{0xA1, 0xB2, 0xC3, 0xD4}
	src := make([]byte, 3000)
	for i := range src {
		src[i] = byte(i)
	}
	whole := bytes.Clone(src)
	MaskBytes(key, 0, whole)
	pieces := bytes.Clone(src)
	pos := 0
	for i := 0; i < len(pieces); {
		n := min(1+i%13*97, len(pieces)-i)
		pos = MaskBytes(key, pos, pieces[i:i+n])
		i += n
	}
	if !bytes.Equal(whole, pieces) {
		t.Fatal("masking in pieces differs from masking at once")
	}
}

func BenchmarkMaskBytes(b *testing.B) {
	for _, size := range []int{16, 1024, 64 << 10} {
		buf := make([]byte, size)
		b.Run(byteSize(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				MaskBytes([4]byte{1, 2, 3, 4}, 1, buf)
			}
		})
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
