package stats

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
)

// BuildInfo names the running build for cutover_build_info.
type BuildInfo struct {
	Version  string
	Revision string
}

// Collector exports the verdicts as Prometheus metrics:
//
//	cutover_route_ready{route}                          1 when ready, else 0
//	cutover_build_info{version,revision,goversion}     1
//
// Labels are route names (from configuration) and fixed sets only. The
// gateway owns the traffic counters (cutover_comparisons_total, ...).
type Collector struct {
	view  View
	ready *prometheus.Desc
	build prometheus.Metric
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
		build: prometheus.MustNewConstMetric(prometheus.NewDesc("cutover_build_info",
			"The running build of cutover; always 1.", []string{"version", "revision", "goversion"}, nil),
			prometheus.GaugeValue, 1, b.Version, b.Revision, runtime.Version()),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.ready
	ch <- c.build.Desc()
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
	}
}
