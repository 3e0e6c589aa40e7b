package gateway

import (
	"cmp"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/cutover/cutover/rules"
)

// A held write can be overtaken: once it is held, later writes of its
// resource go on reaching its backend (the queue moves on past it, and
// clients keep writing). Replayed then, it would land over them and put an
// older value back. The queue notes every such overtaking on the held
// write, and a replay that would land over a newer write is refused unless
// forced; a replay overtaken while it waits in the queue is held again
// instead of sent.

// Errors of a replay that would put an older value back.
var (
	ErrSuperseded = errors.New("a later write of this resource reached the backend after this write was held: " +
		"replayed, it would put the older value back over the newer one; compare the resource on both backends " +
		"and discard it, or replay with force to send it anyway")
	ErrResourceQueued = errors.New("a later write of this resource is queued for the backend: replayed now, this " +
		"write would land after it and put the older value back; replay once the queued writes landed or were given " +
		"up (it is refused as superseded if a later one landed), or replay with force to send it anyway")
)

// reasonSuperseded holds again a re-driven write that a later write of its
// resource overtook while it waited in the queue: it is not sent.
const reasonSuperseded = "superseded"

var errReplayOvertaken = errors.New("not sent: a later write of its resource reached the backend while the replay waited in the queue")

// heldRef is what the queue keeps in memory of a held write, or of one
// re-driven and queued again, to see it overtaken. A write's place
// (record.place) names it: places come from one sequence.
type heldRef struct {
	id    uint64 // its ID while held (0 for a replay found queued at start)
	place uint64
	side  rules.Side // the backend that did not get it
	// superseded is when a later write first reached side. overtaken is
	// the latest place of one that did while it was with its primary
	// (addHeld); later ones are keyRefs.reached.
	superseded time.Time
	overtaken  uint64
	// replayFrom is, for a re-driven write in the queue, the sequence when
	// it was re-driven: a write that reaches side from a later place
	// overtakes the replay itself. Zero while the write is held.
	replayFrom uint64
}

// keyRefs are the refs of one resource. A hot resource whose writes the
// secondary keeps refusing gathers thousands, and every write of it that
// reaches a backend asks which it supersedes, under q.mu: so the refs are
// found by place, the ones not yet superseded are kept apart by backend in
// order of place (each is superseded once, from the front), and the
// latest place that reached each backend is kept once for all.
type keyRefs struct {
	byPlace map[uint64]*heldRef
	open    [2][]*heldRef // not superseded, by place
	reached [2]uint64     // the latest place that reached each backend since the first ref
}

// overtakenBy is the latest place of a write that reached h's backend after
// h, as far as the queue saw it since h's resource had a ref (0: none).
func (k *keyRefs) overtakenBy(h *heldRef) uint64 {
	if p := k.reached[h.side]; p > h.place {
		return max(h.overtaken, p)
	}
	return h.overtaken
}

// ref returns the ref of the write at place of key, or nil. q.mu is held.
func (q *queue) ref(key string, place uint64) *heldRef {
	if k := q.heldRefs[key]; k != nil {
		return k.byPlace[place]
	}
	return nil
}

// newRef adds a ref for the write at place of key. q.mu is held.
func (q *queue) newRef(key string, place uint64, side rules.Side, superseded time.Time) *heldRef {
	k := q.heldRefs[key]
	if k == nil {
		k = &keyRefs{byPlace: make(map[uint64]*heldRef)}
		q.heldRefs[key] = k
	}
	h := &heldRef{place: place, side: side, superseded: superseded}
	k.byPlace[place] = h
	if superseded.IsZero() {
		k.unsuperseded(h)
	}
	q.refsTo[side].Add(1)
	return h
}

// unsuperseded puts h among k's refs not yet superseded, in its place.
func (k *keyRefs) unsuperseded(h *heldRef) {
	open := k.open[h.side]
	i, _ := slices.BinarySearchFunc(open, h.place, func(o *heldRef, place uint64) int { return cmp.Compare(o.place, place) })
	k.open[h.side] = slices.Insert(open, i, h)
}

// superseded takes h out of k's refs not yet superseded, if it is there.
func (k *keyRefs) superseded(h *heldRef) {
	open := k.open[h.side]
	i, ok := slices.BinarySearchFunc(open, h.place, func(o *heldRef, place uint64) int { return cmp.Compare(o.place, place) })
	if ok {
		k.open[h.side] = slices.Delete(open, i, i+1)
	}
}

