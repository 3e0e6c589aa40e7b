package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// lagConfig has the backends, each under its name, with a timeout that
// outlasts any test run, the shadow section, a compared route, items,
// whose secondary the test holds, and more: items' overrides, or further
// routes.
func lagConfig(shadow, more string, backends ...*backend) string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for _, be := range backends {
		fmt.Fprintf(&b, "  %s: {url: %q, timeout: 60s}\n", be.name, be.srv.URL)
	}
	b.WriteString(shadow + "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: shadow-read\n" + more)
	return b.String()
}

// heldRoute compares nothing: its requests keep clients in flight.
const heldRoute = "  - name: held\n    match: {path: \"/held/{id}\"}\n    phase: prepare\n"

// heldUntil answers as name with userJSON, holding first the requests
// hold picks (nil: every one) until g opens, counted in n (nil: not).
func heldUntil(name string, g *gate, n *atomic.Int64, hold func(*http.Request) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if hold == nil || hold(r) {
			if n != nil {
				n.Add(1)
			}
			g.wait()
		}
		jsonAnswer(name, userJSON)(w, r)
	}
}

// pathUnder picks the requests whose path starts with prefix.
func pathUnder(prefix string) func(*http.Request) bool {
	return func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, prefix) }
}

// heldBackends are an old backend that holds the requests whose path
// starts with held until primary opens, counting them in atPrimary, and a
// new backend that holds every request until secondary opens.
type heldBackends struct {
	old, new           *backend
	primary, secondary *gate
	atPrimary          atomic.Int64
}

func newHeldBackends(t *testing.T, held string) *heldBackends {
	h := &heldBackends{primary: newGate(t), secondary: newGate(t)}
	h.old = newBackend(t, "old", heldUntil("old", h.primary, &h.atPrimary, pathUnder(held)))
	h.new = newBackend(t, "new", heldUntil("new", h.secondary, nil, nil))
	return h
}

// start runs a gateway with lagConfig before h; both gates open before
// its Close waits for the shadow work.
func (h *heldBackends) start(t *testing.T, shadow string) *gw {
	g := startProxy(t, lagConfig(shadow, heldRoute, h.old, h.new), t.TempDir())
	t.Cleanup(h.secondary.release)
	t.Cleanup(h.primary.release)
	return g
}

func TestReadsWaitingOnASlowSecondaryAreBoundedByTheClientsInFlight(t *testing.T) {
	h := newHeldBackends(t, "/held/")
	secondary, clients, new := h.secondary, h.primary, h.new
	g := h.start(t, "")
	sent := 0
	read := func(n int) {
		for range n {
			sent++
			if res, _ := g.do("GET", fmt.Sprintf("/items/%d", sent), ""); res.StatusCode != http.StatusOK {
				t.Fatalf("a read got %d", res.StatusCode)
			}
		}
	}

	// One client at a time: the floor holds, whatever the factor.
	read(rules.LagFloor + 2)
	if got := gathered(t, g, "cutover_shadow_in_flight"); got != rules.LagFloor {
		t.Errorf("cutover_shadow_in_flight = %v, want %d", got, rules.LagFloor)
	}
	// With 20 more clients waiting on the primary, 21 in flight, the bound
	// is 8 × 21 = 168 reads.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { g.do("GET", fmt.Sprintf("/held/%d", i), "") })
	}
	eventually(t, "20 clients at the primary", func() bool { return h.atPrimary.Load() == 20 })
	if got := gathered(t, g, "cutover_requests_in_flight"); got != 20 {
		t.Errorf("cutover_requests_in_flight = %v, want 20", got)
	}
	read(168 - rules.LagFloor + 5)
	clients.release()
	wg.Wait()

	// The skipped reads are recorded with their answer; the compared ones
	// once the secondary answers, which it has not yet.
	eventually(t, "the skipped reads' outcomes", func() bool { return total(g.route("items")) >= 7 })
	if v := g.route("items"); v.Reads.Reasons["skipped/secondary_slow"] != 7 {
		t.Errorf("want 7 reads skipped as secondary_slow (2 past the floor, 5 past 8 × 21 clients): %+v", v.Reads)
	}
	secondary.release()
	eventually(t, "every read's outcome", func() bool { return total(g.route("items")) == int64(sent) })
	if v := g.route("items"); v.Reads.Matched != 168 {
		t.Errorf("want the 168 reads within the bound compared: %+v", v.Reads)
	}
	if n := new.count(); n != 168 {
		t.Errorf("the secondary got %d reads, want 168: a skipped read sends nothing", n)
	}
	assertLoadsEnd(t, g, "items", "held")
}

