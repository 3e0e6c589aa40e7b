package fleet

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cutover/cutover/stats"
)

// snapshot is what one round of queries learnt: totals per route and how
// many replicas were summed.
type snapshot struct {
	replicas int
	down     int // targets of the selector Prometheus cannot scrape
	routes   map[string]*stats.Totals
}

// totals returns the route's totals, creating them.
func (s *snapshot) totals(route string) *stats.Totals {
	t := s.routes[route]
	if t == nil {
		t = &stats.Totals{
			Reads: map[stats.Outcome]int64{}, Reasons: map[string]int64{},
			Windows:          map[string]map[stats.Outcome]int64{},
			WriteComparisons: map[stats.Outcome]int64{},
			WriteReasons:     map[string]int64{},
			Writes:           map[stats.WriteOutcome]int64{},
		}
		s.routes[route] = t
	}
	return t
}

// windows are the sliding windows of the route view, as PromQL ranges.
var windows = []struct{ key, promql string }{{"5m", "5m"}, {"1h", "1h"}, {"24h", "1d"}}

// sparkMinutes is the length of the match-rate sparkline.
const sparkMinutes = 60

// query runs every query of one view at now, concurrently, and folds the
// answers into totals. sel is the configured label selector.
func query(ctx context.Context, c *client, sel string, now time.Time) (*snapshot, error) {
	snap := &snapshot{routes: map[string]*stats.Totals{}}
	var mu sync.Mutex // guards snap while answers arrive
	g, ctx := errgroup.WithContext(ctx)
	// A handful at a time: one view must not flood Prometheus.
	g.SetLimit(4)
	instant := func(q string, fold func(sample)) {
		g.Go(func() error {
			res, err := c.instant(ctx, q, now)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, s := range res {
				fold(s)
			}
			return nil
		})
	}
	comparisons := selector("cutover_comparisons_total", sel)

	instant(fmt.Sprintf("count(%s)", selector("cutover_build_info", sel)), func(s sample) {
		snap.replicas = int(stats.RoundCount(s.value))
	})
	if sel != "" {
		// Without a selector, up covers every target Prometheus scrapes,
		// not only the replicas.
		instant(fmt.Sprintf("count(%s == 0)", selector("up", sel)), func(s sample) {
			snap.down = int(stats.RoundCount(s.value))
		})
	}
	// All-time counts are the replicas' evidence gauges, which each keeps
	// across its restarts as its own view does; the counters restart with
	// the process, and a replica that restarted took its mismatches out of
	// the sums.
	instant(fmt.Sprintf("sum by (route, outcome) (%s)", selector("cutover_route_evidence_reads", sel)), func(s sample) {
		snap.totals(s.labels["route"]).Reads[stats.Outcome(s.labels["outcome"])] += stats.RoundCount(s.value)
	})
	instant(fmt.Sprintf("sum by (route, reason) (%s)", selector("cutover_route_evidence_read_reasons", sel)), func(s sample) {
		snap.totals(s.labels["route"]).Reasons[s.labels["reason"]] += stats.RoundCount(s.value)
	})
	for _, w := range windows {
		instant(fmt.Sprintf("sum by (route, outcome) (increase(%s[%s]))", comparisons, w.promql), func(s sample) {
			t := snap.totals(s.labels["route"])
			if t.Windows[w.key] == nil {
				t.Windows[w.key] = map[stats.Outcome]int64{}
			}
			t.Windows[w.key][stats.Outcome(s.labels["outcome"])] += stats.RoundCount(s.value)
		})
	}
	instant(fmt.Sprintf("sum by (route, outcome) (%s)", selector("cutover_route_evidence_write_comparisons", sel)), func(s sample) {
		snap.totals(s.labels["route"]).WriteComparisons[stats.Outcome(s.labels["outcome"])] += stats.RoundCount(s.value)
	})
	instant(fmt.Sprintf("sum by (route, reason) (%s)", selector("cutover_route_evidence_write_reasons", sel)), func(s sample) {
		snap.totals(s.labels["route"]).WriteReasons[s.labels["reason"]] += stats.RoundCount(s.value)
	})
	instant(fmt.Sprintf("sum by (route, outcome) (%s)", selector("cutover_route_evidence_writes", sel)), func(s sample) {
		snap.totals(s.labels["route"]).Writes[stats.WriteOutcome(s.labels["outcome"])] += stats.RoundCount(s.value)
	})
	instant(fmt.Sprintf("sum by (route) (%s)", selector("cutover_retry_queue_pending", sel)), func(s sample) {
		snap.totals(s.labels["route"]).PendingRetries = stats.RoundCount(s.value)
	})
	instant(fmt.Sprintf("sum by (route) (%s)", selector("cutover_retry_queue_given_up", sel)), func(s sample) {
		snap.totals(s.labels["route"]).GivenUp = stats.RoundCount(s.value)
	})
	instant(fmt.Sprintf("sum by (route) (%s)", selector("cutover_retry_queue_to_verify", sel)), func(s sample) {
		snap.totals(s.labels["route"]).ToVerify = stats.RoundCount(s.value)
	})
	instant(fmt.Sprintf("max by (route) (%s)", selector("cutover_retry_queue_oldest_age_seconds", sel)), func(s sample) {
		if v := s.value; !math.IsNaN(v) && v > 0 {
			snap.totals(s.labels["route"]).OldestPendingAgeSeconds = &v
		}
	})
	// Latency: quantiles of the cumulative histograms summed over replicas,
	// so every request since each replica started counts once.
	buckets := selector("cutover_upstream_request_duration_seconds_bucket", sel)
	for _, q := range []struct {
		promql string
		set    func(*stats.LatencySide, float64)
	}{
		{fmt.Sprintf("histogram_quantile(0.99, sum by (route, backend, le) (%s))", buckets), func(l *stats.LatencySide, v float64) { l.P99Ms = v * 1000 }},
		{fmt.Sprintf("histogram_quantile(0.5, sum by (route, backend, le) (%s))", buckets), func(l *stats.LatencySide, v float64) { l.P50Ms = v * 1000 }},
		{fmt.Sprintf("sum by (route, backend) (%s) / sum by (route, backend) (%s)",
			selector("cutover_upstream_request_duration_seconds_sum", sel), selector("cutover_upstream_request_duration_seconds_count", sel)),
			func(l *stats.LatencySide, v float64) { l.MeanMs = v * 1000 }},
		{fmt.Sprintf("sum by (route, backend) (%s)", selector("cutover_upstream_request_duration_seconds_count", sel)),
			func(l *stats.LatencySide, v float64) { l.Count = stats.RoundCount(v) }},
	} {
		instant(q.promql, func(s sample) {
			if math.IsNaN(s.value) || math.IsInf(s.value, 0) {
				return // no requests to that backend yet
			}
			t := snap.totals(s.labels["route"])
			switch s.labels["backend"] {
			case "old":
				q.set(&t.Latency.Old, s.value)
			case "new":
				q.set(&t.Latency.New, s.value)
			}
		})
	}
	// The sparkline: the match rate of each whole minute of the last hour.
	end := now.Truncate(time.Minute)
	start := end.Add(-(sparkMinutes - 1) * time.Minute)
	g.Go(func() error {
		q := fmt.Sprintf("sum by (route) (increase(%s[1m])) / sum by (route) (increase(%s[1m]))",
			selector("cutover_comparisons_total", sel, `outcome="match"`), selector("cutover_comparisons_total", sel, `outcome=~"match|mismatch"`))
		res, err := c.rangeQuery(ctx, q, start, end, time.Minute)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range res {
			line := make([]*float64, sparkMinutes)
			for i, at := range s.at {
				slot := int(at.Sub(start) / time.Minute)
				if v := s.values[i]; slot >= 0 && slot < sparkMinutes && !math.IsNaN(v) {
					line[slot] = &v
				}
			}
			snap.totals(s.labels["route"]).Sparkline = line
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return snap, nil
}
