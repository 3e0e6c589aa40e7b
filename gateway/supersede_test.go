package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/cutover/cutover/gateway"
)

// picky is a backend that refuses the writes whose body it is told to
// refuse (503), holds the one it is told to hold until released, and
// applies the rest.
type picky struct {
	k *kv

	mu      sync.Mutex
	refuse  map[string]bool
	refused int
	hold    string
	arrived chan struct{} // closed when the held body arrives
	release chan struct{}
}

func newPicky(refuse ...string) *picky {
	p := &picky{k: newKV(), refuse: map[string]bool{}}
	for _, b := range refuse {
		p.refuse[b] = true
	}
	return p
}

// refusals counts the writes refused so far.
func (p *picky) refusals() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

func (p *picky) set(body string, refused bool) {
	p.mu.Lock()
	p.refuse[body] = refused
	p.mu.Unlock()
}

// holdNext makes the next write of body wait for the returned release.
func (p *picky) holdNext(body string) (arrived <-chan struct{}, release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold, p.arrived, p.release = body, make(chan struct{}), make(chan struct{})
	return p.arrived, sync.OnceFunc(func() { close(p.release) })
}

func (p *picky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	p.mu.Lock()
	refused := p.refuse[string(b)]
	if refused {
		p.refused++
	}
	var release chan struct{}
	if p.hold != "" && p.hold == string(b) {
		release = p.release
		close(p.arrived)
		p.hold = ""
	}
	p.mu.Unlock()
	if release != nil {
		<-release
	}
	if refused {
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	p.k.ServeHTTP(w, r)
}

const (
	v1 = `{"v": 1}`
	v2 = `{"v": 2}`
)

// itemsConfig is the dual-write route items over old and new, with extra
// top-level configuration; X-Phase moves a request to cutover or cleanup.
func itemsConfig(old, new, extra string) string {
	return fmt.Sprintf(`backends:
  old: {url: %q, timeout: 1s}
  new: {url: %q, timeout: 1s}
%s
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
    overrides:
      - {name: moved, when: {header: X-Phase, equals: cutover}, phase: cutover}
      - {name: done, when: {header: X-Phase, equals: cleanup}, phase: cleanup}
`, old, new, extra)
}

// fastGiveUp gives a refused write up within milliseconds.
const fastGiveUp = `queue:
  max_attempts: 2
  base_backoff: 5ms
  max_backoff: 10ms`

// briefBreaker: the tests refuse several writes in a row.
const briefBreaker = "shadow:\n  breaker_open_for: 50ms"

func supersedeConfig(t *testing.T, secondary http.Handler) string {
	return supersedeConfigWith(t, &faulty{k: newKV()}, secondary, fastGiveUp+"\n"+briefBreaker)
}

func supersedeConfigWith(t *testing.T, primary, secondary http.Handler, extra string) string {
	return itemsConfig(newServer(t, primary).url(), newServer(t, secondary).url(), extra)
}

// heldNow lists the held writes by ID once the store lists want of them.
func heldNow(t *testing.T, g *gw, want int) map[uint64]gateway.HeldWrite {
	t.Helper()
	var ws []gateway.HeldWrite
	eventually(t, fmt.Sprintf("%d held writes", want), func() bool {
		ws, _ = g.proxy.HeldWrites("", "", 0, 100)
		return len(ws) == want
	})
	out := make(map[uint64]gateway.HeldWrite, len(ws))
	for _, w := range ws {
		out[w.ID] = w
	}
	return out
}

// heldOf returns the ID of the one held write of target.
func heldOf(t *testing.T, g *gw, target string) uint64 {
	t.Helper()
	var id uint64
	eventually(t, "the held write of "+target, func() bool {
		ws, _ := g.proxy.HeldWrites("", "", 0, 100)
		for _, w := range ws {
			if w.Target == target {
				id = w.ID
				return true
			}
		}
		return false
	})
	return id
}

// A given-up write that a later write of its resource overtook on the
// secondary is not replayed over it unless forced: replayed, it would put
// the older value back. While a later write is still queued for that
// backend, a replay would land after it, and is refused too. Other
// resources' held writes are not touched. With a data directory the mark
// survives a restart.
func TestAReplayOverANewerWriteIsRefusedUnlessForced(t *testing.T) {
	for _, mode := range []string{"on disk", "in memory"} {
		t.Run(mode, func(t *testing.T) {
			secondary := newPicky(v1)
			cfg := supersedeConfig(t, secondary)
			dir := ""
			if mode == "on disk" {
				dir = t.TempDir()
			}
			g := startProxy(t, cfg, dir)
			put(t, g, "/items/a", 1)
			put(t, g, "/items/b", 1)
			a, b := heldOf(t, g, "/items/a"), heldOf(t, g, "/items/b")

			// A later write of a, held on its way to the secondary.
			arrived, release := secondary.holdNext(v2)
			defer release()
			put(t, g, "/items/a", 2)
			<-arrived
			if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrResourceQueued) {
				t.Errorf("replay while a later write is queued: %v, want ErrResourceQueued", err)
			}
			release()
			eventually(t, "a superseded", func() bool { return !heldNow(t, g, 2)[a].Superseded.IsZero() })
			if w := heldNow(t, g, 2)[b]; !w.Superseded.IsZero() {
				t.Errorf("b's held write is marked superseded by a write of a: %+v", w)
			}
			if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrSuperseded) {
				t.Errorf("replay of the overtaken write: %v, want ErrSuperseded", err)
			}
			if mode == "on disk" {
				g.close()
				g = startProxy(t, cfg, dir)
				if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrSuperseded) {
					t.Errorf("after a restart, replay of the overtaken write: %v, want ErrSuperseded", err)
				}
			}
			if v := g.route("items").Writes.GivenUp; v != 2 {
				t.Errorf("given up after the refused replays: %d, want 2 (nothing left the held set)", v)
			}

			// Forced, it is sent: the older value goes back, as asked.
			secondary.set(v1, false)
			if err := g.proxy.Redrive(a, true); err != nil {
				t.Fatalf("forced replay: %v", err)
			}
			eventually(t, "the forced replay to land", func() bool { return secondary.k.value("/items/a") == v1 })
			if err := g.proxy.Redrive(b, false); err != nil {
				t.Errorf("replay of b's write, which nothing overtook: %v", err)
			}
			eventually(t, "b's replay to land", func() bool { return g.proxyIdle() && secondary.k.value("/items/b") == v1 })
			heldNow(t, g, 0)
		})
	}
}

