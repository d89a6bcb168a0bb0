package bench

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/duplexio/duplex/bench/internal/harness"
	"github.com/duplexio/duplex/bench/internal/sioclientload"
	"github.com/duplexio/duplex/bench/internal/sioecho"
)

// nodeSIOClient is the Node socket.io-client load of sioclientcompare.
var nodeSIOClient = harness.NodeServer{Binary: "node", Script: "node/sioclient.js", Modules: nodeModules, Package: "socket.io-client"}

// TestSIOClientLoad runs the Go client load briefly against duplex's
// Socket.IO bench server and requires every ack to be right. It checks
// function, never speed.
func TestSIOClientLoad(t *testing.T) {
	addr, _ := startSIO(t, time.Minute, sioecho.EchoRaw)
	for _, c := range []struct{ clients, inflight, size int }{{1, 1, 1}, {1, 16, 64}, {5, 1, 1024}, {2, 3, 70000}} {
		res, err := sioclientload.Run(context.Background(), sioclientload.Config{URL: "http://" + addr, Clients: c.clients,
			InFlight: c.inflight, Payload: c.size, Warmup: 20 * time.Millisecond, Duration: 150 * time.Millisecond})
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if res.Errors != 0 || res.Msgs == 0 || res.Verified < res.Msgs || res.P50us <= 0 || res.P90us < res.P50us || res.P99us < res.P90us {
			t.Fatalf("%+v: %+v", c, res)
		}
	}
}

// TestSIOClientLoadDetectsBadAcks checks that a wrong ack fails the Go
// client load's run.
func TestSIOClientLoadDetectsBadAcks(t *testing.T) {
	for _, mangle := range []string{"ack-flipped-char", "ack-extra-arg"} {
		t.Run(mangle, func(t *testing.T) {
			res, err := sioclientload.Run(context.Background(), sioclientload.Config{URL: "http://" + badServer(t, mangle), Clients: 1,
				Payload: 32, Duration: 200 * time.Millisecond, Grace: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 1 {
				t.Fatalf("bad ack not detected: %+v", res)
			}
			t.Logf("detected: %s", res.FirstError)
		})
	}
}

// TestSIOClientCompareEndToEnd builds the commands and runs sioclientcompare
// over tiny windows, unpinned, with the Node client when it is installed,
// and checks the table's shape: a row per scenario and client with numbers
// above zero, and the ratios and targets when both clients ran; then the
// same with -json.
func TestSIOClientCompareEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	impls := []string{"duplex", "node"}
	if checkNode(t, nodeSIOClient) != nil {
		impls = impls[:1]
	}
	dir := buildCommands(t, "./cmd/sioserver", "./cmd/load", "./cmd/sioclientload", "./cmd/sioclientcompare")
	compare := func(extra ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args := append([]string{"-bin", dir, "-pin=false", "-out", "", "-impls", strings.Join(impls, ","), "-runs", "1",
			"-duration", "200ms", "-warmup", "50ms", "-scenarios", "1x1,2x4", "-size", "64", "-quiet-wait", "0"}, extra...)
		out, err := exec.CommandContext(ctx, filepath.Join(dir, "sioclientcompare"), args...).Output()
		if err != nil {
			t.Fatalf("sioclientcompare %v: %v\n%s", extra, err, out)
		}
		return out
	}

	out := string(compare())
	for _, sc := range []string{"| 1 | 1 | ", "| 2 | 4 | "} {
		for _, impl := range impls {
			row := rowStarting(out, sc+impl+" |")
			if row == nil {
				t.Errorf("no row %q", sc+impl)
				continue
			}
			// clients, in flight, client, round trips/s, vs node, per client
			// CPU-s, vs node, p50, p90, p99, ...
			cols := []int{3, 7, 8, 9}
			if impl == "duplex" && len(impls) == 2 {
				cols = append(cols, 4)
			}
			for _, i := range cols {
				if v, err := strconv.ParseFloat(row[i], 64); err != nil || v <= 0 {
					t.Errorf("row %q: column %d is %q, want a number > 0", sc+impl, i, row[i])
				}
			}
		}
	}
	if len(impls) == 2 && !strings.Contains(out, "## Targets") {
		t.Errorf("output lacks the targets table")
	}
	if strings.Contains(out, "failed") || strings.Contains(out, "## Failures") {
		t.Errorf("output has failures")
	}
	if t.Failed() {
		t.Fatalf("output:\n%s", out)
	}

	var sum struct {
		Scenarios []struct {
			Clients, InFlight int
			Impls             map[string]struct {
				Runs             int     `json:"runs"`
				RoundTripsPerSec float64 `json:"round_trips_per_sec"`
				P99us            float64 `json:"p99_us"`
			}
		}
		Samples []json.RawMessage
	}
	js := compare("-json")
	if err := json.Unmarshal(js, &sum); err != nil {
		t.Fatalf("-json output: %v\n%s", err, js)
	}
	if len(sum.Scenarios) != 2 || len(sum.Samples) != 2*len(impls) {
		t.Fatalf("-json: %d scenarios, %d samples\n%s", len(sum.Scenarios), len(sum.Samples), js)
	}
	for _, sc := range sum.Scenarios {
		for _, impl := range impls {
			if s := sc.Impls[impl]; s.Runs != 1 || s.RoundTripsPerSec <= 0 || s.P99us <= 0 {
				t.Errorf("-json: %d×%d %s: %+v", sc.Clients, sc.InFlight, impl, s)
			}
		}
	}
}

// rowStarting returns the cells of the first markdown table row of out
// that starts with prefix, trimmed, or nil.
func rowStarting(out, prefix string) []string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, prefix) {
			cells := strings.Split(strings.Trim(line, "|"), "|")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			return cells
		}
	}
	return nil
}
