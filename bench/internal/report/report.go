// Package report holds what the comparison commands (cmd/compare,
// cmd/eiocompare, cmd/siocompare) share to report their runs: medians over
// runs, the per-run columns of an echo table row and its ratios to a base
// impl, the targets and failures tables they print in markdown, and the raw
// results they save as JSON.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/duplexio/duplex/bench/internal/load"
)

// Median returns the median of v (the mean of the middle two when their
// count is even), or 0 when v is empty. v is not modified.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// FormatMedian formats the median of v with format (such as "%.2f"), or
// returns "–" when v is empty: a table cell that was never measured.
func FormatMedian(v []float64, format string) string {
	if len(v) == 0 {
		return "–"
	}
	return fmt.Sprintf(format, Median(v))
}

// EchoRuns holds the columns of one echo table row (one impl in one cell)
// as one value per run that measured it, and the per-run ratios to the base
// impl in the same run.
type EchoRuns struct {
	MsgsPerSec           []float64
	MsgsPerServerCPUSec  []float64 // round trips in the window ÷ the server's CPU seconds in it
	MsgsPerLoadCPUSec    []float64 // round trips in the window ÷ the load's CPU seconds in it
	LoadCPUPerMsgUs      []float64 // the load's CPU µs per round trip
	P50us, P90us, P99us  []float64
	ServerCPUPerMsgUs    []float64
	ServerSyscallsPerMsg []float64
	LoadSyscallsPerMsg   []float64 // the load's read+write system calls per round trip
	ServerCPUPercent     []float64 // server CPU time ÷ window, in %
	LoadCPUPercent       []float64 // load CPU time ÷ window, in %
	Ratio                []float64 // msgs/s ÷ the base's msgs/s
	CPURatio             []float64 // msgs per server CPU-second ÷ the base's
	LoadCPURatio         []float64 // msgs per load CPU-second ÷ the base's
}

// CollectEcho gathers the results of runs (by run number) into the columns
// of a row, leaving out numbers a run could not measure (negative), and
// their ratios to base (the base impl's results by run number; nil for no
// ratios), for every run that both have.
func CollectEcho(runs, base map[int]load.Result) EchoRuns {
	var e EchoRuns
	for r, res := range runs {
		e.MsgsPerSec = append(e.MsgsPerSec, res.MsgsPerSec)
		if res.ServerCPUSeconds > 0 {
			e.MsgsPerServerCPUSec = append(e.MsgsPerServerCPUSec, float64(res.Msgs)/res.ServerCPUSeconds)
		}
		if res.LoadCPUSeconds > 0 && res.Msgs > 0 {
			e.MsgsPerLoadCPUSec = append(e.MsgsPerLoadCPUSec, float64(res.Msgs)/res.LoadCPUSeconds)
			e.LoadCPUPerMsgUs = append(e.LoadCPUPerMsgUs, res.LoadCPUSeconds*1e6/float64(res.Msgs))
		}
		e.P50us = append(e.P50us, res.P50us)
		e.P90us = append(e.P90us, res.P90us)
		e.P99us = append(e.P99us, res.P99us)
		if res.ServerCPUPerMsgUs >= 0 {
			e.ServerCPUPerMsgUs = append(e.ServerCPUPerMsgUs, res.ServerCPUPerMsgUs)
		}
		if res.ServerSyscallsPerMsg >= 0 {
			e.ServerSyscallsPerMsg = append(e.ServerSyscallsPerMsg, res.ServerSyscallsPerMsg)
		}
		if res.LoadSyscallsPerMsg >= 0 {
			e.LoadSyscallsPerMsg = append(e.LoadSyscallsPerMsg, res.LoadSyscallsPerMsg)
		}
		if res.ServerCPUSeconds >= 0 && res.Seconds > 0 {
			e.ServerCPUPercent = append(e.ServerCPUPercent, 100*res.ServerCPUSeconds/res.Seconds)
		}
		if res.LoadCPUSeconds >= 0 && res.Seconds > 0 {
			e.LoadCPUPercent = append(e.LoadCPUPercent, 100*res.LoadCPUSeconds/res.Seconds)
		}
		if b, ok := base[r]; ok && b.MsgsPerSec > 0 {
			e.Ratio = append(e.Ratio, res.MsgsPerSec/b.MsgsPerSec)
			if res.ServerCPUSeconds > 0 && b.ServerCPUSeconds > 0 && b.Msgs > 0 {
				e.CPURatio = append(e.CPURatio, (float64(res.Msgs)/res.ServerCPUSeconds)/(float64(b.Msgs)/b.ServerCPUSeconds))
			}
			if res.LoadCPUSeconds > 0 && res.Msgs > 0 && b.LoadCPUSeconds > 0 && b.Msgs > 0 {
				e.LoadCPURatio = append(e.LoadCPURatio, (float64(res.Msgs)/res.LoadCPUSeconds)/(float64(b.Msgs)/b.LoadCPUSeconds))
			}
		}
	}
	return e
}

