package gateway

import (
	"hash/maphash"
	"log/slog"
	"time"
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
	q.mu.Unlock()
	if q.box == nil {
		return nil
	}
	return q.box.submitRecord(opIntent, r)
}

// settled ends a write's flight to the primary; q.mu is held.
func (q *queue) settled(key string) {
	if n := q.inflight[key]; n <= 1 {
		delete(q.inflight, key)
	} else {
		q.inflight[key] = n - 1
	}
}

// drop forgets a write the primary refused or never received.
func (q *queue) drop(r *record) {
	q.mu.Lock()
	q.settled(r.Key)
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
	q.settled(r.Key)
	if r.State == stateVerify {
		q.route(r.Route).verify++
	} else {
		q.route(r.Route).givenUp++
	}
	q.addHeld(r)
	q.publish(r.Route)
	if q.box == nil {
		q.holdInMemory(r)
	}
	q.mu.Unlock()
	if q.box == nil {
		return nil
	}
	return q.box.submit(&op{kind: opHoldIntent, id: r.ID, rec: &record{State: r.State, Held: r.Held, Reason: r.Reason, Status: r.Status, LastErr: r.LastErr}})
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
	q.publish(oldest.Route)
	q.p.log.Error("held write forgotten: more than the held writes kept without a data directory", slog.Int("kept", maxHeldInMemory),
		slog.String(keyRoute, oldest.Route), slog.String("state", string(oldest.State)), slog.String("method", oldest.Method),
		slog.String("target", q.p.rules.Current().RedactTarget(oldest.Target)), slog.Uint64("id", oldest.ID))
}
