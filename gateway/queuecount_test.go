package gateway_test

// How the queue counts and keys writes: per override (held, queued, the
// oldest's age), a resource per unmatched path, writes blocked behind a
// failing one, and writes the index lists that the store lacks.

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// An override's held writes are its own: given up counts what is held now
// (a discard resolves it), across a restart too, and to verify likewise;
// not every write of the tenant ever given up.
func TestAnOverrideCountsItsHeldWrites(t *testing.T) {
	secondary := newPicky(v1)
	dir := t.TempDir()
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	cfg := fastGiveUp + "\n" + briefBreaker + acmeRoutes
	cfg = fmt.Sprintf("backends:\n  old: {url: %q, timeout: 1s}\n  new: {url: %q, timeout: 1s}\n%s", old.url(), new.url(), cfg)
	acme := func(g *gw) stats.Writes { return g.overrideWrites("items", "acme") }
	g := startProxy(t, cfg, dir)
	if res, _ := g.do("PUT", "/items/a", v1, "X-Tenant", "acme"); res.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	put(t, g, "/items/b", 1) // another tenant's
	held := heldNow(t, g, 2)
	eventually(t, "acme's given-up write counted", func() bool { return acme(g).GivenUp == 1 })
	if w := g.route("items").Writes; w.GivenUp != 2 {
		t.Errorf("the route's given up: %d, want 2", w.GivenUp)
	}
	g.close()
	g = startProxy(t, cfg, dir)
	if w := acme(g); w.GivenUp != 1 || w.Unresolved != 1 {
		t.Errorf("after a restart, acme's writes: %+v, want 1 given up, unresolved", w)
	}
	for id, w := range held {
		if w.Override == "acme" {
			if err := g.proxy.Discard(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if w := acme(g); w.GivenUp != 0 || w.Unresolved != 0 {
		t.Errorf("after the discard, acme's writes: %+v, want nothing unresolved", w)
	}
	if w := g.route("items").Writes; w.GivenUp != 1 {
		t.Errorf("the route's given up after the discard: %d, want 1", w.GivenUp)
	}

	// A replay is still the tenant's until it lands: pending while queued,
	// given up again if it fails, across a restart while it waits.
	if res, _ := g.do("PUT", "/items/c", v1, "X-Tenant", "acme"); res.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	c := heldOf(t, g, "/items/c")
	g.close()
	g = startProxy(t, strings.Replace(cfg, "base_backoff: 5ms\n  max_backoff: 10ms", "base_backoff: 1h\n  max_backoff: 1h", 1), dir)
	refused := secondary.refusals()
	if err := g.proxy.Redrive(c, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replay's first attempt", func() bool { return secondary.refusals() == refused+1 })
	if w := acme(g); w.PendingRetries != 1 || w.GivenUp != 0 || w.Unresolved != 1 {
		t.Errorf("while acme's replay waits: %+v, want it pending", w)
	}
	g.close()
	// Restarted, the replay is counted from disk, then attempted at once:
	// refused again, it is held again.
	g = startProxy(t, cfg, dir)
	if w := acme(g); w.Unresolved != 1 {
		t.Errorf("after a restart, acme's replay: %+v, want it pending or held again", w)
	}
	eventually(t, "acme's replay held again", func() bool { w := acme(g); return w.GivenUp == 1 && w.PendingRetries == 0 })
	heldNow(t, g, 2) // b's and c's, once the store has c again
	secondary.set(v1, false)
	if err := g.proxy.Redrive(c, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replay to land", func() bool { return g.proxyIdle() && secondary.k.value("/items/c") == v1 })
	if w := acme(g); w.Unresolved != 0 {
		t.Errorf("after acme's replay landed: %+v, want nothing unresolved", w)
	}
}

// acmeRoutes is a dual-write route items whose writes with X-Tenant: acme
// are the override acme's.
const acmeRoutes = `
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
    overrides:
      - {name: acme, when: {header: X-Tenant, equals: acme}, phase: dual-write}
`

// An override's pending writes are all its queued writes, not only its
// replays: a tenant is not ready while its writes wait for new, across a
// restart (counted from the index), and is once they land.
func TestAnOverrideCountsItsQueuedWrites(t *testing.T) {
	secondary := newPicky(v1)
	dir := t.TempDir()
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	routes := acmeRoutes
	backends := fmt.Sprintf("backends:\n  old: {url: %q, timeout: 1s}\n  new: {url: %q, timeout: 1s}\n", old.url(), new.url())
	waiting := backends + "queue:\n  base_backoff: 1h\n  max_backoff: 1h\n" + briefBreaker + routes
	acme := func(g *gw) stats.Writes { return g.overrideWrites("items", "acme") }
	g := startProxy(t, waiting, dir)
	for _, path := range []string{"/items/a", "/items/b"} {
		if res, _ := g.do("PUT", path, v1, "X-Tenant", "acme"); res.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %d", path, res.StatusCode)
		}
	}
	if res, _ := g.do("PUT", "/items/c", v1); res.StatusCode != http.StatusOK { // another tenant's
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	eventually(t, "the three writes queued", func() bool { return g.route("items").Writes.PendingRetries == 3 })
	if w := acme(g); w.PendingRetries != 2 || w.Unresolved != 2 {
		t.Errorf("acme's writes while two wait for new: %+v, want 2 pending, unresolved", w)
	}
	g.close()
	g = startProxy(t, waiting, dir)
	if w := acme(g); w.PendingRetries != 2 || w.Unresolved != 2 {
		t.Errorf("after a restart, acme's writes: %+v, want 2 pending, unresolved", w)
	}
	g.close()
	secondary.set(v1, false)
	g = startProxy(t, backends+routes, dir)
	eventually(t, "the queued writes to land", func() bool { return g.proxyIdle() && secondary.k.value("/items/c") == v1 })
	if w := acme(g); w.PendingRetries != 0 || w.Unresolved != 0 {
		t.Errorf("after acme's writes landed: %+v, want nothing unresolved", w)
	}
}

// An override's oldest_pending is the age of its own oldest queued write,
// not its route's (another tenant's write queued first): across a restart
// (read from the index), moving on when that write lands, and gone once
// none waits.
func TestAnOverrideShowsItsOwnOldestQueuedWrite(t *testing.T) {
	secondary := newPicky(v1, v2)
	dir := t.TempDir()
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	backends := fmt.Sprintf("backends:\n  old: {url: %q, timeout: 1s}\n  new: {url: %q, timeout: 1s}\n", old.url(), new.url())
	waiting := backends + "queue:\n  base_backoff: 1h\n  max_backoff: 1h\n" + briefBreaker + acmeRoutes
	retrying := backends + "queue:\n  base_backoff: 10ms\n  max_backoff: 20ms\n  max_attempts: 100000\n" + briefBreaker + acmeRoutes
	acme := func(g *gw) stats.Writes { return g.overrideWrites("items", "acme") }
	put := func(g *gw, path, body string, header ...string) {
		t.Helper()
		if res, _ := g.do("PUT", path, body, header...); res.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %d", path, res.StatusCode)
		}
	}
	g := startProxy(t, waiting, dir)
	put(g, "/items/c", v2) // another tenant's, queued first
	beforeA := time.Now()
	put(g, "/items/a", v1, "X-Tenant", "acme")
	beforeB := time.Now()
	put(g, "/items/b", v2, "X-Tenant", "acme")
	afterB := time.Now()
	eventually(t, "the three writes queued", func() bool { return g.route("items").Writes.PendingRetries == 3 })
	oldest := func(g *gw, from, to time.Time) {
		t.Helper()
		w := acme(g)
		if w.OldestPending == nil || w.OldestPendingAgeSeconds == nil {
			t.Fatalf("acme's writes: %+v, want its oldest pending write's time and age", w)
		}
		if at := *w.OldestPending; at.Before(from) || at.After(to) {
			t.Errorf("acme's oldest pending write queued at %v, want between %v and %v", at, from, to)
		}
		if r := g.route("items").Writes.OldestPending; r == nil || !r.Before(beforeA) {
			t.Errorf("the route's oldest pending write queued at %v, want the other tenant's, before %v", r, beforeA)
		}
	}
	oldest(g, beforeA, beforeB)
	g.close()
	g = startProxy(t, waiting, dir)
	oldest(g, beforeA, beforeB)
	g.close()
	secondary.set(v1, false) // a lands; b and c still wait
	g = startProxy(t, retrying, dir)
	eventually(t, "acme's write a to land", func() bool { return secondary.k.value("/items/a") == v1 })
	eventually(t, "acme's oldest to move on to b", func() bool {
		at := acme(g).OldestPending
		return at != nil && !at.Before(beforeB)
	})
	oldest(g, beforeB, afterB)
	secondary.set(v2, false)
	eventually(t, "the queued writes to land", func() bool { return g.proxyIdle() && secondary.k.value("/items/c") == v2 })
	if w := acme(g); w.OldestPending != nil || w.OldestPendingAgeSeconds != nil || w.PendingRetries != 0 {
		t.Errorf("after acme's writes landed: %+v, want no oldest pending write", w)
	}
	secondary.set(v1, true)
	beforeD := time.Now()
	put(g, "/items/d", v1, "X-Tenant", "acme")
	eventually(t, "acme's next write queued", func() bool { return acme(g).PendingRetries == 1 })
	if at := acme(g).OldestPending; at == nil || at.Before(beforeD) {
		t.Errorf("acme's next write, queued after the others landed, shows as queued at %v, want after %v", at, beforeD)
	}
}

// Requests that match no route are a resource per path, as under a route
// "/*": a write the secondary refuses holds up neither the writes of other
// paths (they used to queue behind it, all under "unmatched") nor their
// reads, which are compared, not pending.
func TestEachUnmatchedPathIsAResourceOfItsOwn(t *testing.T) {
	secondary := newPicky(v1)
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	cfg := fmt.Sprintf("backends:\n  old: {url: %q, timeout: 1s}\n  new: {url: %q, timeout: 1s}\n", old.url(), new.url()) +
		"defaults:\n  phase: shadow-read\nqueue:\n  base_backoff: 1h\n  max_backoff: 1h\n" + briefBreaker + "\nroutes: []\n"
	g := startProxy(t, cfg, t.TempDir())
	for _, w := range [][2]string{{"/a", v1}, {"/b", v2}} {
		if res, _ := g.do("PUT", w[0], w[1]); res.StatusCode != http.StatusOK {
			t.Fatalf("PUT %s: %d", w[0], res.StatusCode)
		}
	}
	eventually(t, "the write to /b to reach new while /a's waits", func() bool { return secondary.k.value("/b") == v2 })
	if w := g.route(rules.Unmatched).Writes; w.PendingRetries != 1 {
		t.Errorf("unmatched writes: %+v, want /a's alone queued", w)
	}
	if res, _ := g.do("GET", "/b", ""); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /b: %d", res.StatusCode)
	}
	eventually(t, "the read of /b recorded", func() bool { return total(g.route(rules.Unmatched)) == 1 })
	if r := g.route(rules.Unmatched).Reads; r.Matched != 1 {
		t.Errorf("the read of /b while /a's write waits: %+v, want it compared and matched", r)
	}
	// A path longer than the queue's index takes is keyed by its hash, not
	// refused (414): such writes were proxied when all were one resource.
	long := "/" + strings.Repeat("c", 40000)
	if res, _ := g.do("PUT", long, v2); res.StatusCode != http.StatusOK {
		t.Fatalf("PUT of a 40,000-byte path: %d, want it proxied", res.StatusCode)
	}
	eventually(t, "the long path's write to reach new", func() bool { return secondary.k.value(long) == v2 })
}

// A write queued behind one the secondary refuses could not be sent at
// once: its first attempt counts as failed, and its landing as a retry
// that landed, whether it was queued before the refusal was known (while
// the first write was with the secondary) or after. Counted as landing at
// the first attempt, an outage of a busy resource read as a healthy
// first_attempt_rate once it was over.
func TestAWriteBlockedBehindAFailingOneCountsAsFailed(t *testing.T) {
	secondary := newPicky(v1)
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	cfg := fmt.Sprintf("backends:\n  old: {url: %q, timeout: 1s}\n  new: {url: %q, timeout: 5s}\n", old.url(), new.url()) +
		"queue:\n  base_backoff: 10ms\n  max_backoff: 20ms\n  max_attempts: 100000\n" + briefBreaker + acmeRoutes
	g := startProxy(t, cfg, t.TempDir())
	arrived, release := secondary.holdNext(v1)
	put := func(body string) {
		t.Helper()
		if res, _ := g.do("PUT", "/items/a", body); res.StatusCode != http.StatusOK {
			t.Fatalf("PUT: %d", res.StatusCode)
		}
	}
	put(v1)
	<-arrived
	put(v2) // behind v1, which the secondary has not refused yet
	release()
	eventually(t, "v1 refused", func() bool { return g.route("items").Writes.SecondaryFailed >= 1 })
	put(`{"v": 3}`) // behind v1, known to fail
	if w := g.route("items").Writes; w.SecondaryFailed != 2 {
		t.Errorf("while v1 is refused: %+v, want v1 and the write accepted after its refusal failed", w)
	}
	secondary.set(v1, false)
	eventually(t, "the three writes to land", func() bool { return g.proxyIdle() && secondary.k.value("/items/a") == `{"v": 3}` })
	w := g.route("items").Writes
	if w.SecondaryAttempted != 3 || w.SecondaryFailed != 3 || w.SecondarySucceeded != 0 || w.RetriedOK != 3 || *w.FirstAttemptRate != 0 {
		t.Errorf("after the outage: %+v, want 3 attempted, 3 failed, 3 retried_ok", w)
	}
	// The log says which failed and which waited: v2 is counted once it
	// landed, and "queued for retry" would have said it had not.
	refused := "secondary write failed; queued for retry"
	waited := "secondary write waited behind a write of its resource that the secondary refused; counted as a failed first attempt"
	if r, w := g.logs.count(refused), g.logs.count(waited); r != 1 || w != 2 {
		t.Errorf("logged %q %d times and %q %d times, want once and twice", refused, r, waited, w)
	}
}

// overrideWrites is the writes of one override of a route, as the
// statistics show them.
func (g *gw) overrideWrites(route, override string) stats.Writes {
	for _, o := range g.route(route).Overrides {
		if o.Override == override {
			return o.Writes
		}
	}
	return stats.Writes{}
}

// editQueueDB changes the closed gateway's queue.db.
func editQueueDB(t *testing.T, dir string, f func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "queue.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// queueOneAcmeWrite leaves one write of acme queued on disk in dir.
func queueOneAcmeWrite(t *testing.T, dir string) (backends string, secondary *picky) {
	secondary = newPicky(v1)
	old, new := newServer(t, &faulty{k: newKV()}), newServer(t, secondary)
	backends = fmt.Sprintf("backends:\n  old: {url: %q, timeout: 1s}\n  new: {url: %q, timeout: 1s}\n", old.url(), new.url())
	waiting := backends + "queue:\n  base_backoff: 1h\n  max_backoff: 1h\n" + briefBreaker + acmeRoutes
	g := startProxy(t, waiting, dir)
	if res, _ := g.do("PUT", "/items/a", v1, "X-Tenant", "acme"); res.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	eventually(t, "the write queued", func() bool { return g.route("items").Writes.PendingRetries == 1 })
	g.close()
	secondary.set(v1, false)
	return backends, secondary
}

// A queued write the index lists and the store does not hold (a damaged
// file) is counted out of its route and its override when its turn comes,
// and its index entry is dropped: the next start does not count it again.
func TestAWriteMissingFromTheStoreIsCountedOutOnce(t *testing.T) {
	dir := t.TempDir()
	backends, _ := queueOneAcmeWrite(t, dir)
	editQueueDB(t, dir, func(tx *bolt.Tx) error {
		q := tx.Bucket([]byte("queue"))
		c := q.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			if err := q.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	for run := 1; run <= 2; run++ {
		g := startProxy(t, backends+acmeRoutes, dir)
		eventually(t, "the missing write counted out", func() bool { return g.proxyIdle() })
		r, a := g.route("items").Writes.PendingRetries, g.overrideWrites("items", "acme")
		if r != 0 || a.PendingRetries != 0 {
			t.Errorf("start %d: route items pending %d, acme pending %d (%+v); want 0, 0", run, r, a.PendingRetries, a)
		}
		g.close()
	}
}

// A queued write whose index value is cut short is delivered, and counted
// in and out under its record's route and override.
func TestAWriteWithACutIndexValueIsCountedUnderItsRoute(t *testing.T) {
	dir := t.TempDir()
	backends, secondary := queueOneAcmeWrite(t, dir)
	editQueueDB(t, dir, func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("by_key"))
		var key, val []byte
		err := b.ForEach(func(k, v []byte) error { key, val = append([]byte(nil), k...), append([]byte(nil), v...); return nil })
		if err != nil || len(val) < 12 {
			return fmt.Errorf("the index entry %q: %v", val, err)
		}
		return b.Put(key, val[:12])
	})
	g := startProxy(t, backends+acmeRoutes, dir)
	eventually(t, "the write to land", func() bool { return g.proxyIdle() && secondary.k.value("/items/a") == v1 })
	r, a := g.route("items").Writes.PendingRetries, g.overrideWrites("items", "acme")
	if r != 0 || a.PendingRetries != 0 {
		t.Errorf("after it landed: route items pending %d, acme pending %d (%+v); want 0, 0", r, a.PendingRetries, a)
	}
}
