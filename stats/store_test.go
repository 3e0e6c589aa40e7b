package stats_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

var userRoute = stats.RouteInfo{Name: "user", Phase: "shadow-read", Readiness: rules.DefaultReadiness(),
	Overrides: []stats.OverrideInfo{{Name: "acme", Phase: "cutover"}}}

func match(route string) stats.ReadEvent {
	return stats.ReadEvent{Route: route, Phase: "shadow-read", Primary: "old", Outcome: stats.Match,
		OldLatency: 10 * time.Millisecond, NewLatency: 11 * time.Millisecond, Result: &compare.Result{Outcome: compare.Match}}
}

// priceMismatch is a mismatch on one field of an array element.
func priceMismatch(route string, i int) stats.ReadEvent {
	ev := match(route)
	ev.Outcome = stats.Mismatch
	path := fmt.Sprintf("$['items'][%d]['price']", i%3)
	ev.Result = &compare.Result{Outcome: compare.Mismatch, Diffs: []compare.Difference{{Path: path, Kind: compare.Changed, Old: "10", New: "10.5"}}}
	ev.Request = &stats.Request{Method: "GET", Target: fmt.Sprintf("/users/%d", i), Header: http.Header{"Authorization": {"Bearer s3cret-token"}, "Accept": {"application/json"}}}
	ev.Old = &compare.Response{Status: 200, Header: http.Header{"Set-Cookie": {"sid=abc"}}, Body: []byte(`{"items":[{"price":10}]}`)}
	ev.New = &compare.Response{Status: 200, Body: []byte(`{"items":[{"price":10.5}]}`)}
	return ev
}

func open(t *testing.T, dir string, c *clock) *stats.Store {
	t.Helper()
	s, err := stats.Open(stats.Options{Dir: dir, Now: c.Now, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func one(t *testing.T, s *stats.Store, ri stats.RouteInfo) stats.RouteView {
	t.Helper()
	for _, v := range s.Routes([]stats.RouteInfo{ri}) {
		if v.Name == ri.Name {
			return v
		}
	}
	t.Fatalf("route %q not in view", ri.Name)
	return stats.RouteView{}
}

func TestOutcomesAddUp(t *testing.T) {
	c := newClock()
	s := open(t, "", c)
	for range 900 {
		s.Read(match("user"))
	}
	for i := range 100 {
		s.Read(priceMismatch("user", i))
	}
	for _, r := range []string{stats.ReasonSampledOut, stats.ReasonBusy, stats.ReasonBreakerOpen} {
		s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Skipped, Reason: r})
	}
	s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Error, Reason: stats.ReasonSecondaryFailed, Primary: "old"})
	s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Error, Reason: "invalid_json"})
	s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Pending})
	v := one(t, s, userRoute)
	r := v.Reads
	if r.Matched != 900 || r.Mismatched != 100 || r.Compared != 1000 || r.Skipped != 3 || r.Errors != 2 || r.Pending != 1 {
		t.Fatalf("reads = %+v", r.Window)
	}
	if r.Total != r.Matched+r.Mismatched+r.Skipped+r.Errors+r.Pending || r.Total != 1006 {
		t.Errorf("total %d does not add up", r.Total)
	}
	if r.MatchRate == nil || *r.MatchRate != 0.9 {
		t.Errorf("match rate = %v, want 0.9", r.MatchRate)
	}
	want := map[string]int64{"skipped/sampled_out": 1, "skipped/busy": 1, "skipped/breaker_open": 1, "error/secondary_failed": 1, "error/invalid_json": 1}
	for k, n := range want {
		if r.Reasons[k] != n {
			t.Errorf("reasons[%s] = %d, want %d (all: %v)", k, r.Reasons[k], n, r.Reasons)
		}
	}
	// The windows see the same events: they all happened this minute.
	for _, w := range []string{"5m", "1h", "24h"} {
		if got := r.Windows[w]; got.Total != 1006 || got.Compared != 1000 {
			t.Errorf("window %s = %+v", w, got)
		}
	}
	if s := v.Sparkline[59]; s == nil || *s != 0.9 {
		t.Errorf("sparkline now = %v", s)
	}
}

