package stats

import (
	"sync"
	"sync/atomic"
)

// The counters kept per time bucket, in this order.
const (
	cMatched = iota
	cMismatched
	cSkipped
	cErrors
	cPending
	cWriteOK
	cWriteFailed
	cWriteRetriedOK
	cWriteGaveUp
	cTransient
	numCounters
)

// counterNames name the bucket counters. Persisted buckets store the counts
// as an array in this order, so the list may only grow at its end.
var counterNames = [numCounters]string{"matched", "mismatched", "skipped", "errors", "pending", "write_ok", "write_failed", "write_retried_ok", "write_gave_up", "transient"}

// bucket holds the counts of one time slot, stamped with the slot number
// (minutes or hours since the epoch) it currently holds.
type bucket struct {
	slot atomic.Int64
	c    [numCounters]atomic.Int64
}

// ring is a fixed circle of buckets: minute slots for the sliding windows and
// the last day's chart, hour slots for long history. Recording is two atomic
// operations; a slot is wiped under the ring's mutex only when time moves
// into it, so the mutex is taken once per slot, not per event.
type ring struct {
	mu sync.Mutex // taken only to recycle a bucket for a new slot
	b  []bucket
}

func newRing(n int) *ring { return &ring{b: make([]bucket, n)} }

// add counts one event of counter c in slot. Slots older than the ring are
// dropped (the all-time counters still have them).
func (r *ring) add(slot int64, c int) {
	b := r.get(slot, true)
	if b != nil {
		b.c[c].Add(1)
	}
}

// get returns the bucket of slot; with create, it recycles the bucket when it
// still holds an older slot. It returns nil for a slot the ring has
// forgotten or (without create) never saw.
func (r *ring) get(slot int64, create bool) *bucket {
	if slot < 0 {
		return nil
	}
	b := &r.b[slot%int64(len(r.b))]
	cur := b.slot.Load()
	if cur == slot {
		return b
	}
	if !create || cur > slot {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur = b.slot.Load(); cur < slot {
		// Zero before publishing the slot: a writer that sees the new slot
		// number adds to clean counters.
		for i := range b.c {
			b.c[i].Store(0)
		}
		b.slot.Store(slot)
	} else if cur > slot {
		return nil
	}
	return b
}

// sum adds the counters of slots in (to-n, to].
func (r *ring) sum(to int64, n int) (out [numCounters]int64) {
	if n > len(r.b) {
		n = len(r.b)
	}
	for s := to - int64(n) + 1; s <= to; s++ {
		if b := r.get(s, false); b != nil {
			for i := range out {
				out[i] += b.c[i].Load()
			}
		}
	}
	return out
}

// slotSnapshot is one non-empty bucket as persisted: [slot, counts in
// counterNames order...].
type slotSnapshot []int64

// snapshot returns the non-empty buckets of slots in (to-n, to].
func (r *ring) snapshot(to int64) []slotSnapshot {
	var out []slotSnapshot
	for s := to - int64(len(r.b)) + 1; s <= to; s++ {
		b := r.get(s, false)
		if b == nil {
			continue
		}
		ss := make(slotSnapshot, 1+numCounters)
		ss[0] = s
		empty := true
		for i := range b.c {
			if ss[1+i] = b.c[i].Load(); ss[1+i] != 0 {
				empty = false
			}
		}
		if !empty {
			out = append(out, ss)
		}
	}
	return out
}

// restore loads persisted buckets that still fit in the ring ending at to.
func (r *ring) restore(snap []slotSnapshot, to int64) {
	for _, ss := range snap {
		if len(ss) < 2 || ss[0] > to || ss[0] <= to-int64(len(r.b)) {
			continue
		}
		b := r.get(ss[0], true)
		if b == nil {
			continue
		}
		for i := range b.c {
			if 1+i < len(ss) {
				b.c[i].Store(ss[1+i])
			}
		}
	}
}

func (r *ring) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.b {
		for j := range r.b[i].c {
			r.b[i].c[j].Store(0)
		}
		r.b[i].slot.Store(0)
	}
}
