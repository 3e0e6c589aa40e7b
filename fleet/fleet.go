// Package fleet shows the statistics of every replica of a deployment at
// once. When dashboard.prometheus_url is set, the admin dashboard's route
// numbers and readiness verdicts come from Prometheus, which scrapes every
// replica: each replica alone sees only the traffic its load balancer sent
// it, so its own verdict is judged on a fraction of the evidence.
//
// fleet does not scrape replicas and keeps no history: Prometheus does.
// What is not in the metrics (mismatch samples, differing fields, history,
// per-override numbers) stays the local replica's. When Prometheus cannot
// answer (or answers what may be partial, or cannot scrape a replica), the
// view shows the local numbers, says why, and withholds the verdict.
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// Local is the replica's own statistics (stats.View): the fallback, and the
// source of everything Prometheus does not have.
type Local interface {
	Routes() []stats.RouteView
	Evidence(route string, q stats.EvidenceQuery) (stats.Evidence, bool)
}

// Options configure a View. Every nil field has the default its comment
// names.
type Options struct {
	// Local is required.
	Local Local
	// Config returns the configured routes in file order (stats.RouteInfos
	// of the live rules); nil shows only routes seen in Prometheus.
	Config func() []stats.RouteInfo
	// Dashboard returns the dashboard section in force; it is read on every
	// view, so a reload of the rules switches Prometheus on or off. nil or a
	// nil PrometheusURL: the local numbers.
	Dashboard func() rules.Dashboard
	// Client queries Prometheus (a client with its own transport).
	Client *http.Client
	// MaxAge is how long one round of queries answers views (2s): the
	// dashboard polls, and several browsers must not multiply the queries.
	MaxAge time.Duration
	Now    func() time.Time // time.Now
	Logger *slog.Logger     // slog.Default()
}

// View implements web.StatsSource over Prometheus, with the local
// statistics as fallback.
type View struct {
	o Options

	mu     sync.Mutex // one round of queries at a time; guards the fields below
	key    string     // the URL and selector the cache was filled for
	at     time.Time
	cached *snapshot
	// err is the last round's failure, kept as cached is; a lasting
	// outage logs once, when err was nil.
	err error
}

// New returns a View.
func New(o Options) *View {
	if o.Client == nil {
		// Not http.DefaultTransport: no proxy from the environment, and a
		// header timeout so that a hung Prometheus cannot hold a view.
		o.Client = &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       time.Minute,
			ResponseHeaderTimeout: 10 * time.Second,
		}}
	}
	if o.MaxAge == 0 {
		o.MaxAge = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &View{o: o}
}

// Evidence returns the local replica's evidence: samples and fields are
// not metrics.
func (v *View) Evidence(route string, q stats.EvidenceQuery) (stats.Evidence, bool) {
	return v.o.Local.Evidence(route, q)
}

// Routes returns the fleet's view of every route, or the local one (with
// the reason in Scope.Error) when Prometheus cannot give it.
func (v *View) Routes() []stats.RouteView {
	var d rules.Dashboard
	if v.o.Dashboard != nil {
		d = v.o.Dashboard()
	}
	if d.PrometheusURL == nil {
		return v.o.Local.Routes()
	}
	snap, err := v.snapshot(d)
	if err != nil {
		// This replica's numbers are shown, but they are not the fleet's:
		// another replica may have seen every mismatch. Its verdict is
		// withheld, so that a gate on ready.verdict never passes on one
		// replica's evidence.
		local := v.o.Local.Routes()
		for i := range local {
			local[i].Scope = &stats.Scope{Error: err.Error()}
			local[i].Ready = withheld(local[i].Ready, "the fleet's evidence is unavailable ("+err.Error()+"); this replica's own is shown and cannot make the route ready")
		}
		return local
	}
	return v.build(snap)
}

