package compare

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestHugeNumbersStayCheap: exponents of any size are compared from their
// text; neither equality nor tolerance builds a number with that many
// digits.
func TestHugeNumbersStayCheap(t *testing.T) {
	o := mustNew(Rule{Kind: RuleTolerance, Path: testPath("$..*"), Absolute: "0.5", Relative: "0.1"})
	pairs := [][2]string{
		{`[1e1000000000]`, `[1e1000000001]`},
		{`[1e1000000000]`, `[1.00000001e1000000000]`},
		{`[1e-1000000000]`, `[2e-1000000000]`},
		{`[1e99999999999999999999999999]`, `[1e99999999999999999999999998]`},
		{`[` + strings.Repeat("9", 100000) + `]`, `[` + strings.Repeat("9", 99999) + `8]`},
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, p := range pairs {
		if r := o.Compare(jsonResponse(p[0]), jsonResponse(p[1])); r.Outcome != Mismatch {
			t.Errorf("%.40s… vs %.40s…: %s (tolerance does not reach numbers beyond 1e±4000 or 4000 digits)", p[0], p[1], r.Outcome)
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("comparing huge numbers allocated %d bytes", grew)
	}
}

func TestDuplicateAmongManyMembers(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	b.WriteString(`"k17":0}`)
	r := (*Options)(nil).Compare(jsonResponse(b.String()), jsonResponse(`{}`))
	if r.Reason != ReasonDuplicateKey || !strings.Contains(r.Detail, `"k17"`) {
		t.Errorf("got %s %s %s", r.Outcome, r.Reason, r.Detail)
	}
}

// TestConcurrentUse shares one Options between goroutines (run with
// -race): compiled rules are read-only, scratch memory is per call.
func TestConcurrentUse(t *testing.T) {
	o := realisticRules()
	ps := pairs(4 << 10)
	want := make([]Result, len(ps))
	for i, p := range ps {
		want[i] = o.Compare(response(p.a), response(p.b))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				k := (g + i) % len(ps)
				r := o.Compare(response(ps[k].a), response(ps[k].b))
				if r.Outcome != want[k].Outcome || diffText(r) != diffText(want[k]) || hitText(r) != hitText(want[k]) {
					t.Errorf("%s: %s, alone %s", ps[k].name, r.Outcome, want[k].Outcome)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCancel(t *testing.T) {
	diffs := []Difference{
		{Path: "$['a']['b']"}, {Path: "$['a[']"}, {Path: "$['x'][0]"}, {Path: "status"}, {Path: "$['y']"},
	}
	noise := []Difference{{Path: "$['a']"}, {Path: "status"}, {Path: "$['x']"}}
	real, cancelled := Cancel(diffs, noise)
	var r, c []string
	for _, d := range real {
		r = append(r, d.Path)
	}
	for _, d := range cancelled {
		c = append(c, d.Path)
	}
	if got := strings.Join(r, " "); got != "$['a['] $['y']" {
		t.Errorf("real = %s", got)
	}
	if got := strings.Join(c, " "); got != "$['a']['b'] $['x'][0] status" {
		t.Errorf("cancelled = %s", got)
	}
}

func TestNoiseThresholds(t *testing.T) {
	tests := []struct {
		t                                 NoiseThresholds
		differed, compared, noisy, noiseN int64
		want                              bool
	}{
		{NoiseThresholds{}, 0, 100, 0, 100, false},
		{NoiseThresholds{}, 5, 100, 0, 0, true},
		{NoiseThresholds{}, 12, 100, 10, 100, false}, // 20 % more is not more than 20 %
		{NoiseThresholds{}, 13, 100, 10, 100, true},
		{NoiseThresholds{}, 3, 10000, 2, 10000, false}, // 0.03 % vs 0.02 %: gap 0.01 %
		{NoiseThresholds{Relative: 1}, 15, 100, 10, 100, false},
		{NoiseThresholds{Absolute: 0.1}, 15, 100, 10, 100, false},
	}
	for _, tt := range tests {
		if got := tt.t.Real(tt.differed, tt.compared, tt.noisy, tt.noiseN); got != tt.want {
			t.Errorf("%+v.Real(%d/%d vs %d/%d) = %v", tt.t, tt.differed, tt.compared, tt.noisy, tt.noiseN, got)
		}
	}
}
