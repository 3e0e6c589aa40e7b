package gateway

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/compare"
)

// ruleHits counts, per route, how many differences each compare rule
// absorbed, so that an over-broad rule shows (issue 3, item 7). It is also
// the Prometheus collector of cutover_rule_hits_total{route, rule}: rule
// names come from the configuration, so the labels are bounded by it.
type ruleHits struct {
	counts sync.Map // hitKey → *atomic.Int64
	names  sync.Map // route → *ruleNames of its compare options in force
	desc   *prometheus.Desc
}

type hitKey struct{ route, rule string }

func newRuleHits() *ruleHits {
	return &ruleHits{desc: prometheus.NewDesc("cutover_rule_hits_total",
		"Differences absorbed by each compare rule, per route.", []string{"route", "rule"}, nil)}
}

// add counts one comparison's hits. Nothing is allocated once a rule has
// been seen.
func (h *ruleHits) add(route string, o *compare.Options, hits []compare.Hit) {
	if len(hits) == 0 || o == nil {
		return
	}
	names := h.ruleNames(route, o)
	for _, hit := range hits {
		if hit.Rule < 0 || hit.Rule >= len(names) {
			continue
		}
		k := hitKey{route, names[hit.Rule]}
		c, ok := h.counts.Load(k)
		if !ok {
			c, _ = h.counts.LoadOrStore(k, new(atomic.Int64))
		}
		c.(*atomic.Int64).Add(int64(hit.Count))
	}
}

// ruleNames is each rule's description in o, computed once per route and
// rule set: a reload brings new options and replaces the route's entry, so
// old rule sets are not kept.
type ruleNames struct {
	opts  *compare.Options
	names []string
}

func (h *ruleHits) ruleNames(route string, o *compare.Options) []string {
	if v, ok := h.names.Load(route); ok && v.(*ruleNames).opts == o {
		return v.(*ruleNames).names
	}
	rules := o.Rules()
	rn := &ruleNames{opts: o, names: make([]string, len(rules))}
	for i, r := range rules {
		rn.names[i] = r.String()
	}
	h.names.Store(route, rn)
	return rn.names
}

// RuleHit is one rule's count on one route.
type RuleHit struct {
	Route, Rule string
	Hits        int64
}

// RuleHits returns every rule that absorbed a difference, by route and rule.
func (p *Proxy) RuleHits() []RuleHit {
	var out []RuleHit
	p.metrics.hits.counts.Range(func(k, v any) bool {
		key := k.(hitKey)
		out = append(out, RuleHit{Route: key.route, Rule: key.rule, Hits: v.(*atomic.Int64).Load()})
		return true
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Route != out[j].Route {
			return out[i].Route < out[j].Route
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

func (h *ruleHits) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *ruleHits) Collect(ch chan<- prometheus.Metric) {
	h.counts.Range(func(k, v any) bool {
		key := k.(hitKey)
		ch <- prometheus.MustNewConstMetric(h.desc, prometheus.CounterValue, float64(v.(*atomic.Int64).Load()), key.route, key.rule)
		return true
	})
}
