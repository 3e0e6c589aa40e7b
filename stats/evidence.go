package stats

import (
	"slices"
	"sort"
	"time"

	"github.com/cutover/cutover/rules"
)

// DiffsView is what /api/v1/diffs shows of a route: its mismatches grouped
// by difference shape, most frequent first, each with its newest samples.
type DiffsView struct {
	Route      string  `json:"route"`
	Mismatched int64   `json:"mismatched"`
	Groups     []Group `json:"groups"`
	// OverflowGroups counts mismatches whose shape came after the group cap
	// was reached: counted, not sampled.
	OverflowGroups int64 `json:"overflow_groups"`
}

// Point is one step of a route's history.
type Point struct {
	T            time.Time `json:"t"`
	Compared     int64     `json:"compared"`
	Matched      int64     `json:"matched"`
	Mismatched   int64     `json:"mismatched"`
	Skipped      int64     `json:"skipped"`
	Errors       int64     `json:"errors"`
	Pending      int64     `json:"pending"`
	Transient    int64     `json:"transient"`
	WritesOK     int64     `json:"writes_ok"`
	WritesFailed int64     `json:"writes_failed"`
	RetriedOK    int64     `json:"retried_ok"`
	GaveUp       int64     `json:"gave_up"`
	MatchRate    *float64  `json:"match_rate"`
}

// HistoryView is a route's counts over time, for charts.
type HistoryView struct {
	Route       string    `json:"route"`
	Override    string    `json:"override,omitempty"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	StepSeconds int64     `json:"step_seconds"`
	// Threshold is the match rate the verdict asks for: the line to draw.
	Threshold float64 `json:"threshold"`
	Points    []Point `json:"points"`
}

// maxPoints bounds a history answer.
const maxPoints = 360

// EvidenceQuery selects the parts of Evidence to build.
type EvidenceQuery struct {
	// Fields is how many fields to list (0: no fields view).
	Fields int
	Diffs  bool
	// History is the span of history to return (0: none); up to a day it has
	// minute resolution, beyond it hours, up to Retention.
	History  time.Duration
	Override string
}

// Evidence is everything kept about one route.
type Evidence struct {
	Route   RouteView    `json:"route"`
	Fields  *FieldsView  `json:"fields,omitempty"`
	Diffs   *DiffsView   `json:"diffs,omitempty"`
	History *HistoryView `json:"history,omitempty"`
}

// Evidence returns the parts of a route's evidence that q asks for. It
// returns false for a route neither configured (ri.Name empty) nor seen.
func (s *Store) Evidence(ri RouteInfo, q EvidenceQuery) (Evidence, bool) {
	r := s.lookup(ri.Name)
	if r == nil && ri.Phase == "" {
		return Evidence{}, false
	}
	now := s.now()
	ev := Evidence{Route: s.view(r, ri, now)}
	if r == nil {
		r = &route{name: ri.Name, all: emptySeries(), groups: map[string]*Group{}}
		empty := map[string]*series{}
		r.overrides.Store(&empty)
	}
	if q.Fields > 0 {
		fv := &FieldsView{Route: ri.Name, Compared: ev.Route.Reads.Compared, Mismatched: ev.Route.Reads.Mismatched, NoiseCompared: ev.Route.Noise.Compared}
		r.mu.Lock()
		fv.Fields, fv.Overflow = r.fields.view(q.Fields, fv.Compared, fv.NoiseCompared, ri.Noise)
		r.mu.Unlock()
		ev.Fields = fv
	}
	if q.Diffs {
		dv := &DiffsView{Route: ri.Name, Mismatched: ev.Route.Reads.Mismatched + ev.Route.WriteComparisons.Mismatched, Groups: []Group{}}
		r.mu.Lock()
		for _, g := range r.groups {
			cp := *g
			cp.Samples = slices.Clone(g.Samples)
			cp.Paths = slices.Clone(g.Paths)
			dv.Groups = append(dv.Groups, cp)
		}
		dv.OverflowGroups = r.overflowGroups
		r.mu.Unlock()
		sort.Slice(dv.Groups, func(i, j int) bool {
			if dv.Groups[i].Count != dv.Groups[j].Count {
				return dv.Groups[i].Count > dv.Groups[j].Count
			}
			return dv.Groups[i].Fingerprint < dv.Groups[j].Fingerprint
		})
		ev.Diffs = dv
	}
	if q.History > 0 {
		ser := r.all
		if q.Override != "" {
			ser = (*r.overrides.Load())[q.Override]
			if ser == nil {
				ser = emptySeries()
			}
		}
		th := ri.Readiness
		if th.MatchRate == 0 {
			th = rules.DefaultReadiness()
		}
		h := history(ser, now, q.History, s.opts.Retention)
		h.Route, h.Override, h.Threshold = ri.Name, q.Override, th.MatchRate
		ev.History = &h
	}
	return ev, true
}

// history sums a series' buckets into at most maxPoints steps ending now.
func history(s *series, now time.Time, span, retention time.Duration) HistoryView {
	if span > retention {
		span = retention
	}
	slotLen, rg := time.Minute, s.minutes
	if span > 24*time.Hour {
		slotLen, rg = time.Hour, s.hours
	}
	slots := int64((span + slotLen - 1) / slotLen)
	per := (slots + maxPoints - 1) / maxPoints
	steps := (slots + per - 1) / per
	last := now.Unix() / int64(slotLen/time.Second)
	first := last - steps*per + 1
	hv := HistoryView{StepSeconds: per * int64(slotLen/time.Second), Points: make([]Point, 0, steps)}
	for i := int64(0); i < steps; i++ {
		start := first + i*per
		c := rg.sum(start+per-1, int(per))
		p := Point{T: time.Unix(start*int64(slotLen/time.Second), 0).UTC(),
			Matched: c[cMatched], Mismatched: c[cMismatched], Skipped: c[cSkipped], Errors: c[cErrors], Pending: c[cPending], Transient: c[cTransient],
			WritesOK: c[cWriteOK], WritesFailed: c[cWriteFailed], RetriedOK: c[cWriteRetriedOK], GaveUp: c[cWriteGaveUp]}
		p.Compared = p.Matched + p.Mismatched
		p.MatchRate = ratio(p.Matched, p.Compared)
		hv.Points = append(hv.Points, p)
	}
	hv.From = time.Unix(first*int64(slotLen/time.Second), 0).UTC()
	hv.To = time.Unix((last+1)*int64(slotLen/time.Second), 0).UTC()
	return hv
}

// View joins a Store to the current configuration: it is what the admin
// surface reads (web.StatsSource).
type View struct {
	Store *Store
	// Config returns the configured routes (RouteInfos of the live rule
	// set); nil shows only routes seen in traffic.
	Config func() []RouteInfo
}

func (v View) config() []RouteInfo {
	if v.Config == nil {
		return nil
	}
	return v.Config()
}

// Routes returns every route's view.
func (v View) Routes() []RouteView { return v.Store.Routes(v.config()) }

// Evidence returns one route's evidence.
func (v View) Evidence(name string, q EvidenceQuery) (Evidence, bool) {
	for _, ri := range v.config() {
		if ri.Name == name {
			return v.Store.Evidence(ri, q)
		}
	}
	return v.Store.Evidence(RouteInfo{Name: name}, q)
}
