package main

import (
	"math"
	"strings"
	"testing"
	"time"
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

// A row whose counts could not be read in one round says so: a median of
// the rounds that were read, or an empty cell, would claim what was not
// measured.
func TestTheTableSaysWhenTheCountsWereNotRead(t *testing.T) {
	read := sample{rate: 1000, p99: time.Millisecond, compared: 1}
	mirror := sample{rate: 1000, p99: time.Millisecond, answered: 1, copies: 4000}
	unread := func(s sample) sample {
		s.unread = "connection refused"
		return s
	}
	var out strings.Builder
	b := &bench{out: &out}
	b.table([]row{
		{"read", median([]sample{read, read, read})},
		{"shadow, one round unread", median([]sample{read, unread(sample{rate: 1000, p99: time.Millisecond}), read})},
		{"mirror, one round unread", median([]sample{mirror, mirror, unread(mirror)})},
	}, nil)
	for _, want := range []string{
		"| read | 1000 |", "100.0 % |",
		"| shadow, one round unread | 1000 |", "| mirror, one round unread | 1000 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table has no %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "unknown: the counts could not be read"); n != 2 {
		t.Errorf("%d rows say the counts were unknown, want 2:\n%s", n, out.String())
	}
	if strings.Contains(out.String(), "copies answered") {
		t.Errorf("the mirror's row shows a share measured in some rounds only:\n%s", out.String())
	}
}
