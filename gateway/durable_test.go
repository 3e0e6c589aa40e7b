package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// stormyQueue is a dual-write route whose secondary fails every write
// until healed, with retries an hour apart: whatever is queued is still
// queued at Close.
func stormyQueue(t *testing.T) (cfg string, primary, secondary *faulty) {
	primary, secondary = &faulty{k: newKV()}, &faulty{k: newKV(), fault: storm}
	old, new := newServer(t, primary), newServer(t, secondary)
	return durableConfig(old.url(), new.url(), "  base_backoff: 1h\n  max_backoff: 1h"), primary, secondary
}

// durableConfig routes /items/{id} in dual-write with the given queue
// settings.
func durableConfig(old, new, queue string) string {
	return fmt.Sprintf(`backends:
  old: {url: %q, timeout: 1s}
  new: {url: %q, timeout: 1s}
shadow:
  breaker_open_for: 50ms
queue:
%s
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`, old, new, queue)
}

func put(t *testing.T, g *gw, path string, i int) {
	t.Helper()
	res, _ := g.do("PUT", path, fmt.Sprintf(`{"v": %d}`, i))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %d", path, res.StatusCode)
	}
}

func TestQueueSurvivesARestart(t *testing.T) {
	cfg, primary, secondary := stormyQueue(t)
	dir := t.TempDir()
	g := startProxy(t, cfg, dir)
	for i := range 8 {
		put(t, g, fmt.Sprintf("/items/k%d", i%2), i)
	}
	// Only each resource's first write is attempted; the others wait
	// behind it.
	eventually(t, "the first attempts", func() bool { return g.route("items").Writes.SecondaryFailed == 2 })
	if v := g.route("items").Writes; v.PendingRetries != 8 || v.OldestPending == nil {
		t.Errorf("before the restart: %+v", v)
	}
	g.close()
	if _, err := os.Stat(filepath.Join(dir, "queue.db")); err != nil {
		t.Fatal(err)
	}

	// The next run finds them and delivers them, in order per resource.
	secondary.healed.Store(true)
	g2 := startProxy(t, cfg, dir)
	eventually(t, "the replayed queue to drain", func() bool { return g2.proxy.QueueDepth() == 0 })
	if diff := secondary.k.sameAs(primary.k); diff != "" {
		t.Errorf("after the restart the secondary differs: %s", diff)
	}
	// The two heads had failed once (their attempts are on disk too); the
	// others get their first attempt now.
	eventually(t, "the writes to be counted", func() bool {
		w := g2.route("items").Writes
		return w.RetriedOK == 2 && w.SecondarySucceeded == 6
	})
}

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