func TestWindowsSlide(t *testing.T) {
	c := newClock()
	s := open(t, "", c)
	s.Read(priceMismatch("user", 0))
	c.Add(10 * time.Minute)
	s.Read(match("user"))
	c.Add(2 * time.Hour)
	s.Read(match("user"))
	s.Read(match("user"))
	v := one(t, s, userRoute).Reads
	if w := v.Windows["5m"]; w.Compared != 2 || w.Mismatched != 0 {
		t.Errorf("5m = %+v", w)
	}
	if w := v.Windows["1h"]; w.Compared != 2 {
		t.Errorf("1h = %+v", w)
	}
	if w := v.Windows["24h"]; w.Compared != 4 || w.Mismatched != 1 {
		t.Errorf("24h = %+v", w)
	}
	c.Add(23 * time.Hour)
	v = one(t, s, userRoute).Reads
	if w := v.Windows["24h"]; w.Compared != 2 {
		t.Errorf("24h after a day = %+v, want the 2 recent reads", w)
	}
	if v.Compared != 4 {
		t.Errorf("all time compared = %d, want 4", v.Compared)
	}
}

func TestOverridesCountApart(t *testing.T) {
	s := open(t, "", newClock())
	ev := match("user")
	ev.Override = "acme"
	s.Read(ev)
	s.Read(match("user"))
	s.Write(stats.WriteEvent{Route: "user", Override: "acme", Outcome: stats.WriteFailed})
	v := one(t, s, userRoute)
	if v.Reads.Compared != 2 {
		t.Errorf("route compared = %d, want 2", v.Reads.Compared)
	}
	if len(v.Overrides) != 1 || v.Overrides[0].Override != "acme" || v.Overrides[0].Phase != "cutover" {
		t.Fatalf("overrides = %+v", v.Overrides)
	}
	if o := v.Overrides[0]; o.Reads.Compared != 1 || o.Writes.SecondaryFailed != 1 {
		t.Errorf("acme = reads %+v writes %+v", o.Reads.Window, o.Writes)
	}
}

func TestWrites(t *testing.T) {
	c := newClock()
	s := open(t, "", c)
	for range 97 {
		s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteOK})
	}
	for range 3 {
		s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteFailed})
	}
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteRetriedOK})
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteGaveUp})
	s.SetQueue("user", stats.QueueState{Pending: 1, GivenUp: 1, Oldest: c.Now().Add(-90 * time.Second)})
	w := one(t, s, userRoute).Writes
	if w.SecondaryAttempted != 100 || w.SecondarySucceeded != 97 || w.SecondaryFailed != 3 || w.RetriedOK != 1 || w.GaveUp != 1 {
		t.Errorf("writes = %+v", w)
	}
	if *w.FirstAttemptRate != 0.97 || *w.EventualRate != 0.98 {
		t.Errorf("rates = %v %v", *w.FirstAttemptRate, *w.EventualRate)
	}
	if w.PendingRetries != 1 || w.GivenUp != 1 || w.Unresolved != 2 || w.OldestPendingAgeSeconds == nil || *w.OldestPendingAgeSeconds != 90 {
		t.Errorf("queue = %+v", w)
	}
}

func TestLatencyQuantiles(t *testing.T) {
	s := open(t, "", newClock())
	// old: 1..100 ms; new: 1.5x slower.
	for i := 1; i <= 100; i++ {
		ev := match("user")
		ev.OldLatency = time.Duration(i) * time.Millisecond
		ev.NewLatency = time.Duration(i) * 3 * time.Millisecond / 2
		s.Read(ev)
	}
	// A read where only the primary ran does not skew the comparison.
	s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Skipped, Reason: stats.ReasonSampledOut, OldLatency: time.Hour})
	l := one(t, s, userRoute).Latency
	near := func(got, want float64) bool { return math.Abs(got-want)/want < 0.04 }
	if l.Old.Count != 100 || !near(l.Old.P50Ms, 50) || !near(l.Old.P99Ms, 99) {
		t.Errorf("old = %+v", l.Old)
	}
	if !near(l.New.P99Ms, 148.5) || l.P99Increase == nil || math.Abs(*l.P99Increase-0.5) > 0.05 {
		t.Errorf("new = %+v, increase %v", l.New, l.P99Increase)
	}
}

