package gateway

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// entry is one queued secondary write in memory: its record (whose body is
// dropped once it is on disk) and what the request that made it waits for.
type entry struct {
	rec *record
	// accepted is the change that put it on disk; nil when it came from
	// disk, or in memory mode.
	accepted *op
	// onFirst, if set, gets the first attempt's answer (write comparisons,
	// sync mode). It is not persisted: after a restart nobody waits.
	onFirst func(answer)
}

// durable reports whether the write is on disk, so its body may leave
// memory.
func (e *entry) durable() bool {
	if e.accepted == nil {
		return true
	}
	select {
	case <-e.accepted.done:
		return e.accepted.err == nil
	default:
		return false
	}
}

// keyQueue holds the queued writes of one resource, oldest first, in three
// segments: entries (in memory; the head is the one attempted), onDisk
// (written, not in memory) and tail (in memory until on disk). Only the
// head is ever attempted, so a later write never overtakes an earlier one;
// other keys are not held up by it.
type keyQueue struct {
	key     string
	route   string
	entries []*entry
	onDisk  int
	tail    []*entry
	// last is the highest Order that has been in entries: the writes on disk
	// come after it, so the disk scan resumes there (never rereading a
	// delivered write whose removal is not yet on disk).
	last  uint64
	first time.Time // when the oldest pending write entered the queue
	due   time.Time // when it waits in the delay heap
	// toSide counts the pending writes by the backend they go to;
	// uncounted, those replayed from an index written before it kept the
	// backend (the oldest: they leave first).
	toSide    [2]int
	uncounted int
	// latest is, per backend, the latest place (record.place) of a write
	// queued for it since the key's queue began: a held write from an
	// earlier place would land after it (supersede.go).
	latest [2]uint64
	// moved, when a write waits for kq's writes to leave (awaitQueued), is
	// closed when one leaves, and then forgotten.
	moved chan struct{}
	// tenants counts the pending writes by override, for the age of each
	// override's oldest (refreshOldest); nil while none has one.
	tenants map[string]int
	// failing is set when an attempt of the head fails, and cleared when
	// one lands: a write accepted meanwhile is blocked (record.Blocked).
	// blockedThrough is the latest order given when a head's attempt
	// failed: the writes queued behind it then, accepted before it was
	// failing, were blocked too, and count so when they land. It is not
	// kept across a restart.
	failing        bool
	blockedThrough uint64
}

// countTenant moves the count of kq's pending writes of an override by n.
func (kq *keyQueue) countTenant(override string, n int) {
	if override == "" {
		return
	}
	if kq.tenants == nil {
		kq.tenants = make(map[string]int, 1)
	}
	if c := kq.tenants[override] + n; c > 0 {
		kq.tenants[override] = c
	} else {
		delete(kq.tenants, override)
	}
}

// left counts out a pending write of kq that leaves (delivered or given
// up), and wakes whoever waits for one to.
func (kq *keyQueue) left(r *record) {
	if kq.uncounted > 0 {
		kq.uncounted--
	} else {
		kq.toSide[r.Side]--
	}
	kq.wake()
}

// wake tells whoever waits for kq's writes to leave that some did.
func (kq *keyQueue) wake() {
	if kq.moved != nil {
		close(kq.moved)
		kq.moved = nil
	}
}

// queuedFor reports whether writes of kq may wait for side: counted for
// it, or replayed from an index that did not keep their backend.
func (kq *keyQueue) queuedFor(side rules.Side) bool {
	return kq.toSide[side] > 0 || kq.uncounted > 0
}

func (kq *keyQueue) empty() bool {
	return len(kq.entries) == 0 && kq.onDisk == 0 && len(kq.tail) == 0
}

// memoryPerKey bounds the writes of one resource kept in memory (metadata;
// bodies leave memory once on disk). The rest wait on disk, so a secondary
// that is down for an hour costs disk, not memory.
const memoryPerKey = 2

// routeQueue is the queue state of one route, as the statistics show it.
type routeQueue struct {
	pending, givenUp, verify int64
	oldest                   time.Time
}

