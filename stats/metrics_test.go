package stats_test

import (
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
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
