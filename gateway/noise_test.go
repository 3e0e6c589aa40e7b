package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// A noise backend (a second old) tells noise from real differences: a
// request id that differs on every answer is noise, a changed name is not.
func TestNoiseBackendCancelsNoise(t *testing.T) {
	var n atomic.Int64
	answer := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"request_id": "r-%d", "name": %q}`, n.Add(1), name)
		}
	}
	old := newBackend(t, "old", answer("Ada"))
	newHandler := answer("Ada")
	new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/2") {
			answer("ADA")(w, r) // a real difference, plus the noisy id
			return
		}
		newHandler(w, r)
	})
	twin := newBackend(t, "noise", answer("Ada"))
	g := startGateway(t, old, new, fmt.Sprintf("  noise: {url: %q}\nroutes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n", twin.srv.URL))
	for range 3 {
		g.do("GET", "/users/1", "")
	}
	g.do("GET", "/users/2", "")
	eventually(t, "four outcomes", func() bool { return total(g.route("users")) == 4 })
	v := g.route("users")
	if v.Reads.Matched != 3 || v.Reads.Mismatched != 1 || v.Reads.Reasons["match/noise"] != 3 {
		t.Errorf("reads = %+v; want 3 matches by noise and 1 real mismatch", v.Reads)
	}
	if twin.count() != 4 || twin.seen()[0].Header.Get("X-Cutover-Shadow") != "1" {
		t.Errorf("the noise backend got %d requests", twin.count())
	}
	g.do("PUT", "/users/1", `{}`)
	eventually(t, "the write", func() bool { return g.route("users").Writes.SecondarySucceeded == 1 })
	if twin.count() != 4 {
		t.Error("a write reached the noise backend")
	}
}

// A noise backend that fails (or answers another status) is no twin of old:
// what it differs in says nothing of noise. A new backend that lacks the
// resource must stay a mismatch, not be cancelled by a twin's error page.
func TestAFailingNoiseBackendCancelsNothing(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"id": 1, "name": "Ada"}`))
	new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	twin := newBackend(t, "noise", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/2") {
			w.WriteHeader(http.StatusNotFound) // another status, no body
			return
		}
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
	})
	g := startGateway(t, old, new, fmt.Sprintf("  noise: {url: %q}\nroutes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n", twin.srv.URL))
	g.do("GET", "/users/1", "")
	g.do("GET", "/users/2", "")
	eventually(t, "two outcomes", func() bool { return total(g.route("users")) == 2 })
	if v := g.route("users").Reads; v.Mismatched != 2 {
		t.Errorf("reads = %+v; want both 200-against-404 reads mismatched", v)
	}
}
