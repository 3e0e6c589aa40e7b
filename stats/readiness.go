package stats

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/cutover/cutover/rules"
)

// The readiness verdicts.
const (
	StatusReady            = "ready"
	StatusNotReady         = "not_ready"
	StatusInsufficientData = "insufficient_data"
)

// z95 is the normal quantile of a two-sided 95 % interval.
const z95 = 1.959963984540054

// WilsonLower returns the lower bound of the 95 % Wilson score interval of
// k successes in n trials: the rate the evidence supports with 97.5 %
// confidence. It is 0 for n = 0. Unlike the raw ratio, 10 clean samples do
// not prove 99.9 %: it takes about 3,840.
func WilsonLower(k, n int64) float64 {
	if n <= 0 {
		return 0
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z95 * z95
	centre := p + z2/(2*nf)
	margin := z95 * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	// At k = 0 centre and margin are equal on paper, and rounding left
	// -3.8e-17: a rate is never below 0.
	return max(0, (centre-margin)/(1+z2/nf))
}

// moreNeeded returns how many further successes in a row would lift the
// Wilson lower bound of k of n to at least t, or -1 when no number can (t at
// or above 1).
func moreNeeded(k, n int64, t float64) int64 {
	if WilsonLower(k, n) >= t {
		return 0
	}
	if t >= 1 {
		return -1
	}
	lo, hi := int64(0), int64(1)
	for i := 0; WilsonLower(k+hi, n+hi) < t; i++ {
		if i > 62 {
			return -1
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 { // at most 63 steps
		mid := lo + (hi-lo)/2
		if WilsonLower(k+mid, n+mid) >= t {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// Check is one criterion of the readiness verdict.
type Check struct {
	Name string `json:"name"`
	Pass bool   `json:"pass"`
	// Value is the observed value (a raw rate or a ratio); Bound is the 95 %
	// Wilson lower bound that is judged for rates; Threshold the YAML bar.
	Value     *float64 `json:"value"`
	Bound     *float64 `json:"bound,omitempty"`
	Threshold float64  `json:"threshold"`
	// More is how many further clean samples would make a rate check pass
	// (-1: none can); 0 when it passes or does not apply.
	More   int64  `json:"more_needed,omitempty"`
	Detail string `json:"detail"`
}

// Ready is a readiness verdict.
type Ready struct {
	// Verdict is true only for StatusReady.
	Verdict bool   `json:"verdict"`
	Status  string `json:"status"`
	// Reasons lists every failing criterion in words (empty when ready).
	Reasons []string `json:"reasons"`
	// MissingSamples is how many more compared reads min_samples asks for.
	MissingSamples int64   `json:"missing_samples"`
	Checks         []Check `json:"checks"`
}

// evidence is what a verdict is judged on.
type evidence struct {
	matched, compared, newErrors int64
	writesOK, writesAttempted    int64
	unresolved                   int64
	p99Old, p99New               float64
	latencyCount                 int64
}

// pct writes a rate as a percentage cut (not rounded) to two decimals, so
// that 99.95 % never reads as 100 % nor 99.8999 % as 99.9 %. The tiny
// epsilon undoes binary fractions such as 0.999*100*100 = 9989.999….
func pct(f float64) string {
	return strconv.FormatFloat(math.Floor(f*10000+1e-6)/100, 'f', -1, 64) + "%"
}

// judge returns the verdict of ev against th.
//
// The match rate judged is matched / (compared + errors of the new side):
// an answer from new that could not even be compared is no evidence that new
// is right. Secondary write success is judged on first attempts: a new
// backend that needs retries would fail its clients once it is primary.
// Latency compares the p99 of reads where both backends answered.
func judge(ev evidence, th rules.Readiness) Ready {
	r := Ready{Reasons: []string{}}
	fail := func(c Check) {
		r.Checks = append(r.Checks, c)
		if !c.Pass {
			r.Reasons = append(r.Reasons, c.Detail)
		}
	}
	f := func(v float64) *float64 { return &v }

	// Minimum samples.
	if missing := int64(th.MinSamples) - ev.compared; missing > 0 {
		r.MissingSamples = missing
		fail(Check{Name: "min_samples", Value: f(float64(ev.compared)), Threshold: float64(th.MinSamples),
			Detail: fmt.Sprintf("%d more compared reads needed (%d of min_samples %d)", missing, ev.compared, th.MinSamples)})
	} else {
		r.Checks = append(r.Checks, Check{Name: "min_samples", Pass: true, Value: f(float64(ev.compared)), Threshold: float64(th.MinSamples),
			Detail: fmt.Sprintf("%d compared reads (min_samples %d)", ev.compared, th.MinSamples)})
	}

	// Match rate.
	n := ev.compared + ev.newErrors
	c := Check{Name: "match_rate", Threshold: th.MatchRate}
	if n == 0 {
		c.Detail = "no reads compared yet"
	} else {
		lb := WilsonLower(ev.matched, n)
		c.Value, c.Bound = f(float64(ev.matched)/float64(n)), f(lb)
		c.Pass = lb >= th.MatchRate
		over := fmt.Sprintf("%d comparisons", ev.compared)
		if ev.newErrors > 0 {
			// Counted as reads new got wrong: n is both.
			over = fmt.Sprintf("%d reads (%d compared, %d new-side errors)", n, ev.compared, ev.newErrors)
		}
		if c.Pass {
			c.Detail = fmt.Sprintf("match rate %s (lower bound %s) meets %s", pct(*c.Value), pct(lb), pct(th.MatchRate))
		} else {
			c.More = moreNeeded(ev.matched, n, th.MatchRate)
			c.Detail = fmt.Sprintf("match rate %s, lower bound %s < %s over %s", pct(*c.Value), pct(lb), pct(th.MatchRate), over)
			if c.More > 0 {
				c.Detail += fmt.Sprintf(" (%d more matches in a row needed)", c.More)
			}
		}
	}
	fail(c)

	// Secondary write success, when the route writes.
	if ev.writesAttempted > 0 {
		lb := WilsonLower(ev.writesOK, ev.writesAttempted)
		c := Check{Name: "secondary_write_success", Threshold: th.SecondaryWriteSuccess,
			Value: f(float64(ev.writesOK) / float64(ev.writesAttempted)), Bound: f(lb), Pass: lb >= th.SecondaryWriteSuccess}
		if c.Pass {
			c.Detail = fmt.Sprintf("secondary write success %s (lower bound %s) meets %s", pct(*c.Value), pct(lb), pct(th.SecondaryWriteSuccess))
		} else {
			c.More = moreNeeded(ev.writesOK, ev.writesAttempted, th.SecondaryWriteSuccess)
			c.Detail = fmt.Sprintf("secondary write success %s on first attempt, lower bound %s < %s over %d writes",
				pct(*c.Value), pct(lb), pct(th.SecondaryWriteSuccess), ev.writesAttempted)
			if c.More > 0 {
				c.Detail += fmt.Sprintf(" (%d more clean writes needed)", c.More)
			}
		}
		fail(c)
	}

	// Latency.
	if ev.latencyCount > 0 && ev.p99Old > 0 {
		inc := (ev.p99New - ev.p99Old) / ev.p99Old
		// The slack keeps sub-millisecond jitter from failing a route: +20 %
		// of 0.5 ms is noise, not a regression.
		slack := float64(th.P99LatencySlack) / float64(time.Millisecond)
		pass := ev.p99New <= ev.p99Old*(1+th.P99LatencyIncrease)+slack
		c := Check{Name: "p99_latency_increase", Threshold: th.P99LatencyIncrease, Value: f(inc), Pass: pass}
		limit := "+" + pct(th.P99LatencyIncrease)
		if slack > 0 {
			limit += " and " + millis(slack)
		}
		if c.Pass {
			c.Detail = fmt.Sprintf("p99 of new %s vs old %s (%+.1f%%, limit %s)", millis(ev.p99New), millis(ev.p99Old), inc*100, limit)
		} else {
			c.Detail = fmt.Sprintf("p99 latency of new %s is %+.1f%% over old %s (limit %s)", millis(ev.p99New), inc*100, millis(ev.p99Old), limit)
		}
		fail(c)
	}

	// Unresolved retries.
	c = Check{Name: "unresolved_retries", Threshold: float64(th.UnresolvedRetries), Value: f(float64(ev.unresolved)),
		Pass: ev.unresolved <= int64(th.UnresolvedRetries)}
	if c.Pass {
		c.Detail = fmt.Sprintf("%d unresolved secondary writes (limit %d)", ev.unresolved, th.UnresolvedRetries)
	} else {
		c.Detail = fmt.Sprintf("%d secondary writes queued, given up or to verify (limit %d)", ev.unresolved, th.UnresolvedRetries)
	}
	fail(c)

	switch {
	case r.MissingSamples > 0:
		r.Status = StatusInsufficientData
	case len(r.Reasons) > 0:
		r.Status = StatusNotReady
	default:
		r.Status, r.Verdict = StatusReady, true
	}
	return r
}

// millis writes a latency given in milliseconds as a reader expects it:
// "0.059 ms", "250 ms", "1.47 s" (%.3g wrote 1.47e+03 ms from 1 s on).
func millis(ms float64) string {
	switch {
	case ms >= 1e6:
		return fmt.Sprintf("%.0f s", ms/1000)
	case ms >= 1000:
		return fmt.Sprintf("%.3g s", ms/1000)
	}
	return fmt.Sprintf("%.3g ms", ms)
}
