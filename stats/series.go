package stats

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cutover/cutover/compare"
)

// Reasons with a fixed counter each, so counting them needs no map and no
// allocation. Any other reason (the compare engine may add some) goes to a
// small locked map, bounded by maxOtherReasons.
var knownReasons = [...]struct {
	outcome Outcome
	reason  string
}{
	{Skipped, ReasonPhase},
	{Skipped, ReasonSampledOut},
	{Skipped, ReasonTooLarge},
	{Skipped, ReasonBusy},
	{Skipped, ReasonBreakerOpen},
	{Skipped, ReasonClientGone},
	{Skipped, ReasonRefused},
	{Skipped, ReasonShutdown},
	{Error, ReasonPrimaryFailed},
	{Error, ReasonSecondaryFailed},
	// Every reason of compare.Reasons (a test holds the two lists together).
	{Error, compare.ReasonInvalidJSON},
	{Error, compare.ReasonDuplicateKey},
	{Error, compare.ReasonInvalidUTF8},
	{Error, compare.ReasonTrailingData},
	{Error, compare.ReasonTooDeep},
	{Error, compare.ReasonTooLarge},
	{Error, compare.ReasonBadEncoding},
	{Error, compare.ReasonPanic},
	{Error, compare.ReasonInconsistent},
	{Skipped, ReasonUpgrade},
	{Match, ReasonNoise},
	{Skipped, ReasonSecondarySlow},
	{Skipped, ReasonStream},
}

// maxOtherReasons bounds the distinct unexpected reasons kept per series;
// beyond it they are counted as "<outcome>/other".
const maxOtherReasons = 32

func knownReason(o Outcome, reason string) int {
	for i := range knownReasons {
		if knownReasons[i].outcome == o && knownReasons[i].reason == reason {
			return i
		}
	}
	return -1
}

func outcomeCounter(o Outcome) int {
	switch o {
	case Match:
		return cMatched
	case Mismatch:
		return cMismatched
	case Skipped:
		return cSkipped
	case Pending:
		return cPending
	case Transient:
		return cTransient
	default:
		return cErrors
	}
}

func writeCounter(o WriteOutcome) int {
	switch o {
	case WriteOK:
		return cWriteOK
	case WriteRetriedOK:
		return cWriteRetriedOK
	case WriteGaveUp:
		return cWriteGaveUp
	default:
		return cWriteFailed
	}
}

// series holds every count of one route, or of one override of a route.
type series struct {
	total    [numCounters]atomic.Int64 // all time (since the last reset)
	writeCmp [numCounters]atomic.Int64 // comparisons of write answers, kept apart from reads
	// newErrors counts error outcomes that are the new backend's fault (or
	// nobody's we can tell): they count against readiness, unlike failures
	// of the old backend, which say nothing about the new one.
	newErrors atomic.Int64
	noiseCmp  atomic.Int64 // old vs noise comparisons
	noiseDiff atomic.Int64 // of which differed

	reasons  [len(knownReasons)]atomic.Int64
	otherMu  sync.Mutex
	other    map[string]int64
	lat      [2]histogram // old, new; only reads where both legs ran
	minutes  *ring
	hours    *ring
	lastSeen atomic.Int64 // unix seconds of the latest event
	dirty    atomic.Bool  // changed since the last flush
	resetAt  atomic.Int64 // when the evidence was last reset, in Unix nanoseconds (0: never)
}

func newSeries(hours int) *series {
	return &series{minutes: newRing(minutesKept), hours: newRing(hours)}
}

// emptySeries stands in for a route or override without events yet: views
// of it read zeros without allocating a day of buckets.
func emptySeries() *series {
	return &series{minutes: newRing(1), hours: newRing(1)}
}

// minutesKept is one day of minute buckets: the 24 h window and chart.
const minutesKept = 24 * 60

func (s *series) read(ev *ReadEvent, at time.Time) {
	c := outcomeCounter(ev.Outcome)
	// Details before totals: a reader that sees the outcome counted also
	// sees its reason.
	if ev.Reason != "" {
		s.countReason(ev.Outcome, ev.Reason, ev.Write)
	}
	if ev.Write {
		s.writeCmp[c].Add(1)
	} else {
		s.total[c].Add(1)
		s.addSlots(at, c)
		if ev.Outcome == Error && !oldSideFailed(ev) {
			s.newErrors.Add(1)
		}
		if ev.OldLatency > 0 && ev.NewLatency > 0 {
			s.lat[0].observe(ev.OldLatency)
			s.lat[1].observe(ev.NewLatency)
		}
	}
	if ev.Noise != nil {
		s.noiseCmp.Add(1)
		if len(ev.Noise.Diffs) > 0 {
			s.noiseDiff.Add(1)
		}
	}
	s.touch(at)
}