// queue delivers secondary writes: first attempt at once, retries with
// capped, jittered exponential backoff, in order per resource key. With an
// outbox every write is on disk before the client is answered and stays
// there until the secondary has it; without one (no data directory) the
// queue lives in memory and dies with the process.
type queue struct {
	p   *Proxy
	cfg rules.Queue
	box *outbox // nil: memory only
	seq atomic.Uint64

	mu       sync.Mutex
	cond     *sync.Cond
	keys     map[string]*keyQueue
	ready    []*keyQueue // keys whose head may be attempted now, FIFO
	delayed  delayHeap
	inflight map[string]int // writes the primary is being sent, per key
	// inflightTo counts them by the backend that is their primary, and
	// reachedInFlight keeps, while any is in flight, the latest place of
	// a write of the key that reached each backend (supersede.go).
	inflightTo      map[string][2]int
	reachedInFlight map[string][2]uint64
	// depth is changed under mu, and read without it: every write asks
	// whether anything is queued (awaitQueued), and most often nothing is.
	depth   atomic.Int64
	routes  map[string]*routeQueue
	memHeld map[uint64]*record // held writes in memory mode
	// heldRefs are the held writes (and re-driven ones queued again) by
	// resource key, to see them overtaken (supersede.go); refsTo counts
	// them by backend, read without mu.
	heldRefs map[string]*keyRefs
	refsTo   [2]atomic.Int64
	// overrideCounts counts, per route and override, the held writes (given
	// up, to verify) and the queued ones (held.go's slots).
	overrideCounts map[[2]string][3]int64
	// overrideOldest is, per route and override with writes queued, when
	// the oldest of them was queued (refreshOldest).
	overrideOldest map[[2]string]time.Time
	closing        bool

	// touched remembers, per hash of a resource key, when a write to it
	// last moved (sent, accepted, landed), so a read that overlapped one is
	// pending rather than a mismatch. Fixed size: collisions only make a
	// few more reads pending.
	touched [4096]atomic.Int64
	seeds   [2]maphash.Seed

	adminMu sync.Mutex // serialises operator actions on held writes
	// adminClosed, under adminMu, refuses operator actions once close has
	// begun to close the store: one that found it closed had already
	// changed the counts it could not write.
	adminClosed bool
	wake        chan struct{}
	stopped     chan struct{}
	wg          sync.WaitGroup
}

// maxHeldInMemory bounds the held writes kept without a data directory.
const maxHeldInMemory = 10000

