package stats

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histograms are log-linear: exact below 16 µs, then 16 buckets per
// power of two. A bucket is at most 1/16 of its lower bound wide, so a
// quantile read from its midpoint is within ~3 % of the true value: fine
// against the 20 % p99 threshold of the playbook, and recording is one atomic
// add into a fixed array (no allocation on the request path).
const (
	histSub     = 16                            // buckets per power of two
	histOctaves = 37                            // 2^4 µs .. 2^40 µs (~12.7 days)
	histBuckets = histSub + histOctaves*histSub // 608
)

type histogram struct {
	b     [histBuckets]atomic.Int64
	count atomic.Int64
	sumUS atomic.Int64
}

func histIndex(d time.Duration) int {
	us := d.Microseconds()
	if us < histSub {
		if us < 0 {
			return 0
		}
		return int(us)
	}
	e := bits.Len64(uint64(us)) - 1 // us in [2^e, 2^(e+1)), e >= 4
	sub := int(uint64(us)>>(e-4)) & (histSub - 1)
	i := histSub + (e-4)*histSub + sub
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// histBounds returns the lower bound and width, in microseconds, of bucket i.
func histBounds(i int) (lo, width float64) {
	if i < histSub {
		return float64(i), 1
	}
	e := (i-histSub)/histSub + 4
	sub := (i - histSub) % histSub
	w := float64(uint64(1) << (e - 4))
	return float64(uint64(1)<<e) + float64(sub)*w, w
}

func (h *histogram) observe(d time.Duration) {
	h.b[histIndex(d)].Add(1)
	h.count.Add(1)
	h.sumUS.Add(d.Microseconds())
}

// quantile returns the q-quantile in milliseconds, or 0 without data.
func (h *histogram) quantile(q float64) float64 {
	n := h.count.Load()
	if n == 0 {
		return 0
	}
	// The rank of the quantile, 1-based: the smallest value with at least
	// q·n values at or below it.
	rank := int64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i := range h.b {
		seen += h.b[i].Load()
		if seen >= rank {
			lo, w := histBounds(i)
			if i < histSub {
				return lo / 1000
			}
			return (lo + w/2) / 1000
		}
	}
	// Buckets were read while writers added: fall back to the last one used.
	for i := histBuckets - 1; i >= 0; i-- {
		if h.b[i].Load() > 0 {
			lo, w := histBounds(i)
			return (lo + w/2) / 1000
		}
	}
	return 0
}

func (h *histogram) snapshot() histSnapshot {
	s := histSnapshot{Count: h.count.Load(), SumUS: h.sumUS.Load()}
	for i := range h.b {
		if v := h.b[i].Load(); v != 0 {
			s.Buckets = append(s.Buckets, [2]int64{int64(i), v})
		}
	}
	return s
}

func (h *histogram) restore(s histSnapshot) {
	h.count.Store(s.Count)
	h.sumUS.Store(s.SumUS)
	for _, b := range s.Buckets {
		if b[0] >= 0 && b[0] < histBuckets {
			h.b[b[0]].Store(b[1])
		}
	}
}

func (h *histogram) reset() {
	for i := range h.b {
		h.b[i].Store(0)
	}
	h.count.Store(0)
	h.sumUS.Store(0)
}

// histSnapshot is a histogram as persisted: only the buckets in use.
type histSnapshot struct {
	Count   int64      `json:"count"`
	SumUS   int64      `json:"sum_us"`
	Buckets [][2]int64 `json:"buckets,omitempty"`
}
