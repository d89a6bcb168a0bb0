package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/duplexio/duplex/bench/internal/load"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := append([]float64(nil), tc.in...)
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("Median reordered its argument: %v", tc.in)
			}
		}
	}
	if got := FormatMedian(nil, "%.2f"); got != "–" {
		t.Errorf("FormatMedian(nil) = %q, want –", got)
	}
	if got := FormatMedian([]float64{1, 2}, "%.2f"); got != "1.50" {
		t.Errorf("FormatMedian = %q, want 1.50", got)
	}
}

func TestCollectEcho(t *testing.T) {
	res := func(msgs uint64, cpu float64) load.Result {
		return load.Result{Msgs: msgs, Seconds: 2, MsgsPerSec: float64(msgs) / 2, ServerCPUSeconds: cpu,
			ServerCPUPerMsgUs: -1, ServerSyscallsPerMsg: 3, LoadCPUSeconds: 1}
	}
	runs := map[int]load.Result{0: res(400, 1), 1: res(600, -1)}
	base := map[int]load.Result{0: res(100, 1)} // no run 1: no ratio for it
	e := CollectEcho(runs, base)
	if len(e.MsgsPerSec) != 2 || len(e.ServerCPUPerMsgUs) != 0 || len(e.ServerSyscallsPerMsg) != 2 {
		t.Fatalf("columns: %+v", e)
	}
	if len(e.MsgsPerServerCPUSec) != 1 || e.MsgsPerServerCPUSec[0] != 400 || len(e.ServerCPUPercent) != 1 || e.ServerCPUPercent[0] != 50 {
		t.Fatalf("server CPU columns: %+v", e)
	}
	if len(e.Ratio) != 1 || e.Ratio[0] != 4 || len(e.CPURatio) != 1 || e.CPURatio[0] != 4 {
		t.Fatalf("ratios: %v, %v", e.Ratio, e.CPURatio)
	}
	if len(e.MsgsPerLoadCPUSec) != 2 || len(e.LoadCPUPerMsgUs) != 2 || len(e.LoadCPURatio) != 1 || e.LoadCPURatio[0] != 4 {
		t.Fatalf("load CPU columns: %v, %v, %v", e.MsgsPerLoadCPUSec, e.LoadCPUPerMsgUs, e.LoadCPURatio)
	}
	if e := CollectEcho(runs, nil); len(e.Ratio) != 0 || len(e.CPURatio) != 0 || len(e.LoadCPURatio) != 0 {
		t.Fatalf("ratios without a base: %v, %v", e.Ratio, e.CPURatio)
	}
}

func TestTargetsAndFailures(t *testing.T) {
	var b bytes.Buffer
	PrintTargets(&b, nil)
	PrintFailures(&b, nil)
	if b.Len() != 0 || FailuresError(nil) != nil {
		t.Fatalf("printed %q for nothing", b.String())
	}
	PrintTargets(&b, []Target{AtLeast("speed", 3.5, 3), AtMost("memory", 0.5, 0.25)})
	for _, row := range []string{"| speed | 3.50 | ≥ 3× | yes |", "| memory | 0.50 | ≤ 0.25× | **no** |"} {
		if !strings.Contains(b.String(), row) {
			t.Errorf("targets lack %q:\n%s", row, b.String())
		}
	}
	if err := FailuresError([]string{"a", "b"}); err == nil || err.Error() != "2 failures:\n  a\n  b" {
		t.Fatalf("FailuresError = %v", err)
	}
}
