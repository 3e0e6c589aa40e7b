package stats

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/rules"
)

// BuildInfo names the running build for cutover_build_info.
type BuildInfo struct {
	Version  string
	Revision string
}

// Collector exports the verdicts as Prometheus metrics:
//
//	cutover_route_ready{route}                          1 when ready, else 0
//	cutover_retry_queue_oldest_age_seconds{route}       age of the oldest queued write, 0 when none
//	cutover_retry_queue_pending{route}                  secondary writes queued for retry now
//	cutover_retry_queue_given_up{route}                 secondary writes given up and kept now
//	cutover_retry_queue_to_verify{route}                writes whose primary outcome is unknown, held to verify
//	cutover_readiness_threshold{criterion}              the readiness: thresholds in force
//	cutover_build_info{version,revision,goversion}     1
//	cutover_route_evidence_reads{route,outcome}         reads since the route's evidence began
//	cutover_route_evidence_read_reasons{route,reason}   reads with a reason (skipped, error, match/noise), by "outcome/reason"
//	cutover_route_evidence_writes{route,outcome}        secondary writes, by outcome
//	cutover_route_evidence_write_comparisons{route,outcome}
//
// The queue gauges and the evidence gauges are what a fleet-wide view sums
// over replicas: the counters (cutover_comparisons_total, ...) restart with
// each process, while the evidence is kept in stats.db across restarts and
// cleared only by a reset, as the replica's own view keeps it; summed from
// the counters, a replica that restarted (a crash, an OOM kill) took its
// mismatches out of the fleet's verdict. The thresholds are exported so that alert rules and the Grafana dashboard
// compare against the configuration in force instead of a copy of it.
//
// Labels are route names (from configuration) and fixed sets only. The
// gateway owns the traffic counters (cutover_comparisons_total, ...).
type Collector struct {
	view      View
	ready     *prometheus.Desc
	oldest    *prometheus.Desc
	pending   *prometheus.Desc
	givenUp   *prometheus.Desc
	toVerify  *prometheus.Desc
	threshold *prometheus.Desc
	build     prometheus.Metric
	// The route's evidence, as its own view counts it.
	evReads, evReasons, evWrites, evWriteCmp, evWriteReasons *prometheus.Desc
}

