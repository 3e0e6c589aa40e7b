package main

import (
	"math"
	"testing"
)

func TestGrowthAfterJudgesTheTrendNotTheHighestTooth(t *testing.T) {
	const mib = 1 << 20
	series := func(n int, f func(i int) float64) []int64 {
		s := make([]int64, n)
		for i := range s {
			s[i] = int64(f(i) * mib)
		}
		return s
	}
	tests := []struct {
		name                   string
		samples                []int64
		early, late, perMinute float64 // MiB
	}{
		// A collector's sawtooth, 44 to 47.6 MiB: no growth.
		{"sawtooth", series(60, func(i int) float64 { return 44 + float64(i%4) + 0.3*float64(i%3) }), 46.3, 46.3, 0.087},
		// A leak of 6 MiB a minute under a sawtooth.
		{"leak", series(60, func(i int) float64 { return 44 + float64(i%4) + 0.1*float64(i) }), 47.4, 51.4, 6.072},
		// Memory that climbs in the first 10 s and then holds: the climb
		// is not growth.
		{"warm-up", series(60, func(i int) float64 {
			if i < 10 {
				return 20 + 2.6*float64(i)
			}
			return 44 + float64(i%4)
		}), 46, 46, 0.072},
		// 12 samples after the first 10: two windows of 6 that do not
		// overlap, so a steep leak shows.
		{"short", series(22, func(i int) float64 { return 44 + float64(i) }), 57, 63, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := growthAfter(tt.samples, 10)
			for _, c := range []struct {
				what      string
				got, want float64
			}{{"early median", g.early / mib, tt.early}, {"late median", g.late / mib, tt.late}, {"trend per minute", g.perMinute / mib, tt.perMinute}} {
				if math.Abs(c.got-c.want) > 0.01 {
					t.Errorf("%s %.3f MiB, want %.3f", c.what, c.got, c.want)
				}
			}
		})
	}
}
