package rules_test

import (
	"strings"
	"testing"

	"github.com/cutover/cutover/rules"
)

// printed returns the two parts `check --print` writes: the file as read,
// and what is in force.
func printed(t *testing.T, set *rules.Set) (asRead, inForce string) {
	t.Helper()
	var out strings.Builder
	if err := set.Print(&out); err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(out.String(), "as read, secrets masked:\n")
	asRead, inForce, ok := strings.Cut(rest, "# In force, defaults applied:\n")
	if !ok {
		t.Fatalf("print:\n%s", out.String())
	}
	return asRead, inForce
}

// The file as `check --print` shows it reads back as the same configuration:
// settings the file left out stay out (they printed as "" and the printout
// did not validate), and every setting in force is shown, the readiness
// slack, the breaker and the recheck included.
func TestThePrintedFileReadsBack(t *testing.T) {
	src := `listen: "127.0.0.1:8080"
server: {trusted_proxies: [10.0.0.0/8, 192.168.0.0/16]}
backends:
  old: {url: "http://127.0.0.1:9001"}
  new: {url: "http://127.0.0.1:9002", timeout: 2s}
shadow: {max_body: 2MiB}
readiness: {match_rate: 0.995, p99_latency_slack: 5ms}
routes:
  - name: users
    match: {path: "/users/{id}"}
    phase: shadow-read
    compare:
      ignore: ["$.meta"]
      tolerance: [{path: "$.price", absolute: 0.01, relative: 1e-3}]
`
	set, err := rules.Parse("c.yaml", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	asRead, inForce := printed(t, set)
	again, err := rules.Parse("printed.yaml", strings.NewReader(asRead))
	if err != nil {
		t.Fatalf("the printed file does not read back: %v\n%s", err, asRead)
	}
	if _, inForceAgain := printed(t, again); inForceAgain != inForce {
		t.Errorf("read back, in force:\n%s\nwant:\n%s", inForceAgain, inForce)
	}
	for _, want := range []string{"p99_latency_slack: 5ms", "breaker_open_for: 10s", "recheck_after: 0s", "max_body: 2097152", "lag_factor: 8",
		"- 10.0.0.0/8\n", "- 192.168.0.0/16\n"} {
		if !strings.Contains(inForce, want) {
			t.Errorf("in force lacks %q:\n%s", want, inForce)
		}
	}
}
