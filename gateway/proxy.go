package gateway

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// RuleSource gives the rule set in force; the gateway reads it once per
// request, so a reload takes effect on the next request.
type RuleSource interface {
	Current() *rules.Set
}

// Recorder receives every outcome the gateway decides.
type Recorder interface {
	Read(stats.ReadEvent)
	Write(stats.WriteEvent)
	SetQueue(route string, q stats.QueueState)
	SetOverrideQueue(route, override string, q stats.QueueState)
}

// Config wires a Proxy. Rules and Stats are required.
type Config struct {
	Rules RuleSource
	Stats Recorder
	// Registerer receives the gateway's metrics; nil registers them nowhere.
	Registerer prometheus.Registerer
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
	// DataDir holds the secondary-write queue (DataDir/queue.db). Empty
	// keeps the queue in memory: a restart loses what it holds.
	DataDir string
}

// Proxy is the gateway's request path: it serves every request from the
// primary of its route's phase, shadows reads to the secondary and compares
// the answers off the request path, and repeats accepted writes on the
// secondary.
//
// Backends, shadow bounds and queue settings are read from the rule set at
// New; a reload changes routes, phases and compare rules, not these.
type Proxy struct {
	rules     RuleSource
	stats     Recorder
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics
	trusted   trustedPrefixes
	shadowCfg rules.Shadow
	marker    string // shadowCfg.MarkerHeader, canonical

	targets   [2]*url.URL // by rules.Side
	timeouts  [2]time.Duration
	secondary [2]secondaryClient // by the side that is secondary
	primary   *primaryTransport  // ReverseProxy's transport: the primary's clients
	noise     *noise             // nil unless backends.noise is set
	buffers   bodyBuffers        // answers kept for comparison
	breakers  [2]*breaker
	rp        *httputil.ReverseProxy
	slots     chan struct{} // shadow work in flight; a full channel means busy
	// inFlight counts the requests in ServeHTTP (endClient), against which
	// shadow work in flight is bounded (lagging), and loads the same per
	// route and override.
	inFlight atomic.Int64
	loads    sync.Map // route name → *routeLoad
	// recheckAfter re-reads a mismatch from both backends after a delay
	// (queue.recheck_after; 0: never); rechecks bounds those waiting.
	recheckAfter time.Duration
	rechecks     chan struct{}
	recheckWG    sync.WaitGroup
	sweepWG      sync.WaitGroup // the idle-connection sweeper
	queue        *queue

	// stop is cancelled when Close gives up waiting; in-flight shadow work
	// is cut then.
	stop     context.Context
	cancel   context.CancelFunc
	shadowWG sync.WaitGroup
	// shadowClosed, set by Close under shadowMu, ends beginShadow's
	// additions to shadowWG before Close waits for it.
	shadowMu     sync.RWMutex
	shadowClosed bool
	// Writes between recordWrite and the end of their handler, which Close
	// waits for before it closes the queue; writesIdle is closed once none
	// is left after writesClosed (set by Close under writesMu).
	writesMu     sync.RWMutex
	writesClosed bool
	writes       atomic.Int64
	writesIdle   chan struct{}
	idleOnce     sync.Once
	// awaiting counts the writes waiting in awaitQueued.
	awaiting atomic.Int64
	closing  chan struct{}
	closed   sync.Once
}