// Target is one line of the targets table: a duplex ÷ node ratio and the
// issue's target for it.
type Target struct {
	What  string  // what was measured, such as "msgs/s, websocket, 100 sessions"
	Ratio float64 // duplex ÷ node, median of per-run ratios
	Want  string  // the target, such as "≥ 3×"
	Met   bool
}

// AtLeast is the target that ratio be at least limit: a speed-up.
func AtLeast(what string, ratio, limit float64) Target {
	return Target{what, ratio, fmt.Sprintf("≥ %.0f×", limit), ratio >= limit}
}

// AtMost is the target that ratio be at most limit: a share of memory.
func AtMost(what string, ratio, limit float64) Target {
	return Target{what, ratio, fmt.Sprintf("≤ %.2f×", limit), ratio <= limit}
}

// PrintTargets prints the targets table in markdown, or nothing when
// targets is empty.
func PrintTargets(w io.Writer, targets []Target) {
	if len(targets) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Targets (duplex ÷ node, medians of per-run ratios)\n\n")
	fmt.Fprintln(w, "| what | duplex ÷ node | target | met |")
	fmt.Fprintln(w, "|---|---:|---:|---|")
	for _, t := range targets {
		met := "yes"
		if !t.Met {
			met = "**no**"
		}
		fmt.Fprintf(w, "| %s | %.2f | %s | %s |\n", t.What, t.Ratio, t.Want, met)
	}
}

// PrintVersions prints the line that names what was measured: the duplex
// tree, then versions["go"] and, when present, versions["node"].
func PrintVersions(w io.Writer, tree string, versions map[string]string) {
	vs := []string{"duplex " + tree, versions["go"]}
	if v, ok := versions["node"]; ok {
		vs = append(vs, v)
	}
	fmt.Fprintf(w, "\n%s; each process pinned to one CPU when -pin\n", strings.Join(vs, "; "))
}

// PrintFailures prints the failures as a markdown list under a heading, or
// nothing when there are none.
func PrintFailures(w io.Writer, failures []string) {
	if len(failures) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Failures\n\n")
	for _, f := range failures {
		fmt.Fprintf(w, "- %s\n", f)
	}
}

// FailuresError returns an error listing the failures, one a line, or nil
// when there are none.
func FailuresError(failures []string) error {
	if len(failures) == 0 {
		return nil
	}
	return fmt.Errorf("%d failures:\n  %s", len(failures), strings.Join(failures, "\n  "))
}

// Save writes v, the raw results of a comparison, as indented JSON to
// dir/PREFIXYYYYMMDD-HHMMSS.json (the time is started), creating dir, and
// logs the file's name. It does nothing when dir is "" (-out ""). A failure
// is logged, not returned: the tables are printed all the same.
func Save(dir, prefix string, started time.Time, v any) {
	if dir == "" {
		return
	}
	if err := save(dir, prefix, started, v); err != nil {
		log.Printf("saving raw results: %v", err)
	}
}

func save(dir, prefix string, started time.Time, v any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	name := filepath.Join(dir, prefix+started.Format("20060102-150405")+".json")
	log.Printf("raw results: %s", name)
	return os.WriteFile(name, b, 0o644)
}