// Held writes of one resource replayed in their order are not refused: a
// replayed write keeps its place among its resource's writes, so its
// landing does not overtake the held writes that came after it.
func TestHeldWritesReplayedInTheirOrderAreNotRefused(t *testing.T) {
	secondary := newPicky(v1, v2)
	g := startProxy(t, supersedeConfig(t, secondary), t.TempDir())
	put(t, g, "/items/a", 1)
	first := heldOf(t, g, "/items/a")
	put(t, g, "/items/a", 2)
	held := heldNow(t, g, 2)
	var second uint64
	for id, w := range held {
		if !w.Superseded.IsZero() {
			t.Errorf("write %d superseded, though no write reached the secondary: %+v", id, w)
		}
		if id != first {
			second = id
		}
	}
	secondary.set(v1, false)
	secondary.set(v2, false)
	// The first is held on its way, so that the second is replayed while
	// the first is still queued; then the first lands.
	arrived, release := secondary.holdNext(v1)
	defer release()
	if err := g.proxy.Redrive(first, false); err != nil {
		t.Fatalf("replay of the first: %v", err)
	}
	<-arrived
	if err := g.proxy.Redrive(second, false); err != nil {
		t.Fatalf("replay of the second while the first is queued: %v", err)
	}
	release()
	eventually(t, "both replays to land", func() bool { return g.proxyIdle() })
	if v := secondary.k.value("/items/a"); v != v2 || len(heldNow(t, g, 0)) != 0 {
		t.Errorf("the secondary holds %s, want %s", v, v2)
	}
	// Each landed once (the secondary had refused both the first time).
	if got := secondary.k.log()["/items/a"]; len(got) != 2 {
		t.Errorf("writes applied on the secondary: %v, want the two replays", got)
	}
}

