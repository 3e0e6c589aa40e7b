package web_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var playbook = rules.Readiness{MinSamples: 1000, MatchRate: 0.999, SecondaryWriteSuccess: 0.9995, P99LatencyIncrease: 0.2}

var routeInfos = []stats.RouteInfo{
	{Name: "user", Phase: "shadow-read", Readiness: playbook},
	{Name: "orders", Phase: "dual-write", Readiness: playbook, Overrides: []stats.OverrideInfo{{Name: "acme", Phase: "cutover"}}},
}

type rulesStub struct{ st web.RulesStatus }

func (r rulesStub) RulesStatus() web.RulesStatus { return r.st }

// fixture is an admin surface over a real store, fed events directly.
type fixture struct {
	store *stats.Store
	clock *clock
	srv   *httptest.Server
	held  *heldStub
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	s, err := stats.Open(stats.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	view := stats.View{Store: s, Config: func() []stats.RouteInfo { return routeInfos }}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(stats.NewCollector(view, stats.BuildInfo{Version: "test", Revision: "r1"}))
	held := &heldStub{}
	h := web.New(web.Options{
		Held:    held,
		Stats:   view,
		Rules:   rulesStub{web.RulesStatus{Version: "abc123", Source: "cutover.yaml", Reloads: map[string]int64{"ok": 1}, RestartPending: []string{"queue"}}},
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{store: s, clock: c, srv: srv, held: held}
}

func matchEvent() stats.ReadEvent {
	return stats.ReadEvent{Route: "user", Phase: "shadow-read", Primary: "old", Outcome: stats.Match,
		OldLatency: 8 * time.Millisecond, NewLatency: 9 * time.Millisecond, Result: &compare.Result{Outcome: compare.Match}}
}

// mismatchEvent differs on the email of one element of an array.
func mismatchEvent(i int, oldEmail, newEmail string) stats.ReadEvent {
	ev := matchEvent()
	ev.Outcome = stats.Mismatch
	ov, _ := json.Marshal(oldEmail)
	nv, _ := json.Marshal(newEmail)
	ev.Result = &compare.Result{Outcome: compare.Mismatch, Diffs: []compare.Difference{
		{Path: fmt.Sprintf("$['contacts'][%d]['email']", i%2), Kind: compare.Changed, Old: string(ov), New: string(nv)}}}
	ev.Request = &stats.Request{Method: "GET", Target: fmt.Sprintf("/users/%d?expand=contacts", i),
		Header: http.Header{"Authorization": {"Bearer top-secret"}, "Accept": {"application/json"}}}
	body := func(email string) []byte {
		b, _ := json.Marshal(map[string]any{"id": i, "contacts": []any{map[string]any{"email": "same@example.com"}, map[string]any{"email": email}}})
		return b
	}
	if i%2 == 0 {
		body = func(email string) []byte {
			b, _ := json.Marshal(map[string]any{"id": i, "contacts": []any{map[string]any{"email": email}}})
			return b
		}
	}
	ev.Old = &compare.Response{Status: 200, Body: body(oldEmail)}
	ev.New = &compare.Response{Status: 200, Body: body(newEmail)}
	return ev
}

// feed900x100 records 900 matches and 100 mismatches on one field.
func (f *fixture) feed900x100() {
	for range 900 {
		f.store.Read(matchEvent())
	}
	for i := range 100 {
		f.store.Read(mismatchEvent(i, "a@example.com", "A@example.com"))
	}
}

func get(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v in %s", url, err, b)
		}
	}
	return res
}

// routeJSON is the contract of DESIGN.md, read back as a client would.
type routeJSON struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	Reads struct {
		Compared   int64    `json:"compared"`
		Matched    int64    `json:"matched"`
		Mismatched int64    `json:"mismatched"`
		Skipped    int64    `json:"skipped"`
		MatchRate  *float64 `json:"match_rate"`
	} `json:"reads"`
	Writes struct {
		SecondaryAttempted int64 `json:"secondary_attempted"`
		SecondarySucceeded int64 `json:"secondary_succeeded"`
		SecondaryFailed    int64 `json:"secondary_failed"`
		PendingRetries     int64 `json:"pending_retries"`
	} `json:"writes"`
	Ready struct {
		Verdict bool     `json:"verdict"`
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
	} `json:"ready"`
}

func routesByName(t *testing.T, base string) map[string]routeJSON {
	t.Helper()
	var rs []routeJSON
	if res := get(t, base+"/api/v1/routes", &rs); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	out := map[string]routeJSON{}
	for _, r := range rs {
		out[r.Name] = r
	}
	return out
}

