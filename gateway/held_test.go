package gateway_test

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/cutover/cutover/gateway"
)

func TestGivenUpWriteIsKeptAndRedriven(t *testing.T) {
	primary := &faulty{k: newKV()}
	secondary := &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "schema mismatch", http.StatusUnprocessableEntity)
	}}
	old, new := newServer(t, primary), newServer(t, secondary)
	dir := t.TempDir()
	cfg := durableConfig(old.url(), new.url(), "  max_attempts: 2\n  base_backoff: 5ms\n  max_backoff: 10ms")
	g := startProxy(t, cfg, dir)
	put(t, g, "/items/a", 1)
	eventually(t, "the write to be given up", func() bool { return g.route("items").Writes.GaveUp == 1 })
	v := g.route("items").Writes
	if v.GivenUp != 1 || v.PendingRetries != 0 || v.Unresolved != 1 {
		t.Errorf("after giving up: %+v", v)
	}
	g.close()

	// Kept across a restart, with what an operator needs to judge it.
	g2 := startProxy(t, cfg, dir)
	held, err := g2.proxy.HeldWrites("gave_up", "items", 0, 10)
	if err != nil || len(held) != 1 {
		t.Fatalf("held writes after the restart: %+v, %v", held, err)
	}
	h := held[0]
	if h.Method != "PUT" || h.Target != "/items/a" || h.Attempts != 2 || h.Resource != "items|a" || !h.Replayable ||
		h.IdempotencyKey == "" || h.IdempotencyKey != primary.k.log()["/items/a"][0] {
		t.Errorf("held write %+v", h)
	}
	if v := g2.route("items").Writes; v.GivenUp != 1 {
		t.Errorf("the restarted gateway shows %d given up, want 1", v.GivenUp)
	}

	// Re-driven once the secondary is fixed: it lands with the same key.
	secondary.healed.Store(true)
	if err := g2.proxy.Redrive(h.ID, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the re-driven write to land", func() bool { return g2.proxy.QueueDepth() == 0 && len(secondary.k.log()["/items/a"]) == 1 })
	if diff := secondary.k.sameAs(primary.k); diff != "" {
		t.Error(diff)
	}
	if err := g2.proxy.Redrive(h.ID, false); !errors.Is(err, gateway.ErrNoSuchWrite) {
		t.Errorf("a second re-drive: %v, want ErrNoSuchWrite", err)
	}
	// Its failure and giving up were counted; its landing is a retry that
	// landed, not another first attempt (secondary_write_success would
	// count it).
	eventually(t, "the landing counted", func() bool { return g2.route("items").Writes.RetriedOK == 1 })
	if v := g2.route("items").Writes; v.GivenUp != 0 || v.Unresolved != 0 || v.SecondaryAttempted != 0 || v.GaveUp != 0 {
		t.Errorf("after the re-drive: %+v", v)
	}
}

func TestWriteToVerifyCanBeReplayedOrDiscarded(t *testing.T) {
	cfg, secondary := hangingPrimaryConfig(t)
	g := startProxy(t, cfg, t.TempDir())
	for _, p := range []string{"/items/a", "/items/b"} {
		if res, _ := g.do("PUT", p, `{"v": 1}`); res.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("PUT %s: %d, want 504", p, res.StatusCode)
		}
	}
	if v := g.route("items").Writes; v.ToVerify != 2 {
		t.Errorf("to verify: %d, want 2", v.ToVerify)
	}
	var held []gateway.HeldWrite
	eventually(t, "the verify records on disk", func() bool {
		held, _ = g.proxy.HeldWrites("verify", "", 0, 10)
		return len(held) == 2
	})
	if n := len(secondary.k.log()); n != 0 {
		t.Fatalf("the secondary was written: %v", secondary.k.log())
	}
	// Reconciliation found that the primary applied the first: replay it.
	if err := g.proxy.Redrive(held[0].ID, false); err != nil {
		t.Fatal(err)
	}
	// And that the second never happened: discard it.
	if err := g.proxy.Discard(held[1].ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the replayed write", func() bool { return len(secondary.k.log()["/items/a"]) == 1 })
	if got := secondary.k.log()["/items/a"][0]; got != held[0].IdempotencyKey {
		t.Errorf("replayed with idempotency key %q, want %q", got, held[0].IdempotencyKey)
	}
	if left, _ := g.proxy.HeldWrites("", "", 0, 10); len(left) != 0 {
		t.Errorf("still held: %+v", left)
	}
	if v := g.route("items").Writes; v.ToVerify != 0 {
		t.Errorf("to verify: %d, want 0", v.ToVerify)
	}
}

