package stats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Options configure a Store. Every zero value means the default in
// parentheses.
type Options struct {
	// Dir is the data directory; the statistics live in Dir/stats.db. Empty
	// keeps them in memory only.
	Dir string
	// Now is the clock (time.Now). Events with a zero At are stamped with it,
	// and windows end at it.
	Now func() time.Time
	// FlushInterval is how often changed routes are written to disk (10 s).
	// A crash loses at most this much evidence; Close flushes everything.
	FlushInterval time.Duration
	// Retention bounds the hourly history (30 days). A route without events
	// for that long is forgotten, on disk too.
	Retention time.Duration
	Samples   SampleOptions
	Redact    RedactOptions
	Logger    *slog.Logger // slog.Default()
}

// Store keeps the evidence of every route. It is safe for concurrent use.
// Recording a read or a write is a lock-free map lookup and a few atomic
// adds; a mismatch also takes its route's mutex to count fields and group
// the sample, and builds a sample (redaction, copies) outside it at most a
// few times a minute per shape. Nothing on the recording path touches disk.
type Store struct {
	opts Options
	now  func() time.Time
	log  *slog.Logger
	red  *redactor

	mu     sync.Mutex                        // serialises route creation
	routes atomic.Pointer[map[string]*route] // copy on write: reads never lock

	db      *bolt.DB // nil in memory
	flushMu sync.Mutex
	stop    chan struct{}
	done    sync.WaitGroup
	closed  atomic.Bool
}

// maxOverrides bounds the override series kept per route. Override names
// come from configuration, so the bound is only a guard.
const maxOverrides = 64

// route is the evidence of one route.
type route struct {
	name      string
	all       *series
	overrides atomic.Pointer[map[string]*series]

	mu             sync.Mutex // guards everything below and override creation
	groups         map[string]*Group
	overflowGroups int64
	fields         fieldSet
	noiseFields    bool
	queue          QueueState
	queueKnown     bool // the queue reported given-up writes itself
	// overrideQueue is, per override, its queue as the queue counts it:
	// its held writes, and its queued writes as pending.
	overrideQueue map[string]QueueState
	dirty         atomic.Bool
}

// QueueState is the secondary-write retry queue of one route, as the queue
// reports it.
type QueueState struct {
	// Pending writes wait for a retry; GivenUp writes stopped retrying and are
	// kept for inspection.
	Pending int64 `json:"pending"`
	GivenUp int64 `json:"given_up"`
	// Verify writes are held because the primary's outcome is unknown.
	Verify int64 `json:"verify"`
	// Oldest is when the oldest pending write was queued (zero: none).
	Oldest time.Time `json:"oldest,omitzero"`
}

// New returns an in-memory store with default options.
func New() *Store {
	s, err := Open(Options{})
	if err != nil {
		// Only a failing random source or a bad redaction path can fail an
		// in-memory Open, and defaults have no paths.
		panic(err)
	}
	return s
}

// Open returns a store. With Options.Dir it loads the evidence kept there
// and writes it back every FlushInterval until Close.
func Open(opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 10 * time.Second
	}
	if opts.Retention <= 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	opts.Samples.defaults()
	red, err := newRedactor(opts.Redact, opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Store{opts: opts, now: opts.Now, log: opts.Logger, red: red, stop: make(chan struct{})}
	empty := map[string]*route{}
	s.routes.Store(&empty)
	if opts.Dir == "" {
		return s, nil
	}
	path := filepath.Join(opts.Dir, "stats.db")
	// The timeout turns a second gateway on the same directory into an error
	// instead of a hang on the file lock.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s is locked by another cutover (one gateway per data directory): stop it, or pass another --data-dir", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open statistics %s: %w", path, err)
	}
	s.db = db
	if err := s.load(); err != nil {
		db.Close()
		return nil, fmt.Errorf("load statistics %s: %w", path, err)
	}
	s.done.Add(1)
	go s.flushLoop()
	return s, nil
}

func (s *Store) hoursKept() int {
	return int((s.opts.Retention + time.Hour - 1) / time.Hour)
}