func TestRoutesAPIExactNumbers(t *testing.T) {
	f := newFixture(t)
	f.feed900x100()
	for range 40 {
		f.store.Write(stats.WriteEvent{Route: "orders", Outcome: stats.WriteOK})
	}
	f.store.Write(stats.WriteEvent{Route: "orders", Outcome: stats.WriteFailed})
	f.store.SetQueue("orders", stats.QueueState{Pending: 1})

	rs := routesByName(t, f.srv.URL)
	u := rs["user"]
	if u.Phase != "shadow-read" || u.Reads.Compared != 1000 || u.Reads.Matched != 900 || u.Reads.Mismatched != 100 || u.Reads.Skipped != 0 {
		t.Errorf("user reads = %+v", u.Reads)
	}
	if u.Reads.MatchRate == nil || *u.Reads.MatchRate != 0.9 {
		t.Errorf("user match_rate = %v, want 0.9", u.Reads.MatchRate)
	}
	if u.Ready.Verdict || u.Ready.Status != "not_ready" || len(u.Ready.Reasons) != 1 ||
		!strings.HasPrefix(u.Ready.Reasons[0], "match rate 90%, lower bound 87.98% < 99.9% over 1000 comparisons") {
		t.Errorf("user ready = %+v", u.Ready)
	}
	o := rs["orders"]
	if o.Writes.SecondaryAttempted != 41 || o.Writes.SecondarySucceeded != 40 || o.Writes.SecondaryFailed != 1 || o.Writes.PendingRetries != 1 {
		t.Errorf("orders writes = %+v", o.Writes)
	}
	if o.Ready.Status != "insufficient_data" || o.Ready.Verdict {
		t.Errorf("orders ready = %+v", o.Ready)
	}
}

func TestFieldsAPIExactNumbers(t *testing.T) {
	f := newFixture(t)
	f.feed900x100()
	var fv struct {
		Route    string `json:"route"`
		Compared int64  `json:"compared"`
		Fields   []struct {
			Path  string           `json:"path"`
			Count int64            `json:"count"`
			Rate  float64          `json:"rate"`
			Kinds map[string]int64 `json:"kinds"`
		} `json:"fields"`
		Overflow struct{ Paths, Count int64 } `json:"overflow"`
	}
	get(t, f.srv.URL+"/api/v1/fields?route=user", &fv)
	if fv.Compared != 1000 || len(fv.Fields) != 1 {
		t.Fatalf("fields = %+v", fv)
	}
	if fl := fv.Fields[0]; fl.Path != "$['contacts'][*]['email']" || fl.Count != 100 || fl.Rate != 0.1 || fl.Kinds["changed"] != 100 {
		t.Errorf("field = %+v", fl)
	}
}

func TestDiffsAPIGroupsAndRedacts(t *testing.T) {
	f := newFixture(t)
	f.feed900x100()
	var dv struct {
		Mismatched int64 `json:"mismatched"`
		Groups     []struct {
			Count     int64  `json:"count"`
			Suggested string `json:"suggested_rule"`
			Samples   []struct {
				Request struct {
					Method, Target string
					Header         map[string][]string
				} `json:"request"`
				Diffs []compare.Difference `json:"diffs"`
			} `json:"samples"`
		} `json:"groups"`
	}
	res := get(t, f.srv.URL+"/api/v1/diffs?route=user", &dv)
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	if dv.Mismatched != 100 || len(dv.Groups) != 1 || dv.Groups[0].Count != 100 || len(dv.Groups[0].Samples) != 3 {
		t.Fatalf("diffs = %+v", dv)
	}
	g := dv.Groups[0]
	if !strings.Contains(g.Suggested, `- "$.contacts[*].email"`) {
		t.Errorf("suggested rule = %s", g.Suggested)
	}
	s := g.Samples[0]
	if s.Request.Method != "GET" || !strings.HasPrefix(s.Request.Target, "/users/") || len(s.Diffs) != 1 || s.Diffs[0].Old != `"a@example.com"` {
		t.Errorf("sample = %+v", s)
	}
	if auth := s.Request.Header["Authorization"]; len(auth) != 1 || !strings.HasPrefix(auth[0], "[redacted ") {
		t.Errorf("Authorization = %q", auth)
	}
}

func TestHistoryAPI(t *testing.T) {
	f := newFixture(t)
	f.feed900x100()
	f.clock.Add(time.Minute)
	f.store.Read(matchEvent())
	var hv struct {
		StepSeconds int64   `json:"step_seconds"`
		Threshold   float64 `json:"threshold"`
		Points      []struct {
			Compared  int64    `json:"compared"`
			MatchRate *float64 `json:"match_rate"`
		} `json:"points"`
	}
	get(t, f.srv.URL+"/api/v1/history?route=user&span=1h", &hv)
	n := len(hv.Points)
	if hv.StepSeconds != 60 || n != 60 || hv.Threshold != 0.999 {
		t.Fatalf("history: step %d, %d points, threshold %v", hv.StepSeconds, n, hv.Threshold)
	}
	if p := hv.Points[n-2]; p.Compared != 1000 || *p.MatchRate != 0.9 {
		t.Errorf("previous minute = %+v", p)
	}
	if p := hv.Points[n-1]; p.Compared != 1 || *p.MatchRate != 1 {
		t.Errorf("this minute = %+v", p)
	}
	get(t, f.srv.URL+"/api/v1/history?route=user&span=30d", &hv)
	if hv.StepSeconds != 2*3600 || len(hv.Points) != 360 {
		t.Errorf("30 days: step %d, %d points", hv.StepSeconds, len(hv.Points))
	}
}

