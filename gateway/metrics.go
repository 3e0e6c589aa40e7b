package gateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// Log keys are constants so that logs can be queried by them.
const (
	keyRoute   = "route"
	keyBackend = "backend"
	// keyTodo says what an operator does about the line (not "action",
	// the audit log's key for what an operator did).
	keyTodo = "todo"
)

// metrics are the gateway's Prometheus series (DESIGN.md, "Metrics"). Label
// values come only from route names and fixed sets.
type metrics struct {
	comparisons      *prometheus.CounterVec
	writeComparisons *prometheus.CounterVec
	secondaryWrites  *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	queueDepth       prometheus.Gauge
	storeErrors      prometheus.Counter
	commits          prometheus.Histogram
	commitBatch      prometheus.Histogram
	circuitOpen      *prometheus.GaugeVec
	refused          *prometheus.CounterVec
	reloads          *prometheus.CounterVec
	lastReloadOK     prometheus.Gauge
	hits             *ruleHits
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		comparisons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_comparisons_total",
			Help: "Reads by outcome (match, mismatch, skipped, error, pending, transient) and reason.",
		}, []string{"route", "outcome", "reason"}),
		writeComparisons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_write_comparisons_total",
			Help: "Writes whose primary and secondary answers were compared, by outcome and reason.",
		}, []string{"route", "outcome", "reason"}),
		secondaryWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_secondary_writes_total",
			Help: "Secondary writes by outcome: ok (first attempt), failed (first attempt failed, queued), retried_ok, gave_up.",
		}, []string{"route", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cutover_upstream_request_duration_seconds",
			Help:    "A backend's time to answer: from the request written to the first byte of the answer when its answer is compared, to the response headers otherwise.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "backend", "role"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_retry_queue_depth",
			Help: "Secondary writes queued or waiting for a retry.",
		}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cutover_queue_store_errors_total",
			Help: "Failures to read or write the queue store (DATA_DIR/queue.db).",
		}),
		commits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cutover_queue_commit_seconds",
			Help:    "Time of one group commit of the queue store, fsync included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cutover_queue_commit_changes",
			Help:    "Changes written by one group commit of the queue store.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cutover_circuit_open",
			Help: "1 while the breaker of a backend (as secondary) is open.",
		}, []string{"backend"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_requests_refused_total",
			Help: "Requests answered by the gateway itself without reaching a backend, by reason.",
		}, []string{"route", "reason"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cutover_rules_reload_total",
			Help: "Rule reloads by outcome (ok, error).",
		}, []string{"outcome"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cutover_rules_last_reload_successful",
			Help: "1 when the last reload of the rules succeeded (or none failed yet), 0 while a refused file is in place and the previous rules stay in force.",
		}),
	}
	// Both outcomes exist from the start: an alert on increase() of the
	// error series needs a 0 before the first failure, or the first failure
	// is never seen as an increase.
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("error")
	m.lastReloadOK.Set(1)
	m.hits = newRuleHits()
	if reg != nil {
		reg.MustRegister(m.hits)
		reg.MustRegister(m.comparisons, m.writeComparisons, m.secondaryWrites, m.duration, m.queueDepth, m.storeErrors,
			m.commits, m.commitBatch, m.circuitOpen, m.refused, m.reloads, m.lastReloadOK)
	}
	return m
}

// commit observes one group commit of the queue store.
func (m *metrics) commit(n int, d time.Duration, err error, failedChanges int) {
	m.storeErrors.Add(float64(failedChanges))
	if err != nil {
		m.storeErrors.Inc()
		return
	}
	m.commits.Observe(d.Seconds())
	m.commitBatch.Observe(float64(n))
}

// declare creates, at zero, the match and mismatch series of every
// configured route: Prometheus' increase() counts nothing for a series'
// first sample, so a route's first comparison was missing from the fleet's
// windows, and a route that had only mismatched had no match series for
// the sparkline's match rate to divide (null instead of 0 %).
func (m *metrics) declare(set *rules.Set) {
	for _, r := range set.Routes {
		for _, outcome := range []stats.Outcome{stats.Match, stats.Mismatch} {
			m.comparisons.WithLabelValues(r.Name, string(outcome), "")
		}
	}
}

func (m *metrics) comparison(route string, write bool, outcome stats.Outcome, reason string) {
	c := m.comparisons
	if write {
		c = m.writeComparisons
	}
	c.WithLabelValues(route, string(outcome), reason).Inc()
}

func (m *metrics) upstream(route string, side rules.Side, primary bool, d time.Duration) {
	role := "secondary"
	if primary {
		role = "primary"
	}
	m.duration.WithLabelValues(route, side.String(), role).Observe(d.Seconds())
}

// RulesReloaded counts one reload attempt of the rules: err nil means the
// new rules are in force.
func (p *Proxy) RulesReloaded(err error) {
	outcome, ok := "ok", 1.0
	if err != nil {
		outcome, ok = "error", 0
	}
	p.metrics.reloads.WithLabelValues(outcome).Inc()
	p.metrics.lastReloadOK.Set(ok)
	if err == nil {
		p.metrics.declare(p.rules.Current())
	}
}
