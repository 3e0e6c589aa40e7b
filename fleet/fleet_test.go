package fleet_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/fleet"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// fakePrometheus answers /api/v1/query and /api/v1/query_range with the
// vectors of the first rule whose substring the query contains.
type fakePrometheus struct {
	srv     *httptest.Server
	queries atomic.Int64 // requests the server read
	// asked counts the requests the view's client sent: a round the view
	// cuts short at its first failure returns when its queries have, while
	// the server may still read one it had already been sent.
	asked atomic.Int64
	mu    sync.Mutex
	rules []fakeRule
	seen  []string
}

type fakeRule struct {
	contains string
	result   []map[string]any // {"metric": {...}, "value"/"values": ...}
	status   int              // 0: 200 success
	warnings []string         // with a success
}

func newFakePrometheus(t *testing.T, rules ...fakeRule) *fakePrometheus {
	f := &fakePrometheus{rules: rules}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.queries.Add(1)
		q := r.URL.Query().Get("query")
		f.mu.Lock()
		f.seen = append(f.seen, r.URL.Path+" "+q)
		rs := f.rules
		f.mu.Unlock()
		kind := "vector"
		if strings.HasSuffix(r.URL.Path, "/query_range") {
			kind = "matrix"
		}
		w.Header().Set("Content-Type", "application/json")
		for _, rule := range rs {
			if strings.Contains(q, rule.contains) {
				if rule.status != 0 {
					w.WriteHeader(rule.status)
					fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"parse error in %s"}`, rule.contains)
					return
				}
				answer := map[string]any{"status": "success", "data": map[string]any{"resultType": kind, "result": rule.result}}
				if rule.warnings != nil {
					answer["warnings"] = rule.warnings
				}
				json.NewEncoder(w).Encode(answer)
				return
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": kind, "result": []any{}}})
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func vec(value string, labels ...string) map[string]any {
	m := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		m[labels[i]] = labels[i+1]
	}
	return map[string]any{"metric": m, "value": []any{1700000000.0, value}}
}

// localStats stands in for the replica's own statistics.
type localStats struct{ compared int64 }

func (l localStats) Routes() []stats.RouteView {
	v := stats.RouteView{Name: "users", Phase: "shadow-read"}
	v.Reads.Compared = l.compared
	// Ready on its own evidence: the fleet's may say otherwise.
	v.Ready = stats.Ready{Verdict: true, Status: stats.StatusReady, Reasons: []string{}}
	return []stats.RouteView{v}
}

func (l localStats) Evidence(route string, q stats.EvidenceQuery) (stats.Evidence, bool) {
	return stats.Evidence{}, route == "users"
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newView(t *testing.T, prom *fakePrometheus, selector string, clk *clock, log *bytes.Buffer) *fleet.View {
	t.Helper()
	d := rules.Dashboard{PrometheusSelector: selector, PrometheusTimeout: 2 * time.Second}
	if prom != nil {
		u, _ := url.Parse(prom.srv.URL + "/prom")
		d.PrometheusURL = u
	}
	th := rules.Readiness{MinSamples: 100, MatchRate: 0.9, SecondaryWriteSuccess: 0.9, P99LatencyIncrease: 1}
	var client *http.Client
	if prom != nil {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		client = &http.Client{Transport: askCounter{prom, tr}}
	}
	return fleet.New(fleet.Options{
		Client: client,
		Local:  localStats{compared: 7},
		Config: func() []stats.RouteInfo {
			return []stats.RouteInfo{{Name: "users", Phase: "shadow-read", Readiness: th}, {Name: "idle", Phase: "dual-write", Readiness: th},
				{Name: rules.Unmatched, Phase: "shadow-read", Readiness: th, OnlyIfSeen: true}}
		},
		Dashboard: func() rules.Dashboard { return d },
		Now:       clk.Now,
		Logger:    slog.New(slog.NewTextHandler(log, nil)),
	})
}

// askCounter counts the requests a view sends to the fake Prometheus.
type askCounter struct {
	f  *fakePrometheus
	tr http.RoundTripper
}

func (a askCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	a.f.asked.Add(1)
	return a.tr.RoundTrip(r)
}

func TestFleetViewSumsWhatPrometheusAnswers(t *testing.T) {
	prom := newFakePrometheus(t,
		fakeRule{contains: "count(cutover_build_info", result: []map[string]any{vec("3")}},
		fakeRule{contains: "sum by (route, outcome) (cutover_route_evidence_reads", result: []map[string]any{
			vec("950", "route", "users", "outcome", "match"),
			vec("50", "route", "users", "outcome", "mismatch"),
			vec("4", "route", "users", "outcome", "skipped"),
			vec("2", "route", "other", "outcome", "match"),
		}},
		fakeRule{contains: "sum by (route, reason) (cutover_route_evidence_read_reasons", result: []map[string]any{
			vec("4", "route", "users", "reason", "skipped/busy"),
		}},
		fakeRule{contains: "increase(cutover_comparisons_total{job=\"cutover\"}[5m])", result: []map[string]any{
			vec("9.7", "route", "users", "outcome", "match"),
		}},
		fakeRule{contains: "sum by (route, outcome) (cutover_route_evidence_write_comparisons", result: []map[string]any{
			vec("3", "route", "users", "outcome", "match"), vec("2", "route", "users", "outcome", "skipped"),
		}},
		fakeRule{contains: "sum by (route, reason) (cutover_route_evidence_write_reasons", result: []map[string]any{
			vec("2", "route", "users", "reason", "skipped/queued"),
		}},
		fakeRule{contains: "cutover_route_evidence_writes", result: []map[string]any{
			vec("10", "route", "users", "outcome", "ok"), vec("1", "route", "users", "outcome", "failed"),
		}},
		// PromQL's annotations of the query are not a partial answer
		// (Prometheus before 2.54 and Thanos send them as warnings).
		fakeRule{contains: "histogram_quantile(0.99", result: []map[string]any{
			vec("0.1", "route", "users", "backend", "old"), vec("0.25", "route", "users", "backend", "new"),
			vec("NaN", "route", "idle", "backend", "new"),
		}, warnings: []string{`PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name "cutover_upstream_request_duration_seconds_bucket"`}},
		fakeRule{contains: "sum by (route, backend) (cutover_upstream_request_duration_seconds_count", result: []map[string]any{
			vec("1000", "route", "users", "backend", "old"), vec("1000", "route", "users", "backend", "new"),
		}},
		fakeRule{contains: "cutover_retry_queue_pending", result: []map[string]any{vec("1", "route", "users")}},
		fakeRule{contains: "cutover_retry_queue_oldest_age_seconds", result: []map[string]any{vec("42", "route", "users")}},
	)
	clk := &clock{now: time.Unix(1700000000, 0)}
	var log bytes.Buffer
	v := newView(t, prom, `job="cutover",`, clk, &log)
	routes := v.Routes()
	if len(routes) != 3 || routes[0].Name != "users" || routes[1].Name != "idle" || routes[2].Name != "other" {
		t.Fatalf("routes = %+v", routes)
	}
	u := routes[0]
	if u.Scope == nil || !u.Scope.Fleet || u.Scope.Replicas != 3 || u.Scope.Error != "" {
		t.Errorf("scope = %+v", u.Scope)
	}
	if u.Reads.Compared != 1000 || u.Reads.Matched != 950 || u.Reads.Skipped != 4 || u.Reads.Reasons["skipped/busy"] != 4 {
		t.Errorf("reads = %+v", u.Reads)
	}
	if wc := u.WriteComparisons; wc.Compared != 3 || wc.Skipped != 2 || wc.Reasons["skipped/queued"] != 2 || len(wc.Reasons) != 1 {
		t.Errorf("write comparisons = %+v, want the replicas' skipped ones and their reasons", wc)
	}
	if u.Reads.Windows["5m"].Matched != 10 {
		t.Errorf("5m window = %+v", u.Reads.Windows["5m"])
	}
	if u.Writes.SecondaryAttempted != 11 || u.Writes.PendingRetries != 1 || *u.Writes.OldestPendingAgeSeconds != 42 || u.Writes.Unresolved != 1 {
		t.Errorf("writes = %+v", u.Writes)
	}
	if u.Latency.Old.P99Ms != 100 || u.Latency.New.P99Ms != 250 || *u.Latency.P99Increase != 1.5 {
		t.Errorf("latency = %+v", u.Latency)
	}
	// 95 % matched, but 11 writes prove little, the p99 more than doubled
	// and a write is queued.
	if u.Ready.Verdict || u.Ready.Status != stats.StatusNotReady || len(u.Ready.Reasons) != 3 {
		t.Errorf("verdict = %+v", u.Ready)
	}
	if routes[1].Reads.Total != 0 || routes[1].Ready.Status != stats.StatusInsufficientData {
		t.Errorf("idle route = %+v", routes[1])
	}
	for _, q := range prom.seen {
		if !strings.HasPrefix(q, "/prom/api/v1/query") {
			t.Errorf("query outside the URL's path prefix: %s", q)
		}
		if strings.Contains(q, "cutover_") && !strings.Contains(q, `{job="cutover"`) {
			t.Errorf("query without the selector: %s", q)
		}
	}
	if _, ok := v.Evidence("users", stats.EvidenceQuery{}); !ok {
		t.Error("evidence does not come from the local replica")
	}

	// Within MaxAge the answers are reused; past it they are asked again.
	n := prom.queries.Load()
	v.Routes()
	if got := prom.queries.Load(); got != n {
		t.Errorf("a second view within MaxAge ran %d more queries", got-n)
	}
	clk.add(3 * time.Second)
	v.Routes()
	if got := prom.queries.Load(); got != 2*n {
		t.Errorf("a view after MaxAge ran %d queries, want %d", got-n, n)
	}
}

func TestFleetViewFallsBackToLocalNumbers(t *testing.T) {
	tests := []struct {
		name string
		prom func(t *testing.T) *fakePrometheus
		want string
	}{
		{"bad query", func(t *testing.T) *fakePrometheus {
			return newFakePrometheus(t, fakeRule{contains: "histogram_quantile", status: http.StatusBadRequest})
		}, "parse error in histogram_quantile"},
		{"a partial answer", func(t *testing.T) *fakePrometheus {
			return newFakePrometheus(t, fakeRule{contains: "cutover_route_evidence_reads", result: []map[string]any{vec("5", "route", "users", "outcome", "match")},
				warnings: []string{"partial response: store 10.0.0.7:10901 did not answer"}})
		}, "may be partial: partial response: store 10.0.0.7:10901 did not answer"},
		{"no replica matches the selector", func(t *testing.T) *fakePrometheus { return newFakePrometheus(t) },
			`no cutover_build_info{job="nope"} series`},
		{"not Prometheus", func(t *testing.T) *fakePrometheus {
			f := newFakePrometheus(t)
			f.srv.Config.Handler = http.NotFoundHandler()
			return f
		}, "HTTP 404 from /prom/api/v1/"},
		{"down", func(t *testing.T) *fakePrometheus {
			f := newFakePrometheus(t)
			f.srv.Close()
			return f
		}, "connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log bytes.Buffer
			clk := &clock{now: time.Unix(1700000000, 0)}
			v := newView(t, tt.prom(t), `job="nope"`, clk, &log)
			for range 3 {
				routes := v.Routes()
				if len(routes) != 1 || routes[0].Reads.Compared != 7 {
					t.Fatalf("routes = %+v, want the local ones", routes)
				}
				if s := routes[0].Scope; s == nil || s.Fleet || !strings.Contains(s.Error, tt.want) {
					t.Fatalf("scope = %+v, want an error containing %q", s, tt.want)
				}
				// The local replica is ready on its own evidence, but a
				// gate on ready.verdict must not pass on one replica's.
				if r := routes[0].Ready; r.Verdict || r.Status != stats.StatusInsufficientData || len(r.Reasons) == 0 ||
					!strings.Contains(r.Reasons[0], "the fleet's evidence is unavailable") || !strings.Contains(r.Reasons[0], tt.want) {
					t.Fatalf("ready = %+v, want the verdict withheld with the reason", r)
				}
				clk.add(time.Minute)
			}
			if n := strings.Count(log.String(), "Prometheus gave no fleet view"); n != 1 {
				t.Errorf("a lasting failure logged %d times, want once:\n%s", n, log.String())
			}
		})
	}
}

// A replica Prometheus cannot scrape (up == 0) is missing from every sum:
// its mismatches and its queued writes. The verdict is withheld until it
// is back; the scope says how many are down.
func TestAReplicaDownWithholdsTheVerdict(t *testing.T) {
	answers := []fakeRule{
		{contains: "count(cutover_build_info", result: []map[string]any{vec("2")}},
		{contains: "sum by (route, outcome) (cutover_route_evidence_reads", result: []map[string]any{
			vec("1000", "route", "users", "outcome", "match"),
		}},
		{contains: "sum by (route, outcome) (cutover_route_evidence_writes", result: []map[string]any{
			vec("100", "route", "users", "outcome", "ok"),
		}},
	}
	for _, down := range []string{"", "1"} {
		rs := answers
		if down != "" {
			rs = append([]fakeRule{{contains: `count(up{job="cutover"} == 0)`, result: []map[string]any{vec(down)}}}, answers...)
		}
		prom := newFakePrometheus(t, rs...)
		var log bytes.Buffer
		v := newView(t, prom, `job="cutover"`, &clock{now: time.Unix(1700000000, 0)}, &log)
		u := v.Routes()[0]
		withheld := len(u.Ready.Reasons) > 0 && strings.Contains(u.Ready.Reasons[0], "1 replica(s) cannot be scraped")
		switch {
		case down == "" && (withheld || u.Scope.Down != 0):
			t.Errorf("every replica up: ready = %+v, scope = %+v", u.Ready, u.Scope)
		case down != "" && (!withheld || u.Ready.Verdict || u.Ready.Status != stats.StatusInsufficientData || u.Scope.Down != 1):
			t.Errorf("a replica down: ready = %+v, scope = %+v; want the verdict withheld and down 1", u.Ready, u.Scope)
		}
	}
}

// A failing Prometheus is asked once per MaxAge, not once per view: the
// dashboards and scripts polling a struggling Prometheus would each send
// a round of queries, and each wait out the timeout in turn.
func TestAFailureIsKeptAsLongAsAnAnswer(t *testing.T) {
	prom := newFakePrometheus(t, fakeRule{contains: "histogram_quantile", status: http.StatusBadRequest})
	var log bytes.Buffer
	clk := &clock{now: time.Unix(1700000000, 0)}
	v := newView(t, prom, `job="x"`, clk, &log)
	v.Routes()
	n := prom.asked.Load()
	for range 5 {
		if r := v.Routes(); r[0].Scope == nil || r[0].Scope.Error == "" {
			t.Fatalf("scope = %+v, want the failure", r[0].Scope)
		}
	}
	if got := prom.asked.Load(); got != n {
		t.Errorf("five views within MaxAge of a failure sent %d more queries, want none", got-n)
	}
	clk.add(3 * time.Second)
	v.Routes()
	if got := prom.asked.Load(); got == n {
		t.Error("a view after MaxAge did not ask again")
	}
}

func TestNoPrometheusMeansLocalNumbers(t *testing.T) {
	var log bytes.Buffer
	v := newView(t, nil, "", &clock{now: time.Unix(1700000000, 0)}, &log)
	routes := v.Routes()
	if len(routes) != 1 || routes[0].Reads.Compared != 7 || routes[0].Scope != nil {
		t.Errorf("routes = %+v", routes)
	}
}