// A held write for new is overtaken as well when new gets a later write of
// its resource as the primary: an override that moved the resource to the
// cutover phase (new first, then old from the queue), or to cleanup (new
// alone). A write new refused overtakes nothing.
func TestAWriteToTheHeldWritesBackendAsPrimarySupersedesIt(t *testing.T) {
	for _, phase := range []string{"cutover", "cleanup"} {
		t.Run(phase, func(t *testing.T) {
			secondary := newPicky(v1, v2)
			g := startProxy(t, supersedeConfig(t, secondary), t.TempDir())
			put(t, g, "/items/a", 1)
			id := heldOf(t, g, "/items/a")
			if res, _ := g.do("PUT", "/items/a", v2, "X-Phase", phase); res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("PUT refused by new as primary: %d, want its 503", res.StatusCode)
			}
			if err := g.proxy.Redrive(id, false); err != nil {
				t.Fatalf("replay after a write new refused: %v", err)
			}
			id = heldOf(t, g, "/items/a") // given up again: new still refuses v1
			if res, _ := g.do("PUT", "/items/a", `{"v": 3}`, "X-Phase", phase); res.StatusCode != http.StatusOK {
				t.Fatalf("PUT through new as primary: %d", res.StatusCode)
			}
			if w := heldNow(t, g, 1)[id]; w.Superseded.IsZero() {
				t.Errorf("after a later write reached new as primary, the held write is not superseded: %+v", w)
			}
			if err := g.proxy.Redrive(id, false); !errors.Is(err, gateway.ErrSuperseded) {
				t.Errorf("replay: %v, want ErrSuperseded", err)
			}
		})
	}
}

// A forced replay that is given up again is held still superseded: the
// newer write is still on the backend. Across a restart while it waits in
// the queue too.
func TestAForcedReplayHeldAgainStaysSuperseded(t *testing.T) {
	secondary := newPicky(v1)
	primary, dir := &faulty{k: newKV()}, t.TempDir()
	old, new := newServer(t, primary), newServer(t, secondary)
	cfg := func(queue string) string { return itemsConfig(old.url(), new.url(), queue) }
	g := startProxy(t, cfg(fastGiveUp), dir)
	put(t, g, "/items/a", 1)
	a := heldOf(t, g, "/items/a")
	put(t, g, "/items/a", 2)
	eventually(t, "a superseded", func() bool { return !heldNow(t, g, 1)[a].Superseded.IsZero() })
	g.close()
	// Forced; its first attempt fails and the next is an hour away.
	g = startProxy(t, cfg("queue:\n  max_attempts: 2\n  base_backoff: 1h\n  max_backoff: 1h"), dir)
	if err := g.proxy.Redrive(a, true); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the forced replay's first attempt", func() bool { return secondary.refusals() == 3 })
	g.close()
	g = startProxy(t, cfg(fastGiveUp), dir)
	eventually(t, "the forced replay given up again", func() bool { w, ok := heldNow(t, g, 1)[a]; return ok && w.Attempts == 2 })
	if w := heldNow(t, g, 1)[a]; w.Superseded.IsZero() {
		t.Errorf("held again after a forced replay: not superseded, though new still holds v2: %+v", w)
	}
	if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrSuperseded) {
		t.Errorf("an unforced replay after that: %v, want ErrSuperseded", err)
	}
}

// A write held to verify after a later write of its resource reached the
// secondary (the first timed out at the primary while the second went
// through) is superseded from the start.
func TestAWriteHeldToVerifyAfterALaterOneLandedIsSuperseded(t *testing.T) {
	primary, secondary := newPicky(), newPicky()
	g := startProxy(t, supersedeConfigWith(t, primary, secondary, fastGiveUp), t.TempDir())
	arrived, release := primary.holdNext(v1)
	defer release()
	done := make(chan int, 1)
	go func() { res, _ := g.do("PUT", "/items/a", v1); done <- res.StatusCode }()
	<-arrived
	put(t, g, "/items/a", 2)
	eventually(t, "v2 on new", func() bool { return secondary.k.value("/items/a") == v2 })
	if st := <-done; st != http.StatusGatewayTimeout {
		t.Fatalf("the first PUT: %d, want 504 (its primary held it past the timeout)", st)
	}
	a := heldOf(t, g, "/items/a")
	if w := heldNow(t, g, 1)[a]; w.Kind != "verify" || w.Superseded.IsZero() {
		t.Errorf("held %+v, want to verify and superseded", w)
	}
	if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrSuperseded) {
		t.Errorf("replay: %v, want ErrSuperseded", err)
	}
}

