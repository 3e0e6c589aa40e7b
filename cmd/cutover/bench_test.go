package main

import (
	"math"
	"testing"
)

func TestGrowthAfterJudgesTheTrendNotTheHighestTooth(t *testing.T) {
	const mib = 1 << 20
	series := func(f func(i int) float64) []int64 {
		s := make([]int64, 60)
		for i := range s {
			s[i] = int64(f(i) * mib)
		}
		return s
	}
	tests := []struct {
		name          string
		samples       []int64
		perMinute     float64 // MiB
		early, late   float64 // MiB
		toleranceMiB  float64
		lateOverEarly bool
	}{
		{
			// A collector's sawtooth: 44 to 48 MiB every 4 s, no growth.
			name:      "sawtooth",
			samples:   series(func(i int) float64 { return 44 + float64(i%4) + 0.3*float64(i%3) }),
			perMinute: 0, early: 45.6, late: 45.6, toleranceMiB: 1.2,
		},
		{
			// A leak of 6 MiB a minute under the same sawtooth.
			name:      "leak",
			samples:   series(func(i int) float64 { return 44 + float64(i%4) + 0.1*float64(i) }),
			perMinute: 6, early: 46.5, late: 51.5, toleranceMiB: 1.2, lateOverEarly: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := growthAfter(tt.samples, 10)
			if d := math.Abs(g.perMinute/mib - tt.perMinute); d > tt.toleranceMiB {
				t.Errorf("trend %.2f MiB/min, want %.2f", g.perMinute/mib, tt.perMinute)
			}
			if d := math.Abs(g.early/mib - tt.early); d > tt.toleranceMiB {
				t.Errorf("early median %.2f MiB, want %.2f", g.early/mib, tt.early)
			}
			if d := math.Abs(g.late/mib - tt.late); d > tt.toleranceMiB {
				t.Errorf("late median %.2f MiB, want %.2f", g.late/mib, tt.late)
			}
			if got := g.late > g.early*1.05; got != tt.lateOverEarly {
				t.Errorf("late/early = %.3f", g.late/g.early)
			}
		})
	}
}
