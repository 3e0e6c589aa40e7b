package gateway

import (
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// writeJob follows a write that the secondary gets once the primary accepts
// it, and joins the two answers for the write comparison: whichever side
// finishes last runs it.
type writeJob struct {
	mode  rules.WriteMode
	entry *entry // nil until the primary accepted the write

	mu      sync.Mutex
	prim    *answer
	sec     *answer
	waiting chan struct{} // closed when sec is set, for sync mode
}

// primaryAccepted runs in ModifyResponse, before the client sees the
// primary's answer: if the primary accepted the write, the secondary's copy
// is queued (async) or attempted before the answer goes out (sync). A write
// the primary refused never reaches the secondary (DESIGN.md guarantee 2).
func (p *Proxy) primaryAccepted(ex *exchange, res *http.Response) {
	if !ex.route.WriteSucceeded(res.StatusCode) {
		return
	}
	if ex.bodyPartial {
		// The body was too large to keep: the secondary cannot get the same
		// write. Say so loudly; the write needs repair.
		e := &entry{route: ex.route.Name, override: ex.override, side: ex.primary.Other(), method: ex.method, url: ex.outURL, lastErr: "request body larger than shadow.write_buffer"}
		p.emitWrite(e, stats.WriteFailed, stats.ReasonTooLarge)
		p.emitWrite(e, stats.WriteGaveUp, stats.ReasonTooLarge)
		p.log.Error("write too large to repeat on the secondary; it needs repair",
			slog.String(keyRoute, ex.route.Name), slog.String("method", ex.method), slog.String("target", p.rules.Current().RedactTarget(ex.requestURI)))
		return
	}
	job := ex.write
	u := *ex.outURL
	e := &entry{
		key:      ex.key,
		route:    ex.route.Name,
		override: ex.override,
		side:     ex.primary.Other(),
		method:   ex.method,
		url:      &u,
		header:   ex.outHeader.Clone(),
		body:     ex.body,
		first:    p.now(),
		onFirst:  func(a answer) { job.secondaryDone(p, ex, a) },
	}
	job.entry = e
	p.queue.enqueue(e)
	if job.mode == rules.Sync {
		// Wait for the first attempt, bounded by the secondary's timeout
		// (plus a margin for a queue that was busy with this key).
		t := time.NewTimer(p.timeouts[e.side] + time.Second)
		defer t.Stop()
		select {
		case <-job.firstDone():
		case <-t.C:
		case <-p.stop.Done():
		}
	}
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
	if j.entry == nil {
		return // the primary refused or failed: nothing to compare
	}
	a := primaryAnswer(ex)
	j.mu.Lock()
	j.prim = &a
	both := j.sec != nil
	j.mu.Unlock()
	if !both {
		return
	}
	// The handler must not compare: hand it to a shadow slot, or skip.
	if !p.tryAcquire() {
		p.recordRead(ex, stats.Skipped, stats.ReasonBusy, nil)
		return
	}
	go func() {
		defer p.release()
		p.settle(ex, *j.prim, *j.sec)
	}()
}

// secondaryDone runs on a queue worker with the first attempt's answer.
func (j *writeJob) secondaryDone(p *Proxy, ex *exchange, a answer) {
	j.mu.Lock()
	j.sec = &a
	if j.waiting != nil {
		close(j.waiting)
	}
	both := j.prim != nil
	j.mu.Unlock()
	if both {
		p.settle(ex, *j.prim, a)
	}
}
