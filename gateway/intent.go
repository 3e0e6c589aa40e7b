package gateway

import (
	"hash/maphash"
	"log/slog"
	"time"

	"github.com/cutover/cutover/rules"
)

// The life of a write before it is queued: recorded as an intent before the
// primary is sent it, then dropped (refused, or never sent), held to verify
// (outcome unknown) or accepted (queue.go).

// touch notes that a write to key moved (sent, accepted, landed), in two
// slots chosen by two hashes.
func (q *queue) touch(key string) {
	now := q.p.now().UnixNano()
	for _, seed := range q.seeds {
		q.touched[maphash.String(seed, key)%uint64(len(q.touched))].Store(now)
	}
}

// touchedSince reports whether a write to key may have moved since t: both
// of its slots were touched since. Another key shares both slots rarely
// (about (n/4096)² with n keys written meanwhile), and then a read is
// pending that could have been compared, never the reverse.
func (q *queue) touchedSince(key string, t time.Time) bool {
	for _, seed := range q.seeds {
		if q.touched[maphash.String(seed, key)%uint64(len(q.touched))].Load() < t.UnixNano() {
			return false
		}
	}
	return true
}

// intend records a write before the primary is sent it: if the gateway
// dies while the primary has it, the restart finds the intent and holds it
// to verify. Wait on the op (nil in memory mode) before sending.
func (q *queue) intend(r *record) *op {
	r.ID = q.seq.Add(1)
	r.State = stateIntent
	q.touch(r.Key)
	q.mu.Lock()
	q.inflight[r.Key]++
	q.addInflightTo(r.Key, r.Side.Other(), 1)
	q.mu.Unlock()
	if q.box == nil {
		return nil
	}
	return q.box.submitRecord(opIntent, r)
}

// settled ends the flight of write r to its primary; q.mu is held.
func (q *queue) settled(r *record) {
	if n := q.inflight[r.Key]; n <= 1 {
		delete(q.inflight, r.Key)
		delete(q.reachedInFlight, r.Key)
	} else {
		q.inflight[r.Key] = n - 1
	}
	q.addInflightTo(r.Key, r.Side.Other(), -1)
}

// addInflightTo counts n more writes of key in flight to side as their
// primary; q.mu is held.
func (q *queue) addInflightTo(key string, side rules.Side, n int) {
	to := q.inflightTo[key]
	to[side] = max(to[side]+n, 0)
	if to == [2]int{} {
		delete(q.inflightTo, key)
	} else {
		q.inflightTo[key] = to
	}
}

// beginDirect counts a write the secondary does not get, in flight to side
// as its primary, while a write held for side exists: a replay for side is
// refused until it ends (endDirect).
func (q *queue) beginDirect(key string, side rules.Side) {
	q.mu.Lock()
	q.addInflightTo(key, side, 1)
	q.mu.Unlock()
}

// endDirect ends a write begun with beginDirect; accepted says the primary
// took it, and then it overtakes the held writes of key for side.
func (q *queue) endDirect(key string, side rules.Side, accepted bool) {
	q.mu.Lock()
	q.addInflightTo(key, side, -1)
	if accepted {
		q.reached(key, side, q.seq.Load()+1)
	}
	q.mu.Unlock()
}

// drop forgets a write the primary refused or never received.
func (q *queue) drop(r *record) {
	q.mu.Lock()
	q.settled(r)
	q.mu.Unlock()
	if q.box != nil {
		q.box.submit(&op{kind: opDrop, id: r.ID})
	}
}

// verify holds a write whose primary outcome is unknown.
func (q *queue) verify(r *record, reason string, status int, cause error) {
	r.State, r.Reason, r.Status = stateVerify, reason, status
	if cause != nil {
		r.LastErr = cause.Error()
	}
	q.holdIntent(r)
}

// holdIntent turns the intent of r into a held write, in r's state (to
// verify, or given up) with r's reason: kept for an operator, since the
// secondary will not get it. Wait on the op (nil in memory mode) for it to
// be on disk.
func (q *queue) holdIntent(r *record) *op {
	r.Held = q.p.now()
	q.touch(r.Key)
	q.mu.Lock()
	defer q.mu.Unlock()
	// Held before its flight ends: a later write that reached its backend
	// meanwhile supersedes it.
	q.addHeld(r)
	if r.State == stateGaveUp {
		// Given up from its intent (its body too large to repeat), it was
		// accepted by its primary: it overtakes the writes held for that
		// backend.
		q.reached(r.Key, r.Side.Other(), r.ID)
	}
	q.settled(r)
	q.countHeld(r, 1)
	q.publish(r.Route)
	if q.box == nil {
		q.holdInMemory(r)
		return nil
	}
	// Submitted under q.mu: a mark of it (opSupersede) comes after.
	return q.box.submit(&op{kind: opHoldIntent, id: r.ID, rec: &record{State: r.State, Held: r.Held, Reason: r.Reason, Status: r.Status,
		LastErr: r.LastErr, Superseded: r.Superseded}})
}

// holdInMemory keeps a held write without a data directory, forgetting the
// oldest past the bound: its route's count goes down with it, and the log
// keeps what it was. q.mu is held.
func (q *queue) holdInMemory(r *record) {
	q.memHeld[r.ID] = r
	if len(q.memHeld) <= maxHeldInMemory {
		return
	}
	var oldest *record
	for _, h := range q.memHeld {
		if oldest == nil || h.ID < oldest.ID {
			oldest = h
		}
	}
	q.unheld(oldest)
	q.dropRef(oldest.Key, oldest.place())
	q.publish(oldest.Route)
	q.p.log.Error("held write forgotten: more than the held writes kept without a data directory", slog.Int("kept", maxHeldInMemory),
		slog.String(keyRoute, oldest.Route), slog.String("state", string(oldest.State)), slog.String("method", oldest.Method),
		slog.String("target", q.p.rules.Current().RedactTarget(oldest.Target)), slog.Uint64("id", oldest.ID))
}
