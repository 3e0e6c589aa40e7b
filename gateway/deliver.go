package gateway

// The queue's workers: each takes a resource whose head write may be
// attempted, sends it to the secondary and settles what came back
// (delivered, retried later, given up and held).

import (
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// take waits for a key whose head may be attempted; nil means stop.
func (q *queue) take() *keyQueue {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.ready) == 0 {
		if q.closing {
			return nil
		}
		q.cond.Wait()
	}
	kq := q.ready[0]
	q.ready[0] = nil
	q.ready = q.ready[1:]
	return kq
}

// head returns kq's head write with its body, reading from disk what is not
// in memory. It runs on the worker that owns kq for this attempt.
func (q *queue) head(kq *keyQueue) (*entry, []byte, error) {
	var told []func(answer)
	defer func() { tellQueued(told) }()
	q.mu.Lock()
	if len(kq.entries) == 0 && kq.onDisk == 0 {
		// With nothing in memory or on disk, trim moves the tail's first
		// write (if any) into entries.
		told = q.trim(kq, told)
	}
	if len(kq.entries) == 0 && kq.onDisk > 0 {
		after, n := kq.last, min(kq.onDisk, memoryPerKey)
		q.mu.Unlock()
		recs, missing, err := q.box.nextOfKey(kq.key, after, n)
		if err != nil {
			return nil, nil, err
		}
		q.mu.Lock()
		if len(missing) > 0 {
			q.forgetMissing(kq, missing)
		}
		if len(recs) == 0 && kq.onDisk > 0 {
			// Counted on disk but not there: a write whose acceptance
			// failed to commit (logged when it happened).
			q.p.log.Error("queued writes missing from the queue store", slog.String(keyRoute, kq.route), slog.Int("count", kq.onDisk))
			// Their overrides are not known either: a tenant's count
			// stays high (not ready) until the next start recounts.
			q.addPending(kq.route, "", -kq.onDisk)
			// Their backends are not known: queuedFor may hold writes
			// for one a little longer, until kq empties.
			kq.uncounted = max(kq.uncounted-kq.onDisk, 0)
			kq.onDisk = 0
			kq.wake()
			told = q.trim(kq, told)
		}
		for _, r := range recs {
			kq.entries = append(kq.entries, &entry{rec: r})
			kq.onDisk--
			kq.last = max(kq.last, r.Order)
		}
	}
	if len(kq.entries) == 0 {
		q.mu.Unlock()
		return nil, nil, nil
	}
	e := kq.entries[0]
	kq.first = e.rec.First
	body, noBody := e.rec.body, e.rec.NoBody
	q.mu.Unlock()
	if body == nil && !noBody && q.box != nil && e.durable() {
		r, err := q.box.load(e.rec.Order)
		if err != nil {
			return nil, nil, err
		}
		body = r.body
	}
	return e, body, nil
}

func (q *queue) work() {
	defer q.wg.Done()
	for {
		kq := q.take()
		if kq == nil {
			return
		}
		e, body, err := q.head(kq)
		if err != nil {
			// The resource's writes wait: delivering the ones behind a
			// write that cannot be read would change their order, and
			// skipping it would lose it. Its pending age grows (and
			// alerts) until a cutover that reads it runs, or an operator
			// removes it from queue.db.
			q.p.log.Error("reading the queue store: this resource's queued writes wait until the one at their head can be read",
				slog.String(keyRoute, kq.route), slog.String("error", err.Error()))
			q.p.metrics.storeErrors.Inc()
			q.mu.Lock()
			q.delay(kq, q.p.now().Add(q.cfg.MaxBackoff))
			told := q.behind(kq, nil)
			q.mu.Unlock()
			tellQueued(told)
			continue
		}
		if e == nil {
			q.mu.Lock()
			q.release(kq)
			q.mu.Unlock()
			continue
		}
		var a answer
		if q.replayOvertaken(e.rec) {
			a = answer{err: errReplayOvertaken, reason: reasonSuperseded}
		} else if e.rec.Attempts > 0 && q.p.breakers[e.rec.Side].open() {
			// Not an attempt: wait for the breaker to let a probe through.
			a = answer{err: errBreakerOpen, reason: stats.ReasonBreakerOpen}
		} else {
			a = q.p.attemptWrite(e.rec, body)
		}
		q.settle(kq, e, a)
	}
}

// forgetMissing counts out the writes of kq the index lists and the store
// does not hold (a damaged file), as the start counted them in, and drops
// their index entries, so the next start does not count them again. q.mu
// is held.
func (q *queue) forgetMissing(kq *keyQueue, missing []indexEntry) {
	q.p.log.Error("queued writes missing from the queue store: their index entries are dropped",
		slog.String(keyRoute, kq.route), slog.Int("count", len(missing)))
	for _, e := range missing {
		q.addPending(e.route, e.override, -1)
		kq.countTenant(e.override, -1)
		kq.onDisk = max(kq.onDisk-1, 0)
		if e.side == int(rules.Old) || e.side == int(rules.New) {
			kq.toSide[e.side] = max(kq.toSide[e.side]-1, 0)
			if e.origin != 0 {
				q.dropRef(kq.key, e.origin)
			}
		} else {
			kq.uncounted = max(kq.uncounted-1, 0)
		}
		kq.last = max(kq.last, e.order)
		q.box.submit(&op{kind: opAck, order: e.order, key: kq.key})
	}
	kq.wake()
}

