package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// The artefacts under deploy/ that query the gateway's metrics.
const (
	grafanaDashboard = "../../deploy/grafana/cutover.json"
	alertRules       = "../../deploy/prometheus/alerts.yaml"
)

// metricName finds the series names a PromQL expression reads. Every name
// the artefacts use starts with cutover_, apart from Prometheus' own up.
var metricName = regexp.MustCompile(`\b(cutover_[a-z0-9_]+|up)\b`)

// grafanaQuery is one PromQL expression of the dashboard and where it is.
type grafanaQuery struct{ where, expr string }

// dashboardQueries returns every PromQL expression of the Grafana dashboard:
// panel targets (rows included) and template variables.
func dashboardQueries(t *testing.T) []grafanaQuery {
	t.Helper()
	b, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	}
	type panel struct {
		ID      int       `json:"id"`
		Title   string    `json:"title"`
		Targets []target  `json:"targets"`
		Panels  []panel   `json:"panels"`
		Grid    *struct{} `json:"gridPos"`
	}
	var dash struct {
		UID        string  `json:"uid"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", grafanaDashboard, err)
	}
	var out []grafanaQuery
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			if p.Grid == nil {
				t.Errorf("panel %q has no gridPos", p.Title)
			}
			for _, tg := range p.Targets {
				out = append(out, grafanaQuery{where: fmt.Sprintf("panel %q %s", p.Title, tg.RefID), expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			out = append(out, grafanaQuery{where: "variable $" + v.Name, expr: v.Definition})
		}
	}
	return out
}

// alertExpressions returns every alert's expression by alert name.
func alertExpressions(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatalf("%s: %v", alertRules, err)
	}
	out := map[string]string{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// exposedFamilies reads /metrics and returns each family's type by name.
func exposedFamilies(t *testing.T, admin string) map[string]string {
	t.Helper()
	res, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// missingMetrics returns the names queried in exprs that the families lack,
// each with where it is used. A histogram's _bucket, _sum and _count series
// are its family's.
func missingMetrics(families map[string]string, exprs map[string]string) []string {
	var missing []string
	for where, expr := range exprs {
		for _, name := range metricName.FindAllString(expr, -1) {
			if name == "up" {
				continue // Prometheus' own, per target
			}
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && families[b] == "histogram" {
					base = b
				}
			}
			if _, ok := families[base]; !ok || (base != name && families[base] != "histogram") {
				missing = append(missing, fmt.Sprintf("%s (in %s)", name, where))
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// fleetBackends are an old and a new backend whose answers make every
// metric of the gateway appear: /users/{id} matches except for id 13,
// writes to /flaky/{id} fail on new.
func fleetBackends(t *testing.T) (old, new *httptest.Server) {
	t.Helper()
	var newCalls atomic.Int64
	answer := func(side string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			if side == "new" {
				newCalls.Add(1)
				if strings.HasPrefix(r.URL.Path, "/flaky/") && r.Method != http.MethodGet {
					http.Error(w, "new refuses", http.StatusInternalServerError)
					return
				}
			}
			w.Header().Set("Content-Type", "application/json")
			name := "ada"
			if side == "new" && r.URL.Path == "/users/13" {
				name = "Ada"
			}
			fmt.Fprintf(w, `{"path": %q, "name": %q}`, r.URL.Path, name)
		}
	}
	old, new = httptest.NewServer(answer("old")), httptest.NewServer(answer("new"))
	t.Cleanup(old.Close)
	t.Cleanup(new.Close)
	return old, new
}

// fleetConfig is a gateway configuration over fleetBackends; extra is
// appended (a dashboard: section).
func fleetConfig(old, new, extra string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
server: {max_request_body: 1KiB, shutdown_timeout: 5s}
queue: {base_backoff: 50ms, max_backoff: 200ms, max_attempts: 3}
backends:
  old: {url: %q, timeout: 2s}
  new: {url: %q, timeout: 2s}
defaults: {phase: shadow-read, secondary_writes: async}
routes:
  - name: users
    match: {path: "/users/{id}"}
  - name: flaky
    match: {path: "/flaky/{id}"}
%s`, old, new, extra)
}

