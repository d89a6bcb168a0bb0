package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/duplexio/duplex/socketio"
	"github.com/duplexio/duplex/ws"
)

// benchServer serves, on a loopback httptest server, what "duplex serve" serves to the
// bench modes: the WebSocket echo at /echo and Socket.IO with the demo handlers at
// /socket.io/. It returns the ws:// echo URL, the http:// base URL and a function that
// stops it.
func benchServer(t *testing.T) (wsURL, httpURL string, stop func()) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	upgrader := &ws.Upgrader{}
	sio := socketio.NewServer(&socketio.Options{Logger: logger})
	addDemoHandlers(sio)
	mux := http.NewServeMux()
	mux.Handle("/echo", echoHandler(upgrader, nil, logger, newMetrics()))
	mux.Handle(socketio.DefaultPath, sio)
	web := httptest.NewServer(mux)
	return "ws" + strings.TrimPrefix(web.URL, "http") + "/echo", web.URL, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sio.Shutdown(ctx)
		_ = upgrader.Shutdown(ctx)
		web.Close()
	}
}

// runBench runs "duplex bench args..." in-process, bounded in time.
func runBench(t *testing.T, args ...string) dialResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), append([]string{"bench"}, args...), strings.NewReader(""), &stdout, &stderr)
	}()
	select {
	case s := <-done:
		return dialResult{s, stdout.String(), stderr.String()}
	case <-time.After(30 * time.Second):
		t.Fatalf("duplex bench %q did not return", args)
		return dialResult{}
	}
}

// benchTable parses the two-column table of a report.
func benchTable(t *testing.T, out string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// Keys are words separated by single spaces ("stayed up"); two spaces or more end them.
		key, value, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("table line %q has no value", line)
		}
		rows[key] = strings.TrimSpace(value)
	}
	return rows
}

// checkRows checks that the table has the rows of every report, that the counts are
// positive (messages only when wantMessages) and that there are no errors.
func checkRows(t *testing.T, rows map[string]string, mode string, wantMessages bool) {
	t.Helper()
	for _, k := range []string{"mode", "url", "connections", "duration", "messages", "messages/s", "latency", "p50", "p90", "p99", "max", "errors"} {
		if _, ok := rows[k]; !ok {
			t.Fatalf("no row %q in %q", k, rows)
		}
	}
	if rows["mode"] != mode {
		t.Errorf("mode %q, want %q", rows["mode"], mode)
	}
	msgs, err1 := strconv.ParseInt(rows["messages"], 10, 64)
	rate, err2 := strconv.ParseFloat(rows["messages/s"], 64)
	if err1 != nil || err2 != nil || wantMessages && (msgs <= 0 || rate <= 0) {
		t.Errorf("messages %q, messages/s %q: want numbers above 0", rows["messages"], rows["messages/s"])
	}
	var prev time.Duration
	for _, k := range []string{"p50", "p90", "p99", "max"} {
		d, err := time.ParseDuration(rows[k])
		if err != nil || d <= 0 || d < prev {
			t.Errorf("%s %q: want a positive duration, at least the one before (%v)", k, rows[k], prev)
		}
		prev = d
	}
	if rows["errors"] != "0" {
		t.Errorf("errors %q, want 0", rows["errors"])
	}
}

