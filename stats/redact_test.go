package stats_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// A secret is redacted wherever the comparison shows it, whatever path the
// difference carries: in new's terms after a rename, at old's index in an
// unordered array, or in a body with a second document after the first.
// A redacted difference shows its own value's mark, the body's mark for
// the same value, and a status code is shown as it is.
func TestRedactionFollowsTheSecretNotThePath(t *testing.T) {
	for _, tt := range []struct {
		name, compare, redact string
		old, new              string
		oldStatus             int
		secrets               []string
		// mark: the difference at this path shows, as new, the mark the
		// new body shows for the value at markAt.
		path, markAt string
	}{
		{name: "renamed", compare: `rename: [{from: "$.user.pass", to: password}]`, redact: `"$..pass"`,
			old: `{"user":{"pass":"OLD-SECRET-1"}}`, new: `{"user":{"password":"NEW-SECRET-2"}}`,
			secrets: []string{"OLD-SECRET-1"}},
		{name: "unordered by id", compare: `unordered: [{path: "$.cards", by: id}]`, redact: `"$..number"`,
			old:     `{"cards":[{"id":1,"number":"AAAA-1111"},{"id":2,"number":"BBBB-2222"}]}`,
			new:     `{"cards":[{"id":2,"number":"BBBB-2222"},{"id":1,"number":"CCCC-3333"}]}`,
			secrets: []string{"AAAA-1111", "BBBB-2222", "CCCC-3333"}, path: "$['cards'][0]['number']", markAt: "CCCC-3333"},
		{name: "unordered with a filter", compare: `unordered: [{path: "$.cards", by: id}]`, redact: `"$.cards[?@.type=='credit'].number"`,
			old:     `{"cards":[{"id":1,"type":"CREDIT","number":"DDDD-4444"},{"id":2,"type":"debit","number":"GGGG-7777"}]}`,
			new:     `{"cards":[{"id":2,"type":"debit","number":"GGGG-7777"},{"id":1,"type":"credit","number":"FFFF-6666"}]}`,
			secrets: []string{"FFFF-6666"}},
		{name: "a second document", redact: `"$..password"`, oldStatus: 500,
			old: "{\"id\":1}\n{\"id\":2,\"password\":\"hunter2-SECRET\"}", new: `{"id":1}`,
			secrets: []string{"hunter2-SECRET"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\nroutes:\n  - name: user\n    match: {path: \"/u\"}\n"
			if tt.compare != "" {
				cfg += "    compare:\n      " + tt.compare + "\n"
			}
			set, err := rules.Parse("cfg.yaml", strings.NewReader(cfg))
			if err != nil {
				t.Fatal(err)
			}
			old := &compare.Response{Status: 200, Body: []byte(tt.old)}
			if tt.oldStatus != 0 {
				old.Status = tt.oldStatus
			}
			new := &compare.Response{Status: 200, Body: []byte(tt.new)}
			res := set.Route("user").Compare.Compare(*old, *new)
			if res.Outcome != compare.Mismatch {
				t.Fatalf("outcome %s: %+v", res.Outcome, res)
			}
			s, err := stats.Open(stats.Options{Now: newClock().Now, FlushInterval: time.Hour, Redact: stats.RedactOptions{Paths: []string{strings.Trim(tt.redact, `"`)}}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close(context.Background()) })
			s.Read(stats.ReadEvent{Route: "user", Outcome: stats.Mismatch, Result: &res, Old: old, New: new,
				Request: &stats.Request{Method: "GET", Target: "/u"}})
			e, _ := s.Evidence(userRoute, stats.EvidenceQuery{Diffs: true})
			shown := mustJSON(t, e)
			for _, secret := range tt.secrets {
				if strings.Contains(shown, secret) {
					t.Errorf("%s is shown: %s", secret, shown)
				}
			}
			smp := e.Diffs.Groups[0].Samples[0]
			for _, d := range smp.Diffs {
				if d.Path == "status" && (d.Old != "500" || d.New != "200") {
					t.Errorf("status difference %q → %q, want the codes as they are", d.Old, d.New)
				}
				if tt.path != "" && d.Path == tt.path {
					i := strings.Index(smp.New.Body, `"id":1`)
					if i < 0 || !strings.Contains(smp.New.Body[i:], `"number":`+d.New) {
						t.Errorf("%s shows new as %s, want the mark of %s as new's body shows it: %s", d.Path, d.New, tt.markAt, smp.New.Body)
					}
				}
			}
		})
	}
}
