package gateway_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// journal records which backend received what, in arrival order, across
// both backends.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.entries = append(j.entries, s)
	j.mu.Unlock()
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

func journaled(j *journal, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		marker := ""
		if r.Header.Get("X-Cutover-Shadow") == "1" {
			marker = "(shadow)"
		}
		j.add(name + marker + " " + r.Method)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Served-By", name)
		w.Write([]byte(`{"id": 1, "name": "same on both"}`))
	}
}

func TestPhases(t *testing.T) {
	tests := []struct {
		phase    string
		servedBy string
		// reads: what the backends saw for one GET, and its outcome
		reads   []string
		outcome stats.Outcome
		// writes: what the backends saw for one PUT, in order
		writes []string
	}{
		{"prepare", "old", []string{"old GET"}, stats.Skipped, []string{"old PUT"}},
		{"dual-write", "old", []string{"old GET"}, stats.Skipped, []string{"old PUT", "new(shadow) PUT"}},
		{"backfill", "old", []string{"old GET"}, stats.Skipped, []string{"old PUT", "new(shadow) PUT"}},
		{"shadow-read", "old", []string{"old GET", "new(shadow) GET"}, stats.Match, []string{"old PUT", "new(shadow) PUT"}},
		{"cutover", "new", []string{"new GET", "old(shadow) GET"}, stats.Match, []string{"new PUT", "old(shadow) PUT"}},
		{"cleanup", "new", []string{"new GET"}, stats.Skipped, []string{"new PUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.phase, func(t *testing.T) {
			j := &journal{}
			old := newBackend(t, "old", journaled(j, "old"))
			new := newBackend(t, "new", journaled(j, "new"))
			g := startGateway(t, old, new, "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: "+tt.phase+"\n")

			res, _ := g.do("GET", "/items/1", "")
			if got := res.Header.Get("X-Served-By"); got != tt.servedBy {
				t.Errorf("GET served by %q, want %q", got, tt.servedBy)
			}
			eventually(t, "the read's outcome", func() bool { return total(g.route("items")) == 1 })
			v := g.route("items")
			if got := outcomeOf(v); got != tt.outcome {
				t.Errorf("read outcome = %s, want %s (view %+v)", got, tt.outcome, v.Reads)
			}
			if tt.outcome == stats.Skipped && v.Reads.Reasons["skipped/phase"] != 1 {
				t.Errorf("a read the phase does not compare is skipped with reason phase: %v", v.Reads.Reasons)
			}
			if got := j.list(); !equalUnordered(got, tt.reads) {
				t.Errorf("GET reached %v, want %v", got, tt.reads)
			}

			j.mu.Lock()
			j.entries = nil
			j.mu.Unlock()
			res, _ = g.do("PUT", "/items/1", `{"name":"x"}`)
			if res.StatusCode != 200 || res.Header.Get("X-Served-By") != tt.servedBy {
				t.Errorf("PUT: %d served by %q, want 200 from %s", res.StatusCode, res.Header.Get("X-Served-By"), tt.servedBy)
			}
			eventually(t, "the write to settle", func() bool { return len(j.list()) == len(tt.writes) && g.proxyIdle() })
			if got := j.list(); strings.Join(got, ",") != strings.Join(tt.writes, ",") {
				t.Errorf("PUT reached %v, want %v in this order", got, tt.writes)
			}
		})
	}
}

func outcomeOf(v stats.RouteView) stats.Outcome {
	switch {
	case v.Reads.Matched > 0:
		return stats.Match
	case v.Reads.Mismatched > 0:
		return stats.Mismatch
	case v.Reads.Skipped > 0:
		return stats.Skipped
	case v.Reads.Errors > 0:
		return stats.Error
	case v.Reads.Pending > 0:
		return stats.Pending
	}
	return ""
}

// equalUnordered compares two small lists as sets: the primary and the
// shadow of a read are sent at once, so their arrival order is free.
func equalUnordered(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	left := map[string]int{}
	for _, s := range a {
		left[s]++
	}
	for _, s := range b {
		left[s]--
	}
	for _, n := range left {
		if n != 0 {
			return false
		}
	}
	return true
}

// Routes match the path as backends read it: percent-escapes decoded, an
// escaped slash kept inside its segment. A write to "/%6Frders/1" is a
// write to /orders/1 and reaches both backends; matched as sent, it took
// the unmatched route's phase and never reached the new one. A path
// parameter is decoded for overrides. The backends get the path as sent.
func TestAnEscapedPathMatchesItsRoute(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"ok":true}`))
	new := newBackend(t, "new", jsonAnswer("new", `{"ok":true}`))
	g := startGateway(t, old, new, `routes:
  - name: orders
    match: {path: "/orders/{id}"}
    phase: dual-write
  - name: users
    match: {path: "/users/{email}"}
    phase: prepare
    overrides:
      - name: ada
        when: {path_param: email, equals: "ada@example.com"}
        phase: dual-write
`)
	for _, c := range []struct {
		target string
		copied bool
	}{
		{"/%6Frders/1", true},
		{"/orders/%31", true},
		{"/users/ada%40example.com", true},
		{"/users/bob%40example.com", false},
		{"/orders%2F1", false},
	} {
		before := new.count()
		if res, _ := g.do("PUT", c.target, `{}`); res.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %s", c.target, res.Status)
		}
		if got := old.seen()[len(old.seen())-1].Target; got != c.target {
			t.Errorf("the primary got %s, want %s as sent", got, c.target)
		}
		if c.copied {
			eventually(t, "the secondary's copy of "+c.target, func() bool { return new.count() == before+1 })
			if got := new.seen()[before].Target; got != c.target {
				t.Errorf("the secondary got %s, want %s as sent", got, c.target)
			}
		}
	}
	// The queue drains before the deliveries are counted.
	eventually(t, "the queue to drain and the deliveries counted", func() bool {
		return g.proxyIdle() && g.route("orders").Writes.SecondarySucceeded >= 2
	})
	if n := new.count(); n != 3 {
		t.Errorf("the secondary got %d requests, want the 3 copies", n)
	}
	if w := g.route("orders").Writes.SecondarySucceeded; w != 2 {
		t.Errorf("route orders delivered %d writes, want 2", w)
	}
}

// The catch-all route of requests that match no configured route is shown
// once such a request came, not before: a readiness gate over every route
// listed (`all(.ready.verdict)`) could never pass otherwise, since a route
// without traffic is never ready. The queue publishing every route's state
// at start (an empty one included) made it appear from the first second.
func TestTheUnmatchedRouteAppearsOnceARequestMatchesNoRoute(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"ok":true}`))
	new := newBackend(t, "new", jsonAnswer("new", `{"ok":true}`))
	g := startGateway(t, old, new, `routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`)
	names := func() []string {
		var out []string
		for _, v := range g.stats.Routes(stats.RouteInfos(g.set)) {
			out = append(out, v.Name)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"items"}) {
		t.Fatalf("routes at start: %v, want [items]", got)
	}
	g.do("GET", "/items/1", "")
	if got := names(); !slices.Equal(got, []string{"items"}) {
		t.Fatalf("routes after a matched read: %v, want [items]", got)
	}
	g.do("GET", "/elsewhere", "")
	eventually(t, "the unmatched route to appear", func() bool { return slices.Equal(names(), []string{"items", rules.Unmatched}) })
}
