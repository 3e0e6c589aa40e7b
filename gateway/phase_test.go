package gateway_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

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