// newQueue starts the queue's workers. With box it first replays what a
// previous run left on disk.
func newQueue(p *Proxy, cfg rules.Queue, box *outbox) (*queue, error) {
	q := &queue{
		p:        p,
		cfg:      cfg,
		box:      box,
		keys:     make(map[string]*keyQueue),
		inflight: make(map[string]int),
		routes:   make(map[string]*routeQueue),
		memHeld:  make(map[uint64]*record),
		heldRefs: make(map[string]*keyRefs),

		overrideCounts: make(map[[2]string][3]int64),
		overrideOldest: make(map[[2]string]time.Time),

		inflightTo:      make(map[string][2]int),
		reachedInFlight: make(map[string][2]uint64),
		seeds:           [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		wake:            make(chan struct{}, 1),
		stopped:         make(chan struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	if box != nil {
		if err := q.replay(); err != nil {
			return nil, err
		}
	}
	q.wg.Add(cfg.Workers + 1)
	for range cfg.Workers {
		go q.work()
	}
	go q.schedule()
	return q, nil
}

// replay rebuilds the queue from disk: every queued write is pending again,
// in its order, and intents a crash left are held to verify.
func (q *queue) replay() error {
	now := q.p.now()
	rec, err := q.box.recover(now, func(e indexEntry) {
		kq := q.keys[e.key]
		if kq == nil {
			kq = &keyQueue{key: e.key, route: e.route, first: e.first}
			q.keys[e.key] = kq
			q.ready = append(q.ready, kq)
		}
		kq.onDisk++
		if e.side == int(rules.Old) || e.side == int(rules.New) {
			kq.toSide[e.side]++
			kq.latest[e.side] = max(kq.latest[e.side], e.place())
			if e.origin != 0 {
				q.replayed(e.key, rules.Side(e.side), e.origin, e.order)
			}
		} else {
			kq.uncounted++
			kq.latest[rules.Old], kq.latest[rules.New] = max(kq.latest[rules.Old], e.place()), max(kq.latest[rules.New], e.place())
		}
		q.depth.Add(1)
		kq.countTenant(e.override, 1)
		q.countOverride(e.route, e.override, overridePending, 1)
		q.queuedSince(e.route, e.override, e.first)
		rq := q.route(e.route)
		rq.pending++
		if rq.oldest.IsZero() || e.first.Before(rq.oldest) {
			rq.oldest = e.first
		}
	}, func(r *record) {
		q.countHeld(r, 1)
		q.addHeld(r)
	})
	switch {
	case errors.Is(err, errCorruptRecord):
		// Nothing is dropped to start: the file stays as it is, and the
		// operator decides.
		return fmt.Errorf("replay the queue in %s: %w; start the cutover version that wrote it, or move the file aside to start with an empty queue (the writes in it are then not sent to the secondary)", q.box.db.Path(), err)
	case err != nil:
		return fmt.Errorf("replay the queue in %s: %w", q.box.db.Path(), err)
	}
	q.seq.Store(rec.next)
	if q.depth.Load() > 0 || rec.verified > 0 {
		q.p.log.Info("secondary write queue replayed", slog.Int64("queued", q.depth.Load()), slog.Int("keys", len(q.keys)),
			slog.Int("to_verify", rec.verified))
	}
	if rec.verified > 0 {
		q.p.log.Warn("writes were in flight to the primary when the gateway stopped; they are held to verify",
			slog.Int("count", rec.verified))
	}
	q.p.metrics.queueDepth.Set(float64(q.depth.Load()))
	// Every route's state, emptied ones too: the statistics restore the
	// queue state of their last flush, which may count writes delivered
	// since (before a crash); the queue is what is true now.
	set := q.p.rules.Current()
	for _, r := range set.Routes {
		q.route(r.Name)
	}
	q.route(set.Default.Name)
	for name := range q.routes {
		q.publish(name)
	}
	return nil
}

func (q *queue) route(name string) *routeQueue {
	rq := q.routes[name]
	if rq == nil {
		rq = &routeQueue{}
		q.routes[name] = rq
	}
	return rq
}

// addPending moves the count of queued writes, overall, for the route and
// for the override (if any),
// and publishes both; q.mu is held.
func (q *queue) addPending(route, override string, n int) {
	d := q.depth.Add(int64(n))
	q.route(route).pending += int64(n)
	q.countOverride(route, override, overridePending, int64(n))
	q.p.metrics.queueDepth.Set(float64(d))
	q.publish(route)
}

// publish reports a route's queue to the statistics; q.mu is held.
func (q *queue) publish(name string) {
	rq := q.route(name)
	if rq.pending == 0 {
		rq.oldest = time.Time{}
	}
	// The per-route gauges (pending, given up, to verify, oldest) are
	// exported by the statistics' collector from this state.
	q.p.stats.SetQueue(name, stats.QueueState{Pending: rq.pending, GivenUp: rq.givenUp, Verify: rq.verify, Oldest: rq.oldest})
}

// pending reports whether a write to the resource is queued, in flight, or
// being sent to the primary.
func (q *queue) pending(key string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.keys[key]
	return ok || q.inflight[key] > 0
}

// queuedFor reports whether writes to the resource wait in the queue for
// side: a write sent to side directly now would overtake them, and they
// would land over it (a route or an override moved to the cutover phase
// while new still had writes queued). If they do, the channel returned is
// closed when one of them leaves the queue (then ask again); nil if none
// waits.
func (q *queue) queuedFor(key string, side rules.Side) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	kq := q.keys[key]
	if kq == nil || !kq.queuedFor(side) {
		return nil
	}
	if kq.moved == nil {
		kq.moved = make(chan struct{})
	}
	return kq.moved
}

// accept queues a write the primary accepted, behind any queued write of
// the same key. The client's answer waits on the returned op (nil in
// memory mode): the write is on disk before the client has its answer.
func (q *queue) accept(r *record, onFirst func(answer)) *op {
	q.touch(r.Key)
	q.mu.Lock()
	q.settled(r)
	var blocked []record
	if kq := q.keys[r.Key]; kq != nil && kq.failing {
		// Marked before the acceptance is submitted: on disk with it.
		blocked = append(blocked, q.block(r))
	}
	x := q.enqueue(r, onFirst, opAccept)
	var told []func(answer)
	if kq := q.keys[r.Key]; kq.due.After(q.p.now()) {
		// Behind a write that backs off: the first attempt is that far
		// away, and a sync write must not wait for it.
		told = q.behind(kq, nil)
	}
	q.mu.Unlock()
	tellQueued(told)
	q.p.reportBlocked(blocked)
	return x
}

// errBlocked is the last error of a write blocked behind a failing one.
const errBlocked = "queued behind an earlier write of its resource that the secondary refused"

// block marks r, not attempted yet, as blocked behind a failing write of
// its resource, and returns a copy to report once q.mu is released.
// q.mu is held.
func (q *queue) block(r *record) record {
	r.Blocked, r.LastErr = true, errBlocked
	return *r
}

// reportBlocked counts and logs each blocked write as a failed first
// attempt.
func (p *Proxy) reportBlocked(blocked []record) {
	for i := range blocked {
		p.emitWrite(&blocked[i], stats.WriteFailed, stats.ReasonQueued)
	}
}

// behind returns, added to told, whoever waits for the first attempt of a
// write of kq behind its head, which has just been put off: call
// tellQueued once q.mu is released. q.mu is held.
func (q *queue) behind(kq *keyQueue, told []func(answer)) []func(answer) {
	for i, e := range kq.entries {
		if i > 0 && e.onFirst != nil {
			told = append(told, e.onFirst)
			e.onFirst = nil
		}
	}
	for _, e := range kq.tail {
		if e.onFirst != nil {
			told = append(told, e.onFirst)
			e.onFirst = nil
		}
	}
	return told
}

// enqueue gives r the next order and puts it behind its key's writes; a
// change of kind (opAccept, or opRequeue of held write r.ID) puts it on
// disk. q.mu is held.
func (q *queue) enqueue(r *record, onFirst func(answer), kind opKind) *op {
	r.Order = q.seq.Add(1)
	r.State = stateQueued
	r.First = q.p.now()
	if kind == opAccept {
		// The primary has it: marked before the acceptance is submitted,
		// so no commit keeps the acceptance without the mark.
		q.reached(r.Key, r.Side.Other(), r.Order)
	}
	e := &entry{rec: r, onFirst: onFirst}
	if q.box != nil {
		// Submitted under q.mu, so changes reach the disk in Order.
		if kind == opAccept {
			e.accepted = q.box.submitRecord(opAccept, r)
		} else {
			// A re-drive (opRequeue): redrive has decided Redriven.
			e.accepted = q.box.submit(&op{kind: kind, id: r.ID, order: r.Order, rec: &record{First: r.First, Redriven: r.Redriven, Origin: r.Origin, Superseded: r.Superseded}})
		}
	}
	kq := q.keys[r.Key]
	if kq == nil {
		kq = &keyQueue{key: r.Key, route: r.Route, first: r.First}
		q.keys[r.Key] = kq
		q.ready = append(q.ready, kq)
		q.cond.Signal()
	}
	kq.toSide[r.Side]++
	kq.latest[r.Side] = max(kq.latest[r.Side], r.place())
	if q.box == nil || (kq.onDisk == 0 && len(kq.tail) == 0 && len(kq.entries) < memoryPerKey) {
		kq.entries = append(kq.entries, e)
		kq.last = r.Order
	} else {
		kq.tail = append(kq.tail, e)
	}
	if rq := q.route(r.Route); rq.oldest.IsZero() {
		rq.oldest = r.First
	}
	kq.countTenant(r.Override, 1)
	override := r.Override
	if kind == opRequeue {
		override = "" // redrive counted it, before it stopped being held
	}
	q.addPending(r.Route, override, 1)
	q.queuedSince(r.Route, r.Override, r.First)
	return e.accepted
}

// onDisk runs once a write's acceptance is on disk: its body leaves memory,
// and the key's tail moves to disk as far as it is written.
func (q *queue) onDisk(r *record) {
	q.mu.Lock()
	r.body = nil
	var told []func(answer)
	if kq := q.keys[r.Key]; kq != nil {
		told = q.trim(kq, nil)
	}
	q.mu.Unlock()
	tellQueued(told)
}

// trim moves the written prefix of kq's tail to disk (or into entries when
// there is room and nothing waits on disk); q.mu is held. It returns, added
// to told, whoever waits for the first answer of a write that moved to
// disk: call tellQueued once q.mu is released.
func (q *queue) trim(kq *keyQueue, told []func(answer)) []func(answer) {
	for len(kq.tail) > 0 {
		e := kq.tail[0]
		switch {
		case kq.onDisk == 0 && len(kq.entries) < memoryPerKey:
			kq.entries = append(kq.entries, e)
			kq.last = e.rec.Order
		case e.durable():
			kq.onDisk++
			if e.onFirst != nil {
				told = append(told, e.onFirst)
				e.onFirst = nil
			}
		default:
			return told
		}
		kq.tail[0] = nil
		kq.tail = kq.tail[1:]
	}
	return told
}

// tellQueued tells whoever waits for a first attempt that the write waits
// on disk instead: nobody attempts it soon.
func tellQueued(told []func(answer)) {
	for _, f := range told {
		f(answer{err: errQueued, reason: stats.ReasonQueued})
	}
}

// close lets the workers attempt what is ready until ctx ends, then
// stops them. What is still queued stays on disk for the next start.
func (q *queue) close(ctx context.Context) error {
	q.mu.Lock()
	q.closing = true
	q.cond.Broadcast()
	q.mu.Unlock()
	close(q.stopped)
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		// Attempts in flight are cut by the proxy's stop context.
		q.p.cancel()
		<-done
		err = ctx.Err()
	}
	// An operator action under way ends first (its change reaches the
	// store); none starts after.
	q.adminMu.Lock()
	q.adminClosed = true
	q.adminMu.Unlock()
	if q.box != nil {
		if cerr := q.box.close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// depthNow returns the number of queued writes.
func (q *queue) depthNow() int { return int(q.depth.Load()) }