// release forgets kq once it is empty, or puts it back to be attempted;
// q.mu is held.
func (q *queue) release(kq *keyQueue) {
	if kq.empty() {
		if q.keys[kq.key] == kq {
			delete(q.keys, kq.key)
		}
		kq.wake()
		return
	}
	q.ready = append(q.ready, kq)
	q.cond.Signal()
}

// settle moves the queue on after an attempt of kq's head.
func (q *queue) settle(kq *keyQueue, e *entry, a answer) {
	now := q.p.now()
	var outcomes []stats.WriteOutcome
	var told []func(answer)
	var blocked []record
	leaves := false
	r := e.rec
	q.mu.Lock()
	switch {
	case a.err == nil:
		leaves = true
		kq.failing = false
		switch {
		case r.Attempts > 0 || r.Redriven || r.Blocked:
			outcomes = append(outcomes, stats.WriteRetriedOK)
		case r.Order <= kq.blockedThrough:
			// Queued behind a write that failed, before that was known:
			// its first attempt could not be made at once.
			blocked = append(blocked, q.block(r))
			outcomes = append(outcomes, stats.WriteRetriedOK)
		default:
			outcomes = append(outcomes, stats.WriteOK)
		}
		// Marked before the ack is submitted: no commit keeps the ack
		// without the mark.
		q.reached(r.Key, r.Side, r.place())
		if r.Origin != 0 {
			q.dropRef(r.Key, r.place()) // a replay that landed
		}
		if q.box != nil {
			q.box.submit(&op{kind: opAck, order: r.Order, key: r.Key})
		}
	case a.reason == reasonSuperseded:
		// A replay overtaken while it waited: held again, not sent. Not
		// an attempt, and nothing the backend did.
		leaves = true
		r.LastErr = a.err.Error()
		q.giveUp(r, now, reasonSuperseded)
	case a.reason == stats.ReasonShutdown:
		// Cut by our own shutdown: not an attempt. It stays queued (on
		// disk) for the next start.
	case a.reason == stats.ReasonBreakerOpen && r.Attempts > 0:
		// Not before the breaker lets a probe through: polling every
		// backoff while it is open read each key's head from disk, under
		// q.mu, for the whole open time (a minute by default).
		wait := q.backoff(r.Attempts)
		if open := q.p.breakers[r.Side].openFor(); open > 0 {
			wait = max(wait, open+rand.N(open/4+1))
		}
		q.delay(kq, now.Add(wait))
		told = q.behind(kq, told)
	default:
		r.Attempts++
		r.LastErr = a.err.Error()
		if r.Attempts == 1 && !r.Redriven && !r.Blocked {
			outcomes = append(outcomes, stats.WriteFailed)
		}
		kq.failing = true
		kq.blockedThrough = q.seq.Load()
		if r.Attempts >= q.cfg.MaxAttempts || now.Sub(r.First) >= q.cfg.MaxAge {
			leaves = true
			if !r.Redriven {
				outcomes = append(outcomes, stats.WriteGaveUp)
			}
			q.giveUp(r, now, a.reason)
		} else {
			if q.box != nil {
				q.box.submit(&op{kind: opAttempted, order: r.Order, rec: &record{Attempts: r.Attempts, LastErr: r.LastErr}})
				if e.durable() {
					r.body = nil // read again from disk for the retry
				}
			}
			q.delay(kq, now.Add(q.backoff(r.Attempts)))
			told = q.behind(kq, told)
		}
	}
	if leaves {
		kq.left(r)
		kq.entries[0] = nil
		kq.entries = kq.entries[1:]
		if len(kq.entries) > 0 {
			kq.first = kq.entries[0].rec.First
		}
		q.touch(r.Key)
		q.release(kq)
		q.addPending(r.Route, r.Override, -1)
		kq.countTenant(r.Override, -1)
	}
	onFirst := e.onFirst
	e.onFirst = nil
	// Reported from a copy taken under q.mu: once it is released, another
	// worker may retry r (a short backoff) and change its attempts and
	// last error.
	var report record
	if len(outcomes) > 0 {
		report = *r
	}
	q.mu.Unlock()
	tellQueued(told)
	q.p.reportBlocked(blocked)

	for _, o := range outcomes {
		q.p.emitWrite(&report, o, a.reason)
	}
	if onFirst != nil {
		onFirst(a)
	}
}

// giveUp holds queued write r, given up for reason: counted, seen for
// overtaking, on disk (or in memory). q.mu is held; the caller takes it
// out of its key's queue.
func (q *queue) giveUp(r *record, now time.Time, reason string) {
	r.State, r.Held, r.Reason = stateGaveUp, now, reason
	q.countHeld(r, 1)
	q.addHeld(r)
	if q.box != nil {
		q.box.submit(&op{kind: opGiveUp, order: r.Order, rec: &record{Held: now, Reason: reason, Attempts: r.Attempts, LastErr: r.LastErr, Superseded: r.Superseded}})
	} else {
		q.holdInMemory(r)
	}
}
