package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite monitoring/prometheusrule.yaml from ../prometheus/alerts.yaml")

const (
	alertsFile = "../prometheus/alerts.yaml"
	ruleFile   = "monitoring/prometheusrule.yaml"
)

// alertGroups reads the alert rules that promtool checks and tests.
func alertGroups(t *testing.T) monitoringv1.PrometheusRuleSpec {
	t.Helper()
	b, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var spec monitoringv1.PrometheusRuleSpec
	if err := unmarshalStrict(b, &spec); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	return spec
}

// checkPrometheusRule holds the PrometheusRule to the alert rules file, so
// that the two never drift apart.
func checkPrometheusRule(t *testing.T, r *monitoringv1.PrometheusRule) {
	t.Helper()
	got, _ := json.Marshal(r.Spec)
	want, _ := json.Marshal(alertGroups(t))
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s: run go test -run PrometheusRule -update in deploy/kubernetes", ruleFile, alertsFile)
	}
}

func TestPrometheusRuleIsTheAlertRules(t *testing.T) {
	if *update {
		rule := map[string]any{
			"apiVersion": "monitoring.coreos.com/v1",
			"kind":       "PrometheusRule",
			"metadata":   map[string]any{"name": "cutover"},
			"spec":       alertGroups(t),
		}
		b, err := yaml.Marshal(rule)
		if err != nil {
			t.Fatal(err)
		}
		head := "# Generated from deploy/prometheus/alerts.yaml by\n#   go test -run PrometheusRule -update   (in deploy/kubernetes)\n# Edit alerts.yaml, not this file; the test fails when they differ.\n"
		if err := os.WriteFile(ruleFile, append([]byte(head), b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	var r monitoringv1.PrometheusRule
	if err := unmarshalStrict(b, &r); err != nil {
		t.Fatalf("%s: %v", ruleFile, err)
	}
	checkPrometheusRule(t, &r)
}