// New builds a Proxy from the rule set in force, replays the secondary
// writes a previous run left in the data directory and starts the workers
// that deliver them. Close stops them.
func New(cfg Config) (*Proxy, error) {
	if cfg.Rules == nil || cfg.Stats == nil {
		return nil, errors.New("gateway: Config needs Rules and Stats")
	}
	set := cfg.Rules.Current()
	if set == nil {
		return nil, errors.New("gateway: no rule set loaded")
	}
	p := &Proxy{
		rules:        cfg.Rules,
		stats:        cfg.Stats,
		log:          cfg.Logger,
		now:          cfg.Now,
		trusted:      set.Server.TrustedProxies,
		shadowCfg:    set.Shadow,
		marker:       textproto.CanonicalMIMEHeaderKey(set.Shadow.MarkerHeader),
		slots:        make(chan struct{}, set.Shadow.Workers),
		recheckAfter: set.Queue.RecheckAfter,
		rechecks:     make(chan struct{}, maxRechecks),
		closing:      make(chan struct{}),
		writesIdle:   make(chan struct{}),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.stop, p.cancel = context.WithCancel(context.Background())
	p.metrics = newMetrics(cfg.Registerer)
	p.metrics.declare(set)
	if cfg.Registerer != nil {
		// What shadow.lag_factor compares, read at each scrape.
		cfg.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "cutover_shadow_in_flight",
				Help: "Shadowed reads and comparisons in flight (shadow.workers bounds them; past 128 and shadow.lag_factor times cutover_requests_in_flight, the reads of routes that lag are skipped).",
			}, func() float64 { return float64(len(p.slots)) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "cutover_requests_in_flight",
				Help: "Client requests being served, streams and long polls included, upgraded connections (WebSocket) not.",
			}, func() float64 { return float64(p.inFlight.Load()) }))
	}
	// As many idle connections to a secondary as shadow workers: a slow
	// secondary keeps many requests in flight, and closing their
	// connections after each would dial anew for every shadowed read.
	secondaryIdle := max(256, set.Shadow.Workers)
	for _, side := range []rules.Side{rules.Old, rules.New} {
		b := set.Backends.Get(side)
		p.targets[side] = backendTarget(b)
		p.timeouts[side] = b.Timeout
		// A round tripper, not an http.Client: redirects are answers to
		// compare; the client bounds each exchange by the backend's timeout.
		p.secondary[side] = newSecondaryClient(p.stop, p.targets[side], b.Timeout, secondaryIdle, set.Shadow.IdempotencyHeader)
		p.breakers[side] = newBreaker(side, set.Shadow.BreakerOpenFor, p.metrics, p.log)
	}
	p.noise = newNoise(p.stop, set.Backends.Noise, secondaryIdle)
	p.primary = &primaryTransport{p: p}
	for _, side := range []rules.Side{rules.Old, rules.New} {
		p.primary.t[side] = newTransport(p.timeouts[side], primaryIdle)
		p.primary.h1[side] = newPrimaryClient(p.targets[side], p.timeouts[side], primaryIdle)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			p.rewrite(pr, exchangeFrom(pr.In.Context()))
		},
		Transport:      p.primary,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.primaryError,
		BufferPool:     &copyBuffers{},
		ErrorLog:       slog.NewLogLogger(p.log.Handler(), slog.LevelWarn),
		// FlushInterval stays 0: ReverseProxy then flushes at once for
		// answers of unknown length and for text/event-stream, so streams
		// reach the client as they come, and buffers answers of known length.
		// -1 (flush every write) cost 18 % of the CPU in syscalls at 1 KB.
	}
	var box *outbox
	if cfg.DataDir != "" {
		var err error
		observe := func(n int, d time.Duration, err error, failed []*op) {
			p.metrics.commit(n, d, err, len(failed))
			if err != nil {
				p.log.Error("queue store commit failed", slog.Int("changes", n), slog.String("error", err.Error()))
			}
			for _, x := range failed {
				p.log.Error("queue store change failed", slog.String("change", x.kind.String()), slog.Uint64("id", x.id), slog.Uint64("order", x.order), slog.String("error", x.err.Error()))
			}
		}
		if box, err = openOutbox(cfg.DataDir, observe); err != nil {
			return nil, err
		}
	}
	var err error
	if p.queue, err = newQueue(p, set.Queue, box); err != nil {
		if box != nil {
			box.close()
		}
		return nil, err
	}
	p.sweepWG.Add(1)
	go p.sweepIdle()
	return p, nil
}

// sweepIdle closes the secondaries' idle connections that have waited too
// long, also when no request comes to find them, until Close.
func (p *Proxy) sweepIdle() {
	defer p.sweepWG.Done()
	tick := time.NewTicker(idleSweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.closing:
			return
		case <-tick.C:
			for _, c := range p.clients() {
				c.closeExpired()
			}
		}
	}
}

// clients are the clients that pool their own connections: one per backend
// as secondary, the noise backend's when there is one, and the primary's
// for reads of plain-HTTP backends.
func (p *Proxy) clients() []secondaryClient {
	cs := []secondaryClient{p.secondary[rules.Old], p.secondary[rules.New]}
	for _, c := range p.primary.h1 {
		if c != nil {
			cs = append(cs, c)
		}
	}
	if p.noise != nil {
		cs = append(cs, p.noise.client)
	}
	return cs
}

// primaryIdle bounds the idle connections kept to a backend as primary.
const primaryIdle = 512

// idleSweepEvery is how often expired idle connections are looked for.
const idleSweepEvery = 15 * time.Second

// primaryTransport sends each primary request through the transport of the
// backend it is aimed at, once a write that the secondary must get too is
// recorded. Reads without a body go over cutover's own HTTP/1.1 client when
// the backend is plain HTTP: the exchange stays on the handler's goroutine,
// where the Transport hands each request to a writer and a reader goroutine
// per connection (BenchmarkShadowRead: 76.6-82.5 µs and 218 allocations
// per read on the Transport, 69.3-70.2 µs and 196 on the client). Writes,
// bodies and protocol upgrades keep the Transport: it writes a body while
// the answer is read, waits for 100 Continue, and hands an upgraded
// connection over.
type primaryTransport struct {
	p  *Proxy
	t  [2]*http.Transport
	h1 [2]*h1Client // by rules.Side; nil for an https:// backend
}

