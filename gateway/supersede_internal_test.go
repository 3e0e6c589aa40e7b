package gateway

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// BenchmarkReachedWithHeldWrites measures what a write of a resource costs
// the queue, under its lock, when the resource has held writes: a hot
// resource whose writes new keeps refusing gathers thousands, and each
// write that reaches a backend asks which of them it supersedes. The cost
// should not grow with their number.
func BenchmarkReachedWithHeldWrites(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprint(n, " held"), func(b *testing.B) {
			p := newMemoryProxy(b, stats.New(), "")
			q := p.queue
			for range n {
				r := &record{Key: "items/hot", Route: "items", Method: "PUT", Target: "/items/hot", Side: rules.New}
				q.intend(r)
				r.State = stateVerify
				q.holdIntent(r)
			}
			place := q.seq.Load()
			b.ResetTimer()
			for b.Loop() {
				// Accepted by old as primary, then acknowledged by new: the
				// first marks every held write superseded, the rest find them
				// marked.
				place++
				q.mu.Lock()
				q.reached("items/hot", rules.Old, place)
				q.reached("items/hot", rules.New, place)
				q.mu.Unlock()
			}
		})
	}
}

// Held writes come to the refs out of the order of their places (a write
// held to verify after a timeout, one found at start, a replay held
// again); a write that reaches their backend supersedes exactly the ones
// from earlier places, on that backend, and the rest stay open for later
// writes.
func TestAWriteSupersedesTheEarlierHeldWritesWhateverTheirOrder(t *testing.T) {
	p := newMemoryProxy(t, stats.New(), "")
	q := p.queue
	q.mu.Lock()
	defer q.mu.Unlock()
	const key = "items/a"
	for _, place := range []uint64{50, 30, 90, 10, 70} {
		q.newRef(key, place, rules.New, time.Time{})
	}
	q.newRef(key, 20, rules.Old, time.Time{})
	superseded := func() (places []uint64) {
		for _, place := range []uint64{10, 20, 30, 50, 70, 90} {
			if h := q.ref(key, place); h != nil && !h.superseded.IsZero() {
				places = append(places, place)
			}
		}
		return places
	}
	q.reached(key, rules.New, 60)
	if got := superseded(); !slices.Equal(got, []uint64{10, 30, 50}) {
		t.Errorf("after a write from 60 reached new, superseded %v; want [10 30 50]", got)
	}
	q.dropRef(key, 70)
	q.reached(key, rules.New, 80)
	if got := superseded(); !slices.Equal(got, []uint64{10, 30, 50}) {
		t.Errorf("after the write from 70 left and one from 80 reached new, superseded %v; want [10 30 50]", got)
	}
	q.reached(key, rules.Old, 100)
	q.reached(key, rules.New, 100)
	if got := superseded(); !slices.Equal(got, []uint64{10, 20, 30, 50, 90}) {
		t.Errorf("after writes from 100 reached both, superseded %v; want [10 20 30 50 90]", got)
	}
	for _, place := range []uint64{10, 20, 30, 50, 90} {
		q.dropRef(key, place)
	}
	if q.heldRefs[key] != nil || q.refsTo[rules.Old].Load() != 0 || q.refsTo[rules.New].Load() != 0 {
		t.Errorf("refs left after every one was dropped: %+v, %d to old, %d to new", q.heldRefs[key], q.refsTo[rules.Old].Load(), q.refsTo[rules.New].Load())
	}
}