// route returns the evidence of a route, creating it on first use.
func (s *Store) route(name string) *route {
	if r := (*s.routes.Load())[name]; r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.routes.Load()
	if r := old[name]; r != nil {
		return r
	}
	r := &route{name: name, all: newSeries(s.hoursKept()), groups: map[string]*Group{}}
	empty := map[string]*series{}
	r.overrides.Store(&empty)
	next := make(map[string]*route, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = r
	s.routes.Store(&next)
	return r
}

// lookup returns a route's evidence without creating it.
func (s *Store) lookup(name string) *route { return (*s.routes.Load())[name] }

// override returns the series of one override, nil past maxOverrides.
func (r *route) override(name string, hours int) *series {
	if o := (*r.overrides.Load())[name]; o != nil {
		return o
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.overrides.Load()
	if o := old[name]; o != nil {
		return o
	}
	if len(old) >= maxOverrides {
		return nil
	}
	o := newSeries(hours)
	next := make(map[string]*series, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[name] = o
	r.overrides.Store(&next)
	return o
}

// stamp is an event's time, in UTC as the API shows times (the gateway's
// clock is local: its monotonic reading times requests).
func (s *Store) stamp(at time.Time) time.Time {
	if at.IsZero() {
		at = s.now()
	}
	return at.UTC()
}

// Read records one read outcome (or, with ev.Write, one comparison of a
// write's two answers).
func (s *Store) Read(ev ReadEvent) {
	at := s.stamp(ev.At)
	r := s.route(ev.Route)
	// Fields and samples before the counts, so that whoever sees a mismatch
	// counted also finds its fields.
	if ev.Noise != nil && len(ev.Noise.Diffs) > 0 && !ev.Write {
		r.mu.Lock()
		r.fields.addNoise(ev.Noise.Diffs)
		r.mu.Unlock()
	}
	if ev.Outcome == Mismatch && ev.Result != nil {
		s.mismatch(r, &ev, at)
	}
	if ev.Override != "" {
		if o := r.override(ev.Override, s.hoursKept()); o != nil {
			o.read(&ev, at)
		}
	}
	r.all.read(&ev, at)
}

// mismatch counts the differing fields and keeps a sample of the shape.
func (s *Store) mismatch(r *route, ev *ReadEvent, at time.Time) {
	pks, fp := shape(ev.Result.Diffs, ev.Write)
	o := &s.opts.Samples
	r.mu.Lock()
	if !ev.Write {
		r.fields.add(pks)
	}
	r.dirty.Store(true)
	g := r.groups[fp]
	if g == nil {
		if len(r.groups) >= o.MaxGroups {
			r.overflowGroups++
			r.mu.Unlock()
			return
		}
		unordered := movedArrays(ev.Result.Diffs)
		g = &Group{Fingerprint: fp, FirstSeen: at, Write: ev.Write, Paths: pks, unordered: unordered,
			Suggested: suggestRule(r.name, pks, unordered)}
		r.groups[fp] = g
	}
	g.Count++
	if at.After(g.LastSeen) {
		g.LastSeen = at
	}
	take := len(g.Samples) < o.PerGroup || at.Sub(g.sampledAt) >= o.Refresh
	if take {
		g.sampledAt = at
	}
	r.mu.Unlock()
	if !take {
		return
	}
	smp := buildSample(ev, at, s.red, o)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.groups[fp] != g { // reset meanwhile
		return
	}
	g.Samples = append([]Sample{smp}, g.Samples...)
	sort.SliceStable(g.Samples, func(i, j int) bool { return g.Samples[i].At.After(g.Samples[j].At) })
	if len(g.Samples) > o.PerGroup {
		g.Samples = g.Samples[:o.PerGroup]
	}
}

// Write records one secondary write outcome.
func (s *Store) Write(ev WriteEvent) {
	at := s.stamp(ev.At)
	r := s.route(ev.Route)
	r.all.write(&ev, at)
	if ev.Override != "" {
		if o := r.override(ev.Override, s.hoursKept()); o != nil {
			o.write(&ev, at)
		}
	}
}

// SetQueue sets the retry queue state of a route. Once called, GivenUp is
// taken from it rather than from counting gave_up events, so a given-up write
// that is re-driven stops counting as unresolved.
//
// An empty state of a route the store has not seen tells nothing and does
// not create it: the queue publishes every route at start, and the
// catch-all route is shown only once a request matched no route.
func (s *Store) SetQueue(routeName string, q QueueState) {
	if q == (QueueState{}) && s.lookup(routeName) == nil {
		return
	}
	q.Oldest = q.Oldest.UTC() // the gateway's clock is local; the API shows UTC
	r := s.route(routeName)
	r.mu.Lock()
	r.queue, r.queueKnown = q, true
	r.mu.Unlock()
	r.dirty.Store(true)
}

// SetOverrideQueue reports the queue of one override of a route: its held
// writes, and its queued writes as pending. Like SetQueue,
// an empty state of a route the store has not seen does not create it.
func (s *Store) SetOverrideQueue(routeName, override string, q QueueState) {
	if q == (QueueState{}) && s.lookup(routeName) == nil {
		return
	}
	q.Oldest = q.Oldest.UTC()
	r := s.route(routeName)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.overrideQueue == nil {
		r.overrideQueue = map[string]QueueState{}
	}
	if q == (QueueState{}) {
		delete(r.overrideQueue, override)
	} else {
		r.overrideQueue[override] = q
	}
}

// Reset forgets the evidence of one route: counts, history, fields and
// samples (for example after a fix on the new backend).
func (s *Store) Reset(routeName string) {
	r := s.lookup(routeName)
	if r == nil {
		return
	}
	now := s.now()
	r.all.reset(now)
	for _, o := range *r.overrides.Load() {
		o.reset(now)
	}
	r.mu.Lock()
	r.groups = map[string]*Group{}
	r.overflowGroups = 0
	r.fields = fieldSet{}
	r.mu.Unlock()
	r.dirty.Store(true)
}

// Close stops the periodic flush and writes everything to disk. It is safe
// to call more than once. It flushes even when ctx has ended (a shutdown
// whose drain took its whole budget is when the evidence matters most):
// the periodic flush stops at once when told, and a flush is one write
// transaction, so nothing here waits on ctx.
func (s *Store) Close(context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.stop)
	s.done.Wait()
	if s.db == nil {
		return nil
	}
	return errors.Join(s.Flush(), s.db.Close())
}

func (s *Store) flushLoop() {
	defer s.done.Done()
	t := time.NewTicker(s.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.Flush(); err != nil {
				s.log.Error("flush statistics", "err", err)
			}
		}
	}
}
