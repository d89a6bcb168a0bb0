package ws

import (
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
)

// maskStreamSize is the length of the repeated-key block that MaskBytes XORs in one call.
const maskStreamSize = 512

// MaskBytes XORs b in place with the masking key, as RFC 6455 §5.3 describes, where pos is
// the offset of b[0] within the payload (only pos mod 4 matters). It returns the offset to
// pass for the bytes that follow b. Masking and unmasking are the same operation.
func MaskBytes(key [4]byte, pos int, b []byte) int {
	end := (pos + len(b)) & 3
	if len(b) == 0 {
		return end
	}
	// k32 holds the key rotated so that its low byte masks b[0].
	k32 := bits.RotateLeft32(binary.LittleEndian.Uint32(key[:]), -8*(pos&3))
	if len(b) >= 2*maskStreamSize {
		var stream [maskStreamSize]byte
		k64 := uint64(k32)<<32 | uint64(k32)
		for i := 0; i < maskStreamSize; i += 8 {
			binary.LittleEndian.PutUint64(stream[i:], k64)
		}
		// crypto/subtle.XORBytes is vectorised on common platforms.
		for len(b) >= maskStreamSize {
			subtle.XORBytes(b[:maskStreamSize], b[:maskStreamSize], stream[:])
			b = b[maskStreamSize:]
		}
	}
	if len(b) >= 8 {
		k64 := uint64(k32)<<32 | uint64(k32)
		for len(b) >= 32 {
			v := b[:32]
			binary.LittleEndian.PutUint64(v[0:], binary.LittleEndian.Uint64(v[0:])^k64)
			binary.LittleEndian.PutUint64(v[8:], binary.LittleEndian.Uint64(v[8:])^k64)
			binary.LittleEndian.PutUint64(v[16:], binary.LittleEndian.Uint64(v[16:])^k64)
			binary.LittleEndian.PutUint64(v[24:], binary.LittleEndian.Uint64(v[24:])^k64)
			b = b[32:]
		}
		for len(b) >= 8 {
			binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
			b = b[8:]
		}
	}
	for i := range b {
		b[i] ^= byte(k32 >> (8 * (i & 3)))
	}
	return end
}
