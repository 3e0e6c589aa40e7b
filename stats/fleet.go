package stats

import (
	"math"

	"github.com/cutover/cutover/rules"
)

// Scope says whose statistics a view holds. Local views without a
// configured Prometheus carry none.
type Scope struct {
	// Fleet is true when the numbers are Prometheus' sums over every
	// replica it scrapes (dashboard.prometheus_url).
	Fleet bool `json:"fleet"`
	// Replicas is how many replicas' series were summed.
	Replicas int `json:"replicas,omitempty"`
	// Down is how many replicas Prometheus fails to scrape (up == 0, only
	// known with dashboard.prometheus_selector): their numbers are missing.
	Down int `json:"down,omitempty"`
	// Error says why a fleet view could not be had; the numbers are then
	// this replica's own.
	Error string `json:"error,omitempty"`
}

// Totals are one route's statistics summed over replicas, as Prometheus
// reads them from each replica's metrics. All-time counts are the
// replicas' evidence gauges, kept across their restarts; the windows are
// Prometheus increase()s of the counters, so they are rounded and see
// restarts as Prometheus does.
type Totals struct {
	// Reads counts reads by outcome; Reasons counts them by
	// "outcome/reason" (skipped, error, and match/noise).
	Reads   map[Outcome]int64
	Reasons map[string]int64
	// Windows are the reads by outcome of the last 5 minutes, hour and day,
	// keyed "5m", "1h", "24h".
	Windows map[string]map[Outcome]int64
	// WriteComparisons counts the writes' compared answers by outcome, and
	// WriteReasons by "outcome/reason".
	WriteComparisons map[Outcome]int64
	WriteReasons     map[string]int64
	// Writes counts secondary writes by outcome.
	Writes map[WriteOutcome]int64
	// PendingRetries, GivenUp and ToVerify are the writes queued and held now, summed
	// over replicas; OldestPendingAgeSeconds is the oldest over replicas.
	PendingRetries, GivenUp, ToVerify int64
	OldestPendingAgeSeconds           *float64
	// Latency is read from the upstream duration histograms, by backend.
	Latency Latency
	// Sparkline is the match rate of each of the last 60 minutes, oldest
	// first (nil entries for minutes without comparisons).
	Sparkline []*float64
}

// FleetRouteView builds the view of a route from fleet-wide totals and
// judges it with the same verdict as a local view.
//
// Two inputs differ from a local view, because Prometheus series do not
// carry them: the new backend's errors are told from the old's by the
// route's configured phase (an override that moves a tenant to the other
// primary is not seen), and latency comes from the upstream histograms of
// every request rather than of the reads where both backends answered.
func FleetRouteView(ri RouteInfo, t Totals, scope Scope) RouteView {
	th := ri.Readiness
	if th == (rules.Readiness{}) {
		th = rules.DefaultReadiness()
	}
	v := RouteView{Name: ri.Name, Phase: ri.Phase, Scope: &scope}
	v.Reads.Window = windowOf(t.Reads)
	v.Reads.Reasons = map[string]int64{}
	for k, n := range t.Reasons {
		if n != 0 {
			v.Reads.Reasons[k] = n
		}
	}
	v.Reads.Windows = make(map[string]Window, len(windows))
	for _, w := range windows {
		v.Reads.Windows[w.key] = windowOf(t.Windows[w.key])
	}
	v.Sparkline = t.Sparkline
	if len(v.Sparkline) != 60 {
		v.Sparkline = make([]*float64, 60)
	}
	wc := &v.WriteComparisons
	wc.Matched, wc.Mismatched, wc.Errors = t.WriteComparisons[Match], t.WriteComparisons[Mismatch], t.WriteComparisons[Error]
	wc.Skipped = t.WriteComparisons[Skipped]
	wc.Compared = wc.Matched + wc.Mismatched
	wc.Reasons = make(map[string]int64, len(t.WriteReasons))
	for k, n := range t.WriteReasons {
		if n != 0 {
			wc.Reasons[k] = n
		}
	}

	w := &v.Writes
	w.SecondarySucceeded, w.SecondaryFailed = t.Writes[WriteOK], t.Writes[WriteFailed]
	w.SecondaryAttempted = w.SecondarySucceeded + w.SecondaryFailed
	w.RetriedOK, w.GaveUp = t.Writes[WriteRetriedOK], t.Writes[WriteGaveUp]
	w.FirstAttemptRate = ratio(w.SecondarySucceeded, w.SecondaryAttempted)
	w.EventualRate = ratio(w.SecondarySucceeded+w.RetriedOK, w.SecondaryAttempted)
	w.PendingRetries, w.GivenUp, w.ToVerify = t.PendingRetries, t.GivenUp, t.ToVerify
	if w.PendingRetries > 0 {
		w.OldestPendingAgeSeconds = t.OldestPendingAgeSeconds
	}
	w.Unresolved = w.PendingRetries + w.GivenUp + w.ToVerify

	v.Latency = t.Latency
	v.Latency.P99Increase = nil
	if v.Latency.Old.P99Ms > 0 && v.Latency.New.Count > 0 {
		inc := (v.Latency.New.P99Ms - v.Latency.Old.P99Ms) / v.Latency.Old.P99Ms
		v.Latency.P99Increase = &inc
	}

	// Errors that are the old backend's fault say nothing about the new
	// one: primary_failed while old serves, secondary_failed while new does.
	oldFault := "error/" + ReasonPrimaryFailed
	if p, ok := rules.ParsePhase(ri.Phase); ok && p.Primary() == rules.New {
		oldFault = "error/" + ReasonSecondaryFailed
	}
	newErrors := max(v.Reads.Errors-t.Reasons[oldFault], 0)
	v.Ready = judge(evidence{
		matched: v.Reads.Matched, compared: v.Reads.Compared, newErrors: newErrors,
		writesOK: w.SecondarySucceeded, writesAttempted: w.SecondaryAttempted,
		unresolved: w.Unresolved,
		p99Old:     v.Latency.Old.P99Ms, p99New: v.Latency.New.P99Ms, latencyCount: v.Latency.New.Count,
	}, th)
	return v
}

// windowOf turns counts by outcome into a Window.
// Same counters, same arithmetic as a replica's own view.
func windowOf(c map[Outcome]int64) Window {
	var counts [numCounters]int64
	for o, n := range c {
		counts[outcomeCounter(o)] += n
	}
	return window(counts)
}

// RoundCount turns a Prometheus sample into a count: sums of counters are
// whole numbers, increase() over a window is not (it extrapolates).
func RoundCount(f float64) int64 {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return 0
	}
	return int64(math.Round(f))
}
