package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
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
	put(t, g, "/items/k0", 0)
	put(t, g, "/items/k1", 1)
	eventually(t, "the first attempts", func() bool { return g.route("items").Writes.SecondaryFailed == 2 })
	for i := 2; i < 8; i++ {
		put(t, g, fmt.Sprintf("/items/k%d", i%2), i)
	}
	// Only each resource's first write is attempted; the others wait
	// behind it, and their first attempt, which cannot be made at once,
	// counts as failed.
	if v := g.route("items").Writes; v.PendingRetries != 8 || v.OldestPending == nil || v.SecondaryAttempted != 8 || v.SecondaryFailed != 8 {
		t.Errorf("before the restart: %+v, want 8 pending, attempted and failed", v)
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
	// The two heads had failed once and the others were blocked behind
	// them (both are on disk too): each landing is a retry that landed.
	eventually(t, "the writes to be counted", func() bool {
		w := g2.route("items").Writes
		return w.RetriedOK == 8 && w.SecondarySucceeded == 0
	})
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

// A write the secondary refuses is counted and logged from a copy of its
// record taken under the queue's lock: with a short backoff, another
// worker already retries the same record (its attempts and last error
// change) while the first reports the failure. Under -race this test
// failed about once in 60 runs before.
func TestRetriesOfOneRecordDoNotRaceItsReport(t *testing.T) {
	var hits atomic.Int64
	secondary := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1)%2 == 0 {
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		io.Copy(io.Discard, r.Body)
	})
	g := startProxy(t, itemsConfig(newServer(t, &faulty{k: newKV()}).url(), newServer(t, secondary).url(),
		"queue: {base_backoff: 1ms, max_backoff: 1ms, max_attempts: 1000, workers: 4}"), t.TempDir())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for n := range 50 {
				path := fmt.Sprint("/items/", (i+n)%2)
				if res, _ := g.do("PUT", path, fmt.Sprintf(`{"v": %d}`, n)); res.StatusCode != http.StatusOK {
					t.Errorf("PUT %s: %d", path, res.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	// Counted after a write leaves the queue.
	eventually(t, "every write attempted and the queue drained", func() bool {
		return g.proxyIdle() && g.route("items").Writes.SecondaryAttempted == 200
	})
	if w := g.route("items").Writes; w.GaveUp != 0 || w.SecondarySucceeded+w.SecondaryFailed != 200 {
		t.Errorf("writes %+v; want 200 attempted, none given up", w)
	}
}
