package gateway

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// entry is one secondary write: queued, being attempted, or waiting for its
// next retry.
type entry struct {
	seq      uint64
	key      string // resource key: writes with one key land in order
	route    string
	override string
	side     rules.Side // the backend that must get it
	method   string
	url      *url.URL    // the primary's outbound URL; re-aimed at side
	header   http.Header // the primary's outbound header, idempotency key included
	body     []byte
	attempts int // failed attempts so far
	first    time.Time
	lastErr  string

	// onFirst, if set, gets the first attempt's answer (write comparisons,
	// sync mode). It is not persisted: after a restart nobody waits.
	onFirst func(answer)
	// done is closed when the entry leaves the queue, landed or given up.
	done chan struct{}
}

// keyQueue holds the writes of one resource, oldest first. Only its head is
// ever attempted, so a later write never overtakes an earlier one; other keys
// are not held up by it.
type keyQueue struct {
	key     string
	entries []*entry
	due     time.Time // when it waits in the delay heap
	index   int       // in the delay heap; -1 when not there
}

// queue delivers secondary writes: first attempt at once, retries with
// capped, jittered exponential backoff, in order per resource key.
type queue struct {
	p   *Proxy
	cfg rules.Queue

	mu       sync.Mutex
	cond     *sync.Cond
	keys     map[string]*keyQueue
	ready    []*keyQueue // heads that may be attempted now, FIFO
	delayed  delayHeap
	seq      uint64
	depth    int
	perRoute map[string]int
	gaveUp   []*entry // kept for inspection, newest last, bounded
	closing  bool

	wake    chan struct{}
	stopped chan struct{}
	wg      sync.WaitGroup
}

// maxGaveUpInMemory bounds the given-up writes kept for inspection.
const maxGaveUpInMemory = 10000

func newQueue(p *Proxy, cfg rules.Queue) *queue {
	q := &queue{
		p:        p,
		cfg:      cfg,
		keys:     make(map[string]*keyQueue),
		perRoute: make(map[string]int),
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	q.wg.Add(cfg.Workers + 1)
	for range cfg.Workers {
		go q.work()
	}
	go q.schedule()
	return q
}

// enqueue adds a write behind any queued write of the same key.
func (q *queue) enqueue(e *entry) {
	q.mu.Lock()
	q.seq++
	e.seq = q.seq
	e.done = make(chan struct{})
	kq := q.keys[e.key]
	if kq == nil {
		kq = &keyQueue{key: e.key, index: -1}
		q.keys[e.key] = kq
		q.ready = append(q.ready, kq)
		q.cond.Signal()
	}
	kq.entries = append(kq.entries, e)
	q.depth++
	q.perRoute[e.route]++
	n := q.perRoute[e.route]
	q.mu.Unlock()
	q.p.metrics.queueDepth.Inc()
	q.p.stats.SetPending(e.route, n)
}

// pending reports whether a write to the resource is queued or in flight.
func (q *queue) pending(key string) bool {
	q.mu.Lock()
	_, ok := q.keys[key]
	q.mu.Unlock()
	return ok
}

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

func (q *queue) work() {
	defer q.wg.Done()
	for {
		kq := q.take()
		if kq == nil {
			return
		}
		q.mu.Lock()
		e := kq.entries[0]
		q.mu.Unlock()
		q.settle(kq, e, q.p.attemptWrite(e))
	}
}

// settle moves the queue on after an attempt of kq's head.
func (q *queue) settle(kq *keyQueue, e *entry, a answer) {
	now := q.p.now()
	var outcomes []stats.WriteOutcome
	leaves := false
	q.mu.Lock()
	switch {
	case a.err == nil:
		leaves = true
		if e.attempts == 0 {
			outcomes = append(outcomes, stats.WriteOK)
		} else {
			outcomes = append(outcomes, stats.WriteRetriedOK)
		}
	case a.reason == stats.ReasonBreakerOpen && e.attempts > 0:
		// The breaker refused without trying: not an attempt. Wait for it
		// to let a probe through.
		q.delay(kq, now.Add(q.backoff(e.attempts)))
	default:
		e.attempts++
		e.lastErr = a.err.Error()
		if e.attempts == 1 {
			outcomes = append(outcomes, stats.WriteFailed)
		}
		if e.attempts >= q.cfg.MaxAttempts || now.Sub(e.first) >= q.cfg.MaxAge {
			leaves = true
			outcomes = append(outcomes, stats.WriteGaveUp)
			q.gaveUp = append(q.gaveUp, e)
			if len(q.gaveUp) > maxGaveUpInMemory {
				q.gaveUp = q.gaveUp[1:]
			}
		} else {
			q.delay(kq, now.Add(q.backoff(e.attempts)))
		}
	}
	var n int
	if leaves {
		kq.entries[0] = nil
		kq.entries = kq.entries[1:]
		q.depth--
		q.perRoute[e.route]--
		n = q.perRoute[e.route]
		if len(kq.entries) > 0 {
			q.ready = append(q.ready, kq)
			q.cond.Signal()
		} else {
			delete(q.keys, kq.key)
		}
	}
	q.mu.Unlock()

	for _, o := range outcomes {
		q.p.emitWrite(e, o, a.reason)
	}
	if e.onFirst != nil {
		e.onFirst(a)
		e.onFirst = nil
	}
	if leaves {
		q.p.metrics.queueDepth.Dec()
		q.p.stats.SetPending(e.route, n)
		close(e.done)
	}
}

// delay puts kq in the delay heap until due; q.mu is held.
func (q *queue) delay(kq *keyQueue, due time.Time) {
	kq.due = due
	heap.Push(&q.delayed, kq)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// backoff is the wait after n failed attempts: exponential from the base,
// capped, with full jitter on the upper half so retries of many keys spread.
func (q *queue) backoff(n int) time.Duration {
	d := q.cfg.BaseBackoff
	for i := 1; i < n && d < q.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, q.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// schedule moves keys whose backoff has passed back to the ready list.
func (q *queue) schedule() {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := q.p.now()
		for q.delayed.Len() > 0 && !q.delayed[0].due.After(now) {
			kq := heap.Pop(&q.delayed).(*keyQueue)
			q.ready = append(q.ready, kq)
			q.cond.Signal()
		}
		wait := time.Hour
		if q.delayed.Len() > 0 {
			wait = q.delayed[0].due.Sub(now)
		}
		q.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-q.wake:
		case <-q.stopped:
			return
		}
	}
}

// close lets the workers attempt what is ready until ctx ends, then stops
// them. What is still queued stays queued (and, once the queue is durable,
// on disk).
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
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Attempts in flight are cut by the proxy's stop context.
		q.p.cancel()
		<-done
		return ctx.Err()
	}
}

