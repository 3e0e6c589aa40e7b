package gateway

// One client request as it crosses the gateway: ServeHTTP plans it (a read
// to shadow, a write to copy), ReverseProxy sends it to the primary, and
// modifyResponse and finish hand the primary's answer to the shadow or
// write work and record the outcome.

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	return ctx.Value(exchangeKey{}).(*exchange)
}

// exchange is the state of one client request as it crosses the gateway.
type exchange struct {
	// w is the client's ResponseWriter, and guard the primary's body as
	// ReverseProxy copies it to w (modifyResponse).
	w        http.ResponseWriter
	guard    flushOnError
	route    *rules.Route
	params   rules.Params
	override string
	phase    rules.Phase
	primary  rules.Side
	target   *url.URL
	read     bool
	upgrade  bool // the request asks to switch protocols (WebSocket)
	// direct: a write the secondary does not get, counted in flight to
	// its primary while writes held for that backend exist (supersede.go).
	direct     bool
	method     string
	requestURI string // as the client sent it
	key        string // resource key
	start      time.Time
	body       []byte // the buffered request body (nil when none)
	// bodyPartial: the body exceeded the replay buffer; it streams to the
	// primary and cannot be repeated.
	bodyPartial    bool
	idempotencyKey string

	// Set by rewrite: what the primary was sent, which the secondary copies.
	outHeader http.Header
	outURL    *url.URL

	// The primary's answer.
	capture     *capture
	status      int
	header      http.Header
	primaryErr  error
	primaryTime time.Duration // the primary's own time to its first byte
	timer       *legTimer
	now         func() time.Time

	paramBuf [4]rules.Param // backs params for the common short patterns

	// Decided before proxying: a read's outcome when it is not shadowed.
	skip   stats.Outcome
	reason string
	// clientGone: the client left after the primary's head came and
	// before its answer was written whole (its request's context ended),
	// set by finish.
	clientGone bool

	shadow *shadowJob // a shadowed read
	load   *routeLoad // the route's requests and shadowed reads in flight
	ended  bool       // counted out of the requests in flight (endClient)
	write  *writeJob  // a write that the secondary gets too
}

// resourceKey names the resource the request acts on, computed once and
// only for requests that need it (writes to repeat, reads to compare).
func (ex *exchange) resourceKey(r *http.Request) string {
	if ex.key == "" {
		ex.key = ex.route.ResourceKey(r, ex.params)
	}
	return ex.key
}

// copiesWrite reports whether a write of this exchange's phase and route
// is copied to the secondary.
func (ex *exchange) copiesWrite() bool {
	return ex.phase.WritesSecondary() && ex.route.SecondaryWrites != rules.Off
}

func (ex *exchange) overrideName(o *rules.Override) {
	if o != nil {
		ex.override = o.Name
	}
}

// ServeHTTP proxies one request. The client always gets the primary's answer.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inFlight.Add(1)
	set := p.rules.Current()
	ex := &exchange{w: w, start: p.now(), now: p.now, method: r.Method, requestURI: r.RequestURI}
	ex.route, ex.params = set.Match(r.Method, matchPath(r.URL), ex.paramBuf[:0])
	var ov *rules.Override
	ex.phase, ov = ex.route.PhaseFor(r, ex.params)
	ex.overrideName(ov)
	ex.primary = ex.phase.Primary()
	ex.target = p.targets[ex.primary]
	ex.read = ex.route.IsRead(r.Method)
	ex.load = p.loadOf(ex.route.Name, ex.override)
	ex.load.clients.Add(1)
	defer p.endClient(ex)

	if v, scanned := framingOf(r.Context()); scanned && v.ambiguous() {
		p.reject(w, r, ex, http.StatusBadRequest, errAmbiguousFraming)
		return
	}
	if r.Method == http.MethodConnect {
		// A tunnel, whatever its target: with a path target net/http
		// takes it as an ordinary request, which a backend would then see.
		p.reject(w, r, ex, http.StatusBadRequest, errNoTunnel)
		return
	}
	if !targetKeptAsSent(r) {
		p.reject(w, r, ex, http.StatusBadRequest, errBadTarget)
		return
	}
	if keyTooLong(ex, r) {
		p.reject(w, r, ex, http.StatusRequestURITooLong, errKeyTooLong)
		return
	}
	// An h2c upgrade is an ordinary request (rewrite removes its headers),
	// and so is an HTTP/1.0 request's Upgrade, which RFC 9110 section 7.8
	// says to ignore; section 15.2: no 1xx answer to an HTTP/1.0 client.
	// A switch is done only when ReverseProxy takes the connection
	// (switcher): one refused leaves it carrying HTTP requests.
	http11 := r.ProtoAtLeast(1, 1)
	ex.upgrade = http11 && isUpgrade(r.Header) && !isH2CUpgrade(r.Header)
	switch {
	case !http11:
		w = no1xx{w}
		ex.w = w
	case ex.upgrade:
		w = switcher{ResponseWriter: w, p: p, ex: ex, ctx: r.Context()}
		ex.w = w
	}
	in := r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
	if status, err := p.bufferBody(w, in, ex, set); err != nil {
		p.reject(w, r, ex, status, err)
		return
	}
	if ex.read {
		p.planRead(ex, r)
	} else {
		p.planWrite(ex, r)
		if err := p.awaitQueued(ex, r); err != nil {
			status := http.StatusServiceUnavailable
			if errors.Is(err, errClientLeft) {
				status = statusClientGone
			}
			p.reject(w, r, ex, status, err)
			return
		}
		if ex.write == nil && p.queue.refsTo[ex.primary].Load() > 0 {
			ex.direct = true
			p.queue.beginDirect(ex.resourceKey(r), ex.primary)
		}
	}
	defer p.finish(ex, in)
	p.rp.ServeHTTP(w, in)
}