// oldSideFailed reports whether an error outcome is a failure of the old
// backend, which is no evidence against the new one.
func oldSideFailed(ev *ReadEvent) bool {
	switch ev.Reason {
	case ReasonPrimaryFailed:
		return ev.Primary != "new"
	case ReasonSecondaryFailed:
		return ev.Primary == "new"
	}
	return false
}

func (s *series) write(ev *WriteEvent, at time.Time) {
	if !ev.Recorded.IsZero() && ev.Recorded.UnixNano() < s.resetAt.Load() {
		// Its first attempt was counted before the reset, or not at all:
		// its retry landing now would be counted against attempts it is
		// not among (an eventual rate over 1).
		return
	}
	c := writeCounter(ev.Outcome)
	s.total[c].Add(1)
	s.addSlots(at, c)
	s.touch(at)
}

func (s *series) addSlots(at time.Time, c int) {
	sec := at.Unix()
	s.minutes.add(sec/60, c)
	s.hours.add(sec/3600, c)
}

func (s *series) touch(at time.Time) {
	sec := at.Unix()
	for {
		cur := s.lastSeen.Load()
		if cur >= sec || s.lastSeen.CompareAndSwap(cur, sec) {
			break
		}
	}
	if !s.dirty.Load() {
		s.dirty.Store(true)
	}
}

func (s *series) countReason(o Outcome, reason string, write bool) {
	if i := knownReason(o, reason); i >= 0 && !write {
		s.reasons[i].Add(1)
		return
	}
	prefix := ""
	if write {
		prefix = writeReason
	}
	key := prefix + string(o) + "/" + reason
	s.otherMu.Lock()
	defer s.otherMu.Unlock()
	if s.other == nil {
		s.other = make(map[string]int64)
	}
	if _, ok := s.other[key]; !ok && len(s.other) >= maxOtherReasons {
		key = prefix + string(o) + "/other"
	}
	s.other[key]++
}

// writeReason prefixes the reasons of write comparisons where they are kept
// with the reads' (series.other, and stats.db).
const writeReason = "write:"

// splitReasons parts the counts of reasonCounts into the reads' and the
// write comparisons', the latter without their prefix.
func splitReasons(all map[string]int64) (reads, writes map[string]int64) {
	reads, writes = make(map[string]int64, len(all)), map[string]int64{}
	for k, v := range all {
		if w, ok := strings.CutPrefix(k, writeReason); ok {
			writes[w] = v
		} else {
			reads[k] = v
		}
	}
	return reads, writes
}

// reasonCounts returns every non-zero reason count keyed "outcome/reason",
// and "write:outcome/reason" for write comparisons.
func (s *series) reasonCounts() map[string]int64 {
	out := map[string]int64{}
	for i := range knownReasons {
		if v := s.reasons[i].Load(); v != 0 {
			out[string(knownReasons[i].outcome)+"/"+knownReasons[i].reason] = v
		}
	}
	s.otherMu.Lock()
	for k, v := range s.other {
		out[k] += v
	}
	s.otherMu.Unlock()
	return out
}

func (s *series) counts() (out [numCounters]int64) {
	for i := range out {
		out[i] = s.total[i].Load()
	}
	return out
}

func (s *series) reset(at time.Time) {
	s.resetAt.Store(at.UnixNano())
	for i := range s.total {
		s.total[i].Store(0)
		s.writeCmp[i].Store(0)
	}
	for i := range s.reasons {
		s.reasons[i].Store(0)
	}
	s.otherMu.Lock()
	s.other = nil
	s.otherMu.Unlock()
	s.newErrors.Store(0)
	s.noiseCmp.Store(0)
	s.noiseDiff.Store(0)
	s.lat[0].reset()
	s.lat[1].reset()
	s.minutes.reset()
	s.hours.reset()
	s.dirty.Store(true)
}