func TestBenchModesReportTheirTable(t *testing.T) {
	before := goleak.IgnoreCurrent()
	wsURL, httpURL, stop := benchServer(t)
	for _, tc := range []struct {
		name, mode   string
		args         []string
		wantMessages bool
		wantRows     map[string]string
	}{
		{"ws-echo", "ws-echo", []string{"--connections", "4", "--in-flight", "3", "--size", "100", wsURL}, true,
			map[string]string{"connections": "4 (opened 4, failed 0, dropped 0)", "latency": "round trip (write to echo)"}},
		{"ws-echo at a rate", "ws-echo", []string{"--connections", "2", "--rate", "200", wsURL}, true, nil},
		{"sio-echo polling", "sio-echo", []string{"--connections", "3", "--in-flight", "2", "--transport", "polling", httpURL}, true,
			map[string]string{"transport": "polling", "latency": "round trip (emit to ack)"}},
		{"sio-echo websocket", "sio-echo", []string{"--connections", "3", "--transport", "websocket", "--size", "1000", httpURL}, true,
			map[string]string{"transport": "websocket"}},
		{"sio-echo upgrade", "sio-echo", []string{"--connections", "2", "--rate", "100", httpURL}, true,
			map[string]string{"transport": "polling+upgrade"}},
		{"sio-broadcast", "sio-broadcast", []string{"--connections", "4", "--in-flight", "2", "--transport", "websocket", httpURL}, true,
			map[string]string{"latency": "delivery (broadcast emit to msg)"}},
		{"idle-connections WebSocket", "idle-connections", []string{"--connections", "5", wsURL}, false,
			map[string]string{"stayed up": "5", "latency": "handshake", "messages": "0"}},
		{"idle-connections Socket.IO", "idle-connections", []string{"--connections", "5", "--transport", "polling", httpURL}, false,
			map[string]string{"stayed up": "5", "latency": "handshake", "transport": "polling"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBench(t, append([]string{"--mode", tc.mode, "--duration", "300ms"}, tc.args...)...)
			if r.status != 0 {
				t.Fatalf("status %d; stdout %q; stderr %q", r.status, r.stdout, r.stderr)
			}
			rows := benchTable(t, r.stdout)
			checkRows(t, rows, tc.mode, tc.wantMessages)
			for k, v := range tc.wantRows {
				if rows[k] != v {
					t.Errorf("row %q: %q, want %q", k, rows[k], v)
				}
			}
			if tc.mode == "sio-broadcast" {
				// Each broadcast reaches the 3 receivers (the sender is left out): at most 3
				// deliveries for each broadcast acknowledged within the window and for the
				// 2 in flight at its end (deliveries may lag behind the acks).
				b, _ := strconv.ParseInt(rows["broadcasts"], 10, 64)
				m, _ := strconv.ParseInt(rows["messages"], 10, 64)
				if b <= 0 || m > 3*(b+2) {
					t.Errorf("%d broadcasts, %d messages: want at most 3 deliveries each", b, m)
				}
			}
			if r.stderr != "" {
				t.Errorf("stderr %q, want nothing (not a terminal: no progress line)", r.stderr)
			}
		})
	}
	stop()
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines left: %v", err)
	}
}

