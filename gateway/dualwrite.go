package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// writeJob follows a write that the secondary gets once the primary accepts
// it, and joins the two answers for the write comparison: whichever side
// finishes last runs it.
type writeJob struct {
	mode rules.WriteMode
	// rec is recorded (as an intent) before the primary is sent the write;
	// nil when the gateway refused it, closing.
	rec *record
	// begun: counted among the writes Close waits for (beginWrite) until
	// primaryDone.
	begun bool
	// sent is set once the primary may have the request: from then on a
	// failure leaves its outcome unknown.
	sent atomic.Bool
	// decided: the primary's outcome settled the record (queued, dropped
	// or held to verify).
	decided  bool
	accepted bool

	mu      sync.Mutex
	prim    *answer
	sec     *answer
	waiting chan struct{} // closed when sec is set, for sync mode
}

// recordWrite records the intent of a write just before the primary is sent
// it, and marks the request so that the moment it may have reached the
// primary is known. It runs in the primary's transport, after rewrite, so
// the record holds exactly what the primary gets. Once Close has begun it
// refuses the write (errClosing, a 503): no worker would deliver the
// secondary's copy, and a handler still running then (a slow upload that
// outlived the server's shutdown) would have given the primary a write
// that nothing recorded. A write it lets through, Close waits for (within
// its deadline) before it closes the queue.
func (p *Proxy) recordWrite(req *http.Request, ex *exchange) (*http.Request, error) {
	job := ex.write
	if job == nil {
		return req, nil
	}
	if job.begun = p.beginWrite(); !job.begun {
		return nil, errClosing
	}
	rec := newRecord(ex)
	if ex.bodyPartial {
		// Too large to keep: recorded without it, so that whatever
		// becomes of the write is still on disk (primaryAccepted,
		// primaryFailed, or the intent a restart finds).
		rec.NoBody = true
	} else {
		rec.body = ex.body
	}
	if x := p.queue.intend(rec); x != nil {
		// Not bounded by the client's context: once begun, the record must
		// say what became of the write.
		if err := x.wait(); errors.Is(err, errOutboxClosed) {
			return nil, errClosing
		} else if err != nil {
			// Fail open: the client's write goes on (the gateway's disk is
			// no reason to refuse it); the write is tracked in memory only.
			p.storeFailed(ex.route.Name, "recording a write before the primary", err)
		}
	}
	job.rec = rec
	trace := &httptrace.ClientTrace{
		// Once the headers are written the primary may act on the request
		// (conservative: more verify records, never fewer).
		WroteHeaders: func() { job.sent.Store(true) },
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace)), nil
}

func (p *Proxy) storeFailed(route, doing string, err error) {
	p.metrics.storeErrors.Inc()
	p.log.Error("queue store failed: "+doing, slog.String(keyRoute, route), slog.String("error", err.Error()))
}

// primaryAccepted runs in ModifyResponse, before the client sees the
// primary's answer: if the primary accepted the write, the secondary's copy
// is queued and on disk before the answer goes out (and, in sync mode,
// attempted). A write the primary refused never reaches the secondary
// (DESIGN.md guarantee 2).
func (p *Proxy) primaryAccepted(ex *exchange, res *http.Response) {
	job := ex.write
	job.decided = true
	if !ex.route.WriteSucceeded(res.StatusCode) {
		p.queue.drop(job.rec)
		return
	}
	if ex.bodyPartial {
		p.tooLargeToRepeat(ex)
		return
	}
	job.accepted = true
	rec := job.rec
	if x := p.queue.accept(rec, func(a answer) { job.secondaryDone(p, ex, a) }); x != nil {
		if err := x.wait(); err != nil {
			p.storeFailed(ex.route.Name, "queueing an accepted write", err)
		} else {
			p.queue.onDisk(rec)
		}
	}
	if job.mode == rules.Sync {
		// Wait for the first attempt, bounded by the secondary's timeout
		// (plus a margin for a queue that was busy with this key).
		t := time.NewTimer(p.timeouts[rec.Side] + time.Second)
		defer t.Stop()
		select {
		case <-job.firstDone():
		case <-t.C:
		case <-p.stop.Done():
		case <-res.Request.Context().Done(): // the client left
		}
	}
}

// primarySwitched drops the record of a write the primary answered by
// switching protocols, whatever write_success says: a switch is no write
// the secondary can repeat. Close need not wait for it while the switched
// connection stays open.
func (p *Proxy) primarySwitched(ex *exchange) {
	job := ex.write
	job.decided = true
	p.queue.drop(job.rec)
	if job.begun {
		job.begun = false
		p.endWrite()
	}
}

// newRecord describes the write of ex as the secondary must get it: the
// primary's outbound request, aimed at the other side.
func newRecord(ex *exchange) *record {
	return &record{
		Key:      ex.key,
		Route:    ex.route.Name,
		Override: ex.override,
		Side:     ex.primary.Other(),
		Method:   ex.method,
		URL:      ex.outURL.String(),
		Target:   ex.requestURI,
		Header:   ex.outHeader.Clone(),
		Recorded: ex.start,
	}
}

// tooLargeToRepeat holds a write the primary accepted whose body was too
// large to keep: the secondary cannot get the same write. It is counted as
// given up and kept for inspection, on disk before the client's answer goes
// out; it needs repair by hand.
func (p *Proxy) tooLargeToRepeat(ex *exchange) {
	r := ex.write.rec
	r.State, r.Reason = stateGaveUp, stats.ReasonTooLarge
	r.LastErr = "request body larger than shadow.write_buffer"
	// Reported from a copy: once held, an operator may act on r.
	report := *r
	if x := p.queue.holdIntent(r); x != nil {
		if err := x.wait(); err != nil {
			p.storeFailed(ex.route.Name, "holding a write too large to repeat", err)
		}
	}
	p.emitWrite(&report, stats.WriteFailed, stats.ReasonTooLarge)
	p.emitWrite(&report, stats.WriteGaveUp, stats.ReasonTooLarge)
}

