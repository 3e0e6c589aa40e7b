package gateway

import (
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/cutover/cutover/stats"
)

// HeldWrite is a secondary write that no retry will deliver: one given up
// after its retries, or one whose primary outcome is unknown and must be
// verified. It stays until an operator re-drives or discards it.
type HeldWrite struct {
	ID uint64
	// Kind is "gave_up" or "verify".
	Kind     string
	Route    string
	Override string
	// Resource is the resource key: the route and its path parameters, or
	// the route's resource_key.
	Resource       string
	Backend        string // the backend that did not get it: old or new
	Method         string
	Target         string // path and query as the client sent them
	IdempotencyKey string
	Recorded       time.Time // when the write entered the gateway
	Held           time.Time // when it was given up or set aside
	Attempts       int
	LastError      string
	// Reason is why: the last failure's reason for a given-up write; for a
	// write to verify, timeout, reset, client_gone or gateway_stopped.
	Reason string
	// Status is what the client got, for a write to verify.
	Status int
	// Replayable is false for a write whose body was too large to keep.
	Replayable bool
	// Superseded is when a later write of the same resource reached
	// Backend after this one was held (zero: none did). A replay is then
	// refused unless forced: it would put the older value back.
	Superseded time.Time
}

// Errors of the operator actions on held writes.
var (
	ErrNoSuchWrite   = errors.New("no such held write")
	ErrNotReplayable = errors.New("the write's body was not kept; it cannot be replayed")
	// ErrShuttingDown refuses an operator action once the gateway closes:
	// the write stays held, on disk, for after the restart.
	ErrShuttingDown = errors.New("the gateway is shutting down; the write stays held for after the restart")
)

// HeldWrites lists held writes in ID order after the given ID: of one kind
// ("gave_up", "verify", or "" for both) and one route ("" for all).
func (p *Proxy) HeldWrites(kind, route string, after uint64, limit int) ([]HeldWrite, error) {
	recs, err := p.queue.listHeld(recordState(kind), route, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]HeldWrite, 0, len(recs))
	for _, r := range recs {
		out = append(out, HeldWrite{
			ID: r.ID, Kind: string(r.State), Route: r.Route, Override: r.Override, Resource: r.Key,
			Backend: r.Side.String(), Method: r.Method, Target: p.rules.Current().RedactTarget(r.Target),
			IdempotencyKey: r.Header.Get(p.shadowCfg.IdempotencyHeader),
			Recorded:       r.Recorded, Held: r.Held, Attempts: r.Attempts, LastError: r.LastErr,
			Reason: r.Reason, Status: r.Status, Replayable: !r.NoBody, Superseded: r.Superseded,
		})
	}
	return out, nil
}

// Redrive puts a held write back in the queue, behind whatever is queued
// for its resource now, with its idempotency key and a fresh count of
// attempts. It returns once that is on disk. Unless force, it refuses
// (ErrSuperseded, ErrResourceQueued) a replay that would land over a later
// write of the same resource.
func (p *Proxy) Redrive(id uint64, force bool) error { return p.queue.redrive(id, force) }

// Discard forgets a held write (after it was repaired by hand, or found not
// to matter).
func (p *Proxy) Discard(id uint64) error { return p.queue.discard(id) }