func TestBenchJSONReport(t *testing.T) {
	_, httpURL, stop := benchServer(t)
	defer stop()
	r := runBench(t, "--mode", "sio-echo", "--json", "--connections", "2", "--duration", "300ms", "--transport", "websocket", httpURL)
	var rep struct {
		Mode      string  `json:"mode"`
		Opened    int     `json:"opened"`
		Messages  int64   `json:"messages"`
		PerSecond float64 `json:"messages_per_s"`
		Seconds   float64 `json:"duration_s"`
		LatencyMS struct {
			P50, P90, P99, Max float64
		} `json:"latency_ms"`
		Errors *int64 `json:"errors"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.status != 0 {
		t.Fatalf("status %d, stdout %q: %v; stderr %q", r.status, r.stdout, err, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("stdout %q: want one line", r.stdout)
	}
	if rep.Mode != "sio-echo" || rep.Opened != 2 || rep.Messages <= 0 || rep.PerSecond <= 0 || rep.Seconds <= 0 ||
		rep.LatencyMS.P50 <= 0 || rep.LatencyMS.Max < rep.LatencyMS.P99 || rep.Errors == nil || *rep.Errors != 0 {
		t.Fatalf("report %+v from %s", rep, r.stdout)
	}
}

func TestBenchCountsFailedConnectionsAndGoesOn(t *testing.T) {
	// Every other handshake is refused: the run goes on with the connections that opened.
	var n atomic.Int64
	var upgrader ws.Upgrader
	echo := echoHandler(&upgrader, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics())
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "not you", http.StatusServiceUnavailable)
			return
		}
		echo.ServeHTTP(w, r)
	}))
	defer web.Close()
	r := runBench(t, "--mode", "ws-echo", "--connections", "4", "--duration", "300ms", "ws"+strings.TrimPrefix(web.URL, "http"))
	if r.status != 0 {
		t.Fatalf("status %d; stderr %q", r.status, r.stderr)
	}
	rows := benchTable(t, r.stdout)
	if rows["connections"] != "4 (opened 2, failed 2, dropped 0)" || rows["errors"] != "2" || rows["messages"] == "0" {
		t.Fatalf("rows %q", rows)
	}
	if !strings.Contains(r.stderr, "503") {
		t.Fatalf("stderr %q does not say why connections failed", r.stderr)
	}
}

func TestBenchFailsWhenNoConnectionOpens(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "go away", http.StatusForbidden)
	}))
	defer web.Close()
	for _, args := range [][]string{
		{"--mode", "ws-echo", "ws" + strings.TrimPrefix(web.URL, "http") + "/echo"},
		{"--mode", "sio-echo", "--transport", "polling", web.URL},
	} {
		r := runBench(t, append(args, "--connections", "3", "--duration", "300ms")...)
		if r.status != 1 || !strings.Contains(r.stderr, "no connection opened (3 failed)") || r.stdout != "" {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want 1 and the reason", args, r.status, r.stdout, r.stderr)
		}
	}
}

func TestBenchStopsWhenEveryConnectionDropped(t *testing.T) {
	// The server closes each connection soon after the handshake: every connection drops,
	// and the run ends then instead of after its --duration.
	var upgrader ws.Upgrader
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r)
		if err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
		_ = c.Close(ws.StatusGoingAway, "bye")
	}))
	defer web.Close()
	r := runBench(t, "--mode", "idle-connections", "--connections", "3", "--duration", "1h", "ws"+strings.TrimPrefix(web.URL, "http"))
	if r.status != 0 {
		t.Fatalf("status %d; stderr %q", r.status, r.stderr)
	}
	rows := benchTable(t, r.stdout)
	if rows["connections"] != "3 (opened 3, failed 0, dropped 3)" || rows["stayed up"] != "0" || rows["errors"] != "3" {
		t.Fatalf("rows %q", rows)
	}
	if !strings.Contains(r.stderr, "3 errors") || !strings.Contains(r.stderr, "1001") {
		t.Fatalf("stderr %q does not list the errors", r.stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--mode", "nope", "ws://localhost:1"},
		{"--mode", "ws-echo", "http://localhost:1"},
		{"--mode", "ws-echo", "--transport", "polling", "ws://localhost:1"},
		{"--mode", "sio-echo", "--transport", "smoke", "http://localhost:1"},
		{"--mode", "sio-echo", "ftp://localhost:1"},
		{"--mode", "sio-broadcast", "--connections", "1", "http://localhost:1"},
		{"--connections", "0", "ws://localhost:1"},
		{"--in-flight", "0", "ws://localhost:1"},
		{"--size", "-1", "ws://localhost:1"},
		{"--duration", "0", "ws://localhost:1"},
		{"--rate", "-5", "ws://localhost:1"},
		{"-H", "nocolon", "ws://localhost:1"},
		{"ws://localhost:1", "ws://localhost:2"},
	} {
		if r := runBench(t, args...); r.status != 2 || !strings.Contains(r.stderr, "duplex bench -h") {
			t.Errorf("%q: status %d, stderr %q; want 2", args, r.status, r.stderr)
		}
	}
}

func TestHistogramPercentilesAreWithinATenthOfAPercent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, gen := range []func() time.Duration{
		func() time.Duration { return time.Duration(rng.IntN(2000)) },                               // exact range
		func() time.Duration { return time.Duration(rng.ExpFloat64() * float64(time.Millisecond)) }, // long tail
		func() time.Duration { return time.Duration(math.Exp(rng.Float64() * 40)) },                 // ns to minutes
	} {
		var h histogram
		samples := make([]time.Duration, 20_000)
		for i := range samples {
			samples[i] = gen()
			h.record(samples[i])
		}
		slices.Sort(samples)
		qs := []float64{0.001, 0.5, 0.9, 0.99, 0.999, 1}
		got, maxD := h.percentiles(qs...)
		if maxD != samples[len(samples)-1] {
			t.Errorf("max %v, want %v", maxD, samples[len(samples)-1])
		}
		for i, q := range qs {
			exact := samples[int(math.Ceil(q*float64(len(samples))))-1]
			if diff := math.Abs(float64(got[i] - exact)); diff > float64(exact)/1000 {
				t.Errorf("p%v: %v, exact %v", q*100, got[i], exact)
			}
		}
	}
	var empty histogram
	if got, maxD := empty.percentiles(0.5); got[0] != 0 || maxD != 0 {
		t.Errorf("empty histogram: %v %v", got, maxD)
	}
}

func TestHistogramBucketsCoverEveryValue(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 1023, 1024, 1025, 2047, 2048, 1 << 20, 1<<20 + 1, 1 << 40, math.MaxInt64, math.MaxUint64} {
		i := histIndex(v)
		if i < prev || i >= histBuckets {
			t.Errorf("histIndex(%d) = %d after %d (of %d buckets)", v, i, prev, histBuckets)
		}
		if mid := histValue(i); math.Abs(float64(mid)-float64(v)) > float64(v)/1000+0.5 {
			t.Errorf("value %d: bucket %d's midpoint %d", v, i, mid)
		}
		prev = i
	}
}