// NewCollector returns a collector over v; register it on the gateway's own
// registry (never the default one).
func NewCollector(v View, b BuildInfo) *Collector {
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return &Collector{
		view: v,
		ready: prometheus.NewDesc("cutover_route_ready",
			"Whether the route's new backend meets every readiness threshold (1) or not (0), judged on 95% Wilson lower bounds.",
			[]string{"route"}, nil),
		oldest: prometheus.NewDesc("cutover_retry_queue_oldest_age_seconds",
			"Seconds since the oldest secondary write still queued for retry was queued; 0 when none is.",
			[]string{"route"}, nil),
		pending: prometheus.NewDesc("cutover_retry_queue_pending",
			"Secondary writes of the route queued for retry now.",
			[]string{"route"}, nil),
		givenUp: prometheus.NewDesc("cutover_retry_queue_given_up",
			"Secondary writes of the route given up and kept for inspection now.",
			[]string{"route"}, nil),
		toVerify: prometheus.NewDesc("cutover_retry_queue_to_verify",
			"Writes of the route whose primary outcome is unknown (timeout, reset, client gone, gateway stopped), held to verify; the secondary was not written.",
			[]string{"route"}, nil),
		evReads: prometheus.NewDesc("cutover_route_evidence_reads",
			"Reads of the route by outcome since its evidence began (kept across restarts, cleared by a reset): what a fleet-wide view sums.",
			[]string{"route", "outcome"}, nil),
		evReasons: prometheus.NewDesc("cutover_route_evidence_read_reasons",
			"Reads of the route since its evidence began that have a reason (skipped, error, and matches the noise backend explained), by \"outcome/reason\".",
			[]string{"route", "reason"}, nil),
		evWrites: prometheus.NewDesc("cutover_route_evidence_writes",
			"Secondary writes of the route since its evidence began, by outcome (ok, failed, retried_ok, gave_up).",
			[]string{"route", "outcome"}, nil),
		evWriteCmp: prometheus.NewDesc("cutover_route_evidence_write_comparisons",
			"Compared answers of the route's writes since its evidence began, by outcome (match, mismatch, skipped, error).",
			[]string{"route", "outcome"}, nil),
		evWriteReasons: prometheus.NewDesc("cutover_route_evidence_write_reasons",
			"Write comparisons of the route since its evidence began that have a reason (skipped, error), by \"outcome/reason\".",
			[]string{"route", "reason"}, nil),
		threshold: prometheus.NewDesc("cutover_readiness_threshold",
			"The readiness thresholds in force (readiness: in the configuration), by criterion.",
			[]string{"criterion"}, nil),
		build: prometheus.MustNewConstMetric(prometheus.NewDesc("cutover_build_info",
			"The running build of cutover; always 1.", []string{"version", "revision", "goversion"}, nil),
			prometheus.GaugeValue, 1, b.Version, b.Revision, runtime.Version()),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.oldest
	ch <- c.pending
	ch <- c.givenUp
	ch <- c.toVerify
	ch <- c.threshold
	ch <- c.build.Desc()
	ch <- c.evReads
	ch <- c.evReasons
	ch <- c.evWrites
	ch <- c.evWriteCmp
	ch <- c.evWriteReasons
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- c.build
	for _, r := range c.view.Routes() {
		v := 0.0
		if r.Ready.Verdict {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, v, r.Name)
		age := 0.0
		if a := r.Writes.OldestPendingAgeSeconds; a != nil {
			age = *a
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, r.Name)
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(r.Writes.PendingRetries), r.Name)
		ch <- prometheus.MustNewConstMetric(c.givenUp, prometheus.GaugeValue, float64(r.Writes.GivenUp), r.Name)
		ch <- prometheus.MustNewConstMetric(c.toVerify, prometheus.GaugeValue, float64(r.Writes.ToVerify), r.Name)
		c.evidence(ch, r)
	}
	th := rules.DefaultReadiness()
	// Every route carries the same readiness: section; the catch-all route
	// is always configured, so the first one is enough.
	if cfg := c.view.config(); len(cfg) > 0 && cfg[0].Readiness != (rules.Readiness{}) {
		th = cfg[0].Readiness
	}
	for _, t := range []struct {
		criterion string
		value     float64
	}{
		{"min_samples", float64(th.MinSamples)},
		{"match_rate", th.MatchRate},
		{"secondary_write_success", th.SecondaryWriteSuccess},
		{"p99_latency_increase", th.P99LatencyIncrease},
		{"p99_latency_slack_seconds", th.P99LatencySlack.Seconds()},
		{"unresolved_retries", float64(th.UnresolvedRetries)},
	} {
		ch <- prometheus.MustNewConstMetric(c.threshold, prometheus.GaugeValue, t.value, t.criterion)
	}
}

// evidence sends the route's evidence gauges.
func (c *Collector) evidence(ch chan<- prometheus.Metric, r RouteView) {
	gauge := func(d *prometheus.Desc, n int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n), labels...)
	}
	for _, o := range []struct {
		outcome Outcome
		n       int64
	}{
		{Match, r.Reads.Matched}, {Mismatch, r.Reads.Mismatched}, {Skipped, r.Reads.Skipped},
		{Error, r.Reads.Errors}, {Pending, r.Reads.Pending}, {Transient, r.Reads.Transient},
	} {
		gauge(c.evReads, o.n, r.Name, string(o.outcome))
	}
	for reason, n := range r.Reads.Reasons {
		gauge(c.evReasons, n, r.Name, reason)
	}
	w := r.Writes
	for _, o := range []struct {
		outcome WriteOutcome
		n       int64
	}{{WriteOK, w.SecondarySucceeded}, {WriteFailed, w.SecondaryFailed}, {WriteRetriedOK, w.RetriedOK}, {WriteGaveUp, w.GaveUp}} {
		gauge(c.evWrites, o.n, r.Name, string(o.outcome))
	}
	wc := r.WriteComparisons
	for _, o := range []struct {
		outcome Outcome
		n       int64
	}{{Match, wc.Matched}, {Mismatch, wc.Mismatched}, {Skipped, wc.Skipped}, {Error, wc.Errors}} {
		gauge(c.evWriteCmp, o.n, r.Name, string(o.outcome))
	}
	for reason, n := range wc.Reasons {
		gauge(c.evWriteReasons, n, r.Name, reason)
	}
}
