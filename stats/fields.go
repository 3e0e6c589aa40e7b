package stats

import (
	"hash/fnv"
	"slices"
	"sort"

	"github.com/cutover/cutover/compare"
)

// maxFieldsTracked bounds the distinct folded paths counted per route; a
// backend that puts ids in keys would otherwise grow the map without end.
// Paths beyond it are counted in the overflow bucket.
const maxFieldsTracked = 500

// fieldCount is the evidence about one folded path of one route.
type fieldCount struct {
	Count int64                  `json:"count"` // comparisons in which it differed
	Noise int64                  `json:"noise"` // noise comparisons in which it differed
	Kinds map[compare.Kind]int64 `json:"kinds,omitempty"`
}

// fieldSet counts differing paths. It is guarded by the route's mutex.
type fieldSet struct {
	Paths         map[string]*fieldCount `json:"paths"`
	OverflowCount int64                  `json:"overflow_count"`
	OverflowPaths int64                  `json:"overflow_paths"` // distinct paths not tracked (a lower bound once OverflowSeen is full)
	OverflowNoise int64                  `json:"overflow_noise"`
	// OverflowSeen holds, sorted, the hashes of the untracked paths seen,
	// up to maxOverflowSeen: what tells a new one from a repeat.
	OverflowSeen []uint64 `json:"overflow_seen,omitempty"`
}

// maxOverflowSeen bounds the untracked paths told apart per route.
const maxOverflowSeen = 1024

// untracked counts one comparison's difference at a path not tracked.
func (f *fieldSet) untracked(path string) {
	f.OverflowCount++
	h := fnv.New64a()
	h.Write([]byte(path))
	sum := h.Sum64()
	i, found := slices.BinarySearch(f.OverflowSeen, sum)
	if !found && len(f.OverflowSeen) < maxOverflowSeen {
		f.OverflowSeen = slices.Insert(f.OverflowSeen, i, sum)
		f.OverflowPaths = max(f.OverflowPaths, int64(len(f.OverflowSeen)))
	}
}

func (f *fieldSet) get(path string) *fieldCount {
	if f.Paths == nil {
		f.Paths = map[string]*fieldCount{}
	}
	fc := f.Paths[path]
	if fc == nil && len(f.Paths) < maxFieldsTracked {
		fc = &fieldCount{}
		f.Paths[path] = fc
	}
	return fc
}

// add counts one comparison's differences, each folded path once.
func (f *fieldSet) add(pks []PathKind) {
	var last string
	for i, pk := range pks {
		fc := f.get(pk.Path)
		if fc == nil {
			if i == 0 || pk.Path != last {
				f.untracked(pk.Path)
			}
			last = pk.Path
			continue
		}
		if i == 0 || pk.Path != last {
			fc.Count++
		}
		if fc.Kinds == nil {
			fc.Kinds = map[compare.Kind]int64{}
		}
		fc.Kinds[pk.Kind]++
		last = pk.Path
	}
}

// addNoise counts one noise comparison's differences.
func (f *fieldSet) addNoise(ds []compare.Difference) {
	seen := map[string]bool{}
	for _, d := range ds {
		p := compare.FoldPath(d.Path)
		if seen[p] {
			continue
		}
		seen[p] = true
		if fc := f.get(p); fc != nil {
			fc.Noise++
		} else {
			f.OverflowNoise++
		}
	}
}

// Field is one differing JSON path of a route, with its array indices folded
// to [*].
type Field struct {
	Path string `json:"path"`
	// Count is the number of comparisons in which this path differed; Rate
	// is Count over the route's compared reads.
	Count int64    `json:"count"`
	Rate  *float64 `json:"rate"`
	// Noise is the number of old-vs-old (backends.noise) comparisons in which
	// it differed; NoiseRate is Noise over those comparisons, null without any.
	Noise     int64    `json:"noise"`
	NoiseRate *float64 `json:"noise_rate"`
	// Noisy is set when the path differs about as often between two old
	// instances as between old and new (Diffy's rule: the difference rate must
	// beat the noise rate by more than 20 % relative and 0.03 % absolute).
	Noisy bool                   `json:"noisy"`
	Kinds map[compare.Kind]int64 `json:"kinds,omitempty"`
}

// FieldsView is what /api/v1/fields shows of a route.
type FieldsView struct {
	Route         string  `json:"route"`
	Compared      int64   `json:"compared"`
	Mismatched    int64   `json:"mismatched"`
	NoiseCompared int64   `json:"noise_compared"`
	Fields        []Field `json:"fields"`
	// Overflow sums the paths beyond the limit asked for and those never
	// tracked because the route had too many distinct paths.
	Overflow FieldOverflow `json:"overflow"`
}

// FieldOverflow is the bucket of paths not listed.
type FieldOverflow struct {
	Paths int64 `json:"paths"`
	Count int64 `json:"count"`
}

func ratio(n, d int64) *float64 {
	if d <= 0 {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

// view lists the top limit fields by count, the rest in the overflow.
func (f *fieldSet) view(limit int, compared, noiseCompared int64, th compare.NoiseThresholds) ([]Field, FieldOverflow) {
	all := make([]Field, 0, len(f.Paths))
	for p, fc := range f.Paths {
		fl := Field{Path: p, Count: fc.Count, Noise: fc.Noise, Rate: ratio(fc.Count, compared), NoiseRate: ratio(fc.Noise, noiseCompared)}
		if len(fc.Kinds) > 0 {
			fl.Kinds = make(map[compare.Kind]int64, len(fc.Kinds))
			for k, v := range fc.Kinds {
				fl.Kinds[k] = v
			}
		}
		if noiseCompared > 0 {
			// Diffy's rule: a field is a real difference only when its
			// rate beats its noise rate by the thresholds.
			fl.Noisy = !th.Real(fc.Count, compared, fc.Noise, noiseCompared)
		}
		all = append(all, fl)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Count != all[j].Count {
			return all[i].Count > all[j].Count
		}
		return all[i].Path < all[j].Path
	})
	ov := FieldOverflow{Paths: f.OverflowPaths, Count: f.OverflowCount}
	if limit > 0 && len(all) > limit {
		for _, fl := range all[limit:] {
			ov.Paths++
			ov.Count += fl.Count
		}
		all = all[:limit]
	}
	return all, ov
}
