package stats

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/compare"
	bolt "go.etcd.io/bbolt"
)

// The layout of stats.db: one bucket of routes, each route one JSON value
// written whole when it changed. A route's value is bounded (a day of minute
// buckets, Retention of hour buckets, capped fields and samples), so the file
// is bounded by the number of routes; bbolt reuses the pages it frees.
var (
	bucketRoutes = []byte("routes")
	bucketMeta   = []byte("meta")
	keyVersion   = []byte("version")
)

// schemaVersion changes when a persisted value changes incompatibly; an
// unknown version is refused rather than misread.
const schemaVersion = "1"

type seriesSnapshot struct {
	Totals    []int64          `json:"totals"` // counterNames order
	WriteCmp  []int64          `json:"write_comparisons"`
	NewErrors int64            `json:"new_errors"`
	NoiseCmp  int64            `json:"noise_compared"`
	NoiseDiff int64            `json:"noise_differed"`
	Reasons   map[string]int64 `json:"reasons,omitempty"`
	Latency   [2]histSnapshot  `json:"latency"`
	Minutes   []slotSnapshot   `json:"minutes,omitempty"`
	Hours     []slotSnapshot   `json:"hours,omitempty"`
	LastSeen  int64            `json:"last_seen"`
	ResetAt   int64            `json:"reset_at,omitempty"` // Unix nanoseconds
}

type groupSnapshot struct {
	Group
	SampledAt time.Time `json:"sampled_at"`
}

type routeSnapshot struct {
	Name           string                    `json:"name"`
	All            seriesSnapshot            `json:"all"`
	Overrides      map[string]seriesSnapshot `json:"overrides,omitempty"`
	Groups         []groupSnapshot           `json:"groups,omitempty"`
	OverflowGroups int64                     `json:"overflow_groups"`
	Fields         fieldSet                  `json:"fields"`
	Queue          QueueState                `json:"queue"`
	QueueKnown     bool                      `json:"queue_known"`
}

func (s *series) snapshot(now time.Time) seriesSnapshot {
	ss := seriesSnapshot{
		Totals:    make([]int64, numCounters),
		WriteCmp:  make([]int64, numCounters),
		NewErrors: s.newErrors.Load(),
		NoiseCmp:  s.noiseCmp.Load(),
		NoiseDiff: s.noiseDiff.Load(),
		Reasons:   s.reasonCounts(),
		Latency:   [2]histSnapshot{s.lat[0].snapshot(), s.lat[1].snapshot()},
		Minutes:   s.minutes.snapshot(now.Unix() / 60),
		Hours:     s.hours.snapshot(now.Unix() / 3600),
		LastSeen:  s.lastSeen.Load(),
		ResetAt:   s.resetAt.Load(),
	}
	for i := range ss.Totals {
		ss.Totals[i] = s.total[i].Load()
		ss.WriteCmp[i] = s.writeCmp[i].Load()
	}
	return ss
}

func (s *series) restore(ss seriesSnapshot, now time.Time) {
	for i := range s.total {
		if i < len(ss.Totals) {
			s.total[i].Store(ss.Totals[i])
		}
		if i < len(ss.WriteCmp) {
			s.writeCmp[i].Store(ss.WriteCmp[i])
		}
	}
	s.newErrors.Store(ss.NewErrors)
	s.noiseCmp.Store(ss.NoiseCmp)
	s.noiseDiff.Store(ss.NoiseDiff)
	for k, v := range ss.Reasons {
		o, reason, _ := strings.Cut(k, "/")
		if i := knownReason(Outcome(o), reason); i >= 0 {
			s.reasons[i].Store(v)
			continue
		}
		if s.other == nil {
			s.other = map[string]int64{}
		}
		s.other[k] = v
	}
	s.lat[0].restore(ss.Latency[0])
	s.lat[1].restore(ss.Latency[1])
	s.minutes.restore(ss.Minutes, now.Unix()/60)
	s.hours.restore(ss.Hours, now.Unix()/3600)
	s.lastSeen.Store(ss.LastSeen)
	s.resetAt.Store(ss.ResetAt)
}

// dirty reports whether anything of the route changed since the last flush,
// clearing the marks: a change racing with the flush marks it again.
func (r *route) takeDirty() bool {
	d := r.dirty.Swap(false)
	if r.all.dirty.Swap(false) {
		d = true
	}
	for _, o := range *r.overrides.Load() {
		if o.dirty.Swap(false) {
			d = true
		}
	}
	return d
}