func (q *queue) listHeld(state recordState, route string, after uint64, limit int) ([]*record, error) {
	if q.box != nil {
		recs, err := q.box.listHeld(state, route, after, limit)
		// What the queue saw overtaken may not be on disk yet.
		q.mu.Lock()
		for _, r := range recs {
			r.Superseded = q.supersededAt(r)
		}
		q.mu.Unlock()
		return recs, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []*record
	for _, r := range q.memHeld {
		if r.ID > after && (state == "" || r.State == state) && (route == "" || r.Route == route) {
			c := *r
			out = append(out, &c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// heldRecord reads one held write with its body.
func (q *queue) heldRecord(id uint64) (*record, error) {
	if q.box != nil {
		r, err := q.box.heldRecord(id)
		if errors.Is(err, errNotFound) {
			return nil, ErrNoSuchWrite
		}
		return r, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.memHeld[id]
	if r == nil {
		return nil, ErrNoSuchWrite
	}
	c := *r
	return &c, nil
}

// unheld updates the counts once a held write left the held set; q.mu is
// held.
func (q *queue) unheld(r *record) {
	q.countHeld(r, -1)
	delete(q.memHeld, r.ID)
}

// countHeld moves by n the held writes (given up, or to verify, as r's
// state says) of r's route and of its override, and publishes the
// override's; the caller publishes the route's. q.mu is held.
func (q *queue) countHeld(r *record, n int64) {
	i := overrideGivenUp
	if r.State == stateVerify {
		i = overrideVerify
	}
	rq := q.route(r.Route)
	if i == overrideVerify {
		rq.verify += n
	} else {
		rq.givenUp += n
	}
	q.countOverride(r.Route, r.Override, i, n)
}

// The slots of an override's counts (countOverride).
const (
	overrideGivenUp = iota
	overrideVerify
	overridePending // queued, re-driven or not
)

// countOverride moves slot i of an override's counts by n and publishes
// them. q.mu is held.
func (q *queue) countOverride(route, override string, i int, n int64) {
	if override == "" {
		return
	}
	k := [2]string{route, override}
	h := q.overrideCounts[k]
	h[i] += n
	if h == [3]int64{} {
		delete(q.overrideCounts, k)
	} else {
		q.overrideCounts[k] = h
	}
	q.publishOverride(k)
}

// queuedSince notes that an override has a write queued since first,
// unless it has an older one; q.mu is held.
func (q *queue) queuedSince(route, override string, first time.Time) {
	if override == "" {
		return
	}
	k := [2]string{route, override}
	if o, ok := q.overrideOldest[k]; !ok || first.Before(o) {
		q.overrideOldest[k] = first
		q.publishOverride(k)
	}
}

// publishOverride reports an override's queue to the statistics; q.mu is
// held.
func (q *queue) publishOverride(k [2]string) {
	h := q.overrideCounts[k]
	if h[overridePending] <= 0 {
		delete(q.overrideOldest, k)
	}
	q.p.stats.SetOverrideQueue(k[0], k[1], stats.QueueState{GivenUp: h[overrideGivenUp], Verify: h[overrideVerify], Pending: h[overridePending], Oldest: q.overrideOldest[k]})
}

func (q *queue) redrive(id uint64, force bool) error {
	q.adminMu.Lock()
	defer q.adminMu.Unlock()
	if q.adminClosed {
		return ErrShuttingDown
	}
	r, err := q.heldRecord(id)
	if err != nil {
		return err
	}
	if r.NoBody {
		return ErrNotReplayable
	}
	q.mu.Lock()
	if q.box == nil && q.memHeld[id] == nil {
		q.mu.Unlock()
		return ErrNoSuchWrite // forgotten meanwhile, past the in-memory bound
	}
	over := q.overtakes(r)
	if over != nil && !force {
		q.mu.Unlock()
		return over
	}
	// Kept through the replay: held again (given up), it is still
	// overtaken.
	r.Superseded = q.supersededAt(r)
	// Counted as its override's pending before it stops being held: a view
	// in between sees it twice, never not at all.
	q.countOverride(r.Route, r.Override, overridePending, 1)
	q.unheld(r)
	state := r.State
	r.Redriven = r.Redriven || state == stateGaveUp
	r.Origin = r.place() // before enqueue gives it a new order
	r.Attempts, r.LastErr, r.Held, r.Reason, r.Status = 0, "", time.Time{}, "", 0
	x := q.enqueue(r, nil, opRequeue)
	q.replayed(r.Key, r.Side, r.Origin, r.Order)
	q.mu.Unlock()
	attrs := []any{slog.String(keyRoute, r.Route), slog.Uint64("id", id), slog.String("was", string(state)),
		slog.String("method", r.Method), slog.String("target", q.p.rules.Current().RedactTarget(r.Target))}
	if over != nil {
		q.p.log.Warn("held write re-driven by force, over a newer write of its resource", append(attrs, slog.String("why", over.Error()))...)
	} else {
		q.p.log.Info("held write re-driven", attrs...)
	}
	if x == nil {
		return nil
	}
	if err := x.wait(); err != nil {
		return err
	}
	q.onDisk(r)
	return nil
}

func (q *queue) discard(id uint64) error {
	q.adminMu.Lock()
	defer q.adminMu.Unlock()
	if q.adminClosed {
		return ErrShuttingDown
	}
	r, err := q.heldRecord(id)
	if err != nil {
		return err
	}
	q.mu.Lock()
	if q.box == nil && q.memHeld[id] == nil {
		q.mu.Unlock()
		return ErrNoSuchWrite // forgotten meanwhile, past the in-memory bound
	}
	q.unheld(r)
	q.dropRef(r.Key, r.place())
	q.publish(r.Route)
	q.mu.Unlock()
	q.p.log.Info("held write discarded", slog.String(keyRoute, r.Route), slog.Uint64("id", id), slog.String("was", string(r.State)),
		slog.String("method", r.Method), slog.String("target", q.p.rules.Current().RedactTarget(r.Target)))
	if q.box == nil {
		return nil
	}
	return q.box.submit(&op{kind: opDiscard, id: id}).wait()
}
