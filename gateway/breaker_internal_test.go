package gateway

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/rules"
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