// TestWritesKeepTheirOrderPerResource writes to a few hot resources from
// many clients while the secondary fails now and then (refusing some
// writes, resetting after applying others). Each resource is written by
// one client at a time, so the primary's order is well defined; both
// backends must end with the same writes in the same order.
func TestWritesKeepTheirOrderPerResource(t *testing.T) {
	primary := &faulty{k: newKV()}
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	secondary := &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		roll := rng.IntN(10)
		mu.Unlock()
		switch {
		case roll < 2:
			storm(k, w, r)
		case roll < 3:
			resetMidBody(k, w, r)
		default:
			k.ServeHTTP(w, r)
		}
	}}
	old, new := newServer(t, primary), newServer(t, secondary)
	g := startProxy(t, durableConfig(old.url(), new.url(), "  base_backoff: 2ms\n  max_backoff: 20ms"), t.TempDir())

	const keys, clients, writes = 4, 8, 25
	var locks [keys]sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				k := (c + i) % keys
				locks[k].Lock()
				res, _ := send(t, g.srv.URL, "PUT", fmt.Sprintf("/items/hot%d", k), fmt.Sprintf(`{"client": %d, "n": %d}`, c, i))
				locks[k].Unlock()
				if res.StatusCode != http.StatusOK {
					t.Errorf("PUT: %d", res.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	secondary.healed.Store(true)
	eventually(t, "the queue to drain", func() bool { return g.proxy.QueueDepth() == 0 })
	if diff := secondary.k.sameAs(primary.k); diff != "" {
		t.Errorf("order differs: %s", diff)
	}
	for k := range keys {
		p := fmt.Sprintf("/items/hot%d", k)
		_, a := primary.k.apply(mustGet(t, p))
		_, b := secondary.k.apply(mustGet(t, p))
		if a != b {
			t.Errorf("%s: primary %s, secondary %s", p, a, b)
		}
	}
	if v := g.route("items").Writes; v.SecondaryFailed == 0 {
		t.Errorf("the secondary never failed: the test proved nothing (%+v)", v)
	}
}

func mustGet(t *testing.T, path string) *http.Request {
	req, err := http.NewRequest("GET", "http://x"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A record the queue cannot read stops the start with the file, the record
// and what to do, and the file is left as it was: dropping it to start would
// lose the writes it holds without a word.
func TestAnUnreadableQueueRecordStopsTheStartAndSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	cfg := durableConfig("http://127.0.0.1:1", "http://127.0.0.1:1", "  max_attempts: 3")
	startProxy(t, cfg, dir).close()
	path := filepath.Join(dir, "queue.db")
	key, bad := []byte{0, 0, 0, 0, 0, 0, 0, 7}, []byte{99, 1, 2} // a record version this cutover does not know
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("held")).Put(key, bad) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	set, err := rules.Parse("test.yaml", strings.NewReader(cfg))
	if err != nil {
		t.Fatal(err)
	}
	p, err := gateway.New(gateway.Config{Rules: rules.NewStatic(set), Stats: stats.New(), Registerer: prometheus.NewRegistry(), DataDir: dir})
	if err == nil {
		p.Close(context.Background())
		t.Fatal("the gateway started on a queue it cannot read")
	}
	for _, want := range []string{path, "held write 7", "corrupt queue record", "move the file aside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}

	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []byte
	if err := db.View(func(tx *bolt.Tx) error {
		got = bytes.Clone(tx.Bucket([]byte("held")).Get(key))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bad) {
		t.Errorf("the unreadable record is now %q; it must be left as it was", got)
	}
}

// The queue indexes a queued write by its resource key, in a bbolt key of at
// most 32 KiB. A write whose key is longer is refused before any backend
// sees it: queued anyway, it was lost at the next restart, its index entry
// refused while its record was kept. One just within the bound survives a
// restart and is delivered.
func TestAWriteTheQueueCannotIndexIsRefused(t *testing.T) {
	cfg, primary, secondary := stormyQueue(t)
	dir := t.TempDir()
	g := startProxy(t, cfg, dir)
	long := "/items/" + strings.Repeat("a", 40<<10)
	if res, _ := g.do("PUT", long, `{"v": 1}`); res.StatusCode != http.StatusRequestURITooLong {
		t.Errorf("PUT of a 40 KiB resource: %s, want 414", res.Status)
	}
	if res, _ := g.do("GET", long, ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET of it: %s, want the primary's 404 (reads are not queued)", res.Status)
	}
	if n := len(primary.k.log()[long]) + len(secondary.k.log()[long]); n != 0 {
		t.Errorf("the refused write reached a backend %d times", n)
	}
	within := "/items/" + strings.Repeat("b", 32<<10-100)
	put(t, g, within, 1)
	eventually(t, "the first attempt", func() bool { return g.route("items").Writes.SecondaryFailed == 1 })
	g.close()

	secondary.healed.Store(true)
	g2 := startProxy(t, cfg, dir)
	eventually(t, "the replayed queue to drain", func() bool { return g2.proxy.QueueDepth() == 0 })
	if diff := secondary.k.sameAs(primary.k); diff != "" {
		t.Errorf("after the restart the secondary differs: %s", diff)
	}
}

// A write whose handler still runs once Close has begun (a slow upload
// that outlived the server's shutdown: serve closes the gateway when its
// drain times out) is refused with 503 before the primary gets it: no
// worker would deliver the secondary's copy, and nothing would record it.
// With the queue on disk or in memory.
func TestAWriteAfterCloseBeganIsRefused(t *testing.T) {
	for _, store := range []string{"on disk", "in memory"} {
		t.Run(store, func(t *testing.T) {
			primary, secondary := &faulty{k: newKV()}, &faulty{k: newKV()}
			old, new := newServer(t, primary), newServer(t, secondary)
			dir := ""
			if store == "on disk" {
				dir = t.TempDir()
			}
			cfg := durableConfig(old.url(), new.url(), "  base_backoff: 1h\n  max_backoff: 1h")
			g := startProxy(t, cfg, dir)
			put(t, g, "/items/a", 1)
			eventually(t, "the first write delivered", func() bool { return g.route("items").Writes.SecondarySucceeded == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := g.proxy.Close(ctx); err != nil {
				t.Fatal(err)
			}
			res, _ := g.do("PUT", "/items/b", `{"v": 2}`)
			if res.StatusCode != http.StatusServiceUnavailable || !res.Close {
				t.Errorf("a write after Close: %s (closing the connection: %t), want 503 and the connection closed", res.Status, res.Close)
			}
			if n := len(primary.k.log()["/items/b"]) + len(secondary.k.log()["/items/b"]); n != 0 {
				t.Errorf("the refused write reached a backend %d times", n)
			}
			if res, body := g.do("GET", "/items/a", ""); res.StatusCode != http.StatusOK {
				t.Errorf("a read after Close: %s %s, want the primary's answer", res.Status, body)
			}
		})
	}
}

// A write whose body is larger than shadow.write_buffer cannot be repeated
// to the secondary, but what became of it is on disk as for any write: held
// to verify when the primary's outcome is unknown (here it applied the write
// and never answered), given up when the primary accepted it, and still
// there after a restart.
func TestAWriteTooLargeToRepeatIsStillRecorded(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	primary := &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		k.apply(r)
		if strings.HasSuffix(r.URL.Path, "/lost") {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
	}}
	secondary := &faulty{k: newKV()}
	old, new := newServer(t, primary), newServer(t, secondary)
	cfg := fmt.Sprintf(`backends:
  old: {url: %q, timeout: 200ms}
  new: {url: %q, timeout: 1s}
shadow: {write_buffer: 1KiB}
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`, old.url(), new.url())
	dir := t.TempDir()
	g := startProxy(t, cfg, dir)
	big := `{"v": "` + strings.Repeat("x", 4000) + `"}`
	if res, _ := g.do("PUT", "/items/lost", big); res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("PUT to a primary that never answers: %s, want 504", res.Status)
	}
	if res, _ := g.do("PUT", "/items/kept", big); res.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", res.Status)
	}
	want := map[string]string{"/items/lost": "verify", "/items/kept": "gave_up"}
	check := func(g *gw, when string) {
		t.Helper()
		var held []gateway.HeldWrite
		eventually(t, "two writes held "+when, func() bool {
			held, _ = g.proxy.HeldWrites("", "", 0, 10)
			return len(held) == 2
		})
		for _, h := range held {
			if want[h.Target] != h.Kind || h.Replayable {
				t.Errorf("%s: held %s %s (replayable %t), want %s and not replayable", when, h.Target, h.Kind, h.Replayable, want[h.Target])
			}
		}
	}
	check(g, "")
	g.close()
	check(startProxy(t, cfg, dir), "after a restart")
	if n := len(secondary.k.log()); n != 0 {
		t.Errorf("the secondary got %d writes", n)
	}
}

// The statistics restore the queue state of their last flush. When the
// writes it counted were delivered before the gateway stopped (a crash
// right after a flush), the next start must say what the queue holds now:
// nothing pending, for every route, emptied ones too.
func TestTheQueueStateAfterARestartIsTheQueues(t *testing.T) {
	dir := t.TempDir()
	before, err := stats.Open(stats.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	before.SetQueue("items", stats.QueueState{Pending: 5, GivenUp: 2, Oldest: time.Now()})
	if err := before.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := stats.Open(stats.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close(context.Background()) })
	w := func() stats.Writes {
		for _, v := range st.Routes(nil) {
			if v.Name == "items" {
				return v.Writes
			}
		}
		return stats.Writes{}
	}
	if got := w(); got.PendingRetries != 5 {
		t.Fatalf("the statistics restored %+v, want the 5 pending they were flushed with", got)
	}
	set, err := rules.Parse("test.yaml", strings.NewReader(durableConfig("http://127.0.0.1:1", "http://127.0.0.1:2", "  base_backoff: 1h\n  max_backoff: 1h")))
	if err != nil {
		t.Fatal(err)
	}
	p, err := gateway.New(gateway.Config{Rules: rules.NewStatic(set), Stats: st, Registerer: prometheus.NewRegistry(), DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	if got := w(); got.PendingRetries != 0 || got.GivenUp != 0 || got.OldestPending != nil || got.Unresolved != 0 {
		t.Errorf("after the start: %+v, want nothing pending or held (the queue is empty)", got)
	}
}

// A write already at the primary when Close begins is waited for: the
// primary's answer finds the queue open, the client gets it, and the
// secondary gets the write. (Close closed the queue under it: the client got
// 200 for a write held "to verify" at the next start, its acceptance lost.)
func TestCloseWaitsForAWriteAtThePrimary(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	primary := &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/a") {
			arrived <- struct{}{}
			<-release
		}
		k.ServeHTTP(w, r)
	}}
	secondary := &faulty{k: newKV()}
	old, new := newServer(t, primary), newServer(t, secondary)
	g := startProxy(t, durableConfig(old.url(), new.url(), "  base_backoff: 10ms\n  max_backoff: 10ms"), t.TempDir())
	status := make(chan int, 1)
	go func() {
		res, _ := send(t, g.srv.URL, "PUT", "/items/a", `{"v": 1}`)
		status <- res.StatusCode
	}()
	<-arrived
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		closed <- g.proxy.Close(ctx)
	}()
	// Close has begun once a new write is refused.
	eventually(t, "Close to begin", func() bool {
		res, _ := g.do("PUT", "/items/b", `{"v": 2}`)
		return res.StatusCode == http.StatusServiceUnavailable
	})
	close(release)
	if st := <-status; st != http.StatusOK {
		t.Fatalf("the write at the primary: %d, want 200", st)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if diff := secondary.k.sameAs(primary.k); diff != "" {
		t.Errorf("the secondary differs: %s", diff)
	}
}

// A write whose resource still has writes queued for the backend it goes to
// waits for them: an override (or a reload) that moves the resource to the
// cutover phase sends the next write to new directly, and sent at once it
// would land before the writes queued for new in the dual-write phase,
// which would then land over it.
func TestAWriteDoesNotOvertakeWritesQueuedForItsBackend(t *testing.T) {
	primary := &faulty{k: newKV()}
	var copies atomic.Bool // new refuses the dual-write phase's copies until set
	secondary := &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Cutover-Shadow") != "" && !copies.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		k.ServeHTTP(w, r)
	}}
	old, new := newServer(t, primary), newServer(t, secondary)
	g := startProxy(t, movableConfig(old.url(), new.url(), "{base_backoff: 300ms, max_backoff: 300ms}"), t.TempDir())
	put(t, g, "/items/a", 1)
	eventually(t, "the copy for new to fail", func() bool { return g.route("items").Writes.SecondaryFailed == 1 })
	copies.Store(true)
	// Moved to cutover: new is the primary, and the first write still
	// waits in the queue for it (its retry is up to 300 ms away).
	if res, _ := g.do("PUT", "/items/a", `{"v": 2}`, "X-Move", "1"); res.StatusCode != http.StatusOK {
		t.Fatalf("the moved write: %s", res.Status)
	}
	got := secondary.k.log()["/items/a"]
	if len(got) != 2 || got[0] != primary.k.log()["/items/a"][0] {
		t.Errorf("new applied %v; want the queued write first, then the moved one", got)
	}
}

