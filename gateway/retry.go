package gateway

import (
	"container/heap"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/cutover/cutover/stats"
)

var (
	// errQueued answers whoever waits for a first attempt that will not come
	// soon: the write waits on disk behind others of its resource.
	errQueued = errors.New("queued behind earlier writes of the resource")
	// errBreakerOpen stands for an attempt the open breaker did not allow.
	errBreakerOpen = errors.New("secondary breaker open")
)

// reasonGatewayStopped holds to verify a write that was in flight to the
// primary when the gateway stopped without a drain (a crash, SIGKILL).
const reasonGatewayStopped = "gateway_stopped"

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

// oldestEvery is how often the age of each route's oldest queued write is
// worked out again.
const oldestEvery = time.Second

// schedule moves keys whose backoff has passed back to the ready list, and
// refreshes the age of the oldest queued write of each route.
func (q *queue) schedule() {
	defer q.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	nextOldest := q.p.now()
	for {
		q.mu.Lock()
		now := q.p.now()
		for q.delayed.Len() > 0 && !q.delayed[0].due.After(now) {
			kq := heap.Pop(&q.delayed).(*keyQueue)
			q.ready = append(q.ready, kq)
			q.cond.Signal()
		}
		if !now.Before(nextOldest) {
			q.refreshOldest()
			nextOldest = now.Add(oldestEvery)
		}
		wait := nextOldest.Sub(now)
		if q.delayed.Len() > 0 {
			wait = min(wait, q.delayed[0].due.Sub(now))
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

// refreshOldest works out each route's and each override's oldest queued
// write from the heads of their keys (a key's head is its oldest); q.mu is
// held. A key whose queued writes belong to several overrides gives each
// of them its head's age: never younger than its own oldest write.
func (q *queue) refreshOldest() {
	oldest := make(map[string]time.Time, len(q.routes))
	tenants := make(map[[2]string]time.Time, len(q.overrideOldest))
	for _, kq := range q.keys {
		if o, ok := oldest[kq.route]; !ok || kq.first.Before(o) {
			oldest[kq.route] = kq.first
		}
		for override := range kq.tenants {
			k := [2]string{kq.route, override}
			if o, ok := tenants[k]; !ok || kq.first.Before(o) {
				tenants[k] = kq.first
			}
		}
	}
	for name, rq := range q.routes {
		if o := oldest[name]; o != rq.oldest && rq.pending > 0 {
			rq.oldest = o
			q.publish(name)
		}
	}
	for k, o := range tenants {
		if o != q.overrideOldest[k] && q.overrideCounts[k][overridePending] > 0 {
			q.overrideOldest[k] = o
			q.publishOverride(k)
		}
	}
}

// delayHeap orders waiting keys by due time.
type delayHeap []*keyQueue

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(*keyQueue)) }
func (h *delayHeap) Pop() any {
	old := *h
	kq := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return kq
}

// attemptWrite sends one queued write to its secondary through the breaker.
func (p *Proxy) attemptWrite(r *record, body []byte) answer {
	// As a request target: a '#' the client sent in the query stays in it
	// (url.Parse would take it and what follows for a fragment).
	u, err := url.ParseRequestURI(r.URL)
	if err != nil {
		return answer{err: fmt.Errorf("queued URL: %w", err), reason: stats.ReasonSecondaryFailed}
	}
	req := p.secondaryRequest(r.Method, p.targets[r.Side], u, r.Header, body)
	a := p.fetchSecondary(req, r.Route, r.Side)
	if a.err != nil {
		if a.reason == stats.ReasonTooLarge {
			// The write landed; only its answer is too large to compare
			// (its body is cut at max_body).
			a.err, a.reason, a.over = nil, "", true
		} else {
			return a
		}
	}
	route := p.rules.Current().Route(r.Route)
	if route == nil {
		route = p.rules.Current().Default
	}
	if !route.WriteSucceeded(a.resp.Status) {
		a.err = fmt.Errorf("secondary answered %d", a.resp.Status)
		a.reason = stats.ReasonSecondaryFailed
	}
	return a
}

// failedWriteMessage is the log line of a failed first attempt, by the
// reason it failed.
func failedWriteMessage(reason string) string {
	switch reason {
	case stats.ReasonQueued:
		// Counted when it is accepted behind a failing write, or only when
		// it lands if it was queued before the failure was known.
		return "secondary write waited behind a write of its resource that the secondary refused; counted as a failed first attempt"
	case stats.ReasonTooLarge:
		return "secondary write cannot be repeated: its body is larger than shadow.write_buffer"
	default:
		return "secondary write failed; queued for retry"
	}
}

// emitWrite records one secondary write outcome.
func (p *Proxy) emitWrite(r *record, outcome stats.WriteOutcome, reason string) {
	p.metrics.secondaryWrites.WithLabelValues(r.Route, string(outcome)).Inc()
	p.stats.Write(stats.WriteEvent{Route: r.Route, Override: r.Override, Outcome: outcome, Reason: reason, At: p.now(), Recorded: r.Recorded})
	switch outcome {
	case stats.WriteFailed:
		p.log.Warn(failedWriteMessage(reason), slog.String(keyRoute, r.Route), slog.String(keyBackend, r.Side.String()), slog.String("error", r.LastErr))
	case stats.WriteGaveUp:
		p.log.Error("secondary write given up", slog.String(keyRoute, r.Route), slog.String(keyBackend, r.Side.String()),
			slog.String("method", r.Method), slog.String("target", p.rules.Current().RedactTarget(r.Target)), slog.Uint64("id", r.ID),
			slog.Int("attempts", r.Attempts), slog.String("error", r.LastErr),
			slog.String(keyTodo, "replay or discard it by its id: POST /api/v1/held/ID/replay or /discard on the admin address, or from the dashboard"))
	}
}
