package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// answer is one backend's answer as the comparison needs it.
type answer struct {
	resp    compare.Response
	latency time.Duration // to response headers
	err     error         // no usable answer; see reason
	reason  string        // set with err: a stats reason
	// over: a write's answer larger than shadow.max_body. The write
	// landed (err is nil), but its answer cannot be compared.
	over bool
}

// shadowJob joins a shadowed read's two legs: the handler starts send with
// the primary's answer once the client has it.
type shadowJob struct {
	// The noise backend's answer, when backends.noise is set.
	noise    answer
	hasNoise bool
	// send asks the secondary and settles the read against the primary's
	// answer; set in rewrite.
	send func(primary answer)
}

// primaryAnswer turns what the client was sent into an answer to compare.
func primaryAnswer(ex *exchange) answer {
	a := answer{latency: ex.primaryTime}
	switch {
	case ex.clientGone:
		a.err, a.reason = errors.New("the client left before its answer was written"), stats.ReasonClientGone
	case ex.primaryErr != nil:
		a.err, a.reason = ex.primaryErr, stats.ReasonPrimaryFailed
	case ex.capture == nil:
		a.err, a.reason = errors.New("no answer captured"), stats.ReasonPrimaryFailed
	case ex.capture.err != nil:
		a.err, a.reason = ex.capture.err, stats.ReasonPrimaryFailed
	case ex.capture.over:
		a.err, a.reason = errors.New("answer larger than shadow.max_body"), stats.ReasonTooLarge
	case !ex.capture.eof:
		a.err, a.reason = errors.New("the client left before the answer was read"), stats.ReasonClientGone
	default:
		a.resp = compare.Response{Status: ex.status, Header: ex.header, Body: ex.capture.buf}
	}
	return a
}

// takePrimaryAnswer returns the primary's answer and lets go of what only
// led to it. The timer's trace is chained to ReverseProxy's own (httptrace
// composes them), whose 1xx hook holds the client's ResponseWriter, and
// through it the inbound request and its contexts, as w does; the capture
// and the guard hold the primary's response body. A shadowed read may wait
// on the secondary for its whole timeout, and every collection marks what
// each read in flight keeps
// (TestAShadowedReadWaitingOnTheSecondaryKeepsLittle).
func (ex *exchange) takePrimaryAnswer() answer {
	a := primaryAnswer(ex)
	ex.capture, ex.timer = nil, nil
	ex.w, ex.guard = nil, flushOnError{}
	return a
}

func (j *shadowJob) primaryDone(p *Proxy, ex *exchange) {
	if j.send == nil {
		// Rewrite never ran, so the primary was never asked (ReverseProxy
		// always runs it today): the read still ends, and frees its slot.
		p.releaseSlot()
		p.recordRead(ex, stats.Error, stats.ReasonPrimaryFailed, nil)
		return
	}
	prim := ex.takePrimaryAnswer()
	switch {
	case prim.reason == stats.ReasonClientGone:
		// Nobody waits for this read's answer any more: its copy would be
		// the secondary's work for nothing, and its outcome is known.
		p.releaseSlot()
		p.recordRead(ex, stats.Skipped, stats.ReasonClientGone, nil)
	case !p.beginShadow():
		p.recordRead(ex, stats.Skipped, stats.ReasonShutdown, nil)
	default:
		// Waiting on the secondary from now (lagging), until it answers:
		// counted among its route's (ex.load).
		ex.load.shadows.Add(1)
		p.shadows.run(func() { j.send(prim) })
	}
}

// startShadow prepares the secondary's copy of a read. It runs on the
// handler's goroutine inside rewrite, so the request it copies is exactly
// the one the primary is about to get; the copy is sent once the client has
// the primary's answer (primaryDone). Sent at the same moment instead, the
// secondary's exchange and the new backend's own work competed with the
// client's request on a shared host: the client's p99 at a fixed rate was
// 1.17× the plain proxy's against 0.86× deferred (README, "Performance").
// A write through the gateway during the gap still makes the read pending,
// since the pending check looks back to the read's start.
func (p *Proxy) startShadow(ex *exchange) {
	side := ex.primary.Other()
	req := p.secondaryRequest(ex.method, p.targets[side], ex.outURL, ex.outHeader, ex.body)
	ex.shadow.send = func(prim answer) {
		defer p.release()
		var noise chan answer
		if p.noise != nil {
			noise = make(chan answer, 1)
			go func() { noise <- p.fetchNoise(ex) }()
		}
		sec := p.fetchSecondary(req, ex.route.Name, side)
		// Waiting on the noise backend is not the secondary's lag.
		ex.load.shadows.Add(-1)
		if noise != nil {
			ex.shadow.noise = <-noise
			ex.shadow.hasNoise = true
		}
		p.settle(ex, prim, sec)
	}
}

