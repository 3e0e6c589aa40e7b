package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/browsertest"
	"github.com/cutover/cutover/stats"
)

// prometheusServer is a real Prometheus (Debian's package) that the test
// runs on loopback.
type prometheusServer struct {
	url    string
	cmd    *exec.Cmd
	exited chan struct{}
	log    *lockedBuffer
}

var listeningOn = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// startPrometheus runs Prometheus scraping targets every 500 ms as job
// "cutover", with the alert rules loaded. Without a prometheus binary the
// test is skipped, unless CUTOVER_REQUIRE_PROMETHEUS is set (CI sets it).
func startPrometheus(t *testing.T, targets []string) *prometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CUTOVER_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("CUTOVER_REQUIRE_PROMETHEUS is set but prometheus is not installed (apt-get install prometheus)")
		}
		t.Skip("prometheus is not installed; set CUTOVER_REQUIRE_PROMETHEUS to make this a failure")
	}
	dir := t.TempDir()
	rulesFile, err := filepath.Abs(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = strconv.Quote(tg)
	}
	config := fmt.Sprintf(`global: {scrape_interval: 500ms, scrape_timeout: 400ms, evaluation_interval: 500ms}
rule_files: [%q]
scrape_configs:
  - job_name: cutover
    static_configs: [{targets: [%s]}]
`, rulesFile, strings.Join(quoted, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address=127.0.0.1:0")
	p := &prometheusServer{cmd: cmd, exited: make(chan struct{}), log: &lockedBuffer{}}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.log.Write([]byte(sc.Text() + "\n"))
			if m := listeningOn.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.exited:
		t.Fatalf("prometheus exited:\n%s", p.log)
	case <-time.After(30 * time.Second):
		t.Fatalf("prometheus did not listen:\n%s", p.log)
	}
	return p
}