func TestWilsonLower(t *testing.T) {
	for _, tc := range []struct {
		k, n int64
		want float64
	}{
		{0, 0, 0},
		{81, 263, 0.2552885198782742},
		{1000, 1000, 0.9961732415144449},
		{900, 1000, 0.8798480368046516},
		{3839, 3839, 0.9990003597957764},
	} {
		if got := stats.WilsonLower(tc.k, tc.n); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("WilsonLower(%d, %d) = %v, want %v", tc.k, tc.n, got, tc.want)
		}
	}
	// A bound is a rate, in [0, 1], also where rounding could leave it
	// a hair outside (no success at all).
	for n := int64(1); n <= 5000; n++ {
		for _, k := range []int64{0, 1, n / 2, n - 1, n} {
			if got := stats.WilsonLower(k, n); !(got >= 0 && got <= 1) {
				t.Fatalf("WilsonLower(%d, %d) = %v, outside [0, 1]", k, n, got)
			}
		}
	}
}

// The match rate's reason counts what it judges: with new-side errors,
// the reads it is over are the comparisons and those errors, each named.
func TestTheMatchRateReasonCountsWhatItJudges(t *testing.T) {
	s := open(t, "", newClock())
	ri := userRoute
	ri.Readiness = rules.Readiness{MinSamples: 10, MatchRate: 0.999}
	for range 135 {
		s.Read(match("user"))
	}
	for range 5 {
		s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Error, Reason: stats.ReasonSecondaryFailed, Primary: "old"})
	}
	r := one(t, s, ri).Ready
	if len(r.Reasons) == 0 || !strings.Contains(r.Reasons[0], "over 140 reads (135 compared, 5 new-side errors)") {
		t.Errorf("reasons = %q, want the match rate over 140 reads, 135 of them compared", r.Reasons)
	}
}

func TestVerdictFlips(t *testing.T) {
	c := newClock()
	s := open(t, "", c)
	ri := userRoute
	ri.Readiness = rules.Readiness{MinSamples: 1000, MatchRate: 0.999, SecondaryWriteSuccess: 0.9995, P99LatencyIncrease: 0.2}

	for range 500 {
		s.Read(match("user"))
	}
	r := one(t, s, ri).Ready
	if r.Status != stats.StatusInsufficientData || r.Verdict || r.MissingSamples != 500 {
		t.Fatalf("after 500 = %+v", r)
	}
	if r.Reasons[0] != "500 more compared reads needed (500 of min_samples 1000)" {
		t.Errorf("first reason = %q", r.Reasons[0])
	}

	for range 500 {
		s.Read(match("user"))
	}
	// 1000 clean comparisons: the lower bound is 99.62 %, not yet 99.9 %.
	r = one(t, s, ri).Ready
	if r.Status != stats.StatusNotReady || len(r.Reasons) != 1 {
		t.Fatalf("after 1000 = %+v", r)
	}
	if r.Checks[1].Name != "match_rate" || r.Checks[1].More != 2838 {
		t.Errorf("match check = %+v", r.Checks[1])
	}
	for range 2837 {
		s.Read(match("user"))
	}
	if r = one(t, s, ri).Ready; r.Status != stats.StatusNotReady {
		t.Fatalf("one short = %+v", r)
	}
	s.Read(match("user"))
	r = one(t, s, ri).Ready
	if r.Status != stats.StatusReady || !r.Verdict || len(r.Reasons) != 0 {
		t.Fatalf("after 3838 = %+v", r)
	}

	// A failing secondary write, a queued retry and a slow new backend: every
	// reason is listed.
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteFailed})
	s.SetQueue("user", stats.QueueState{Pending: 1})
	for range 100 {
		ev := match("user")
		ev.NewLatency = 2 * time.Second
		s.Read(ev)
	}
	r = one(t, s, ri).Ready
	if r.Status != stats.StatusNotReady || len(r.Reasons) != 3 {
		t.Fatalf("with failures = %+v", r.Reasons)
	}
	// A latency of seconds reads as seconds, not as 2e+03 ms.
	latency := ""
	for _, reason := range r.Reasons {
		if strings.HasPrefix(reason, "p99 latency of new") {
			latency = reason
		}
	}
	if !strings.Contains(latency, " s is +") || !strings.Contains(latency, " ms (limit") || strings.Contains(latency, "e+") {
		t.Errorf("latency reason = %q, want new's p99 in seconds and old's in milliseconds", latency)
	}
}

