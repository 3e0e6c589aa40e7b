package gateway

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// open() is what the request path reads instead of gobreaker's State(): it
// must follow every transition, half-open → open included.
func TestBreakerOpenFollowsGobreaker(t *testing.T) {
	br := newBreaker(rules.New, 100*time.Millisecond, newMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	fail := func() error {
		_, err := br.cb.Execute(func() (struct{}, error) { return struct{}{}, errors.New("down") })
		return err
	}
	for range 6 {
		if br.open() {
			t.Fatal("open before six failures")
		}
		fail()
	}
	if !br.open() {
		t.Fatal("not open after six failures")
	}
	deadline := time.Now().Add(5 * time.Second)
	for br.open() {
		if time.Now().After(deadline) {
			t.Fatal("still open 5 s after a 100 ms open time")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The first call after the open time is gobreaker's half-open probe;
	// its failure opens the breaker again.
	if err := fail(); isBreakerOpen(err) {
		t.Fatalf("the probe was refused: %v", err)
	}
	if !br.open() {
		t.Error("a failed half-open probe did not open the breaker again")
	}
}

// A queued write that was attempted once waits, while the breaker is open,
// until the breaker lets a probe through: retried every backoff (10 ms
// here) instead, each key's head was read from disk under the queue's lock
// for the whole open time.
func TestAQueuedWriteWaitsOutTheOpenBreaker(t *testing.T) {
	p := newMemoryProxy(t, stats.New(), "shadow: {breaker_open_for: 1h}\nqueue: {base_backoff: 10ms, max_backoff: 20ms}\n")
	br := p.breakers[rules.New]
	for range 6 {
		br.cb.Execute(func() (struct{}, error) { return struct{}{}, errors.New("down") })
	}
	if !br.open() {
		t.Fatal("the breaker did not open")
	}
	r := &record{Key: "items/1", Route: "items", Side: rules.New, Method: "PUT", URL: "http://127.0.0.1:2/items/1", Target: "/items/1", Attempts: 1}
	p.queue.intend(r)
	p.queue.accept(r, nil)
	var due time.Time
	deadline := time.Now().Add(10 * time.Second)
	for due.IsZero() {
		if time.Now().After(deadline) {
			t.Fatal("the write was never put off")
		}
		p.queue.mu.Lock()
		if kq := p.queue.keys[r.Key]; kq != nil {
			due = kq.due
		}
		p.queue.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if wait := time.Until(due); wait < 50*time.Minute {
		t.Errorf("put off for %v while the breaker is open for an hour", wait)
	}
}