func TestMetricsParsed(t *testing.T) {
	f := newFixture(t)
	f.feed900x100()
	res, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	ready := fams["cutover_route_ready"]
	if ready == nil || len(ready.Metric) != 2 {
		t.Fatalf("cutover_route_ready = %v", ready)
	}
	for _, m := range ready.Metric {
		if m.GetGauge().GetValue() != 0 {
			t.Errorf("%v ready = %v, want 0", m.Label, m.GetGauge().GetValue())
		}
	}
	if bi := fams["cutover_build_info"]; bi == nil || bi.Metric[0].GetGauge().GetValue() != 1 {
		t.Errorf("cutover_build_info = %v", bi)
	}
}

func TestVerdictFlipsThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	status := func() string { return routesByName(t, f.srv.URL)["user"].Ready.Status }
	for range 999 {
		f.store.Read(matchEvent())
	}
	if s := status(); s != "insufficient_data" {
		t.Fatalf("after 999: %s", s)
	}
	f.store.Read(mismatchEvent(1, "a", "b"))
	if s := status(); s != "not_ready" {
		t.Fatalf("after 1000 with a mismatch: %s", s)
	}
	// One mismatch in n: the 95 % lower bound passes 99.9 % after ~5,570
	// comparisons; feed until it flips, bounded.
	n := 1000
	for ; n < 20000 && status() != "ready"; n += 250 {
		for range 250 {
			f.store.Read(matchEvent())
		}
	}
	if status() != "ready" {
		t.Fatalf("still not ready after %d comparisons", n)
	}
	t.Logf("ready after %d comparisons with 1 mismatch", n)
}

func TestErrorsAndHeaders(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/api/v1/diffs", 400},
		{"/api/v1/diffs?route=nope", 404},
		{"/api/v1/fields?route=user&limit=0", 400},
		{"/api/v1/fields?route=user&limit=x", 400},
		{"/api/v1/history?route=user&span=forever", 400},
		{"/api/v1/history?route=orders&override=acme", 200},
		{"/api/v1/history?route=orders&override=acne", 404},
		{"/api/v1/history?route=user&override=acme", 404},
		{"/api/v1/fields?route=user", 200},
		{"/api/v1/nothing", 404},
		{"/assets/../web.go", 404},
		{"/assets/app.js", 200},
		{"/assets/uplot/uPlot.iife.min.js", 200},
		{"/healthz", 200},
		{"/readyz", 200},
		{"/", 200},
	} {
		var body map[string]any
		res, err := http.Get(f.srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Errorf("GET %s = %d, want %d", tc.path, res.StatusCode, tc.status)
		}
		if tc.status >= 400 && (json.Unmarshal(b, &body) != nil || body["error"] == "") {
			t.Errorf("GET %s: error body %s", tc.path, b)
		}
		h := res.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Content-Type-Options") != "nosniff" ||
			h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: security headers %v", tc.path, h)
		}
	}
	res, _ := http.Post(f.srv.URL+"/api/v1/routes", "application/json", nil)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST routes = %d", res.StatusCode)
	}
	// A span too short is told so, not that it is not a duration.
	for span, says := range map[string]string{"30s": "1m or more", "0d": "1m or more", "4000d": "30 days at most", "forever": "not a duration", "xd": "not a duration"} {
		var body map[string]string
		res := get(t, f.srv.URL+"/api/v1/history?route=user&span="+span, &body)
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body["error"], says) {
			t.Errorf("span=%s: %d %q, want 400 saying %q", span, res.StatusCode, body["error"], says)
		}
	}
	// A mistyped override is told, with the names there are, not charted
	// as a tenant without traffic.
	var body map[string]string
	get(t, f.srv.URL+"/api/v1/history?route=orders&override=acne", &body)
	if want := `route orders has no override "acne" (its overrides: acme)`; body["error"] != want {
		t.Errorf("override=acne: %q, want %q", body["error"], want)
	}
	// /metrics is one page read by GET, as every other page.
	res, _ = http.Post(f.srv.URL+"/metrics", "text/plain", nil)
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d, want 405", res.StatusCode)
	}
	if res := get(t, f.srv.URL+"/metrics/anything", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics/anything = %d, want 404", res.StatusCode)
	}
}

func TestProbes(t *testing.T) {
	healthy := false
	srv := httptest.NewServer(web.New(web.Options{Stats: stats.View{Store: stats.New()}, Healthy: func() bool { return healthy }}))
	defer srv.Close()
	if res := get(t, srv.URL+"/healthz", nil); res.StatusCode != 503 {
		t.Errorf("unhealthy /healthz = %d", res.StatusCode)
	}
	healthy = true
	if res := get(t, srv.URL+"/healthz", nil); res.StatusCode != 200 {
		t.Errorf("healthy /healthz = %d", res.StatusCode)
	}
	if res := get(t, srv.URL+"/metrics", nil); res.StatusCode != 404 {
		t.Errorf("/metrics without a handler = %d", res.StatusCode)
	}
}