// addHeld notes a write that became held (or was found held at start, or
// was held again after a replay), and marks r superseded if a later write
// reached its backend before it was held; the caller writes r to disk
// after this. q.mu is held.
func (q *queue) addHeld(r *record) {
	h := q.ref(r.Key, r.place())
	if h == nil {
		h = q.newRef(r.Key, r.place(), r.Side, r.Superseded)
	}
	k := q.heldRefs[r.Key]
	h.id, h.replayFrom = r.ID, 0
	// A later write of the resource may have reached side while this one
	// was still with the primary (held to verify after a timeout).
	if p := q.reachedInFlight[r.Key][r.Side]; p > h.place {
		h.overtaken = max(h.overtaken, p)
		if h.superseded.IsZero() {
			h.superseded = q.p.now()
		}
	}
	if h.superseded.IsZero() {
		h.superseded = r.Superseded
	}
	if !h.superseded.IsZero() {
		k.superseded(h)
	}
	r.Superseded = h.superseded
}

// replayed notes a re-driven write queued again at order, from place.
// q.mu is held.
func (q *queue) replayed(key string, side rules.Side, place, order uint64) {
	h := q.ref(key, place)
	if h == nil {
		h = q.newRef(key, place, side, time.Time{})
	}
	h.replayFrom = order
}

// dropRef forgets the write at place of key: discarded, forgotten, or its
// replay landed. q.mu is held.
func (q *queue) dropRef(key string, place uint64) {
	k := q.heldRefs[key]
	if k == nil {
		return
	}
	h := k.byPlace[place]
	if h == nil {
		return
	}
	q.refsTo[h.side].Add(-1)
	k.superseded(h)
	delete(k.byPlace, place)
	if len(k.byPlace) == 0 {
		delete(q.heldRefs, key)
	}
}

// reached notes that a write of key at place reached side (the secondary
// acknowledged it, or the primary accepted it): every held write of key
// for side from an earlier place is superseded (on disk too), and a replay
// of one waiting in the queue is overtaken. q.mu is held.
func (q *queue) reached(key string, side rules.Side, place uint64) {
	if q.inflight[key] > 0 {
		// A write of key still with its primary may be held to verify
		// later, from an earlier place: addHeld looks here.
		m := q.reachedInFlight[key]
		m[side] = max(m[side], place)
		q.reachedInFlight[key] = m
	}
	k := q.heldRefs[key]
	if k == nil {
		return
	}
	k.reached[side] = max(k.reached[side], place)
	open := k.open[side]
	n := 0
	for n < len(open) && open[n].place < place {
		n++
	}
	if n == 0 {
		return
	}
	now := q.p.now()
	for _, h := range open[:n] {
		h.superseded = now
		if h.replayFrom != 0 {
			continue // queued, not held: settle holds it again with the mark
		}
		if q.box != nil {
			q.box.submit(&op{kind: opSupersede, id: h.id, rec: &record{Superseded: now}})
		} else if r := q.memHeld[h.id]; r != nil {
			r.Superseded = now
		}
	}
	clear(open[:n])
	k.open[side] = open[n:]
}

// supersededAt reports when a held write was overtaken (zero: it was not).
// q.mu is held.
func (q *queue) supersededAt(r *record) time.Time {
	if h := q.ref(r.Key, r.place()); h != nil {
		return h.superseded
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
	if kq != nil && kq.queuedFor(r.Side) && kq.latest[r.Side] > r.place() {
		return ErrResourceQueued
	}
	if q.inflightTo[r.Key][r.Side] > 0 {
		// A later write is with that backend as its primary now: it
		// would land first.
		return ErrResourceQueued
	}
	return nil
}

// replayOvertaken reports whether re-driven write r, about to be sent, was
// overtaken while it waited: a later write reached its backend since the
// replay. It is held again instead.
func (q *queue) replayOvertaken(r *record) bool {
	if r.Origin == 0 {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	h := q.ref(r.Key, r.place())
	if h == nil || h.replayFrom == 0 || q.heldRefs[r.Key].overtakenBy(h) <= h.replayFrom {
		return false
	}
	q.p.log.Warn("re-driven write held again, not sent: a later write of its resource reached the backend while it waited in the queue",
		slog.String(keyRoute, r.Route), slog.Uint64("id", r.ID), slog.String(keyBackend, r.Side.String()))
	return true
}