// withheld turns a verdict into insufficient data for the given reason,
// first among the verdict's own.
func withheld(r stats.Ready, reason string) stats.Ready {
	r.Verdict, r.Status = false, stats.StatusInsufficientData
	r.Reasons = append([]string{reason}, r.Reasons...)
	return r
}

// snapshot returns a fresh enough round of query answers.
func (v *View) snapshot(d rules.Dashboard) (*snapshot, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.o.Now()
	key := d.PrometheusURL.String() + "\x00" + d.PrometheusSelector
	if (v.cached != nil || v.err != nil) && v.key == key && now.Sub(v.at) < v.o.MaxAge && !now.Before(v.at) {
		// A failure is kept as long as an answer: the views waiting on
		// this lock while a round timed out get it at once, and a
		// struggling Prometheus is not asked again by each of them.
		return v.cached, v.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.PrometheusTimeout)
	defer cancel()
	snap, err := query(ctx, &client{http: v.o.Client, base: d.PrometheusURL}, d.PrometheusSelector, now)
	if err == nil && snap.replicas == 0 {
		err = errNoReplicas(d)
	}
	if err != nil {
		if v.err == nil {
			v.o.Logger.Warn("the dashboard shows this replica's numbers: Prometheus gave no fleet view",
				slog.String("prometheus", d.PrometheusURL.Redacted()), slog.String("error", err.Error()))
		}
		v.key, v.at, v.cached, v.err = key, now, nil, err
		return nil, err
	}
	if v.err != nil {
		v.o.Logger.Info("the dashboard shows the fleet's numbers again", slog.String("prometheus", d.PrometheusURL.Redacted()))
	}
	v.key, v.at, v.cached, v.err = key, now, snap, nil
	return snap, nil
}

type noReplicasError struct{ selector string }

func (e noReplicasError) Error() string {
	if e.selector == "" {
		return "Prometheus has no cutover_build_info series: it does not scrape any replica"
	}
	return "Prometheus has no cutover_build_info{" + e.selector + "} series: does dashboard.prometheus_selector match the scrape labels?"
}

func errNoReplicas(d rules.Dashboard) error { return noReplicasError{selector: d.PrometheusSelector} }

// build turns a snapshot into route views: configured routes in file order,
// then routes only Prometheus knows (a replica running other rules, during
// a rollout), sorted.
func (v *View) build(snap *snapshot) []stats.RouteView {
	scope := stats.Scope{Fleet: true, Replicas: snap.replicas, Down: snap.down}
	var configured []stats.RouteInfo
	if v.o.Config != nil {
		configured = v.o.Config()
	}
	out := []stats.RouteView{}
	seen := map[string]bool{}
	for _, ri := range configured {
		seen[ri.Name] = true
		t, ok := snap.routes[ri.Name]
		if !ok {
			if ri.OnlyIfSeen {
				continue
			}
			t = (&snapshot{routes: map[string]*stats.Totals{}}).totals(ri.Name)
		}
		out = append(out, v.fleetView(ri, *t, scope, snap))
	}
	var extra []string
	for name := range snap.routes {
		if !seen[name] && name != "" {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	var th rules.Readiness // every configured route has the same
	if len(configured) > 0 {
		th = configured[0].Readiness
	}
	for _, name := range extra {
		out = append(out, v.fleetView(stats.RouteInfo{Name: name, Readiness: th}, *snap.routes[name], scope, snap))
	}
	return out
}

// fleetView is one route's fleet view; while Prometheus cannot scrape some
// replicas, their evidence and queues are missing from the sums, and the
// verdict is withheld.
func (v *View) fleetView(ri stats.RouteInfo, t stats.Totals, scope stats.Scope, snap *snapshot) stats.RouteView {
	rv := stats.FleetRouteView(ri, t, scope)
	if snap.down > 0 {
		rv.Ready = withheld(rv.Ready, fmt.Sprintf("%d replica(s) cannot be scraped (up == 0): their evidence and queued writes are missing from the sums", snap.down))
	}
	return rv
}
