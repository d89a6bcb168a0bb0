package redisadapter_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/duplexio/duplex/engineio"
	"github.com/duplexio/duplex/internal/eiotest"
	"github.com/duplexio/duplex/internal/redistest"
)

// BenchmarkRelayPost measures a polling POST (one message, echoed into the session's queue)
// sent straight to the node that holds the session and sent to the other node, which relays
// it over Redis; it reports the Redis commands each relayed request costs.
func BenchmarkRelayPost(b *testing.B) {
	addr := redistest.Start(b)
	for _, mode := range []string{"direct", "relayed"} {
		b.Run(mode, func(b *testing.B) {
			nodes, _ := newEchoCluster(b, addr, 2)
			owner := eiotest.NewClient(b, nodes[1].url+engineio.DefaultPath)
			sid := owner.OpenPolling(b)
			<-nodes[1].opened
			nodes[1].quiet.Store(true) // no echo: the session's queue stays empty
			via := owner
			if mode == "relayed" {
				via = eiotest.NewClient(b, nodes[0].url+engineio.DefaultPath)
			}
			rc := newRedisClient(b, addr)
			before := commandCount(b, rc.Info(context.Background(), "commandstats").Val())
			b.ResetTimer()
			for range b.N {
				if r := via.Push(b, sid, "4hi"); r.Status != http.StatusOK {
					b.Fatalf("POST: %v", r)
				}
			}
			b.StopTimer()
			after := commandCount(b, rc.Info(context.Background(), "commandstats").Val())
			b.ReportMetric(float64(after-before)/float64(b.N), "redis-cmds/op")
		})
	}
}

// commandCount sums the calls of every command in the output of INFO commandstats.
func commandCount(tb testing.TB, info string) int {
	n := 0
	for line := range strings.SplitSeq(info, "\n") {
		_, rest, ok := strings.Cut(line, ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		c, err := strconv.Atoi(calls)
		if err != nil {
			tb.Fatalf("commandstats line %q", line)
		}
		n += c
	}
	return n
}