func TestNewSideErrorsCountAgainstReadiness(t *testing.T) {
	s := open(t, "", newClock())
	ri := userRoute
	ri.Readiness = rules.Readiness{MinSamples: 10, MatchRate: 0.5, SecondaryWriteSuccess: 0.5, P99LatencyIncrease: 10}
	for range 20 {
		s.Read(match("user"))
	}
	// Old failing says nothing about new; new answering garbage does.
	for range 100 {
		s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Error, Reason: stats.ReasonPrimaryFailed, Primary: "old"})
	}
	if r := one(t, s, ri).Ready; !r.Verdict {
		t.Fatalf("old-side errors made the route not ready: %v", r.Reasons)
	}
	for range 100 {
		s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Error, Reason: "invalid_json", Primary: "old"})
	}
	if r := one(t, s, ri).Ready; r.Verdict {
		t.Fatalf("100 unparseable answers of 120 and still ready")
	}
}

func TestRecordingDoesNotAllocate(t *testing.T) {
	s := open(t, "", newClock())
	ev := match("user")
	ev.Override = "acme"
	skip := stats.ReadEvent{Route: "user", Outcome: stats.Skipped, Reason: stats.ReasonBusy}
	w := stats.WriteEvent{Route: "user", Outcome: stats.WriteOK}
	s.Read(ev)
	s.Read(skip)
	s.Write(w)
	if n := testing.AllocsPerRun(1000, func() { s.Read(ev); s.Read(skip); s.Write(w) }); n != 0 {
		t.Errorf("recording allocates %v times per round", n)
	}
}

// Reasons without a counter of their own are kept up to a bound, then as
// "other"; a write comparison's stay the write comparisons', past the bound
// too.
func TestReasonsPastTheBoundStayReadOrWrite(t *testing.T) {
	s := open(t, "", newClock())
	for i := range 40 {
		s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Error, Reason: fmt.Sprintf("odd_%d", i)})
	}
	s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Skipped, Reason: "odd_write", Write: true})
	v := one(t, s, userRoute)
	if v.WriteComparisons.Reasons["skipped/other"] != 1 || v.Reads.Reasons["skipped/other"] != 0 {
		t.Errorf("write reasons %v, read reasons %v: want the write's past the bound under the writes' skipped/other", v.WriteComparisons.Reasons, v.Reads.Reasons)
	}
	if got := v.Reads.Reasons["error/other"]; got != 40-32 {
		t.Errorf("read reasons past the bound: %d, want %d", got, 40-32)
	}
}

// A reset starts the evidence over for writes too: the retries of writes
// recorded before it that land after it are not counted against the
// attempts made since (eventual_rate was 4 after a reset, three such
// retries over one new write), across a restart too.
func TestWritesRecordedBeforeAResetStayOutOfItsEvidence(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	s := open(t, dir, c)
	before := c.Now()
	for range 3 {
		s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteFailed, Recorded: before})
	}
	c.Add(time.Minute)
	s.Reset("user")
	c.Add(time.Minute)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, c)
	for range 3 {
		s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteRetriedOK, Recorded: before})
	}
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteOK, Recorded: c.Now()})
	s.Write(stats.WriteEvent{Route: "user", Outcome: stats.WriteOK}) // recorded when, unknown: counted
	w := one(t, s, userRoute).Writes
	if w.SecondaryAttempted != 2 || w.RetriedOK != 0 || w.EventualRate == nil || *w.EventualRate != 1 {
		t.Errorf("writes after the reset: %+v (eventual rate %v), want the two recorded since it", w, deref(w.EventualRate))
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

// Every reason the compare engine can give has a counter of its own.
func TestEveryCompareReasonIsKnown(t *testing.T) {
	s := stats.New()
	for _, reason := range compare.Reasons() {
		s.Read(stats.ReadEvent{Route: "r", Outcome: stats.Error, Reason: reason})
	}
	v := s.Routes([]stats.RouteInfo{{Name: "r"}})[0]
	for _, reason := range compare.Reasons() {
		if v.Reads.Reasons["error/"+reason] != 1 {
			t.Errorf("reason %s counted %d times: %v", reason, v.Reads.Reasons["error/"+reason], v.Reads.Reasons)
		}
	}
}
