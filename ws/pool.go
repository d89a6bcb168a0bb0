package ws

import (
	"math/bits"
	"sync"
)

// Buffers are pooled in power-of-two size classes from 512 B to 1 MiB, so that connections
// hold I/O buffers only while they are moving bytes, never while idle.
const (
	minPoolShift = 9
	maxPoolShift = 20
)

var bufPools [maxPoolShift - minPoolShift + 1]sync.Pool

// poolClass returns the index of the smallest class that holds size bytes.
func poolClass(size int) int {
	if size <= 1<<minPoolShift {
		return 0
	}
	shift := bits.Len(uint(size - 1))
	if shift > maxPoolShift {
		shift = maxPoolShift
	}
	return shift - minPoolShift
}

// getBuffer returns a buffer of length 0 and capacity at least size (up to 1 MiB). The
// pointer is what putBuffer takes back, so that recycling allocates nothing.
func getBuffer(size int) *[]byte {
	class := poolClass(size)
	if p, ok := bufPools[class].Get().(*[]byte); ok {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, 1<<(class+minPoolShift))
	return &b
}

// putBuffer returns a buffer from getBuffer to its pool.
func putBuffer(p *[]byte) {
	c := cap(*p)
	if c < 1<<minPoolShift || c&(c-1) != 0 || c > 1<<maxPoolShift {
		return
	}
	bufPools[poolClass(c)].Put(p)
}