// errServerError marks a 5xx from the secondary as a failure for its breaker;
// the answer itself is still compared.
var errServerError = errors.New("secondary answered 5xx")

// fetchSecondary sends req to the secondary through its breaker and reads
// the answer, bounded by shadow.max_body.
func (p *Proxy) fetchSecondary(req *http.Request, route string, side rules.Side) answer {
	start := p.now()
	var a answer
	_, err := p.breakers[side].cb.Execute(func() (struct{}, error) {
		res, err := p.secondary[side].RoundTrip(req)
		if err != nil {
			return struct{}{}, err
		}
		defer res.Body.Close()
		a.latency = backendTime(res, p.now().Sub(start))
		buf := p.buffers.forBody(res.ContentLength, p.shadowCfg.MaxBody)
		body, over, err := readBoundedInto(buf, res.Body, p.shadowCfg.MaxBody, res.ContentLength)
		if err != nil {
			return struct{}{}, err
		}
		if over {
			a.err, a.reason = errors.New("answer larger than shadow.max_body"), stats.ReasonTooLarge
		}
		a.resp = compare.Response{Status: res.StatusCode, Header: res.Header, Body: body}
		if res.StatusCode >= 500 {
			return struct{}{}, errServerError
		}
		return struct{}{}, nil
	})
	switch {
	case err == nil, errors.Is(err, errServerError):
		p.metrics.upstream(route, side, false, a.latency)
	case isBreakerOpen(err):
		a.err, a.reason = err, stats.ReasonBreakerOpen
	default:
		a.latency = p.now().Sub(start)
		p.metrics.upstream(route, side, false, a.latency)
		a.err, a.reason = err, stats.ReasonSecondaryFailed
		if errors.Is(err, context.Canceled) && p.stop.Err() != nil {
			a.reason = stats.ReasonShutdown
		}
		p.log.Debug("secondary failed", slog.String(keyRoute, route), slog.String(keyBackend, side.String()), slog.String("error", err.Error()))
	}
	return a
}

// settle decides a compared exchange's outcome from its two answers and
// records it.
func (p *Proxy) settle(ex *exchange, prim, sec answer) {
	old, new := prim, sec
	if ex.primary == rules.New {
		old, new = sec, prim
	}
	// The latencies are evidence only where both backends answered: a
	// backend that refused the connection would look fast, one that
	// timed out as slow as its timeout.
	cmp := &comparison{ex: ex}
	if old.err == nil && new.err == nil {
		cmp.oldLatency, cmp.newLatency = old.latency, new.latency
	}
	switch {
	case prim.err != nil:
		p.recordRead(ex, skipOrError(prim.reason), prim.reason, cmp)
	case sec.err != nil:
		p.recordRead(ex, skipOrError(sec.reason), sec.reason, cmp)
	case sec.over:
		p.recordRead(ex, stats.Skipped, stats.ReasonTooLarge, cmp)
	default:
		cmp.keep(old.resp, new.resp)
		cmp.res = ex.route.Compare.Compare(old.resp, new.resp)
		res := &cmp.res
		p.metrics.hits.add(ex.route.Name, ex.route.Compare, res.Hits)
		allNoise := false
		if ex.shadow != nil && ex.shadow.hasNoise {
			cmp.noise, allNoise = cancelNoise(ex.route, res, old, ex.shadow.noise)
		}
		switch {
		case allNoise:
			// Every difference also showed between old and its twin.
			p.recordRead(ex, stats.Match, stats.ReasonNoise, cmp)
		case res.Outcome == compare.Match:
			p.recordRead(ex, stats.Match, "", cmp)
		case res.Outcome == compare.Mismatch:
			if ex.read && p.queue.touchedSince(ex.key, ex.start) {
				// A write to the resource moved while the read was under
				// way: the backends may disagree only for the moment. The
				// latencies still count; the answers are not a mismatch.
				cmp.result, cmp.old, cmp.new = nil, nil, nil
				p.recordRead(ex, stats.Pending, "", cmp)
				return
			}
			if !p.recheck(ex, cmp) {
				p.recordRead(ex, stats.Mismatch, "", cmp)
			}
		default:
			p.recordRead(ex, stats.Error, res.Reason, cmp)
		}
	}
}

// skipOrError says whether a reason makes a read skipped (nothing is wrong
// with either backend) or an error.
func skipOrError(reason string) stats.Outcome {
	switch reason {
	case stats.ReasonPrimaryFailed, stats.ReasonSecondaryFailed:
		return stats.Error
	}
	return stats.Skipped
}