// traffic sends n reads to /users (matches, and one mismatch in ten when
// mismatches is set), writes that new accepts and refuses, and one request
// too large to forward.
func traffic(t *testing.T, proxy string, n int, mismatches bool) {
	t.Helper()
	do := func(method, path, body string, want int) {
		req, err := http.NewRequest(method, "http://"+proxy+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s %s: %d, want %d", method, path, res.StatusCode, want)
		}
	}
	for i := range n {
		id := i % 9 // 0..8: never 13
		if mismatches && i%10 == 9 {
			id = 13
		}
		do(http.MethodGet, fmt.Sprintf("/users/%d", id), "", http.StatusOK)
	}
	do(http.MethodPut, "/users/1", `{"name": "ada"}`, http.StatusOK)
	do(http.MethodPut, "/flaky/1", `{"x": 1}`, http.StatusOK)
	do(http.MethodPost, "/users/1", strings.Repeat("x", 2048), http.StatusRequestEntityTooLarge)
}

func TestDashboardAndAlertsQueryOnlyExposedMetrics(t *testing.T) {
	old, new := fleetBackends(t)
	p := startServe(t, fleetConfig(old.URL, new.URL, ""), t.TempDir())
	traffic(t, p.proxy, 20, true)

	exprs := map[string]string{}
	for _, q := range dashboardQueries(t) {
		exprs[q.where] = q.expr
	}
	for name, expr := range alertExpressions(t) {
		exprs["alert "+name] = expr
	}
	if len(exprs) < 20 {
		t.Fatalf("found only %d queries: is the dashboard read whole?", len(exprs))
	}
	// Labelled series appear once their first event is counted, shortly
	// after the answers (shadow work and retries run off the request path).
	deadline := time.Now().Add(15 * time.Second)
	for {
		missing := missingMetrics(exposedFamilies(t, p.admin), exprs)
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queried but not in /metrics:\n  %s", strings.Join(missing, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMissingMetricsKnowsHistogramSeries(t *testing.T) {
	families := map[string]string{"cutover_d_seconds": "histogram", "cutover_c_total": "counter"}
	exprs := map[string]string{
		"ok":        `rate(cutover_d_seconds_bucket[5m]) + cutover_c_total + up`,
		"not hist":  `cutover_c_total_bucket`,
		"unknown":   `sum(cutover_nope)`,
		"sum count": `cutover_d_seconds_sum / cutover_d_seconds_count`,
	}
	got := missingMetrics(families, exprs)
	want := []string{"cutover_c_total_bucket (in not hist)", "cutover_nope (in unknown)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestComposeRunsTheDemo checks the wiring of deploy/compose: the command
// it gives the image is one the demo accepts, Prometheus scrapes the port
// the demo's admin listener uses, and every mounted file exists.
func TestComposeRunsTheDemo(t *testing.T) {
	const dir = "../../deploy/compose/"
	b, err := os.ReadFile(dir + "compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
			Volumes []string `yaml:"volumes"`
			Ports   []string `yaml:"ports"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	gw, ok := compose.Services["cutover"]
	if !ok || len(gw.Command) == 0 || gw.Command[0] != "demo" {
		t.Fatalf("service cutover does not run the demo: %+v", gw)
	}
	// The flags, with the container's addresses turned into free loopback
	// ports, must start the demo.
	args := append([]string(nil), gw.Command...)
	adminPort := ""
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "--listen" || args[i] == "--admin-listen" {
			_, port, err := net.SplitHostPort(args[i+1])
			if err != nil {
				t.Fatal(err)
			}
			if args[i] == "--admin-listen" {
				adminPort = port
			}
			args[i+1] = "127.0.0.1:0"
		}
	}
	var stdout, stderr strings.Builder
	if code := run(append(args, "--rate", "0", "--duration", "300ms"), &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "cutover demo is running") {
		t.Fatalf("demo %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
	}
	published := false
	for _, p := range gw.Ports {
		published = published || strings.HasSuffix(p, ":"+adminPort)
		if !strings.HasPrefix(p, "127.0.0.1:") {
			t.Errorf("port %s is published beyond the host's loopback: the demo's admin listener has no token", p)
		}
	}
	if !published {
		t.Errorf("the admin port %s is not published: %v", adminPort, gw.Ports)
	}
	prom, err := os.ReadFile(dir + "prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(prom), `"cutover:`+adminPort+`"`) {
		t.Errorf("prometheus.yml does not scrape cutover:%s", adminPort)
	}
	for name, s := range compose.Services {
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if _, err := os.Stat(dir + src); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
}
