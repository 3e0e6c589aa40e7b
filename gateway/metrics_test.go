package gateway_test

import (
	"errors"
	"fmt"
	"strings"
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

func TestReloadMetricsStartAtZeroAndTrackTheLastOutcome(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{}`))
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "")
	want := func(step string, ok, failed, last float64) {
		t.Helper()
		for name, w := range map[string]float64{
			`cutover_rules_reload_total{outcome="ok"}`:    ok,
			`cutover_rules_reload_total{outcome="error"}`: failed,
			`cutover_rules_last_reload_successful`:        last,
		} {
			if got := gathered(t, g, name); got != w {
				t.Errorf("%s: %s = %v, want %v", step, name, got, w)
			}
		}
	}
	want("at start", 0, 0, 1)
	g.proxy.RulesReloaded(errors.New("bad file"))
	want("after a refused file", 0, 1, 0)
	g.proxy.RulesReloaded(nil)
	want("after a good file", 1, 1, 1)
}

// Every configured route has its match and mismatch series from the start,
// at zero: the fleet view's increase() misses a series' first sample, and
// its sparkline divides the match series by both. The catch-all route's
// appear with its traffic.
func TestComparisonSeriesOfConfiguredRoutesStartAtZero(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{}`))
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n")
	for _, outcome := range []string{"match", "mismatch"} {
		series := fmt.Sprintf(`cutover_comparisons_total{outcome=%q,reason="",route="items"}`, outcome)
		if got := gathered(t, g, series); got != 0 {
			t.Errorf("%s = %v at start, want 0", series, got)
		}
	}
	if got := gathered(t, g, `cutover_comparisons_total{outcome="match",reason="",route="unmatched"}`); got != -1 {
		t.Errorf("the unmatched route's match series exists before any traffic: %v", got)
	}
}

// gathered returns the value of one series, written as name{label="value"},
// or -1 when the registry does not have it.
func gathered(t *testing.T, g *gw, series string) float64 {
	t.Helper()
	families, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := mf.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			if name != series {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}