func (t *primaryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := exchangeFrom(req.Context())
	if ex.write != nil {
		var err error
		if req, err = t.p.recordWrite(req, ex); err != nil {
			return nil, err
		}
	}
	if c := t.h1[ex.primary]; c != nil && ex.read && !ex.upgrade && req.Body == nil && req.Header.Get("Expect") == "" {
		return c.RoundTrip(req)
	}
	if ex.shadow == nil && ex.write == nil {
		// Nothing will be compared: the backends' own times are not
		// needed, and tracing costs (httptrace composes with ReverseProxy's
		// trace by reflection).
		return t.t[ex.primary].RoundTrip(req)
	}
	ex.timer = newLegTimer(ex.now)
	return t.t[ex.primary].RoundTrip(req.WithContext(ex.timer.context(req.Context())))
}

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
	ex.load = p.loadOf(loadKey(ex.route.Name, ex.override))
	ex.load.clients.Add(1)
	defer p.endClient(ex)

	if v, scanned := framingOf(r.Context()); scanned && v.ambiguous() {
		p.reject(w, r, ex, http.StatusBadRequest, errAmbiguousFraming)
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
	// The scanner stops only once the primary switched (modifyResponse):
	// a switch refused, or an h2c upgrade (whose headers are removed),
	// leaves the connection carrying HTTP requests.
	// RFC 9110 section 7.8: an HTTP/1.0 request's Upgrade is ignored
	// (rewrite removes it), and section 15.2: no 1xx answer to an HTTP/1.0
	// client.
	ex.upgrade = r.ProtoAtLeast(1, 1) && isUpgrade(r.Header) && !isH2CUpgrade(r.Header)
	switch {
	case !r.ProtoAtLeast(1, 1):
		w = no1xx{w}
		ex.w = w
	case ex.upgrade:
		// The switch is done when ReverseProxy takes the connection.
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
		// ReverseProxy hands the connection over, which needs the body to
		// stay the backend's io.ReadWriteCloser: nothing of it is
		// captured. A switch is no write the secondary can repeat: 101 is
		// not a write's success, and its record is dropped.
		// The connection is counted out and its scanner stopped once
		// ReverseProxy accepted the switch (switcher.Hijack).
		if job := ex.write; job != nil {
			job.decided = true
			p.queue.drop(job.rec)
			// Dropped: nothing for Close to wait for while it is open.
			if job.begun {
				job.begun = false
				p.endWrite()
			}
		}
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
		ex.shadow = &shadowJob{load: ex.load}
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

// Close stops the gateway's background work. Writes still arriving are
// refused (503, shutting_down); writes already at the primary are waited
// for, so that their copies are queued; then queued secondary writes are
// flushed while ctx allows, and shadow comparisons finish or are cut when
// ctx ends. Call it after the server stopped sending requests.
func (p *Proxy) Close(ctx context.Context) error {
	var err error
	p.closed.Do(func() {
		close(p.closing)
		// The writes already at the primary first: queued once it
		// answers, they would find the queue closed.
		p.writesMu.Lock()
		p.writesClosed = true
		p.writesMu.Unlock()
		if p.writes.Load() == 0 {
			p.idleOnce.Do(func() { close(p.writesIdle) })
		}
		select {
		case <-p.writesIdle:
		case <-ctx.Done():
		}
		// The queue next: its workers hand write comparisons to shadow
		// slots, which must not begin while the slots are waited for.
		err = p.queue.close(ctx)
		p.shadowMu.Lock()
		p.shadowClosed = true
		p.shadowMu.Unlock()
		done := make(chan struct{})
		go func() {
			p.shadowWG.Wait()
			p.recheckWG.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			p.cancel()
			<-done
			if err == nil {
				err = ctx.Err()
			}
		}
		p.cancel()
		p.sweepWG.Wait()
		for _, c := range p.clients() {
			c.close()
		}
		for _, t := range p.primary.t {
			t.CloseIdleConnections()
		}
	})
	return err
}

// NewServer returns the proxy listener's server: the limits of the rule
// set's server section (MaxHeaderBytes answers 431, ReadHeaderTimeout cuts
// slow heads) and the framing checks. Serve it on FramingListener(ln).
func (p *Proxy) NewServer(errorLog *log.Logger) *http.Server {
	sc := p.rules.Current().Server
	// The client's address, for logs: X-Forwarded-For is believed only from
	// trusted proxies (chi's ClientIPFromXFF; its RealIP is spoofable).
	// Without trusted proxies it is the peer's address, read when needed.
	var h http.Handler = p
	if len(sc.TrustedProxies) > 0 {
		prefixes := make([]string, len(sc.TrustedProxies))
		for i, pfx := range sc.TrustedProxies {
			prefixes[i] = pfx.String()
		}
		h = middleware.ClientIPFromXFF(prefixes...)(p)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: sc.ReadHeaderTimeout,
		IdleTimeout:       sc.IdleTimeout,
		MaxHeaderBytes:    sc.MaxHeaderBytes,
		ConnContext:       FramingContext,
		ErrorLog:          errorLog,
	}
}

// QueueDepth returns the number of secondary writes queued or waiting for a
// retry.
func (p *Proxy) QueueDepth() int { return p.queue.depthNow() }