// A held write's ID names it for good: the operator's replay and discard,
// the audit log and pollers paging with after= use it. Once the highest
// held writes were discarded, a restart handed their IDs to the next
// writes, so a discard retried from the first listing dropped a write
// nobody had looked at, and a poller resuming after the old last ID
// missed the new ones.
func TestHeldWriteIDsAreNotReusedAfterARestart(t *testing.T) {
	cfg, _ := hangingPrimaryConfig(t)
	dir := t.TempDir()
	g := startProxy(t, cfg, dir)
	for _, p := range []string{"/items/a", "/items/b"} {
		if res, _ := g.do("PUT", p, `{"v": 1}`); res.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("PUT %s: %d, want 504", p, res.StatusCode)
		}
	}
	var before []gateway.HeldWrite
	eventually(t, "two held writes", func() bool { before, _ = g.proxy.HeldWrites("", "", 0, 10); return len(before) == 2 })
	for _, h := range before {
		if err := g.proxy.Discard(h.ID); err != nil {
			t.Fatal(err)
		}
	}
	g.close()

	g2 := startProxy(t, cfg, dir)
	if res, _ := g2.do("PUT", "/items/c", `{"v": 2}`); res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("PUT /items/c: %d, want 504", res.StatusCode)
	}
	var after []gateway.HeldWrite
	eventually(t, "the new held write", func() bool { after, _ = g2.proxy.HeldWrites("", "", 0, 10); return len(after) == 1 })
	if id := after[0].ID; id <= before[1].ID {
		t.Errorf("the write held after the restart has ID %d; the discarded ones had %d and %d", id, before[0].ID, before[1].ID)
	}
	if err := g2.proxy.Discard(before[1].ID); !errors.Is(err, gateway.ErrNoSuchWrite) {
		t.Errorf("a discard of a discarded write's ID: %v, want ErrNoSuchWrite", err)
	}
	if page, _ := g2.proxy.HeldWrites("", "", before[1].ID, 10); len(page) != 1 {
		t.Errorf("a poller resuming after %d sees %d writes, want the new one", before[1].ID, len(page))
	}
	if page, err := g2.proxy.HeldWrites("", "", math.MaxUint64, 10); err != nil || len(page) != 0 {
		t.Errorf("after the largest ID: %d writes, %v; want none (after+1 wrapped to the first)", len(page), err)
	}
}

// Once Close has begun, an operator's replay or discard is refused with
// ErrShuttingDown and changes nothing: it used to lower the held counts,
// then fail on the closed store (a 500), and the write was still on disk.
func TestHeldActionsAreRefusedOnceTheGatewayCloses(t *testing.T) {
	cfg, _ := hangingPrimaryConfig(t)
	dir := t.TempDir()
	g := startProxy(t, cfg, dir)
	if res, _ := g.do("PUT", "/items/a", `{"v": 1}`); res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("PUT: %d, want 504", res.StatusCode)
	}
	var held []gateway.HeldWrite
	eventually(t, "the held write", func() bool { held, _ = g.proxy.HeldWrites("", "", 0, 10); return len(held) == 1 })
	g.close()
	replay := func(id uint64) error { return g.proxy.Redrive(id, false) }
	for name, act := range map[string]func(uint64) error{"replay": replay, "discard": g.proxy.Discard} {
		if err := act(held[0].ID); !errors.Is(err, gateway.ErrShuttingDown) {
			t.Errorf("%s after Close: %v, want ErrShuttingDown", name, err)
		}
	}
	if v := g.route("items").Writes; v.ToVerify != 1 {
		t.Errorf("to verify after the refused actions: %d, want 1", v.ToVerify)
	}
	g2 := startProxy(t, cfg, dir)
	if h, _ := g2.proxy.HeldWrites("", "", 0, 10); len(h) != 1 || h[0].ID != held[0].ID {
		t.Errorf("after the restart: %+v, want the write still held", h)
	}
}

// hangingPrimaryConfig is a dual-write route whose primary never answers
// within its 100 ms: every write is held to verify. The secondary is
// returned to see what reached it.
func hangingPrimaryConfig(t *testing.T) (string, *faulty) {
	secondary := &faulty{k: newKV()}
	old, new := newServer(t, &faulty{k: newKV(), fault: hang}), newServer(t, secondary)
	return fmt.Sprintf(`backends:
  old: {url: %q, timeout: 100ms}
  new: {url: %q, timeout: 1s}
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`, old.url(), new.url()), secondary
}

// A re-driven write keeps being one across a restart: given up again after
// it, it is not counted as given up a second time (nor its failures as
// first attempts that failed).
func TestARedrivenWriteStaysRedrivenAcrossARestart(t *testing.T) {
	var attempts atomic.Int64
	primary := &faulty{k: newKV()}
	secondary := &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		http.Error(w, "schema mismatch", http.StatusUnprocessableEntity)
	}}
	old, new := newServer(t, primary), newServer(t, secondary)
	dir := t.TempDir()
	fast := durableConfig(old.url(), new.url(), "  max_attempts: 2\n  base_backoff: 5ms\n  max_backoff: 10ms")
	slow := durableConfig(old.url(), new.url(), "  max_attempts: 2\n  base_backoff: 1h\n  max_backoff: 1h")
	g := startProxy(t, fast, dir)
	put(t, g, "/items/a", 1)
	// Counted as given up before the store's group commit lists it: wait
	// for the listing, which reads the store.
	var held []gateway.HeldWrite
	eventually(t, "the write to be given up and held", func() bool {
		held, _ = g.proxy.HeldWrites("gave_up", "", 0, 10)
		return len(held) == 1 && g.route("items").Writes.GaveUp == 1
	})
	g.close()

	// Re-driven; its first attempt fails and the next is an hour away.
	g2 := startProxy(t, slow, dir)
	if err := g2.proxy.Redrive(held[0].ID, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the re-driven write's attempt", func() bool { return attempts.Load() == 3 })
	g2.close()

	// After the restart it fails again and is given up again: still a
	// re-driven write, so nothing new is counted against the new backend.
	g3 := startProxy(t, fast, dir)
	eventually(t, "the write given up again", func() bool {
		h, _ := g3.proxy.HeldWrites("gave_up", "", 0, 10)
		return len(h) == 1 && attempts.Load() == 4
	})
	if w := g3.route("items").Writes; w.GaveUp != 0 || w.SecondaryFailed != 0 {
		t.Errorf("after the restart, the re-driven write counted again: %+v", w)
	}
}
