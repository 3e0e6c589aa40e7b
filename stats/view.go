package stats

import (
	"maps"
	"sort"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
)

// RouteInfo is what the store needs to know of a configured route to show it.
type RouteInfo struct {
	Name      string
	Phase     string
	Overrides []OverrideInfo
	// Readiness holds the thresholds of the verdict (DefaultReadiness when
	// zero).
	Readiness rules.Readiness
	// OnlyIfSeen hides the route until it has traffic (the catch-all route of
	// requests that match no configured route).
	OnlyIfSeen bool
	// Noise decides when a field's difference rate beats its noise rate
	// (the route's compare noise thresholds; zero means Diffy's defaults).
	Noise compare.NoiseThresholds
}

// OverrideInfo is a configured override of a route.
type OverrideInfo struct {
	Name  string
	Phase string
}

// RouteInfos describes the routes of a rule set, in file order, then the
// catch-all route for unmatched requests (shown once it has traffic).
func RouteInfos(set *rules.Set) []RouteInfo {
	var out []RouteInfo
	info := func(r *rules.Route) RouteInfo {
		ri := RouteInfo{Name: r.Name, Phase: r.Phase.String(), Readiness: set.Readiness, Noise: r.Compare.Noise()}
		for _, o := range r.Overrides {
			ri.Overrides = append(ri.Overrides, OverrideInfo{Name: o.Name, Phase: o.Phase.String()})
		}
		return ri
	}
	for _, r := range set.Routes {
		out = append(out, info(r))
	}
	if set.Default != nil {
		ri := info(set.Default)
		ri.OnlyIfSeen = true
		out = append(out, ri)
	}
	return out
}

// Window is the read outcomes of a sliding window.
type Window struct {
	Compared   int64    `json:"compared"`
	Matched    int64    `json:"matched"`
	Mismatched int64    `json:"mismatched"`
	Skipped    int64    `json:"skipped"`
	Errors     int64    `json:"errors"`
	Pending    int64    `json:"pending"`
	Transient  int64    `json:"transient"`
	Total      int64    `json:"total"`
	MatchRate  *float64 `json:"match_rate"`
}

// Reads is the read part of a route's view. Every read that entered the
// gateway is in exactly one of matched, mismatched, skipped, errors,
// pending and transient, so they add up to total; compared is matched + mismatched and
// match_rate is matched / compared (null before the first comparison).
type Reads struct {
	Window
	// Reasons counts skipped and error outcomes by "outcome/reason".
	Reasons map[string]int64 `json:"reasons"`
	// Windows are the last 5 minutes, hour and day, keyed "5m", "1h", "24h".
	Windows map[string]Window `json:"windows"`
}

// Writes is the secondary-write part of a route's view.
type Writes struct {
	// SecondaryAttempted counts first attempts: succeeded + failed.
	SecondaryAttempted int64 `json:"secondary_attempted"`
	SecondarySucceeded int64 `json:"secondary_succeeded"`
	SecondaryFailed    int64 `json:"secondary_failed"`
	RetriedOK          int64 `json:"retried_ok"`
	GaveUp             int64 `json:"gave_up"`
	// FirstAttemptRate is succeeded / attempted; EventualRate adds the retries
	// that landed.
	FirstAttemptRate *float64 `json:"first_attempt_rate"`
	EventualRate     *float64 `json:"eventual_rate"`
	// PendingRetries are queued now; GivenUp are kept for inspection now
	// (the gave_up count, unless the queue reports its own).
	PendingRetries int64 `json:"pending_retries"`
	GivenUp        int64 `json:"given_up"`
	// ToVerify are writes whose primary outcome is unknown (a timeout or
	// reset after the request was sent, or the gateway stopping): the
	// secondary was not written and reconciliation must check them.
	ToVerify int64 `json:"to_verify"`
	// OldestPending is when the oldest queued write was queued, and its age.
	OldestPending           *time.Time `json:"oldest_pending"`
	OldestPendingAgeSeconds *float64   `json:"oldest_pending_age_seconds"`
	// Unresolved is pending_retries + given_up + to_verify, judged by
	// unresolved_retries.
	Unresolved int64 `json:"unresolved"`
}

