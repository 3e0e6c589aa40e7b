package gateway

import (
	"errors"
	"slices"
	"time"

	"github.com/cutover/cutover/rules"
)

// A held write can be overtaken: once it is held, later writes of its
// resource go on reaching its backend (the queue moves on past it, and
// clients keep writing). Replayed then, it would land over them and put an
// older value back. The queue notes every such overtaking on the held
// write, and a replay that would land over a newer write is refused unless
// forced.

// Errors of a replay that would put an older value back.
var (
	ErrSuperseded = errors.New("a later write of this resource reached the backend after this write was held: " +
		"replayed, it would put the older value back over the newer one; compare the resource on both backends " +
		"and discard it, or replay with force to send it anyway")
	ErrResourceQueued = errors.New("a later write of this resource is queued for the backend: replayed now, this " +
		"write would land after it and put the older value back; replay once the queued writes landed or were given " +
		"up (it is refused as superseded if a later one landed), or replay with force to send it anyway")
)

// heldRef is what the queue keeps in memory of a held write to see it
// overtaken: its place among its resource's writes, the backend that did
// not get it, and when a later write reached that backend.
type heldRef struct {
	id         uint64
	place      uint64
	side       rules.Side
	superseded time.Time
}

// addHeld notes a write that became held (or was found held at start).
// q.mu is held.
func (q *queue) addHeld(r *record) {
	q.heldRefs[r.Key] = append(q.heldRefs[r.Key], heldRef{id: r.ID, place: r.place(), side: r.Side, superseded: r.Superseded})
	q.heldCount.Add(1)
}

// dropHeld forgets a held write that left the held set. q.mu is held.
func (q *queue) dropHeld(r *record) {
	refs := q.heldRefs[r.Key]
	i := slices.IndexFunc(refs, func(h heldRef) bool { return h.id == r.ID })
	if i < 0 {
		return
	}
	refs = slices.Delete(refs, i, i+1)
	if len(refs) == 0 {
		delete(q.heldRefs, r.Key)
	} else {
		q.heldRefs[r.Key] = refs
	}
	q.heldCount.Add(-1)
}

// reached notes that a write of key at place reached side (the secondary
// acknowledged it, or the primary accepted it): every held write of key
// for side from an earlier place is superseded, on disk too. q.mu is held.
func (q *queue) reached(key string, side rules.Side, place uint64) {
	refs := q.heldRefs[key]
	if len(refs) == 0 {
		return
	}
	now := q.p.now()
	for i := range refs {
		h := &refs[i]
		if h.side != side || h.place >= place || !h.superseded.IsZero() {
			continue
		}
		h.superseded = now
		if q.box != nil {
			q.box.submit(&op{kind: opSupersede, id: h.id, rec: &record{Superseded: now}})
		} else if r := q.memHeld[h.id]; r != nil {
			r.Superseded = now
		}
	}
}

// reachedDirect notes a write the primary accepted that the secondary
// does not get (a phase or route that copies no writes): it is later than
// every write held so far.
func (q *queue) reachedDirect(key string, side rules.Side) {
	q.mu.Lock()
	q.reached(key, side, q.seq.Load()+1)
	q.mu.Unlock()
}

// supersededAt reports when a held write was overtaken (zero: it was not).
// q.mu is held.
func (q *queue) supersededAt(r *record) time.Time {
	for _, h := range q.heldRefs[r.Key] {
		if h.id == r.ID {
			return h.superseded
		}
	}
	return r.Superseded
}

// overtakes reports why replaying held write r now would put an older value
// over a newer one: a later write reached its backend, or a later write of
// its resource is queued for that backend and the replay would land after
// it (earlier ones, such as the held writes before it replayed first, do
// not stop it). q.mu is held.
func (q *queue) overtakes(r *record) error {
	if !q.supersededAt(r).IsZero() {
		return ErrSuperseded
	}
	kq := q.keys[r.Key]
	if kq != nil && (kq.toSide[r.Side] > 0 || kq.uncounted > 0) && kq.latest[r.Side] > r.place() {
		return ErrResourceQueued
	}
	return nil
}
