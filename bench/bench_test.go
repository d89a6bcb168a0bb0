package bench

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"testing"

	"github.com/duplexio/duplex/ws"

	"github.com/duplexio/duplex/bench/internal/load"
	"github.com/duplexio/duplex/bench/internal/servers"
)

// maskNaive is the textbook byte-at-a-time masking loop. Neither gorilla
// (maskBytes) nor gws (internal.MaskXOR) exports its masking function, so this
// is the reference.
func maskNaive(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

func BenchmarkMask64KiB(b *testing.B) {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	buf := make([]byte, 64<<10)
	for _, m := range []struct {
		name string
		fn   func([4]byte, int, []byte) int
	}{{"duplex", ws.MaskBytes}, {"naive", maskNaive}} {
		for _, pos := range []int{0, 1} { // 1: payload not starting on a key boundary
			b.Run(fmt.Sprintf("%s/pos%d", m.name, pos), func(b *testing.B) {
				b.SetBytes(int64(len(buf)))
				for i := 0; i < b.N; i++ {
					m.fn(key, pos, buf)
				}
			})
		}
	}
}

func TestMaskAgreesWithNaive(t *testing.T) {
	key := [4]byte{1, 2, 3, 250}
	for _, n := range []int{0, 1, 7, 8, 31, 33, 1023, 1024, 1025, 70000} {
		for pos := 0; pos < 4; pos++ {
			a := make([]byte, n)
			for i := range a {
				a[i] = byte(i * 7)
			}
			c := append([]byte(nil), a...)
			if pa, pc := ws.MaskBytes(key, pos, a), maskNaive(key, pos, c); pa != pc || string(a) != string(c) {
				t.Fatalf("n=%d pos=%d: MaskBytes differs from the naive loop", n, pos)
			}
		}
	}
}

// BenchmarkEcho measures one echo round trip over loopback TCP against each
// in-process server, reporting allocations per message for the whole process.
// The client side (load.Client) allocates nothing per message, so allocs/msg
// is the server's.
func BenchmarkEcho(b *testing.B) {
	for _, impl := range servers.Names() {
		if servers.IsDeflate(impl) {
			continue // load.Client sends uncompressed messages; see cmd/compare -deflate
		}
		for _, size := range []int{16, 1024, 65536} {
			b.Run(fmt.Sprintf("%s/%dB", impl, size), func(b *testing.B) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					b.Fatal(err)
				}
				srv, err := servers.Start(impl, ln)
				if err != nil {
					b.Fatal(err)
				}
				defer srv.Close()
				c, err := load.Dial(context.Background(), nil, ln.Addr().String(), "/", servers.IsWebSocket(impl), max(4096, size+16), "")
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				cl := load.NewClient(c, size, servers.IsWebSocket(impl))
				for i := 0; i < 200; i++ { // warm buffers and pools
					if err := cl.RoundTrip(int64(i)); err != nil {
						b.Fatal(err)
					}
				}
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := cl.RoundTrip(int64(i)); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				runtime.ReadMemStats(&m1)
				b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/float64(b.N), "allocs/msg")
				b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(b.N), "B/msg")
			})
		}
	}
}
