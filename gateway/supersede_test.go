package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
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
	var release chan struct{}
	if p.hold == string(b) {
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

func supersedeConfig(t *testing.T, secondary http.Handler) string {
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	return fmt.Sprintf(`backends:
  old: {url: %q, timeout: 1s}
  new: {url: %q, timeout: 1s}
queue:
  max_attempts: 2
  base_backoff: 5ms
  max_backoff: 10ms
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
    overrides:
      - {name: moved, when: {header: X-Phase, equals: cutover}, phase: cutover}
      - {name: done, when: {header: X-Phase, equals: cleanup}, phase: cleanup}
`, old.url(), new.url())
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