func (r *route) snapshot(now time.Time) routeSnapshot {
	rs := routeSnapshot{Name: r.name, All: r.all.snapshot(now)}
	for name, o := range *r.overrides.Load() {
		if rs.Overrides == nil {
			rs.Overrides = map[string]seriesSnapshot{}
		}
		rs.Overrides[name] = o.snapshot(now)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.groups {
		cp := *g
		cp.Samples = append([]Sample(nil), g.Samples...)
		cp.Paths = append([]PathKind(nil), g.Paths...)
		rs.Groups = append(rs.Groups, groupSnapshot{Group: cp, SampledAt: g.sampledAt})
	}
	rs.OverflowGroups = r.overflowGroups
	rs.Fields = r.fields.clone()
	rs.Queue, rs.QueueKnown = r.queue, r.queueKnown
	return rs
}

func (f *fieldSet) clone() fieldSet {
	out := *f
	out.OverflowSeen = slices.Clone(f.OverflowSeen)
	out.Paths = make(map[string]*fieldCount, len(f.Paths))
	for p, fc := range f.Paths {
		cp := *fc
		if fc.Kinds != nil {
			cp.Kinds = make(map[compare.Kind]int64, len(fc.Kinds))
			for k, v := range fc.Kinds {
				cp.Kinds[k] = v
			}
		}
		out.Paths[p] = &cp
	}
	return out
}

// Flush writes every route changed since the last flush, and forgets routes
// without events for longer than Retention. It is a no-op in memory.
func (s *Store) Flush() error {
	if s.db == nil {
		return nil
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	now := s.now()
	horizon := now.Add(-s.opts.Retention).Unix()
	type put struct {
		key []byte
		val []byte
	}
	var puts []put
	var expired []string
	for name, r := range *s.routes.Load() {
		if last := r.all.lastSeen.Load(); last != 0 && last < horizon {
			expired = append(expired, name)
			continue
		}
		if !r.takeDirty() {
			continue
		}
		b, err := json.Marshal(r.snapshot(now))
		if err != nil {
			r.dirty.Store(true)
			return fmt.Errorf("encode route %q: %w", name, err)
		}
		puts = append(puts, put{[]byte(name), b})
	}
	if len(expired) > 0 {
		s.forget(expired)
	}
	if len(puts) == 0 && len(expired) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRoutes)
		for _, p := range puts {
			if err := b.Put(p.key, p.val); err != nil {
				return err
			}
		}
		for _, name := range expired {
			if err := b.Delete([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Mark them again so the next flush retries.
		for _, p := range puts {
			if r := s.lookup(string(p.key)); r != nil {
				r.dirty.Store(true)
			}
		}
		return fmt.Errorf("write statistics: %w", err)
	}
	return nil
}

func (s *Store) forget(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]*route, len(*s.routes.Load()))
	for k, v := range *s.routes.Load() {
		next[k] = v
	}
	for _, n := range names {
		delete(next, n)
	}
	s.routes.Store(&next)
}

// load reads the routes kept in the database into memory.
func (s *Store) load() error {
	now := s.now()
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keyVersion); {
		case v == nil:
			if err := meta.Put(keyVersion, []byte(schemaVersion)); err != nil {
				return err
			}
		case string(v) != schemaVersion:
			return fmt.Errorf("statistics schema version %q, this build reads %q", v, schemaVersion)
		}
		b, err := tx.CreateBucketIfNotExists(bucketRoutes)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			var rs routeSnapshot
			if err := json.Unmarshal(v, &rs); err != nil {
				// One unreadable route must not cost the others their evidence.
				s.log.Error("skip unreadable route statistics", "route", string(k), "err", err)
				return nil
			}
			s.restoreRoute(string(k), rs, now)
			return nil
		})
	})
}

func (s *Store) restoreRoute(name string, rs routeSnapshot, now time.Time) {
	r := s.route(name)
	r.all.restore(rs.All, now)
	for on, oss := range rs.Overrides {
		if o := r.override(on, s.hoursKept()); o != nil {
			o.restore(oss, now)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, gs := range rs.Groups {
		g := gs.Group
		// Files written before the times were kept in UTC hold local
		// ones: the API shows UTC.
		g.FirstSeen, g.LastSeen, g.sampledAt = g.FirstSeen.UTC(), g.LastSeen.UTC(), gs.SampledAt.UTC()
		for i := range g.Samples {
			g.Samples[i].At = g.Samples[i].At.UTC()
		}
		r.groups[g.Fingerprint] = &g
	}
	r.overflowGroups = rs.OverflowGroups
	r.fields = rs.Fields
	if len(r.fields.OverflowSeen) == 0 && r.fields.OverflowPaths > 1 {
		// Written before untracked paths were told apart, when the count
		// was of differences: one path is all that is known.
		r.fields.OverflowPaths = 1
	}
	r.queue, r.queueKnown = rs.Queue, rs.QueueKnown
	r.queue.Oldest = r.queue.Oldest.UTC()
}
