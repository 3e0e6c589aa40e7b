package rules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
)

func TestDashboardSection(t *testing.T) {
	const backends = "backends:\n  old: {url: \"http://127.0.0.1:8081\"}\n  new: {url: \"http://127.0.0.1:8082\"}\n"
	tests := []struct {
		name     string
		yaml     string
		url      string // "" for none
		selector string
		timeout  time.Duration
		problem  string // "" when valid
	}{
		{name: "absent: local numbers", yaml: "", timeout: rules.DefaultPrometheusTimeout},
		{name: "url only", yaml: "dashboard: {prometheus_url: \"http://prometheus.monitoring:9090\"}",
			url: "http://prometheus.monitoring:9090", timeout: rules.DefaultPrometheusTimeout},
		{name: "url with a path prefix, selector and timeout",
			yaml: "dashboard:\n  prometheus_url: https://example.org/prom\n  prometheus_selector: 'job=\"cutover\", namespace=~\"shop|shop-canary\",'\n  prometheus_timeout: 5s",
			url:  "https://example.org/prom", selector: `job="cutover", namespace=~"shop|shop-canary",`, timeout: 5 * time.Second},
		{name: "not a URL", yaml: "dashboard: {prometheus_url: \"prometheus:9090\"}", problem: `:4:29: "prometheus:9090" is not a Prometheus URL`},
		{name: "a query in the URL", yaml: "dashboard: {prometheus_url: \"http://p:9090/?x=1\"}", problem: `is not a Prometheus URL`},
		{name: "braces in the selector", yaml: "dashboard: {prometheus_url: \"http://p:9090\", prometheus_selector: '{job=\"a\"}'}", problem: `is not a list of label matchers`},
		{name: "matchers without a comma", yaml: "dashboard: {prometheus_url: \"http://p:9090\", prometheus_selector: 'job=\"a\" x=\"b\"'}", problem: `is not a list of label matchers`},
		{name: "selector without URL", yaml: "dashboard: {prometheus_selector: 'job=\"a\"'}", problem: `a selector without a Prometheus URL selects nothing`},
		{name: "unknown key", yaml: "dashboard: {prometheus: \"http://p:9090\"}", problem: `unknown field "prometheus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := rules.Parse("c.yaml", strings.NewReader(backends+tt.yaml+"\n"))
			if tt.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tt.problem) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.problem)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := set.Dashboard
			got := ""
			if d.PrometheusURL != nil {
				got = d.PrometheusURL.String()
			}
			if got != tt.url || d.PrometheusSelector != tt.selector || d.PrometheusTimeout != tt.timeout {
				t.Errorf("dashboard = {%q %q %v}, want {%q %q %v}", got, d.PrometheusSelector, d.PrometheusTimeout, tt.url, tt.selector, tt.timeout)
			}
		})
	}
}

func TestPrintMasksThePrometheusPassword(t *testing.T) {
	set, err := rules.Parse("c.yaml", strings.NewReader("backends:\n  old: {url: \"http://127.0.0.1:8081\"}\n  new: {url: \"http://127.0.0.1:8082\"}\n"+
		"dashboard: {prometheus_url: \"https://cutover:s3cret@prometheus.example:9090\", prometheus_selector: 'job=\"c\"'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := set.Print(&out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "s3cret") || strings.Count(out.String(), "https://cutover:****@prometheus.example:9090") != 2 {
		t.Errorf("print:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "prometheus_timeout: 3s") {
		t.Errorf("the effective dashboard section is missing:\n%s", out.String())
	}
}
