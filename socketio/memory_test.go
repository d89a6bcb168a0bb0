package socketio

import (
	"testing"
	"unsafe"
)

// An idle client is mostly its Engine.IO session, its connection and its socket: their
// sizes keep the per-client memory that ws/EVENTED.md's numbers were measured with (the
// allocator rounds each up to a size class: 320, 128).
func TestIdleClientStructsFitTheirBudget(t *testing.T) {
	if n := unsafe.Sizeof(Socket{}); n > 320 {
		t.Errorf("Socket is %d bytes, budget 320", n)
	}
	if n := unsafe.Sizeof(connection{}); n > 128 {
		t.Errorf("connection is %d bytes, budget 128", n)
	}
}
