package stats_test

import (
	"math"
	"testing"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

func TestFleetRouteView(t *testing.T) {
	th := rules.Readiness{MinSamples: 100, MatchRate: 0.9, SecondaryWriteSuccess: 0.9, P99LatencyIncrease: 0.5}
	totals := func(primaryFailed, secondaryFailed int64) stats.Totals {
		return stats.Totals{
			Reads: map[stats.Outcome]int64{stats.Match: 990, stats.Mismatch: 10, stats.Skipped: 5, stats.Error: primaryFailed + secondaryFailed},
			Reasons: map[string]int64{"skipped/busy": 5, "error/primary_failed": primaryFailed, "error/secondary_failed": secondaryFailed,
				"match/": 0},
			Windows: map[string]map[stats.Outcome]int64{"5m": {stats.Match: 9, stats.Mismatch: 1}},
			Writes:  map[stats.WriteOutcome]int64{stats.WriteOK: 50, stats.WriteFailed: 0},
			Latency: stats.Latency{Old: stats.LatencySide{Count: 1000, P99Ms: 100}, New: stats.LatencySide{Count: 1000, P99Ms: 120}},
		}
	}
	tests := []struct {
		name                string
		phase               string
		primary, secondary  int64
		wantStatus          string
		wantMatchRateJudged float64
	}{
		{"clean", "shadow-read", 0, 0, stats.StatusReady, 0.99},
		// While old serves, old's failures say nothing about new...
		{"old fails as primary", "shadow-read", 200, 0, stats.StatusReady, 0.99},
		// ...but new's failures count against it.
		{"new fails as secondary", "shadow-read", 0, 200, stats.StatusNotReady, 990.0 / 1200},
		{"new fails as primary", "cutover", 200, 0, stats.StatusNotReady, 990.0 / 1200},
		{"old fails as secondary", "cutover", 0, 200, stats.StatusReady, 0.99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := stats.FleetRouteView(stats.RouteInfo{Name: "users", Phase: tt.phase, Readiness: th}, totals(tt.primary, tt.secondary), stats.Scope{Fleet: true, Replicas: 2})
			if v.Name != "users" || v.Scope == nil || !v.Scope.Fleet || v.Scope.Replicas != 2 {
				t.Errorf("view = %+v", v)
			}
			if v.Reads.Compared != 1000 || v.Reads.Total != 1005+tt.primary+tt.secondary || *v.Reads.MatchRate != 0.99 {
				t.Errorf("reads = %+v", v.Reads.Window)
			}
			if w := v.Reads.Windows["5m"]; w.Compared != 10 || v.Reads.Windows["24h"].Total != 0 {
				t.Errorf("windows = %+v", v.Reads.Windows)
			}
			if _, ok := v.Reads.Reasons["match/"]; ok || v.Reads.Reasons["skipped/busy"] != 5 {
				t.Errorf("reasons = %v", v.Reads.Reasons)
			}
			if v.Writes.SecondaryAttempted != 50 || *v.Writes.FirstAttemptRate != 1 {
				t.Errorf("writes = %+v", v.Writes)
			}
			if inc := *v.Latency.P99Increase; math.Abs(inc-0.2) > 1e-9 {
				t.Errorf("p99 increase = %v", inc)
			}
			if v.Ready.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s: %v", v.Ready.Status, tt.wantStatus, v.Ready.Reasons)
			}
			for _, c := range v.Ready.Checks {
				if c.Name == "match_rate" && math.Abs(*c.Value-tt.wantMatchRateJudged) > 1e-9 {
					t.Errorf("match rate judged = %v, want %v", *c.Value, tt.wantMatchRateJudged)
				}
			}
			if len(v.Sparkline) != 60 {
				t.Errorf("sparkline has %d minutes", len(v.Sparkline))
			}
		})
	}
}

func TestRoundCount(t *testing.T) {
	for in, want := range map[float64]int64{0: 0, 1.4999: 1, 1.5: 2, -3: 0, math.NaN(): 0, math.Inf(1): 0, 1e6 + 0.2: 1e6} {
		if got := stats.RoundCount(in); got != want {
			t.Errorf("RoundCount(%v) = %d, want %d", in, got, want)
		}
	}
}