// assertLoadsEnd waits, once every request has ended, for every shadowed
// read to give its slot back and the routes' counts to come back to zero
// with them: a count that leaks stays above zero.
func assertLoadsEnd(t *testing.T, g *gw, routes ...string) {
	t.Helper()
	eventually(t, "every slot given back", func() bool { return gathered(t, g, "cutover_shadow_in_flight") == 0 })
	for _, route := range routes {
		eventually(t, "route "+route+"'s requests and shadowed reads ended", func() bool {
			clients, shadows := g.proxy.RouteLoad(route)
			return clients == 0 && shadows == 0
		})
	}
}

// One endpoint of new that is far slower than the rest is sampled; the
// others, whose reads do not lag, are still compared in full, though the
// shadow work in flight is past the bound.
func TestOnlyTheRoutesWhoseReadsLagAreSampled(t *testing.T) {
	secondary := newGate(t)
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	new := newBackend(t, "new", heldUntil("new", secondary, nil, pathUnder("/items/")))
	g := startProxy(t, lagConfig("", "  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n", old, new), t.TempDir())
	t.Cleanup(secondary.release)
	for i := range rules.LagFloor + 1 {
		g.do("GET", fmt.Sprintf("/items/%d", i), "")
	}
	eventually(t, "the lagging read's outcome", func() bool { return total(g.route("items")) >= 1 })
	if v := g.route("items"); v.Reads.Reasons["skipped/secondary_slow"] != 1 {
		t.Fatalf("want the read past the floor skipped: %+v", v.Reads)
	}
	// One at a time, each compared before the next: none of them lags.
	for i := range 20 {
		g.do("GET", fmt.Sprintf("/users/%d", i), "")
		eventually(t, "the users read's outcome", func() bool { return total(g.route("users")) == int64(i+1) })
	}
	if v := g.route("users"); v.Reads.Matched != 20 {
		t.Errorf("want every users read compared while items lags: %+v", v.Reads)
	}
	// items still lags: the bound held all along.
	g.do("GET", "/items/x", "")
	eventually(t, "the second lagging read's outcome", func() bool { return total(g.route("items")) >= 2 })
	if v := g.route("items"); v.Reads.Reasons["skipped/secondary_slow"] != 2 {
		t.Errorf("want items' next read skipped too: %+v", v.Reads)
	}
	secondary.release()
	eventually(t, "every items read's outcome", func() bool { return total(g.route("items")) == int64(rules.LagFloor+2) })
	assertLoadsEnd(t, g, "items", "users")
}

func TestLagFactorZeroLeavesOnlyTheWorkers(t *testing.T) {
	secondary := newGate(t)
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	new := newBackend(t, "new", heldUntil("new", secondary, nil, nil))
	g := startProxy(t, lagConfig("shadow: {workers: 200, lag_factor: 0}\n", heldRoute, old, new), t.TempDir())
	t.Cleanup(secondary.release)
	for i := range 201 {
		g.do("GET", fmt.Sprintf("/items/%d", i), "")
	}
	eventually(t, "the skipped read's outcome", func() bool { return total(g.route("items")) >= 1 })
	if v := g.route("items"); v.Reads.Reasons["skipped/busy"] != 1 {
		t.Errorf("want only the read past the 200 workers skipped, as busy: %+v", v.Reads)
	}
	secondary.release()
	eventually(t, "every read's outcome", func() bool { return total(g.route("items")) == 201 })
	if v := g.route("items"); v.Reads.Matched != 200 {
		t.Errorf("want 200 reads compared: %+v", v.Reads)
	}
	assertLoadsEnd(t, g, "items")
}

// overrideView returns the view of a route's override.
func overrideView(g *gw, route, override string) stats.RouteView {
	for _, o := range g.route(route).Overrides {
		if o.Override == override {
			return o
		}
	}
	return stats.RouteView{}
}

// A tenant moved first (an override in cutover) has old as its secondary,
// which answers at once: it is not sampled because the route's other
// tenants' reads wait on a slow new. Its evidence is the one that matters
// most then.
func TestAnOverrideIsChargedOnlyForItsOwnLag(t *testing.T) {
	secondary := newGate(t)
	var waiting atomic.Int64
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	asSecondary := func(r *http.Request) bool { return r.Header.Get("X-Cutover-Shadow") != "" }
	new := newBackend(t, "new", heldUntil("new", secondary, &waiting, asSecondary))
	g := startProxy(t, lagConfig("", "    overrides:\n      - name: acme\n        when: {header: \"X-Tenant\", equals: \"acme\"}\n        phase: cutover\n", old, new), t.TempDir())
	t.Cleanup(secondary.release)
	for i := range rules.LagFloor + 1 {
		g.do("GET", fmt.Sprintf("/items/%d", i), "")
	}
	eventually(t, "the reads waiting on new", func() bool { return waiting.Load() == rules.LagFloor })
	eventually(t, "the lagging read's outcome", func() bool { return total(g.route("items")) >= 1 })
	if v := g.route("items"); v.Reads.Reasons["skipped/secondary_slow"] != 1 {
		t.Fatalf("want the read past the floor skipped: %+v", v.Reads)
	}
	g.do("GET", "/items/a", "", "X-Tenant", "acme")
	eventually(t, "acme's read's outcome", func() bool { return total(overrideView(g, "items", "acme")) == 1 })
	if v := overrideView(g, "items", "acme"); v.Reads.Matched != 1 {
		t.Errorf("want acme's read compared against old, which answers at once: %+v", v.Reads)
	}
	secondary.release()
	eventually(t, "every read's outcome", func() bool { return total(g.route("items")) == rules.LagFloor+2 })
	assertLoadsEnd(t, g, "items")
}

