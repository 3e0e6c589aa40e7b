package gateway_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEveryReadEndsInExactlyOneOutcome(t *testing.T) {
	g := newGate(t)
	var failing sync.Map // paths the new backend fails for
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/slow/"):
			g.wait()
		case r.URL.Path == "/users/2":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"id": 7, "name": "Eve"}`))
			return
		}
		if _, bad := failing.Load(r.URL.Path); bad {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		jsonAnswer("new", userJSON)(w, r)
	})
	gwy := startGateway(t, old, new, `shadow:
  workers: 2
routes:
  - name: users
    match: {path: "/users/{id}"}
    phase: shadow-read
  - name: sampled
    match: {path: "/sampled/{id}"}
    phase: shadow-read
    sample: 0
  - name: slow
    match: {path: "/slow/{id}"}
    phase: shadow-read
  - name: legacy
    match: {path: "/legacy/{id}"}
    phase: dual-write
`)
	sent := map[string]int{}
	get := func(route, path string) {
		gwy.do("GET", path, "")
		sent[route]++
		if route == "users" {
			// Its shadow holds one of the two workers until it is
			// recorded: wait, or a slow machine sees the next reads busy.
			eventually(t, "the users read's outcome", func() bool { return total(gwy.route("users")) == int64(sent["users"]) })
		}
	}
	for i := range 5 {
		get("users", "/users/1")                      // match
		get("users", "/users/2")                      // mismatch
		get("sampled", fmt.Sprintf("/sampled/%d", i)) // skipped: sampled_out
		get("legacy", "/legacy/1")                    // skipped: phase
	}
	eventually(t, "the first reads", func() bool { return total(gwy.route("users")) == 10 })
	// Two slow shadows take both workers; the third read finds them busy.
	get("slow", "/slow/1")
	get("slow", "/slow/2")
	get("slow", "/slow/3")
	g.release()
	eventually(t, "every outcome", func() bool {
		for route, n := range sent {
			if total(gwy.route(route)) != int64(n) {
				return false
			}
		}
		return true
	})
	users, sampled, legacy, slow := gwy.route("users"), gwy.route("sampled"), gwy.route("legacy"), gwy.route("slow")
	if users.Reads.Matched != 5 || users.Reads.Mismatched != 5 {
		t.Errorf("users: %+v", users.Reads)
	}
	if sampled.Reads.Reasons["skipped/sampled_out"] != 5 {
		t.Errorf("sampled: %+v", sampled.Reads)
	}
	if legacy.Reads.Reasons["skipped/phase"] != 5 {
		t.Errorf("legacy: %+v", legacy.Reads)
	}
	if slow.Reads.Matched != 2 || slow.Reads.Reasons["skipped/busy"] != 1 {
		t.Errorf("slow: %+v", slow.Reads)
	}
	// One outcome per read that entered (the wait above), and each read
	// reached the primary exactly once.
	reads := 0
	for _, n := range sent {
		reads += n
	}
	if n := old.count(); n != reads {
		t.Errorf("the primary got %d requests for %d reads", n, reads)
	}
	assertMetricsAgree(t, gwy, sent)
}

func TestBreakerOpensAndReadsAreSkipped(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	g := startGateway(t, old, new, "routes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n")
	// gobreaker trips after more than 5 consecutive failures. Reads are
	// sent one at a time so each failure is counted before the next read.
	for i := range 10 {
		g.do("GET", "/users/1", "")
		eventually(t, "the read's outcome", func() bool { return total(g.route("users")) == int64(i+1) })
	}
	v := g.route("users")
	if v.Reads.Mismatched != 6 || v.Reads.Reasons["skipped/breaker_open"] != 4 {
		t.Errorf("want 6 compared 503s then 4 reads skipped with the breaker open: %+v", v.Reads)
	}
	if n := new.count(); n != 6 {
		t.Errorf("the secondary got %d requests, want 6: an open breaker sends nothing", n)
	}
}

func TestReadOfAResourceWithAQueuedWriteIsPending(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "PUT" {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		jsonAnswer("new", userJSON)(w, r)
	})
	g := startGateway(t, old, new, `queue:
  base_backoff: 1h
  max_backoff: 1h
routes:
  - name: users
    match: {path: "/users/{id}"}
    phase: shadow-read
`)
	g.do("PUT", "/users/1", `{"name":"Ada"}`)
	eventually(t, "the first attempt to fail", func() bool { return g.route("users").Writes.SecondaryFailed == 1 })
	g.do("GET", "/users/1", "")
	g.do("GET", "/users/2", "")
	eventually(t, "both reads", func() bool { return total(g.route("users")) == 2 })
	v := g.route("users")
	if v.Reads.Pending != 1 || v.Reads.Matched != 1 {
		t.Errorf("a read of /users/1 is pending, of /users/2 compared: %+v", v.Reads)
	}
	if v.Writes.PendingRetries != 1 || g.proxy.QueueDepth() != 1 {
		t.Errorf("the failed write waits for its retry: %+v, depth %d", v.Writes, g.proxy.QueueDepth())
	}
}

func TestBadRequestBodyReachesNoBackend(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{}`))
	new := newBackend(t, "new", jsonAnswer("new", `{}`))
	g := startGateway(t, old, new, "server:\n  max_request_body: 1KiB\n"+dualWrite)
	tests := []struct {
		name, raw string
		status    int
	}{
		{"broken chunking", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\n", 400},
		{"body shorter than its length", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\":1}", 400},
		{"declared too large", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413},
		{"chunked too large", "PUT /users/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("x", 0x800) + "\r\n0\r\n\r\n", 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status := rawRequest(t, g.srv.Listener.Addr().String(), tt.raw)
			if status != tt.status {
				t.Errorf("status = %d, want %d", status, tt.status)
			}
			if old.count()+new.count() != 0 {
				t.Errorf("a backend was reached: old %d new %d", old.count(), new.count())
			}
		})
	}
}

// rawRequest writes raw bytes to addr and returns the status of the answer.
func rawRequest(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	var status int
	var proto string
	if _, err := fmt.Fscanf(conn, "%s %d", &proto, &status); err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return status
}

// The request path reads the breaker's state without its lock; once the
// breaker's open time is over, a read must reach the secondary again (the
// half-open probe) and, the secondary healed, close it.
func TestBreakerLetsReadsThroughOnceItsOpenTimeIsOver(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	var healed atomic.Bool
	new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
		if !healed.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		jsonAnswer("old", userJSON)(w, r)
	})
	g := startGateway(t, old, new, "shadow:\n  breaker_open_for: 1s\nroutes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n")
	read := func() {
		n := total(g.route("users"))
		g.do("GET", "/users/1", "")
		eventually(t, "the read's outcome", func() bool { return total(g.route("users")) == n+1 })
	}
	for range 7 {
		read()
	}
	if v := g.route("users"); v.Reads.Reasons["skipped/breaker_open"] != 1 {
		t.Fatalf("want the breaker open after 6 failures: %+v", v.Reads)
	}
	healed.Store(true)
	eventually(t, "a read compared after the breaker's open time", func() bool {
		read()
		return g.route("users").Reads.Matched > 0
	})
	before := g.route("users").Reads
	for range 3 {
		read()
	}
	if after := g.route("users").Reads; after.Matched != before.Matched+3 {
		t.Errorf("the breaker did not close behind its probe: %+v then %+v", before, after)
	}
}
