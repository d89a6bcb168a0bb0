package main

import (
	"slices"
	"testing"
)

func TestParseScenarios(t *testing.T) {
	for _, tc := range []struct {
		list, clients, inflight string
		want                    []scenario
	}{
		{"1x1,1x16,50x1", "", "", []scenario{{1, 1}, {1, 16}, {50, 1}}},
		{" 2x3 ", "", "", []scenario{{2, 3}}},
		{"1x1", "1,50", "", []scenario{{1, 1}, {50, 1}}},
		{"1x1", "", "1,16", []scenario{{1, 1}, {1, 16}}},
		{"1x1", "2,3", "4,5", []scenario{{2, 4}, {2, 5}, {3, 4}, {3, 5}}},
	} {
		got, err := parseScenarios(tc.list, tc.clients, tc.inflight)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseScenarios(%q, %q, %q) = %v, %v; want %v", tc.list, tc.clients, tc.inflight, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "1", "1x", "x1", "0x1", "1x0", "ax1", "1x1,2"} {
		if got, err := parseScenarios(bad, "", ""); err == nil {
			t.Errorf("parseScenarios(%q) = %v, want an error", bad, got)
		}
	}
	if _, err := parseScenarios("1x1", "0", ""); err == nil {
		t.Errorf("-clients 0 accepted")
	}
}