// Reasons a write is held to verify: the primary may have applied it.
const (
	verifyTimeout    = "timeout"
	verifyReset      = "reset"
	verifyClientGone = "client_gone"
)

// primaryFailed settles a write whose primary request failed: never sent,
// it is forgotten; possibly applied, it is held to verify and the
// secondary is not written (DESIGN.md guarantee 2, issue 5 item 4).
func (p *Proxy) primaryFailed(ex *exchange, status int, err error) {
	job := ex.write
	if job == nil || job.rec == nil || job.decided {
		return
	}
	job.decided = true
	if !job.sent.Load() {
		p.queue.drop(job.rec)
		return
	}
	reason := verifyReset
	switch status {
	case http.StatusGatewayTimeout:
		reason = verifyTimeout
	case statusClientGone:
		reason = verifyClientGone
	}
	p.queue.verify(job.rec, reason, status, err)
	p.log.Warn("primary outcome of a write unknown; held to verify", slog.String(keyRoute, ex.route.Name),
		slog.String("method", ex.method), slog.String("target", p.rules.Current().RedactTarget(ex.requestURI)), slog.String("reason", reason),
		slog.Uint64("id", job.rec.ID))
}

// firstDone is closed when the secondary's first attempt has answered.
func (j *writeJob) firstDone() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.sec != nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if j.waiting == nil {
		j.waiting = make(chan struct{})
	}
	return j.waiting
}

// primaryDone runs when the client has the primary's answer.
func (j *writeJob) primaryDone(p *Proxy, ex *exchange) {
	if j.begun {
		defer p.endWrite()
	}
	if j.rec != nil && !j.decided {
		// Neither an answer nor an error reached the gateway: nobody knows.
		p.primaryFailed(ex, http.StatusBadGateway, context.Canceled)
	}
	if !j.accepted {
		return // the primary refused or failed: nothing to compare
	}
	a := ex.takePrimaryAnswer()
	j.mu.Lock()
	j.prim = &a
	both := j.sec != nil
	j.mu.Unlock()
	if both {
		p.settleOffPath(ex, *j.prim, *j.sec)
	}
}

// settleOffPath compares a write's two answers on a shadow slot, or records
// the comparison skipped as busy when every slot is taken. Neither the
// handler nor a queue worker (which other resources' writes wait for) runs
// the comparison itself (DESIGN.md guarantee 5).
func (p *Proxy) settleOffPath(ex *exchange, prim, sec answer) {
	switch {
	case !p.tryAcquire():
		p.recordRead(ex, stats.Skipped, stats.ReasonBusy, nil)
		return
	case !p.beginShadow():
		p.recordRead(ex, stats.Skipped, stats.ReasonShutdown, nil)
		return
	}
	go func() {
		defer p.release()
		p.settle(ex, prim, sec)
	}()
}

// secondaryDone runs on a queue worker with the first attempt's answer.
func (j *writeJob) secondaryDone(p *Proxy, ex *exchange, a answer) {
	j.mu.Lock()
	if j.sec != nil {
		j.mu.Unlock()
		return
	}
	j.sec = &a
	if j.waiting != nil {
		close(j.waiting)
	}
	both := j.prim != nil
	j.mu.Unlock()
	if both {
		p.settleOffPath(ex, *j.prim, a)
	}
}

// errQueuedAhead refuses a write that would overtake writes of its resource
// still queued for the same backend.
var errQueuedAhead = errors.New("earlier writes of this resource are still queued for the backend it would go to")

// errClientLeft ends a write whose client left while it waited for them.
var errClientLeft = errors.New("the client left while its write waited for earlier writes of its resource")

// awaitQueued holds a write while earlier writes of its resource wait in
// the queue for the backend it goes to (its route, or an override, moved
// to the cutover phase while new still had writes queued): sent now, it
// would land before them and they over it. It waits at most the primary's
// timeout, then refuses the write (503) rather than let it overtake.
func (p *Proxy) awaitQueued(ex *exchange, r *http.Request) error {
	if p.queue.depthNow() == 0 {
		return nil
	}
	moved := p.queue.queuedFor(ex.resourceKey(r), ex.primary)
	if moved == nil {
		return nil
	}
	p.awaiting.Add(1)
	defer p.awaiting.Add(-1)
	deadline := time.NewTimer(p.timeouts[ex.primary])
	defer deadline.Stop()
	for moved != nil {
		select {
		case <-moved:
		case <-deadline.C:
			return errQueuedAhead
		case <-r.Context().Done():
			return errClientLeft
		case <-p.closing:
			return errClosing
		}
		moved = p.queue.queuedFor(ex.key, ex.primary)
	}
	return nil
}

// beginWrite counts a write about to be sent to the primary, for Close to
// wait for; once Close has begun it returns false, and the write must be
// refused.
func (p *Proxy) beginWrite() bool {
	p.writesMu.RLock()
	defer p.writesMu.RUnlock()
	if p.writesClosed {
		return false
	}
	p.writes.Add(1)
	return true
}

// endWrite ends a write begun with beginWrite.
func (p *Proxy) endWrite() {
	if p.writes.Add(-1) != 0 {
		return
	}
	p.writesMu.RLock()
	closed := p.writesClosed
	p.writesMu.RUnlock()
	if closed {
		p.idleOnce.Do(func() { close(p.writesIdle) })
	}
}
