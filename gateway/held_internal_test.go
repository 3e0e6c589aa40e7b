package gateway

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// Without a data directory the gateway keeps at most maxHeldInMemory held
// writes. The oldest one it forgets past that leaves the route's count too:
// the gauges never report writes that the held list cannot show, and that
// could never be redriven or discarded.
func TestAHeldWriteForgottenInMemoryLeavesTheCounts(t *testing.T) {
	st := stats.New()
	p := newMemoryProxy(t, st, "")
	// As the gateway holds them: an intent, then held, to verify or given
	// up; the first is the one to go.
	for i := range maxHeldInMemory + 1 {
		r := &record{Key: fmt.Sprint("items/", i), Route: "items", Method: "PUT", Target: fmt.Sprint("/items/", i)}
		p.queue.intend(r)
		r.State = stateGaveUp
		if i == 0 {
			r.State = stateVerify
		}
		p.queue.holdIntent(r)
	}
	var w stats.Writes
	for _, v := range st.Routes(nil) {
		if v.Name == "items" {
			w = v.Writes
		}
	}
	if w.GivenUp != maxHeldInMemory || w.ToVerify != 0 {
		t.Errorf("given up %d, to verify %d; want %d and 0 (the oldest, to verify, forgotten)", w.GivenUp, w.ToVerify, maxHeldInMemory)
	}
	held, err := p.HeldWrites("", "", 0, maxHeldInMemory+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != maxHeldInMemory || held[0].Target != "/items/1" {
		t.Fatalf("%d held; want %d from /items/1", len(held), maxHeldInMemory)
	}
}

// newMemoryProxy runs a gateway without a data directory for a dual-write
// route items (/items/{id}) to backends that are never reached, with extra
// top-level configuration; it is closed when the test ends.
func newMemoryProxy(t testing.TB, st *stats.Store, extra string) *Proxy {
	t.Helper()
	set, err := rules.Parse("test.yaml", strings.NewReader(`backends:
  old: {url: "http://127.0.0.1:1"}
  new: {url: "http://127.0.0.1:2"}
`+extra+`routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(Config{Rules: rules.NewStatic(set), Stats: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// A replay that a later write of its resource overtakes while it waits in
// the queue (a write whose flight to the backend began before anything was
// held for it, so nothing refused the replay) is held again, not sent.
func TestAReplayOvertakenWhileQueuedIsHeldAgain(t *testing.T) {
	st := stats.New()
	p := newMemoryProxy(t, st, "queue: {base_backoff: 20ms, max_backoff: 20ms, max_attempts: 1000}\n")
	r := &record{Key: "items|a", Route: "items", Side: rules.New, Method: "PUT", Target: "/items/a", body: []byte(`{}`)}
	p.queue.intend(r)
	r.State = stateGaveUp
	p.queue.holdIntent(r)
	if err := p.Redrive(r.ID, false); err != nil {
		t.Fatal(err)
	}
	// The late write lands on new as its primary.
	p.queue.mu.Lock()
	p.queue.reached(r.Key, rules.New, p.queue.seq.Load()+1)
	p.queue.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		held, _ := p.HeldWrites("", "", 0, 10)
		if len(held) == 1 && held[0].Reason == reasonSuperseded {
			if held[0].Superseded.IsZero() {
				t.Errorf("held again without the mark: %+v", held[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the overtaken replay was not held again: %+v", held)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Redrive(r.ID, false); err != ErrSuperseded {
		t.Errorf("replay after that: %v, want ErrSuperseded", err)
	}
}
