package gateway

import (
	"sync"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// maxRechecks bounds the mismatches waiting to be read again
// (queue.recheck_after); past it a mismatch is recorded at once
// (DESIGN.md guarantee 5: comparison work never queues without limit).
const maxRechecks = 256

// recheck takes over the recording of a read's mismatch when
// queue.recheck_after is set: after the delay both backends are asked again
// and, if they then agree, the read is transient (the secondary was behind,
// not wrong); otherwise it is the mismatch first seen. It reports whether
// it took the read over.
func (p *Proxy) recheck(ex *exchange, cmp *comparison) bool {
	delay := p.recheckAfter
	if delay <= 0 || !ex.read {
		return false
	}
	select {
	case p.rechecks <- struct{}{}:
	default:
		return false
	}
	p.recheckWG.Add(1)
	go func() {
		defer p.recheckWG.Done()
		defer func() { <-p.rechecks }()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-p.closing:
			// Stopping: the read still ends, as what it was.
			p.recordRead(ex, stats.Mismatch, "", cmp)
			return
		}
		if p.agreeNow(ex) {
			cmp.result, cmp.old, cmp.new = nil, nil, nil
			p.recordRead(ex, stats.Transient, "", cmp)
			return
		}
		p.recordRead(ex, stats.Mismatch, "", cmp)
	}()
	return true
}

// agreeNow reads the resource again from both backends, the same request
// as before (both copies carry the marker header: neither is the client's),
// and reports whether the answers now match.
func (p *Proxy) agreeNow(ex *exchange) bool {
	sides := [2]rules.Side{ex.primary, ex.primary.Other()}
	var got [2]answer
	var wg sync.WaitGroup
	for i, side := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := p.secondaryRequest(ex.method, p.targets[side], ex.outURL, ex.outHeader, ex.body)
			if i == 0 {
				// The primary's backend, outside its breaker (the breaker
				// guards that backend as a secondary).
				got[i] = fetchAnswer(p.secondary[side], req, p.shadowCfg.MaxBody, stats.ReasonPrimaryFailed)
			} else {
				got[i] = p.fetchSecondary(req, ex.route.Name, side)
			}
		}()
	}
	wg.Wait()
	if got[0].err != nil || got[1].err != nil {
		return false
	}
	old, new := got[0].resp, got[1].resp
	if ex.primary == rules.New {
		old, new = new, old
	}
	return ex.route.Compare.Compare(old, new).Outcome == compare.Match
}
