package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/internal/browsertest"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
)

// backend answers GET /users/{id}; the new one upper-cases the email of
// every tenth user, so 1000 reads of ids 0..999 give 900 matches and 100
// mismatches on one path.
func backend(t *testing.T, isNew bool) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		email := "user" + id + "@example.com"
		var n int
		fmt.Sscan(id, &n)
		if isNew && n%10 == 0 {
			email = strings.ToUpper(email)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"id": n, "email": email,
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// gatewayUnderTest is a running gateway with its admin surface, over a
// statistics store kept in dir.
type gatewayUnderTest struct {
	proxy *httptest.Server
	admin *httptest.Server
	gw    *gateway.Proxy
	store *stats.Store
}

func start(t *testing.T, set *rules.Set, dir string) *gatewayUnderTest {
	t.Helper()
	store, err := stats.Open(stats.Options{Dir: dir, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	live := rules.NewStatic(set)
	reg := prometheus.NewRegistry()
	gw, err := gateway.New(gateway.Config{Rules: live, Stats: store, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	view := stats.View{Store: store, Config: func() []stats.RouteInfo { return stats.RouteInfos(live.Current()) }}
	reg.MustRegister(stats.NewCollector(view, stats.BuildInfo{Version: "e2e"}))
	admin := web.New(web.Options{Stats: view, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})})
	g := &gatewayUnderTest{proxy: httptest.NewServer(gw), admin: httptest.NewServer(admin), gw: gw, store: store}
	t.Cleanup(func() { g.stop(t) })
	return g
}

// stop closes the gateway in the order cmd does: listener, background
// work, then the statistics (which flushes them).
func (g *gatewayUnderTest) stop(t *testing.T) {
	if g.proxy == nil {
		return
	}
	g.proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.gw.Close(ctx); err != nil {
		t.Errorf("gateway close: %v", err)
	}
	g.admin.Close()
	if err := g.store.Close(ctx); err != nil {
		t.Errorf("stats close: %v", err)
	}
	g.proxy = nil
}

func config(t *testing.T, oldURL, newURL string) *rules.Set {
	t.Helper()
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
backends:
  old: {url: %q, timeout: 2s}
  new: {url: %q, timeout: 2s}
defaults:
  phase: shadow-read
  compare:
    ignore: ["$..updated_at"]
    ignore_headers: ["Date", "Content-Length"]
routes:
  - name: user
    match: {methods: [GET], path: "/users/{id}"}
`, oldURL, newURL)
	set, err := rules.Parse("e2e.yaml", strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

type routeJSON struct {
	Name  string `json:"name"`
	Reads struct {
		Total      int64   `json:"total"`
		Compared   int64   `json:"compared"`
		Matched    int64   `json:"matched"`
		Mismatched int64   `json:"mismatched"`
		Skipped    int64   `json:"skipped"`
		Errors     int64   `json:"errors"`
		MatchRate  float64 `json:"match_rate"`
	} `json:"reads"`
	Ready struct {
		Verdict bool     `json:"verdict"`
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
	} `json:"ready"`
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", url, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func userRoute(t *testing.T, admin string) routeJSON {
	t.Helper()
	var rs []routeJSON
	getJSON(t, admin+"/api/v1/routes", &rs)
	for _, r := range rs {
		if r.Name == "user" {
			return r
		}
	}
	t.Fatalf("no user route in %+v", rs)
	return routeJSON{}
}

// waitOutcomes polls until n reads have an outcome: comparisons run off the
// request path.
func waitOutcomes(t *testing.T, admin string, n int64) routeJSON {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := userRoute(t, admin)
		if r.Reads.Total >= n {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d read outcomes after 30 s", r.Reads.Total, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metrics(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	res, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			}
		}
	}
	return out
}

func TestEvidenceEndToEnd(t *testing.T) {
	old, new := backend(t, false), backend(t, true)
	set := config(t, old.URL, new.URL)
	dir := t.TempDir()
	g := start(t, set, dir)

	client := &http.Client{Timeout: 5 * time.Second}
	for i := range 1000 {
		res, err := client.Get(fmt.Sprintf("%s/users/%d", g.proxy.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET /users/%d = %d", i, res.StatusCode)
		}
	}
	r := waitOutcomes(t, g.admin.URL, 1000)
	if r.Reads.Total != 1000 || r.Reads.Compared != 1000 || r.Reads.Matched != 900 || r.Reads.Mismatched != 100 || r.Reads.Skipped != 0 || r.Reads.Errors != 0 {
		t.Fatalf("reads = %+v", r.Reads)
	}
	if r.Reads.MatchRate != 0.9 || r.Ready.Status != "not_ready" {
		t.Errorf("match rate %v, ready %+v", r.Reads.MatchRate, r.Ready)
	}

	var fv struct {
		Fields []struct {
			Path  string `json:"path"`
			Count int64  `json:"count"`
		} `json:"fields"`
	}
	getJSON(t, g.admin.URL+"/api/v1/fields?route=user", &fv)
	if len(fv.Fields) != 1 || fv.Fields[0].Path != "$['email']" || fv.Fields[0].Count != 100 {
		t.Errorf("fields = %+v", fv.Fields)
	}

	m := metrics(t, g.admin.URL)
	for key, want := range map[string]float64{
		"cutover_comparisons_total{outcome=match,reason=,route=user}":    900,
		"cutover_comparisons_total{outcome=mismatch,reason=,route=user}": 100,
		"cutover_route_ready{route=user}":                                0,
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if t.Failed() {
		for k, v := range m {
			if strings.HasPrefix(k, "cutover_") {
				t.Logf("%s %v", k, v)
			}
		}
	}

	// The dashboard shows the same numbers as the API.
	t.Run("browser", func(t *testing.T) {
		ctx := browsertest.New(t)
		browsertest.Navigate(t, ctx, g.admin.URL+"/")
		browsertest.WaitFor(t, ctx, "the user row", `!!document.querySelector('tr.route-row[data-route="user"] .badge')`)
		if got := browsertest.Eval[string](t, ctx, `document.querySelector('tr.route-row[data-route="user"] .match-rate').firstChild.textContent`); got != "90.00 %" {
			t.Errorf("dashboard match rate = %q, API 0.9", got)
		}
		browsertest.Screenshot(t, ctx, "e2e-overview")
		browsertest.Navigate(t, ctx, g.admin.URL+"/#/route/user")
		browsertest.WaitFor(t, ctx, "the highlighted email", `[...document.querySelectorAll('.sbs .side.new .line.diff')].some(e => e.textContent.includes('@EXAMPLE.COM'))`)
		browsertest.Screenshot(t, ctx, "e2e-route")
	})

	// A restart keeps the evidence.
	g.stop(t)
	g2 := start(t, set, dir)
	r2 := userRoute(t, g2.admin.URL)
	if r2.Reads != r.Reads || r2.Ready.Status != r.Ready.Status {
		t.Errorf("after restart reads %+v ready %s, before %+v %s", r2.Reads, r2.Ready.Status, r.Reads, r.Ready.Status)
	}
	getJSON(t, g2.admin.URL+"/api/v1/fields?route=user", &fv)
	if len(fv.Fields) != 1 || fv.Fields[0].Count != 100 {
		t.Errorf("fields after restart = %+v", fv.Fields)
	}
}
