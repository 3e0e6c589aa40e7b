package gateway

import (
	"context"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5/middleware"
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
	shadows   *runner       // the goroutines shadowed reads' secondary work runs on
	// inFlight counts the requests in ServeHTTP (endClient), against which
	// shadow work in flight is bounded (lagging), and loads the same per
	// route and override.
	inFlight atomic.Int64
	loads    sync.Map // route name → *routeLoads
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
		shadows:      newRunner(shadowIdle),
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
		p.shadows.close()
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