// While a later write of the resource is with the held write's backend as
// its primary, a replay would land after it: refused. Once it landed, the
// held write is superseded.
func TestAReplayWhileALaterWriteIsWithTheBackendIsRefused(t *testing.T) {
	for _, phase := range []string{"cutover", "cleanup"} {
		t.Run(phase, func(t *testing.T) {
			secondary := newPicky(v1)
			g := startProxy(t, supersedeConfigWith(t, &faulty{k: newKV()}, secondary, fastGiveUp), t.TempDir())
			put(t, g, "/items/a", 1)
			a := heldOf(t, g, "/items/a")
			arrived, release := secondary.holdNext(v2)
			defer release()
			done := make(chan int, 1)
			go func() { res, _ := g.do("PUT", "/items/a", v2, "X-Phase", phase); done <- res.StatusCode }()
			<-arrived
			if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrResourceQueued) {
				t.Errorf("replay while v2 is with new: %v, want ErrResourceQueued", err)
			}
			release()
			if st := <-done; st != http.StatusOK {
				t.Fatalf("PUT v2 through new: %d", st)
			}
			eventually(t, "a superseded", func() bool { return !heldNow(t, g, 1)[a].Superseded.IsZero() })
			if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrSuperseded) {
				t.Errorf("replay after v2 landed: %v, want ErrSuperseded", err)
			}
		})
	}
}

// A restart keeps a queued replay's place: the held writes after it are
// still replayed without a refusal.
func TestAQueuedReplayKeepsItsPlaceAcrossARestart(t *testing.T) {
	secondary := newPicky(v1, v2)
	dir := t.TempDir()
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	cfg := func(queue string) string { return itemsConfig(old.url(), new.url(), queue) }
	g := startProxy(t, cfg(fastGiveUp), dir)
	put(t, g, "/items/a", 1)
	first := heldOf(t, g, "/items/a")
	put(t, g, "/items/a", 2)
	var second uint64
	for id := range heldNow(t, g, 2) {
		if id != first {
			second = id
		}
	}
	g.close()
	slow := cfg("queue:\n  max_attempts: 100\n  base_backoff: 1h\n  max_backoff: 1h")
	g = startProxy(t, slow, dir)
	if err := g.proxy.Redrive(first, false); err != nil {
		t.Fatal(err)
	}
	g.close()
	g = startProxy(t, slow, dir)
	if err := g.proxy.Redrive(second, false); err != nil {
		t.Errorf("after a restart, the replay of the second while the first waits: %v", err)
	}
}

// A write accepted by the held write's backend as its primary whose body
// was too large to repeat overtakes the held write too.
func TestATooLargeWriteToTheBackendSupersedes(t *testing.T) {
	secondary := newPicky(v1)
	g := startProxy(t, supersedeConfigWith(t, &faulty{k: newKV()}, secondary, fastGiveUp+"\nshadow:\n  write_buffer: 16\n  breaker_open_for: 50ms"), t.TempDir())
	put(t, g, "/items/a", 1)
	a := heldOf(t, g, "/items/a")
	big := `{"v": "` + strings.Repeat("x", 64) + `"}`
	if res, _ := g.do("PUT", "/items/a", big, "X-Phase", "cutover"); res.StatusCode != http.StatusOK {
		t.Fatalf("the large PUT through new: %d", res.StatusCode)
	}
	heldNow(t, g, 2)
	if err := g.proxy.Redrive(a, false); !errors.Is(err, gateway.ErrSuperseded) {
		t.Errorf("replay after a too-large write reached new as primary: %v, want ErrSuperseded", err)
	}
}