// stop ends Prometheus with SIGTERM, and kills it if it lingers.
func (p *prometheusServer) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Log("prometheus ignored SIGTERM; killing it")
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// promResult is one series of an instant query's answer.
type promResult struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query evaluates PromQL now and returns the series, or the API's error.
func (p *prometheusServer) query(q string) ([]promResult, error) {
	res, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var a struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promResult `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&a); err != nil {
		return nil, err
	}
	if a.Status != "success" {
		return nil, fmt.Errorf("%s: %s", q, a.Error)
	}
	return a.Data.Result, nil
}

// scalar evaluates a query that answers one series and returns its value
// (-1 when it answers none).
func (p *prometheusServer) scalar(q string) float64 {
	rs, err := p.query(q)
	if err != nil || len(rs) != 1 {
		return -1
	}
	s, _ := rs[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return v
}

// pollUntil calls cond until it holds, or fails the test with its last
// word after timeout.
func pollUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after %v: %s", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// adminRoute returns one route of an admin listener's /api/v1/routes.
func adminRoute(t *testing.T, admin, name string) stats.RouteView {
	t.Helper()
	res, err := http.Get("http://" + admin + "/api/v1/routes")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var routes []stats.RouteView
	if err := json.NewDecoder(res.Body).Decode(&routes); err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no route %q on %s", name, admin)
	return stats.RouteView{}
}

// rewrite replaces a file whole (rename), as a ConfigMap update does, so a
// watcher never reads half of it.
func rewrite(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFleetViewFromARealPrometheus(t *testing.T) {
	if _, err := exec.LookPath("prometheus"); err != nil && os.Getenv("CUTOVER_REQUIRE_PROMETHEUS") == "" {
		t.Skip("prometheus is not installed; set CUTOVER_REQUIRE_PROMETHEUS to make this a failure")
	}
	old, new := fleetBackends(t)
	// 40 compared reads are needed: neither replica alone will have them.
	const readiness = "readiness: {min_samples: 40, match_rate: 0.5, secondary_write_success: 0.1, p99_latency_increase: 100}\n"
	cfg := fleetConfig(old.URL, new.URL, readiness)
	a := startServe(t, cfg, t.TempDir())
	b := startServe(t, cfg, t.TempDir())
	traffic(t, a.proxy, 30, false) // 30 matches
	traffic(t, b.proxy, 20, true)  // 18 matches, 2 mismatches
	for _, r := range []struct {
		p    *process
		want int64
	}{{a, 30}, {b, 20}} {
		pollUntil(t, 10*time.Second, "comparisons on "+r.p.admin, func() (bool, string) {
			v := adminRoute(t, r.p.admin, "users")
			return v.Reads.Compared == r.want && v.Writes.SecondaryAttempted == 1, fmt.Sprintf("%+v %+v", v.Reads.Window, v.Writes)
		})
		if v := adminRoute(t, r.p.admin, "users"); v.Ready.Status != stats.StatusInsufficientData || v.Scope != nil {
			t.Fatalf("%s alone: %s, scope %+v", r.p.admin, v.Ready.Status, v.Scope)
		}
	}

	prom := startPrometheus(t, []string{a.admin, b.admin})
	pollUntil(t, 20*time.Second, "Prometheus scraped both replicas after the traffic", func() (bool, string) {
		up := prom.scalar(`count(up{job="cutover"} == 1)`)
		compared := prom.scalar(`sum(cutover_comparisons_total{job="cutover", route="users", outcome=~"match|mismatch"})`)
		failed := prom.scalar(`sum(cutover_secondary_writes_total{job="cutover", route="flaky", outcome="failed"})`)
		return up == 2 && compared == 50 && failed == 2, fmt.Sprintf("up %v, compared %v, failed flaky writes %v", up, compared, failed)
	})

	// Switch replica a to the fleet view by a reload of its rules.
	rewrite(t, a.config, cfg+fmt.Sprintf("dashboard: {prometheus_url: %q, prometheus_selector: 'job=\"cutover\"'}\n", prom.url))
	pollUntil(t, 10*time.Second, "replica a shows the fleet's numbers", func() (bool, string) {
		v := adminRoute(t, a.admin, "users")
		return v.Scope != nil && v.Scope.Fleet, fmt.Sprintf("scope %+v", v.Scope)
	})
	v := adminRoute(t, a.admin, "users")
	if v.Scope.Replicas != 2 || v.Reads.Compared != 50 || v.Reads.Matched != 48 || v.Reads.Mismatched != 2 || v.Reads.Total != 50 {
		t.Errorf("fleet reads = %+v (scope %+v), want 50 compared, 48 matched over 2 replicas", v.Reads.Window, v.Scope)
	}
	if v.Writes.SecondaryAttempted != 2 || v.Writes.SecondarySucceeded != 2 {
		t.Errorf("fleet writes = %+v, want the 2 writes of both replicas", v.Writes)
	}
	if v.Latency.Old.Count == 0 || v.Latency.New.Count == 0 || v.Latency.P99Increase == nil {
		t.Errorf("fleet latency = %+v", v.Latency)
	}
	if w := v.Reads.Windows["5m"]; w.Compared != 50 && w.Compared != 0 {
		// increase() extrapolates; it is rounded, never a wild number.
		if w.Compared < 40 || w.Compared > 80 {
			t.Errorf("5m window compared = %d", w.Compared)
		}
	}
	if !v.Ready.Verdict || v.Ready.Status != stats.StatusReady {
		t.Errorf("the fleet has 50 of the 40 samples needed at 96%% matched: verdict %s %v", v.Ready.Status, v.Ready.Reasons)
	}
	if f := adminRoute(t, a.admin, "flaky"); f.Writes.SecondaryFailed != 2 || f.Scope == nil || !f.Scope.Fleet {
		t.Errorf("fleet flaky writes = %+v", f.Writes)
	}
	// A reset cannot clear the counters the fleet's verdict sums: it is
	// refused, not answered 200 with the verdict unchanged.
	res, err := http.Post("http://"+a.admin+"/api/v1/routes/users/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusConflict || !strings.Contains(string(body), "prometheus_url") {
		t.Errorf("reset under the fleet view: %s %s, want 409 saying why", res.Status, body)
	}
	if v := adminRoute(t, a.admin, "users"); v.Reads.Compared != 50 || !v.Ready.Verdict {
		t.Errorf("after the refused reset: %d compared, verdict %v", v.Reads.Compared, v.Ready.Verdict)
	}
	// Replica b has no dashboard section: its own numbers.
	if v := adminRoute(t, b.admin, "users"); v.Scope != nil || v.Reads.Compared != 20 {
		t.Errorf("replica b: scope %+v, %d compared", v.Scope, v.Reads.Compared)
	}

	t.Run("every dashboard query answers", func(t *testing.T) {
		labelValues := regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)
		grafana := strings.NewReplacer("$job", "cutover", "$route", ".*", "$__rate_interval", "1m")
		queries := dashboardQueries(t)
		// rate() needs two scrapes in its range: poll until it has them.
		pollUntil(t, 15*time.Second, "every dashboard query has series", func() (bool, string) {
			var bad []string
			for _, q := range queries {
				expr, label := grafana.Replace(q.expr), ""
				if m := labelValues.FindStringSubmatch(expr); m != nil {
					expr, label = m[1], m[2]
				}
				rs, err := prom.query(expr)
				switch {
				case err != nil:
					bad = append(bad, fmt.Sprintf("%s: %v", q.where, err))
				case len(rs) == 0:
					bad = append(bad, fmt.Sprintf("%s: no series for %s", q.where, expr))
				case label != "" && rs[0].Metric[label] == "":
					bad = append(bad, fmt.Sprintf("%s: series without label %s", q.where, label))
				}
			}
			return len(bad) == 0, "\n" + strings.Join(bad, "\n")
		})
	})

	t.Run("the alert rules load and evaluate", func(t *testing.T) {
		pollUntil(t, 10*time.Second, "every alert rule evaluated without error", func() (bool, string) {
			res, err := http.Get(prom.url + "/api/v1/rules")
			if err != nil {
				return false, err.Error()
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			var a struct {
				Data struct {
					Groups []struct {
						Rules []struct {
							Name      string `json:"name"`
							Health    string `json:"health"`
							LastError string `json:"lastError"`
						} `json:"rules"`
					} `json:"groups"`
				} `json:"data"`
			}
			if err := json.Unmarshal(body, &a); err != nil {
				return false, err.Error()
			}
			n, bad := 0, []string{}
			for _, g := range a.Data.Groups {
				for _, r := range g.Rules {
					n++
					if r.Health != "ok" {
						bad = append(bad, r.Name+": "+r.Health+" "+r.LastError)
					}
				}
			}
			return n == len(alertExpressions(t)) && len(bad) == 0, fmt.Sprintf("%d rules, not ok: %v", n, bad)
		})
	})

	t.Run("the dashboard says whose numbers it shows", func(t *testing.T) {
		ctx := browsertest.New(t)
		browsertest.Navigate(t, ctx, "http://"+a.admin+"/")
		browsertest.WaitFor(t, ctx, "the scope line", `!!document.getElementById('scope')`)
		if got := browsertest.Eval[string](t, ctx, `document.getElementById('scope').textContent`); !strings.HasPrefix(got, "All replicas: 2 summed by Prometheus") {
			t.Errorf("scope line = %q", got)
		}
		browsertest.Screenshot(t, ctx, "fleet-overview")
	})

	// Reset on every replica, with the caller's word that it means each
	// replica's share: the fleet's evidence starts again.
	for _, p := range []*process{a, b} {
		res, err := http.Post("http://"+p.admin+"/api/v1/routes/users/reset?scope=replica", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("reset ?scope=replica on %s: %s", p.admin, res.Status)
		}
	}
	pollUntil(t, 10*time.Second, "the fleet's evidence starts again once every replica is reset", func() (bool, string) {
		v := adminRoute(t, a.admin, "users")
		return v.Reads.Compared == 0 && !v.Ready.Verdict, fmt.Sprintf("%d compared, %s", v.Reads.Compared, v.Ready.Status)
	})
	// Without Prometheus the dashboard falls back to the replica's numbers
	// and says why.
	prom.stop(t)
	pollUntil(t, 15*time.Second, "replica a falls back to its own numbers", func() (bool, string) {
		v := adminRoute(t, a.admin, "users")
		// Its own evidence, reset above.
		return v.Scope != nil && !v.Scope.Fleet && v.Scope.Error != "" && v.Reads.Compared == 0, fmt.Sprintf("scope %+v, %d compared", v.Scope, v.Reads.Compared)
	})
	// Its own evidence is not the fleet's: no verdict on it.
	if v := adminRoute(t, a.admin, "users"); v.Ready.Verdict || v.Ready.Status != stats.StatusInsufficientData ||
		len(v.Ready.Reasons) == 0 || !strings.Contains(v.Ready.Reasons[0], "the fleet's evidence is unavailable") {
		t.Errorf("without Prometheus: %s %v, want the verdict withheld", v.Ready.Status, v.Ready.Reasons)
	}
}