// movableConfig is a dual-write route whose writes with X-Move: 1 are in
// the cutover phase (new first), with the queue settings given.
func movableConfig(old, new, queue string) string {
	return fmt.Sprintf(`backends:
  old: {url: %q, timeout: 1s}
  new: {url: %q, timeout: 5s}
queue: %s
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
    overrides:
      - name: moved
        when: {header: X-Move, equals: "1"}
        phase: cutover
`, old, new, queue)
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

// A write whose client leaves while it waits for earlier writes of its
// resource is refused as client_gone, not queued_ahead: no backend saw it,
// and the earlier writes were not late.
func TestAWriteWhoseClientLeavesWhileItWaitsIsCountedAsClientGone(t *testing.T) {
	primary := &faulty{k: newKV()}
	secondary := &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Cutover-Shadow") != "" {
			http.Error(w, "not yet", http.StatusServiceUnavailable) // the dual-write copy stays queued
			return
		}
		k.ServeHTTP(w, r)
	}}
	old, new := newServer(t, primary), newServer(t, secondary)
	g := startProxy(t, movableConfig(old.url(), new.url(), "{base_backoff: 1h, max_backoff: 1h}"), t.TempDir())
	put(t, g, "/items/a", 1)
	eventually(t, "the copy for new to fail", func() bool { return g.route("items").Writes.SecondaryFailed == 1 })

	// The moved write goes to new, and waits for the queued one; its
	// client leaves.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", g.srv.URL+"/items/a", strings.NewReader(`{"v": 2}`))
	req.Header.Set("X-Move", "1")
	done := make(chan error, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			err = fmt.Errorf("answered %s while the write before it was queued", res.Status)
		}
		done <- err
	}()
	eventually(t, "the moved write to wait", func() bool { return g.proxy.WritesAwaiting() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the moved write: %v, want its client to have left", err)
	}
	eventually(t, "the refusal counted", func() bool {
		return gathered(t, g, `cutover_requests_refused_total{reason="client_gone",route="items"}`) == 1
	})
	if n := gathered(t, g, `cutover_requests_refused_total{reason="queued_ahead",route="items"}`); n > 0 {
		t.Errorf("queued_ahead counted %v times; the client left", n)
	}
	if got := secondary.k.log()["/items/a"]; len(got) != 0 {
		t.Errorf("new applied %v; no write may reach it before the queued one", got)
	}
}
