package web_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
)

const (
	viewerToken   = "viewer-token-0123456789abcdef"
	operatorToken = "operator-token-fedcba9876543210"
)

type syncBuffer struct {
	bytes.Buffer
}

func authedAdmin(t *testing.T, probesOpen bool) (*httptest.Server, *syncBuffer, *stats.Store) {
	t.Helper()
	store := stats.New()
	store.Read(stats.ReadEvent{Route: "users", Outcome: stats.Match})
	view := stats.View{Store: store, Config: func() []stats.RouteInfo { return []stats.RouteInfo{{Name: "users", Phase: "shadow-read"}} }}
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	audit := &syncBuffer{}
	h := web.New(web.Options{
		Stats:      view,
		Metrics:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("# metrics\n")) }),
		Auth:       web.NewCredentials([]string{viewerToken}, []string{operatorToken}, map[string]web.BasicUser{"alice": {Hash: hash}, "olga": {Hash: hash, Operator: true}}),
		ProbesOpen: probesOpen,
		Audit:      audit,
		ResetRoute: func(string, bool) error { store.Reset("users"); return nil },
		Logger:     slog.New(slog.DiscardHandler),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, audit, store
}

func call(t *testing.T, method, url string, set func(*http.Request)) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if set != nil {
		set(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

var readRoutes = []string{"/", "/assets/app.js", "/metrics", "/api/v1/routes", "/api/v1/diffs?route=users", "/api/v1/fields?route=users", "/api/v1/history?route=users", "/api/v1/rules"}

func TestEveryAdminRouteNeedsCredentials(t *testing.T) {
	srv, _, _ := authedAdmin(t, false)
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	for _, path := range append(readRoutes, "/healthz", "/readyz") {
		if got := call(t, "GET", srv.URL+path, nil); got != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", path, got)
		}
		if got := call(t, "GET", srv.URL+path, bearer("wrong")); got != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, got)
		}
		if got := call(t, "GET", srv.URL+path, bearer(viewerToken)); got != http.StatusOK {
			t.Errorf("GET %s with the viewer token: %d, want 200", path, got)
		}
		basic := func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }
		if got := call(t, "GET", srv.URL+path, basic); got != http.StatusOK {
			t.Errorf("GET %s with basic auth: %d, want 200", path, got)
		}
		tokenAsPassword := func(r *http.Request) { r.SetBasicAuth("anyone", viewerToken) }
		if got := call(t, "GET", srv.URL+path, tokenAsPassword); got != http.StatusOK {
			t.Errorf("GET %s with the token as a basic password: %d, want 200", path, got)
		}
		wrongPassword := func(r *http.Request) { r.SetBasicAuth("alice", "guess") }
		if got := call(t, "GET", srv.URL+path, wrongPassword); got != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %d, want 401", path, got)
		}
	}
}

func TestProbesCanBeOpen(t *testing.T) {
	srv, _, _ := authedAdmin(t, true)
	for _, p := range []string{"/healthz", "/readyz"} {
		if got := call(t, "GET", srv.URL+p, nil); got != http.StatusOK {
			t.Errorf("GET %s: %d, want 200 with probes open", p, got)
		}
	}
	if got := call(t, "GET", srv.URL+"/api/v1/routes", nil); got != http.StatusUnauthorized {
		t.Errorf("the API stays closed: %d", got)
	}
}