// depthNow returns the number of queued writes.
func (q *queue) depthNow() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.depth
}

// delayHeap orders waiting keys by due time.
type delayHeap []*keyQueue

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *delayHeap) Push(x any) {
	kq := x.(*keyQueue)
	kq.index = len(*h)
	*h = append(*h, kq)
}
func (h *delayHeap) Pop() any {
	old := *h
	kq := old[len(old)-1]
	old[len(old)-1] = nil
	kq.index = -1
	*h = old[:len(old)-1]
	return kq
}

// attemptWrite sends one queued write to its secondary through the breaker.
func (p *Proxy) attemptWrite(e *entry) answer {
	ctx, cancel := p.secondaryContext(e.side)
	defer cancel()
	req := p.secondaryRequest(ctx, e.method, p.targets[e.side], e.url, e.header, e.body)
	a := p.fetchSecondary(req, e.route, e.side)
	if a.err != nil {
		if a.reason == stats.ReasonTooLarge {
			// The write landed; only its answer is too large to compare.
			a.err, a.reason = nil, ""
		} else {
			return a
		}
	}
	route := p.rules.Current().Route(e.route)
	if route == nil {
		route = p.rules.Current().Default
	}
	if !route.WriteSucceeded(a.resp.Status) {
		a.err = fmt.Errorf("secondary answered %d", a.resp.Status)
		a.reason = stats.ReasonSecondaryFailed
	}
	return a
}

// emitWrite records one secondary write outcome.
func (p *Proxy) emitWrite(e *entry, outcome stats.WriteOutcome, reason string) {
	p.metrics.secondaryWrites.WithLabelValues(e.route, string(outcome)).Inc()
	p.stats.Write(stats.WriteEvent{Route: e.route, Override: e.override, Outcome: outcome, Reason: reason, At: p.now()})
	switch outcome {
	case stats.WriteFailed:
		p.log.Warn("secondary write failed; queued for retry", slog.String(keyRoute, e.route), slog.String(keyBackend, e.side.String()), slog.String("error", e.lastErr))
	case stats.WriteGaveUp:
		p.log.Error("secondary write given up", slog.String(keyRoute, e.route), slog.String(keyBackend, e.side.String()),
			slog.String("method", e.method), slog.String("target", p.rules.Current().RedactTarget(e.url.RequestURI())), slog.Int("attempts", e.attempts), slog.String("error", e.lastErr))
	}
}
