package compare

// Noise cancellation. A third backend, a second instance
// of old, answers the same shadowed reads; what differs between old and
// that instance is noise (timestamps, random ids, replica lag), not a
// migration difference. This file holds the decisions; the gateway asks the
// noise backend and the stats package counts per path (README, "`noise`: when a difference is real").

// Diffy's thresholds: a path's difference rate must beat its noise rate by
// more than 20 % of it and by more than 0.03 percentage points.
const (
	DefaultNoiseRelative = 0.2
	DefaultNoiseAbsolute = 0.0003
)

// NoiseThresholds decide when a path's difference rate (old vs new) is real
// rather than noise (old vs noise). Zero fields take the defaults.
type NoiseThresholds struct {
	// Relative is how much the difference rate must exceed the noise rate,
	// as a share of the noise rate (0.2: 20 % more).
	Relative float64
	// Absolute is the least gap between the two rates (0.0003: 0.03 %).
	Absolute float64
}

func (t NoiseThresholds) withDefaults() NoiseThresholds {
	if t.Relative <= 0 {
		t.Relative = DefaultNoiseRelative
	}
	if t.Absolute <= 0 {
		t.Absolute = DefaultNoiseAbsolute
	}
	return t
}

// Real reports whether a path that differed in differed of compared
// old-vs-new comparisons, and in noisy of noiseCompared old-vs-noise
// comparisons, differs for real. Without noise comparisons every
// difference is real: noise is only ever subtracted on evidence.
func (t NoiseThresholds) Real(differed, compared, noisy, noiseCompared int64) bool {
	if differed <= 0 || compared <= 0 {
		return false
	}
	if noiseCompared <= 0 || noisy <= 0 {
		return true
	}
	t = t.withDefaults()
	rate := float64(differed) / float64(compared)
	noise := float64(noisy) / float64(noiseCompared)
	return rate > noise*(1+t.Relative) && rate-noise > t.Absolute
}

// Cancel splits the differences of one old-vs-new comparison by those of
// the old-vs-noise comparison of the same request: a path that also
// differed between the two old instances is noise for this request. Paths
// are matched exactly (the same element of the same array); status and
// header differences cancel the same way.
func Cancel(diffs, noise []Difference) (real, cancelled []Difference) {
	if len(noise) == 0 {
		return diffs, nil
	}
	seen := make(map[string]bool, len(noise))
	for _, d := range noise {
		seen[d.Path] = true
	}
	for _, d := range diffs {
		if seen[d.Path] || underNoise(d.Path, seen) {
			cancelled = append(cancelled, d)
		} else {
			real = append(real, d)
		}
	}
	return real, cancelled
}

// underNoise reports whether an ancestor of path differed in the noise
// comparison ($['a'] differing covers $['a']['b']).
func underNoise(path string, seen map[string]bool) bool {
	for i := len(path) - 1; i > 1; i-- {
		if path[i] == '[' && seen[path[:i]] && !insideName(path, i) {
			return true
		}
	}
	return false
}

// insideName reports whether offset i of a normalized path falls inside a
// quoted member name.
func insideName(path string, i int) bool {
	in := false
	for j := 0; j < i; j++ {
		switch {
		case in && path[j] == '\\':
			j++
		case path[j] == '\'':
			in = !in
		}
	}
	return in
}

// Noise returns the route's noise thresholds, with defaults applied.
func (o *Options) Noise() NoiseThresholds {
	if o == nil {
		return NoiseThresholds{}.withDefaults()
	}
	return o.noise.withDefaults()
}