func TestOperatorActions(t *testing.T) {
	srv, audit, store := authedAdmin(t, true)
	reset := srv.URL + "/api/v1/routes/users/reset"
	with := func(tok, origin string) func(*http.Request) {
		return func(r *http.Request) {
			if tok != "" {
				r.Header.Set("Authorization", "Bearer "+tok)
			}
			if origin != "" {
				r.Header.Set("Origin", origin)
			}
		}
	}
	cases := []struct {
		name   string
		set    func(*http.Request)
		status int
	}{
		{"no credentials", with("", ""), http.StatusUnauthorized},
		{"viewer", with(viewerToken, ""), http.StatusForbidden},
		{"basic viewer", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") }, http.StatusForbidden},
		{"operator from a foreign origin", with(operatorToken, "https://evil.example"), http.StatusForbidden},
		{"operator, cross-site fetch", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+operatorToken)
			r.Header.Set("Sec-Fetch-Site", "cross-site")
		}, http.StatusForbidden},
		{"operator from the dashboard", with(operatorToken, srv.URL), http.StatusOK},
		{"operator without a browser", with(operatorToken, ""), http.StatusOK},
		{"basic operator", func(r *http.Request) { r.SetBasicAuth("olga", "s3cret") }, http.StatusOK},
	}
	for _, c := range cases {
		if got := call(t, "POST", reset, c.set); got != c.status {
			t.Errorf("%s: %d, want %d", c.name, got, c.status)
		}
	}
	if got := call(t, "GET", reset, with(operatorToken, "")); got != http.StatusMethodNotAllowed {
		t.Errorf("GET of an action: %d, want 405", got)
	}
	if v := store.Routes([]stats.RouteInfo{{Name: "users"}}); v[0].Reads.Matched != 0 {
		t.Errorf("reset did not forget the evidence: %+v", v[0].Reads)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != len(cases) {
		t.Fatalf("audit log has %d lines, want one per attempt (%d):\n%s", len(lines), len(cases), audit.String())
	}
	var statuses []string
	for _, l := range lines {
		if l["action"] != "reset_route" {
			t.Errorf("audit line without the action: %v", l)
		}
		// Refused or not, what was asked for is named.
		if target, _ := l["target"].(string); !strings.Contains(target, "users") {
			t.Errorf("audit line without its target: %v", l)
		}
		statuses = append(statuses, strings.TrimSpace(jsonNumber(l["status"])))
	}
	sort.Strings(statuses)
	if got := strings.Join(statuses, ","); got != "200,200,200,401,403,403,403,403" {
		t.Errorf("audited statuses = %s", got)
	}
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTokenCheckTimeDoesNotDependOnTheGuess compares the time to refuse a
// guess sharing a long prefix with the real token and a guess sharing
// nothing. Both hash the guess and compare every digest in constant time, so
// their medians agree within noise; a byte-by-byte comparison would not.
func TestTokenCheckTimeDoesNotDependOnTheGuess(t *testing.T) {
	c := web.NewCredentials([]string{viewerToken}, []string{operatorToken}, nil)
	median := func(guess string) time.Duration {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer "+guess)
		var ds []time.Duration
		for range 301 {
			start := time.Now()
			for range 100 {
				c.Authenticate(req)
			}
			ds = append(ds, time.Since(start))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	near := median(viewerToken[:len(viewerToken)-1] + "X")
	far := median(strings.Repeat("Z", len(viewerToken)))
	ratio := float64(near) / float64(far)
	t.Logf("median per 100 checks: near guess %v, far guess %v (ratio %.2f)", near, far, ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Errorf("refusing a near guess takes %.2f× as long as a far one", ratio)
	}
}

// Without admin.auth the admin surface listens on loopback only, and it
// answers only to a loopback host name: a web page whose own name was
// rebound in DNS to 127.0.0.1 reaches it as same-origin, and could read
// the recorded answers and discard held writes. /metrics stays open to a
// Prometheus that scrapes it by name. With admin.auth, credentials decide.
func TestWithoutAuthOnlyALoopbackHostIsAnswered(t *testing.T) {
	store := stats.New()
	store.Read(stats.ReadEvent{Route: "users", Outcome: stats.Match})
	view := stats.View{Store: store, Config: func() []stats.RouteInfo { return []stats.RouteInfo{{Name: "users", Phase: "shadow-read"}} }}
	srv := httptest.NewServer(web.New(web.Options{
		Stats:      view,
		Metrics:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("# metrics\n")) }),
		ResetRoute: func(string, bool) error { store.Reset("users"); return nil },
		Logger:     slog.New(slog.DiscardHandler),
	}))
	t.Cleanup(srv.Close)
	as := func(host string) func(*http.Request) {
		return func(r *http.Request) {
			r.Host = host
			r.Header.Set("Origin", "http://"+host)
		}
	}
	for _, path := range readRoutes {
		want := http.StatusMisdirectedRequest
		if path == "/metrics" {
			want = http.StatusOK
		}
		if got := call(t, "GET", srv.URL+path, as("rebound.example:9090")); got != want {
			t.Errorf("GET %s as rebound.example: %d, want %d", path, got, want)
		}
		for _, host := range []string{"localhost:9090", "127.0.0.1:9090", "[::1]:9090", "app.localhost"} {
			if got := call(t, "GET", srv.URL+path, as(host)); got != http.StatusOK {
				t.Errorf("GET %s as %s: %d, want 200", path, host, got)
			}
		}
	}
	// The probes carry nothing: a load balancer may ask them by any name.
	for _, path := range []string{"/healthz", "/readyz"} {
		if got := call(t, "GET", srv.URL+path, as("rebound.example:9090")); got != http.StatusOK {
			t.Errorf("GET %s as rebound.example: %d, want 200", path, got)
		}
	}
	if got := call(t, "POST", srv.URL+"/api/v1/routes/users/reset", as("rebound.example:9090")); got != http.StatusMisdirectedRequest {
		t.Errorf("POST reset as rebound.example: %d, want 421", got)
	}
	if v := view.Routes(); len(v) != 1 || v[0].Reads.Total != 1 {
		t.Errorf("routes = %+v: the route was reset through a rebound host name", v)
	}

	authed, _, _ := authedAdmin(t, false)
	if got := call(t, "GET", authed.URL+"/api/v1/routes", func(r *http.Request) {
		r.Host = "cutover.internal:9090"
		r.Header.Set("Authorization", "Bearer "+viewerToken)
	}); got != http.StatusOK {
		t.Errorf("with admin.auth, a viewer by another host name: %d, want 200", got)
	}
}
