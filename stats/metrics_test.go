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
# HELP cutover_route_ready Whether the route's new backend meets every readiness threshold (1) or not (0), judged on 95% Wilson lower bounds.
# TYPE cutover_route_ready gauge
cutover_route_ready{route="orders"} 0
cutover_route_ready{route="user"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