// comparison carries what a recorded outcome knows of the two answers.
type comparison struct {
	ex                     *exchange
	oldLatency, newLatency time.Duration
	result                 *compare.Result
	old, new               *compare.Response
	noise                  *compare.Result // old vs noise, when a noise backend answered
	// bodies go back to the pool once the outcome is recorded.
	bodies [2][]byte

	// What result, old and new point to, kept here so that a compared read
	// allocates one comparison and nothing else.
	res              compare.Result
	oldResp, newResp compare.Response
}

// keep holds both answers for the outcome's record and their bodies for
// the pool.
func (c *comparison) keep(old, new compare.Response) {
	c.oldResp, c.newResp = old, new
	c.old, c.new, c.result = &c.oldResp, &c.newResp, &c.res
	c.bodies = [2][]byte{old.Body, new.Body}
}

func (c *comparison) fill(ev *stats.ReadEvent) {
	ev.OldLatency, ev.NewLatency = c.oldLatency, c.newLatency
	ev.Result = c.result
	ev.Noise = c.noise
	if c.result != nil && c.result.Outcome != compare.Match {
		ev.Old, ev.New = c.old, c.new
		ev.Request = &stats.Request{Method: c.ex.method, Target: c.ex.requestURI, Header: c.ex.outHeader.Clone()}
	}
}

// tryAcquire takes a shadow slot without waiting. A read takes it before
// the primary is asked, so that one that cannot be compared captures
// nothing; its shadow work begins later (beginShadow).
func (p *Proxy) tryAcquire() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// routeLoad counts the client requests in flight of a route (or of one
// of its overrides, which has its own phase and so its own secondary) and
// its shadowed reads waiting on the secondary.
type routeLoad struct {
	clients, shadows atomic.Int64
}

// routeLoads are a route's counters and its overrides', kept by name
// across reloads (Proxy.loads).
type routeLoads struct {
	own       routeLoad
	overrides sync.Map // override name → *routeLoad
}

// loadOf returns the counters of a route, or of one of its overrides,
// created at its first request; looking them up allocates nothing.
func (p *Proxy) loadOf(route, override string) *routeLoad {
	rl := loadOrNew[routeLoads](&p.loads, route)
	if override == "" {
		return &rl.own
	}
	return loadOrNew[routeLoad](&rl.overrides, override)
}

// loadOrNew returns m's *T under key, storing a new one the first time.
func loadOrNew[T any](m *sync.Map, key string) *T {
	if v, ok := m.Load(key); ok {
		return v.(*T)
	}
	v, _ := m.LoadOrStore(key, new(T))
	return v.(*T)
}

// lagging reports whether a read counted in l should be skipped as
// secondary_slow: the shadow work in flight (slots held, from before the
// primary is asked to the comparison's end, writes' comparisons included)
// has reached shadow.lag_factor times the client requests in flight, and
// at least rules.LagFloor, and the reads of its route (or override) waiting
// on the secondary have reached that factor times its clients in flight.
//
// Reads wait on the secondary after their client is answered, so a
// secondary much slower than the primary holds many more of them than
// there are clients: by Little's law, as many times more as it is slower.
// Each is a goroutine, a connection and a kept answer, which the clients
// pay for in CPU and collections on a busy machine. Only the routes whose
// reads lag are sampled: one slow endpoint of new does not cost the
// others their comparisons. Compared by division, so that no factor
// overflows.
func (p *Proxy) lagging(l *routeLoad) bool {
	f := int64(p.shadowCfg.LagFactor)
	if f == 0 {
		return false
	}
	held := int64(len(p.slots))
	return held >= rules.LagFloor && held/f >= p.inFlight.Load() && l.shadows.Load()/f >= l.clients.Load()
}

// releaseSlot gives back a slot whose shadow work never began.
func (p *Proxy) releaseSlot() { <-p.slots }

// beginShadow counts the shadow work about to start on the slot held, for
// Close to wait for; once Close waits it gives the slot back and returns
// false, and the work must not start. Only the work after the client's
// answer is counted: a client's answer still streaming when Close began
// (its handler outlived the server's drain) is not Close's to wait for.
func (p *Proxy) beginShadow() bool {
	p.shadowMu.RLock()
	defer p.shadowMu.RUnlock()
	if p.shadowClosed {
		p.releaseSlot()
		return false
	}
	p.shadowWG.Add(1)
	return true
}

// release ends shadow work begun with beginShadow.
func (p *Proxy) release() {
	p.releaseSlot()
	p.shadowWG.Done()
}