// endClient counts a request out of those in flight, once: when its
// handler returns, or when the primary switched protocols, since an open
// WebSocket is no request waiting for an answer.
func (p *Proxy) endClient(ex *exchange) {
	if ex.ended {
		return
	}
	ex.ended = true
	ex.load.clients.Add(-1)
	p.inFlight.Add(-1)
}

// sampled decides whether one read is in the route's sample.
func sampled(share float64) bool {
	return share >= 1 || (share > 0 && rand.Float64() < share)
}

// modifyResponse sees the primary's answer before the client does: it keeps
// a bounded copy of the body for the comparison and, for an accepted write,
// hands the secondary its copy.
func (p *Proxy) modifyResponse(res *http.Response) error {
	ex := exchangeFrom(res.Request.Context())
	ex.primaryTime = backendTime(res, ex.timer.latency(p.now().Sub(ex.start)))
	ex.status = res.StatusCode
	ex.header = res.Header
	p.metrics.upstream(ex.route.Name, ex.primary, true, ex.primaryTime)
	// The client gets the primary's header and nothing else: net/http adds
	// a Content-Type it sniffs from the body, and a Date, to an answer
	// without them unless they are there and nil.
	h := ex.w.Header()
	if _, ok := res.Header["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
	if _, ok := res.Header["Date"]; !ok {
		h["Date"] = nil
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// A write the primary switched is never repeated, refused or not.
		if ex.write != nil {
			p.primarySwitched(ex)
		}
		if err := switchRefused(res); err != nil {
			// ReverseProxy would refuse it too, and leave the backend's
			// switched connection open; refused here, the body (that
			// connection) is closed by ReverseProxy with the error.
			return err
		}
		// ReverseProxy hands the connection over, which needs the body to
		// stay the backend's io.ReadWriteCloser: nothing of it is
		// captured. The connection is counted out and its scanner stopped
		// once ReverseProxy accepted the switch (switcher.Hijack).
		return nil
	}
	if ex.shadow != nil && isEventStream(res.Header) {
		// A stream's comparison could begin only at its end, and the
		// secondary's copy of a subscription ends only at its timeout.
		p.releaseSlot()
		ex.shadow = nil
		ex.skip, ex.reason = stats.Skipped, stats.ReasonStream
	}
	ex.guard = flushOnError{rc: res.Body, w: ex.w}
	res.Body = &ex.guard
	if ex.shadow != nil || ex.write != nil {
		ex.capture = newCapture(res.Body, p.shadowCfg.MaxBody, p.buffers.forBody(res.ContentLength, p.shadowCfg.MaxBody))
		res.Body = ex.capture
	}
	if ex.write != nil {
		p.primaryAccepted(ex, res)
	}
	return nil
}

// primaryError is ReverseProxy's error funnel: the client gets 502, 504 or
// 499 (statusClientGone) and the cause goes to the log.
func (p *Proxy) primaryError(w http.ResponseWriter, r *http.Request, err error) {
	ex := exchangeFrom(r.Context())
	ex.primaryErr = err
	if errors.Is(err, errClosing) {
		// Refused before the primary got it (only writes are).
		p.reject(w, r, ex, http.StatusServiceUnavailable, err)
		return
	}
	status := errorStatus(r.Context(), err)
	if status != statusClientGone {
		p.log.Warn("primary failed", slog.String(keyRoute, ex.route.Name), slog.String(keyBackend, ex.primary.String()), slog.String("error", err.Error()))
	}
	p.metrics.upstream(ex.route.Name, ex.primary, true, p.now().Sub(ex.start))
	p.primaryFailed(ex, status, err)
	w.WriteHeader(status)
}

// finish runs when the client's answer is written (or the copy failed): it
// hands the primary's answer to the shadow or write work and records reads
// that were not shadowed. It never waits for the secondary.
func (p *Proxy) finish(ex *exchange, in *http.Request) {
	// The server ends a request's context when its client leaves, and
	// only after the handler returns otherwise. A client that left once
	// the primary's head had come is no fault of the primary's; one that
	// gave up waiting for that head may be (a primary slower than its
	// clients' patience must count against it).
	ex.clientGone = in.Context().Err() != nil && ex.status != 0
	switch {
	case ex.shadow != nil:
		ex.shadow.primaryDone(p, ex)
	case ex.write != nil:
		ex.write.primaryDone(p, ex)
	case ex.direct:
		// A write the secondary does not get overtakes, on the primary,
		// the held writes of its resource for that backend.
		p.queue.endDirect(ex.key, ex.primary, ex.primaryErr == nil && ex.route.WriteSucceeded(ex.status))
	case ex.read:
		outcome, reason := ex.skip, ex.reason
		switch {
		case !ex.phase.ComparesReads():
		case ex.clientGone:
			outcome, reason = stats.Skipped, stats.ReasonClientGone
		case ex.primaryErr != nil:
			outcome, reason = stats.Error, stats.ReasonPrimaryFailed
		}
		p.recordRead(ex, outcome, reason, nil)
	}
}

// planRead decides how a read ends before the primary is asked: shadowed, or
// skipped or pending with a reason.
func (p *Proxy) planRead(ex *exchange, r *http.Request) {
	secondary := ex.primary.Other()
	switch {
	case !ex.phase.ComparesReads():
		ex.skip, ex.reason = stats.Skipped, stats.ReasonPhase
	case ex.upgrade:
		ex.skip, ex.reason = stats.Skipped, stats.ReasonUpgrade
	case ex.bodyPartial:
		ex.skip, ex.reason = stats.Skipped, stats.ReasonTooLarge
	case !sampled(ex.route.Sample):
		ex.skip, ex.reason = stats.Skipped, stats.ReasonSampledOut
	case p.queue.pending(ex.resourceKey(r)):
		ex.skip, ex.reason = stats.Pending, ""
	case p.breakers[secondary].open():
		ex.skip, ex.reason = stats.Skipped, stats.ReasonBreakerOpen
	case p.lagging(ex.load):
		ex.skip, ex.reason = stats.Skipped, stats.ReasonSecondarySlow
	case !p.tryAcquire():
		ex.skip, ex.reason = stats.Skipped, stats.ReasonBusy
	default:
		ex.shadow = &shadowJob{}
	}
}

// planWrite decides whether the secondary gets this write once the primary
// accepts it.
func (p *Proxy) planWrite(ex *exchange, r *http.Request) {
	if !ex.copiesWrite() {
		return
	}
	ex.resourceKey(r)
	ex.idempotencyKey = r.Header.Get(p.shadowCfg.IdempotencyHeader)
	if ex.idempotencyKey == "" {
		ex.idempotencyKey = newIdempotencyKey()
	}
	ex.write = &writeJob{mode: ex.route.SecondaryWrites}
}

func newIdempotencyKey() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// recordRead reports a read's outcome to the stats and the metrics.
func (p *Proxy) recordRead(ex *exchange, outcome stats.Outcome, reason string, cmp *comparison) {
	ev := stats.ReadEvent{
		Route:    ex.route.Name,
		Override: ex.override,
		Phase:    ex.phase.String(),
		Outcome:  outcome,
		Reason:   reason,
		Write:    !ex.read,
		Primary:  ex.primary.String(),
		At:       ex.start,
	}
	if cmp != nil {
		cmp.fill(&ev)
	}
	p.metrics.comparison(ex.route.Name, !ex.read, outcome, reason)
	p.stats.Read(ev)
	// The statistics keep what they need of the answers (copies, redacted):
	// their buffers can serve the next read.
	if cmp != nil {
		for i, b := range cmp.bodies {
			p.buffers.put(b)
			cmp.bodies[i] = nil
		}
	}
}
