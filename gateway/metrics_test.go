package gateway_test

import (
	"testing"
)

// assertMetricsAgree checks that cutover_comparisons_total, summed over
// outcomes and reasons, equals the reads sent per route, and equals what the
// stats say per outcome.
func assertMetricsAgree(t *testing.T, g *gw, sent map[string]int) {
	t.Helper()
	families, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	perRoute := map[string]float64{}
	perOutcome := map[string]float64{}
	for _, mf := range families {
		if mf.GetName() != "cutover_comparisons_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var route, outcome string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "route":
					route = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			perRoute[route] += m.GetCounter().GetValue()
			perOutcome[route+"/"+outcome] += m.GetCounter().GetValue()
		}
	}
	for route, n := range sent {
		if perRoute[route] != float64(n) {
			t.Errorf("cutover_comparisons_total{route=%q} = %v, want %d", route, perRoute[route], n)
		}
		v := g.route(route)
		for outcome, want := range map[string]int64{"match": v.Reads.Matched, "mismatch": v.Reads.Mismatched, "skipped": v.Reads.Skipped, "error": v.Reads.Errors, "pending": v.Reads.Pending} {
			if perOutcome[route+"/"+outcome] != float64(want) {
				t.Errorf("metrics say %s/%s = %v, stats say %d", route, outcome, perOutcome[route+"/"+outcome], want)
			}
		}
	}
}
