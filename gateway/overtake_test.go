package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// A write whose resource still has writes queued for the backend it goes to
// waits for them: an override (or a reload) that moves the resource to the
// cutover phase sends the next write to new directly, and sent at once it
// would land before the writes queued for new in the dual-write phase,
// which would then land over it.
func TestAWriteDoesNotOvertakeWritesQueuedForItsBackend(t *testing.T) {
	primary := &faulty{k: newKV()}
	var copies atomic.Bool // new refuses the dual-write phase's copies until set
	secondary := refusingCopies(func() bool { return !copies.Load() })
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

// refusingCopies is a secondary that answers the dual-write phase's copies
// 503 while refuse says so, and takes the writes sent to it directly.
func refusingCopies(refuse func() bool) *faulty {
	return &faulty{k: newKV(), fault: func(k *kv, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Cutover-Shadow") != "" && refuse() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		k.ServeHTTP(w, r)
	}}
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

// A write whose client leaves while it waits for earlier writes of its
// resource is refused as client_gone, not queued_ahead: no backend saw it,
// and the earlier writes were not late.
func TestAWriteWhoseClientLeavesWhileItWaitsIsCountedAsClientGone(t *testing.T) {
	primary := &faulty{k: newKV()}
	secondary := refusingCopies(func() bool { return true }) // the dual-write copy stays queued
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