// LatencySide is one backend's latency over reads where both answered.
type LatencySide struct {
	Count  int64   `json:"count"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// Latency compares old and new. P99Increase is (new − old) / old, null
// without data.
type Latency struct {
	Old         LatencySide `json:"old"`
	New         LatencySide `json:"new"`
	P99Increase *float64    `json:"p99_increase"`
}

// WriteComparisons counts writes whose two answers were compared.
type WriteComparisons struct {
	Compared   int64 `json:"compared"`
	Matched    int64 `json:"matched"`
	Mismatched int64 `json:"mismatched"`
	Skipped    int64 `json:"skipped"`
	Errors     int64 `json:"errors"`
	// Reasons counts skipped and error outcomes by "outcome/reason".
	Reasons map[string]int64 `json:"reasons"`
}

// RouteView is one route (or one override of a route) as the admin API
// shows it.
type RouteView struct {
	Name string `json:"name"`
	// Override is set on the views in Overrides.
	Override         string           `json:"override,omitempty"`
	Phase            string           `json:"phase"`
	Reads            Reads            `json:"reads"`
	WriteComparisons WriteComparisons `json:"write_comparisons"`
	Writes           Writes           `json:"writes"`
	Latency          Latency          `json:"latency"`
	Ready            Ready            `json:"ready"`
	// Noise counts old-vs-old comparisons (backends.noise) and how many
	// differed.
	Noise Noise `json:"noise"`
	// Sparkline is the match rate of each of the last 60 minutes, oldest
	// first, null for a minute without comparisons.
	Sparkline []*float64 `json:"sparkline"`
	// LastSeen is the time of the latest event, null before any.
	LastSeen *time.Time `json:"last_seen"`
	// Overrides are the views of the route's overrides (tenants).
	Overrides []RouteView `json:"overrides,omitempty"`
	// Scope says whether the numbers are the fleet's or this replica's;
	// nil when no Prometheus is configured (dashboard.prometheus_url).
	Scope *Scope `json:"scope,omitempty"`
}

// Noise is the old-vs-old comparison count of a route.
type Noise struct {
	Compared int64    `json:"compared"`
	Differed int64    `json:"differed"`
	Rate     *float64 `json:"rate"`
}

// Routes returns a view of each configured route, in the order given, then
// any route seen in traffic but not configured (sorted by name).
func (s *Store) Routes(configured []RouteInfo) []RouteView {
	now := s.now()
	seen := map[string]bool{}
	out := []RouteView{}
	for _, ri := range configured {
		seen[ri.Name] = true
		r := s.lookup(ri.Name)
		if r == nil && ri.OnlyIfSeen {
			continue
		}
		out = append(out, s.view(r, ri, now))
	}
	var extra []string
	for name := range *s.routes.Load() {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		out = append(out, s.view(s.lookup(name), RouteInfo{Name: name}, now))
	}
	return out
}

var windows = []struct {
	key     string
	minutes int
}{{"5m", 5}, {"1h", 60}, {"24h", minutesKept}}

func window(c [numCounters]int64) Window {
	w := Window{Matched: c[cMatched], Mismatched: c[cMismatched], Skipped: c[cSkipped], Errors: c[cErrors], Pending: c[cPending], Transient: c[cTransient]}
	w.Compared = w.Matched + w.Mismatched
	w.Total = w.Compared + w.Skipped + w.Errors + w.Pending + w.Transient
	w.MatchRate = ratio(w.Matched, w.Compared)
	return w
}

// view builds the view of a route (r may be nil: a configured route
// without traffic yet).
func (s *Store) view(r *route, ri RouteInfo, now time.Time) RouteView {
	th := ri.Readiness
	if th == (rules.Readiness{}) {
		th = rules.DefaultReadiness()
	}
	if r == nil {
		r = &route{name: ri.Name, all: emptySeries()}
		empty := map[string]*series{}
		r.overrides.Store(&empty)
	}
	r.mu.Lock()
	q, known := r.queue, r.queueKnown
	held := maps.Clone(r.overrideQueue)
	r.mu.Unlock()
	v := seriesView(r.all, now, q, known, th)
	v.Name, v.Phase = ri.Name, ri.Phase
	ovs := *r.overrides.Load()
	listed := map[string]bool{}
	for _, oi := range ri.Overrides {
		listed[oi.Name] = true
		o := ovs[oi.Name]
		if o == nil {
			o = emptySeries()
		}
		ov := seriesView(o, now, held[oi.Name], known, th)
		ov.Name, ov.Override, ov.Phase = ri.Name, oi.Name, oi.Phase
		v.Overrides = append(v.Overrides, ov)
	}
	// Overrides no longer configured, or not known to the caller, that
	// have evidence or held writes.
	var extra []string
	for name := range ovs {
		if !listed[name] {
			extra = append(extra, name)
		}
	}
	for name := range held {
		if !listed[name] && ovs[name] == nil {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, name := range extra {
		o := ovs[name]
		if o == nil {
			o = emptySeries()
		}
		ov := seriesView(o, now, held[name], known, th)
		ov.Name, ov.Override = ri.Name, name
		v.Overrides = append(v.Overrides, ov)
	}
	return v
}

// seriesView builds the numbers of one series, with the queue state of its
// route or override.
func seriesView(s *series, now time.Time, q QueueState, queueKnown bool, th rules.Readiness) RouteView {
	var v RouteView
	c := s.counts()
	v.Reads.Window = window(c)
	v.Reads.Reasons, v.WriteComparisons.Reasons = splitReasons(s.reasonCounts())
	minute := now.Unix() / 60
	v.Reads.Windows = make(map[string]Window, len(windows))
	for _, w := range windows {
		v.Reads.Windows[w.key] = window(s.minutes.sum(minute, w.minutes))
	}
	v.Sparkline = make([]*float64, 60)
	for i := range v.Sparkline {
		sc := s.minutes.sum(minute-59+int64(i), 1)
		v.Sparkline[i] = ratio(sc[cMatched], sc[cMatched]+sc[cMismatched])
	}
	wc := &v.WriteComparisons
	wc.Matched, wc.Mismatched = s.writeCmp[cMatched].Load(), s.writeCmp[cMismatched].Load()
	wc.Skipped, wc.Errors = s.writeCmp[cSkipped].Load(), s.writeCmp[cErrors].Load()
	v.WriteComparisons.Compared = v.WriteComparisons.Matched + v.WriteComparisons.Mismatched

	w := &v.Writes
	w.SecondarySucceeded, w.SecondaryFailed = c[cWriteOK], c[cWriteFailed]
	w.SecondaryAttempted = w.SecondarySucceeded + w.SecondaryFailed
	w.RetriedOK, w.GaveUp = c[cWriteRetriedOK], c[cWriteGaveUp]
	w.FirstAttemptRate = ratio(w.SecondarySucceeded, w.SecondaryAttempted)
	w.EventualRate = ratio(w.SecondarySucceeded+w.RetriedOK, w.SecondaryAttempted)
	w.PendingRetries = q.Pending
	w.GivenUp = w.GaveUp
	if queueKnown {
		w.GivenUp = q.GivenUp
	}
	if !q.Oldest.IsZero() && q.Pending > 0 {
		t := q.Oldest
		age := now.Sub(t).Seconds()
		w.OldestPending, w.OldestPendingAgeSeconds = &t, &age
	}
	w.ToVerify = q.Verify
	w.Unresolved = w.PendingRetries + w.GivenUp + w.ToVerify

	for i, side := range []*LatencySide{&v.Latency.Old, &v.Latency.New} {
		h := &s.lat[i]
		side.Count = h.count.Load()
		side.P50Ms, side.P99Ms = h.quantile(0.50), h.quantile(0.99)
		if side.Count > 0 {
			side.MeanMs = float64(h.sumUS.Load()) / float64(side.Count) / 1000
		}
	}
	if v.Latency.Old.P99Ms > 0 && v.Latency.New.Count > 0 {
		inc := (v.Latency.New.P99Ms - v.Latency.Old.P99Ms) / v.Latency.Old.P99Ms
		v.Latency.P99Increase = &inc
	}
	v.Noise = Noise{Compared: s.noiseCmp.Load(), Differed: s.noiseDiff.Load()}
	v.Noise.Rate = ratio(v.Noise.Differed, v.Noise.Compared)
	if last := s.lastSeen.Load(); last > 0 {
		t := time.Unix(last, 0).UTC()
		v.LastSeen = &t
	}
	v.Ready = judge(evidence{
		matched: v.Reads.Matched, compared: v.Reads.Compared, newErrors: s.newErrors.Load(),
		writesOK: w.SecondarySucceeded, writesAttempted: w.SecondaryAttempted,
		unresolved: w.Unresolved,
		p99Old:     v.Latency.Old.P99Ms, p99New: v.Latency.New.P99Ms, latencyCount: v.Latency.New.Count,
	}, th)
	return v
}