// Reads that wait on backends.noise (old's twin), not on the secondary,
// are not the secondary's lag: new answering at once, none is skipped as
// secondary_slow, which says new is slow.
func TestASlowNoiseBackendIsNotTheSecondarysLag(t *testing.T) {
	twin := newGate(t)
	var waiting atomic.Int64
	old := newBackend(t, "old", jsonAnswer("old", userJSON))
	new := newBackend(t, "new", jsonAnswer("new", userJSON))
	noise := newBackend(t, "noise", heldUntil("old", twin, &waiting, nil))
	g := startProxy(t, lagConfig("", "", old, new, noise), t.TempDir())
	t.Cleanup(twin.release)
	for i := range rules.LagFloor {
		g.do("GET", fmt.Sprintf("/items/%d", i), "")
	}
	eventually(t, "the reads waiting on noise", func() bool { return waiting.Load() == rules.LagFloor })
	eventually(t, "new's answers", func() bool { return new.count() == rules.LagFloor })
	g.do("GET", "/items/x", "")
	eventually(t, "the last read waiting on noise", func() bool { return waiting.Load() == rules.LagFloor+1 })
	if v := g.route("items"); v.Reads.Reasons["skipped/secondary_slow"] != 0 || v.Reads.Total != 0 {
		t.Errorf("want every read still waiting on the noise backend, none skipped: %+v", v.Reads)
	}
	twin.release()
	eventually(t, "every read's outcome", func() bool { return total(g.route("items")) == rules.LagFloor+1 })
	assertLoadsEnd(t, g, "items")
}

// By Little's law a secondary f times slower than the primary holds f
// times as many reads as there are clients in flight. With 24 clients at
// the primary, 200 reads waiting on the secondary are 8 per client: up to
// there every read is compared (the 24 hold slots too, past the floor),
// and the next one is skipped.
func TestASecondaryUpToLagFactorTimesSlowerIsComparedInFull(t *testing.T) {
	h := newHeldBackends(t, "/items/p")
	g := h.start(t, "")
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() { g.do("GET", fmt.Sprintf("/items/p%d", i), "") })
	}
	eventually(t, "24 reads at old", func() bool { return h.atPrimary.Load() == 24 })
	for i := range 201 {
		g.do("GET", fmt.Sprintf("/items/%d", i), "")
	}
	eventually(t, "the skipped read's outcome", func() bool { return total(g.route("items")) >= 1 })
	if v := g.route("items"); v.Reads.Reasons["skipped/secondary_slow"] != 1 {
		t.Errorf("want the 201st read waiting on the secondary, and that one only, skipped: %+v", v.Reads)
	}
	h.primary.release()
	wg.Wait()
	h.secondary.release()
	eventually(t, "every read's outcome", func() bool { return total(g.route("items")) == 225 })
	if v := g.route("items"); v.Reads.Matched != 224 {
		t.Errorf("want 224 reads compared: %+v", v.Reads)
	}
	assertLoadsEnd(t, g, "items")
}

// A lag_factor meant as "never" is never: f × clients does not overflow
// into a bound every read is past (2^62 × 2 reads of the route in flight did).
func TestAHugeLagFactorDoesNotOverflow(t *testing.T) {
	h := newHeldBackends(t, "/items/p")
	g := h.start(t, "shadow: {lag_factor: 4611686018427387904}\n")
	var wg sync.WaitGroup
	wg.Go(func() { g.do("GET", "/items/p", "") })
	eventually(t, "a read at the primary", func() bool { return h.atPrimary.Load() == 1 })
	for i := range rules.LagFloor + 2 {
		g.do("GET", fmt.Sprintf("/items/%d", i), "")
	}
	if got := gathered(t, g, "cutover_shadow_in_flight"); got != rules.LagFloor+3 {
		t.Errorf("cutover_shadow_in_flight = %v, want every read holding a slot (%d)", got, rules.LagFloor+3)
	}
	h.primary.release()
	wg.Wait()
	h.secondary.release()
	eventually(t, "every read's outcome", func() bool { return total(g.route("items")) == rules.LagFloor+3 })
	if v := g.route("items"); v.Reads.Matched != rules.LagFloor+3 {
		t.Errorf("lag_factor 2^62: %+v", v.Reads)
	}
}
