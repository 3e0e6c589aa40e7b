package stats

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Store keeps the statistics of every route. It is safe for concurrent use;
// recording is a map lookup and a few atomic adds.
//
// TEMPORARY: counters only; windows, history, persistence, samples and the
// readiness verdict are built on top of it.
type Store struct {
	mu     sync.RWMutex
	routes map[string]*route
}

// New returns an empty in-memory store.
func New() *Store {
	return &Store{routes: make(map[string]*route)}
}

type route struct {
	reads    [5]atomic.Int64 // by Outcome index
	reasons  sync.Map        // "outcome/reason" → *atomic.Int64
	writes   [4]atomic.Int64 // by WriteOutcome index
	pending  atomic.Int64
	compared atomic.Int64 // write comparisons, kept apart
}

var outcomeIndex = map[Outcome]int{Match: 0, Mismatch: 1, Skipped: 2, Error: 3, Pending: 4}
var writeIndex = map[WriteOutcome]int{WriteOK: 0, WriteFailed: 1, WriteRetriedOK: 2, WriteGaveUp: 3}

func (s *Store) route(name string) *route {
	s.mu.RLock()
	r := s.routes[name]
	s.mu.RUnlock()
	if r != nil {
		return r
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r = s.routes[name]; r == nil {
		r = new(route)
		s.routes[name] = r
	}
	return r
}

// Read records one read outcome.
func (s *Store) Read(ev ReadEvent) {
	r := s.route(ev.Route)
	if ev.Write {
		r.compared.Add(1)
		return
	}
	r.reads[outcomeIndex[ev.Outcome]].Add(1)
	if ev.Reason != "" {
		c, _ := r.reasons.LoadOrStore(string(ev.Outcome)+"/"+ev.Reason, new(atomic.Int64))
		c.(*atomic.Int64).Add(1)
	}
}

// Write records one secondary write outcome.
func (s *Store) Write(ev WriteEvent) {
	s.route(ev.Route).writes[writeIndex[ev.Outcome]].Add(1)
}

// SetPending sets the number of queued secondary writes of a route.
func (s *Store) SetPending(routeName string, n int) {
	s.route(routeName).pending.Store(int64(n))
}

// Reads is the read part of a route's view.
type Reads struct {
	Compared   int64            `json:"compared"`
	Matched    int64            `json:"matched"`
	Mismatched int64            `json:"mismatched"`
	Skipped    int64            `json:"skipped"`
	Errors     int64            `json:"errors"`
	Pending    int64            `json:"pending"`
	Total      int64            `json:"total"`
	MatchRate  *float64         `json:"match_rate"`
	Reasons    map[string]int64 `json:"reasons,omitempty"`
}

// Writes is the secondary-write part of a route's view.
type Writes struct {
	SecondaryAttempted int64 `json:"secondary_attempted"`
	SecondarySucceeded int64 `json:"secondary_succeeded"`
	SecondaryFailed    int64 `json:"secondary_failed"`
	RetriedOK          int64 `json:"retried_ok"`
	GaveUp             int64 `json:"gave_up"`
	PendingRetries     int64 `json:"pending_retries"`
}

// Ready is a route's readiness verdict.
type Ready struct {
	Verdict bool     `json:"verdict"`
	Status  string   `json:"status"`
	Reasons []string `json:"reasons"`
}

// RouteView is one route as the admin API shows it.
type RouteView struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	Reads Reads  `json:"reads"`
	// WriteComparisons counts writes whose two answers were compared.
	WriteComparisons int64  `json:"write_comparisons"`
	Writes           Writes `json:"writes"`
	Ready            Ready  `json:"ready"`
}

// RouteInfo is what the store needs to know of a configured route to show it.
type RouteInfo struct {
	Name  string
	Phase string
}

// Routes returns a view of each configured route, in the order given, then
// any route seen in traffic but no longer configured.
func (s *Store) Routes(configured []RouteInfo) []RouteView {
	seen := map[string]bool{}
	var out []RouteView
	for _, ri := range configured {
		seen[ri.Name] = true
		out = append(out, s.view(ri.Name, ri.Phase))
	}
	s.mu.RLock()
	var extra []string
	for name := range s.routes {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	s.mu.RUnlock()
	sort.Strings(extra)
	for _, name := range extra {
		out = append(out, s.view(name, ""))
	}
	return out
}

func (s *Store) view(name, phase string) RouteView {
	r := s.route(name)
	v := RouteView{Name: name, Phase: phase}
	v.Reads.Matched = r.reads[0].Load()
	v.Reads.Mismatched = r.reads[1].Load()
	v.Reads.Skipped = r.reads[2].Load()
	v.Reads.Errors = r.reads[3].Load()
	v.Reads.Pending = r.reads[4].Load()
	v.Reads.Compared = v.Reads.Matched + v.Reads.Mismatched
	v.Reads.Total = v.Reads.Compared + v.Reads.Skipped + v.Reads.Errors + v.Reads.Pending
	if v.Reads.Compared > 0 {
		rate := float64(v.Reads.Matched) / float64(v.Reads.Compared)
		v.Reads.MatchRate = &rate
	}
	r.reasons.Range(func(k, c any) bool {
		if v.Reads.Reasons == nil {
			v.Reads.Reasons = map[string]int64{}
		}
		v.Reads.Reasons[k.(string)] = c.(*atomic.Int64).Load()
		return true
	})
	v.WriteComparisons = r.compared.Load()
	ok, failed := r.writes[0].Load(), r.writes[1].Load()
	v.Writes = Writes{
		SecondaryAttempted: ok + failed,
		SecondarySucceeded: ok,
		SecondaryFailed:    failed,
		RetriedOK:          r.writes[2].Load(),
		GaveUp:             r.writes[3].Load(),
		PendingRetries:     r.pending.Load(),
	}
	v.Ready = Ready{Status: "insufficient_data", Reasons: []string{"readiness is not evaluated yet"}}
	return v
}
