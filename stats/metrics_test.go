package stats_test

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCollector(t *testing.T) {
	s := open(t, "", newClock())
	easy := rules.Readiness{MinSamples: 1, MatchRate: 0.5, SecondaryWriteSuccess: 0.5, P99LatencyIncrease: 1}
	routes := []stats.RouteInfo{{Name: "user", Phase: "shadow-read", Readiness: easy}, {Name: "orders", Phase: "dual-write", Readiness: easy}}
	for range 20 {
		s.Read(match("user"))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(stats.NewCollector(stats.View{Store: s, Config: func() []stats.RouteInfo { return routes }}, stats.BuildInfo{Version: "1.2.3", Revision: "abc"}))
	want := `
# HELP cutover_build_info The running build of cutover; always 1.
# TYPE cutover_build_info gauge
cutover_build_info{goversion="` + runtime.Version() + `",revision="abc",version="1.2.3"} 1
# HELP cutover_readiness_threshold The readiness thresholds in force (readiness: in the configuration), by criterion.
# TYPE cutover_readiness_threshold gauge
cutover_readiness_threshold{criterion="match_rate"} 0.5
cutover_readiness_threshold{criterion="min_samples"} 1
cutover_readiness_threshold{criterion="p99_latency_increase"} 1
cutover_readiness_threshold{criterion="p99_latency_slack_seconds"} 0
cutover_readiness_threshold{criterion="secondary_write_success"} 0.5
cutover_readiness_threshold{criterion="unresolved_retries"} 0
# HELP cutover_retry_queue_given_up Secondary writes of the route given up and kept for inspection now.
# TYPE cutover_retry_queue_given_up gauge
cutover_retry_queue_given_up{route="orders"} 0
cutover_retry_queue_given_up{route="user"} 0
# HELP cutover_retry_queue_oldest_age_seconds Seconds since the oldest secondary write still queued for retry was queued; 0 when none is.
# TYPE cutover_retry_queue_oldest_age_seconds gauge
cutover_retry_queue_oldest_age_seconds{route="orders"} 0
cutover_retry_queue_oldest_age_seconds{route="user"} 0
# HELP cutover_retry_queue_pending Secondary writes of the route queued for retry now.
# TYPE cutover_retry_queue_pending gauge
cutover_retry_queue_pending{route="orders"} 0
cutover_retry_queue_pending{route="user"} 0
# HELP cutover_retry_queue_to_verify Writes of the route whose primary outcome is unknown (timeout, reset, client gone, gateway stopped), held to verify; the secondary was not written.
# TYPE cutover_retry_queue_to_verify gauge
cutover_retry_queue_to_verify{route="orders"} 0
cutover_retry_queue_to_verify{route="user"} 0
# HELP cutover_route_ready Whether the route's new backend meets every readiness threshold (1) or not (0), judged on 95% Wilson lower bounds.
# TYPE cutover_route_ready gauge
cutover_route_ready{route="orders"} 0
cutover_route_ready{route="user"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cutover_build_info", "cutover_readiness_threshold", "cutover_retry_queue_given_up",
		"cutover_retry_queue_oldest_age_seconds", "cutover_retry_queue_pending", "cutover_retry_queue_to_verify", "cutover_route_ready"); err != nil {
		t.Error(err)
	}
}

// The evidence gauges are the route's own view's counts, kept across a
// restart as the view keeps them: the fleet view sums them, where summing
// the process's counters took a restarted replica's mismatches out of the
// fleet's verdict.
func TestEvidenceGaugesSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s := open(t, dir, c)
	for range 7 {
		s.Read(match("user"))
	}
	for i := range 3 {
		s.Read(priceMismatch("user", i))
	}
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteOK})
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteFailed})
	s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Match, Write: true})
	s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Skipped, Reason: stats.ReasonQueued, Write: true})
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, dir, c)
	routes := []stats.RouteInfo{{Name: "user", Phase: "shadow-read"}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(stats.NewCollector(stats.View{Store: s2, Config: func() []stats.RouteInfo { return routes }}, stats.BuildInfo{}))
	want := `
# HELP cutover_route_evidence_reads Reads of the route by outcome since its evidence began (kept across restarts, cleared by a reset): what a fleet-wide view sums.
# TYPE cutover_route_evidence_reads gauge
cutover_route_evidence_reads{outcome="error",route="user"} 0
cutover_route_evidence_reads{outcome="match",route="user"} 7
cutover_route_evidence_reads{outcome="mismatch",route="user"} 3
cutover_route_evidence_reads{outcome="pending",route="user"} 0
cutover_route_evidence_reads{outcome="skipped",route="user"} 0
cutover_route_evidence_reads{outcome="transient",route="user"} 0
# HELP cutover_route_evidence_writes Secondary writes of the route since its evidence began, by outcome (ok, failed, retried_ok, gave_up).
# TYPE cutover_route_evidence_writes gauge
cutover_route_evidence_writes{outcome="failed",route="user"} 1
cutover_route_evidence_writes{outcome="gave_up",route="user"} 0
cutover_route_evidence_writes{outcome="ok",route="user"} 1
cutover_route_evidence_writes{outcome="retried_ok",route="user"} 0
# HELP cutover_route_evidence_write_comparisons Compared answers of the route's writes since its evidence began, by outcome (match, mismatch, skipped, error).
# TYPE cutover_route_evidence_write_comparisons gauge
cutover_route_evidence_write_comparisons{outcome="error",route="user"} 0
cutover_route_evidence_write_comparisons{outcome="match",route="user"} 1
cutover_route_evidence_write_comparisons{outcome="mismatch",route="user"} 0
cutover_route_evidence_write_comparisons{outcome="skipped",route="user"} 1
# HELP cutover_route_evidence_write_reasons Write comparisons of the route since its evidence began that have a reason (skipped, error), by "outcome/reason".
# TYPE cutover_route_evidence_write_reasons gauge
cutover_route_evidence_write_reasons{reason="skipped/queued",route="user"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "cutover_route_evidence_reads", "cutover_route_evidence_writes",
		"cutover_route_evidence_write_comparisons", "cutover_route_evidence_write_reasons", "cutover_route_evidence_read_reasons"); err != nil {
		t.Error(err)
	}
	s2.Reset("user")
	n, err := testutil.GatherAndCount(reg, "cutover_route_evidence_reads")
	if err != nil || n != 6 {
		t.Fatalf("%d series, %v", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "cutover_route_evidence_reads" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if v := m.GetGauge().GetValue(); v != 0 {
				t.Errorf("after a reset: %v = %v, want 0", m.GetLabel(), v)
			}
		}
	}
}
