package compare_test

import (
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
)

// Deeply nested answers that differ at every level, compared under the
// rules a route compiles from YAML (max depth 128, 100 differences listed).
// Each level of an object document is
//
//	{"id":K,"a_pad":"xxx…","c":<next level>,"v":"a"}      old
//	{"id":K+1,"a_pad":"xxx…","c":<next level>,"v":"b"}    new
//
// and of an array document [K,"xxx…",<next>,"a"]; the pad keeps the body
// about the same size at every depth.
type deepShape struct {
	arrays bool
	sameID bool // only "v" differs
}

func deepDoc(depth, size int, sh deepShape, isNew bool) []byte {
	pad := max((size-depth*40)/depth, 1)
	padText := `"` + strings.Repeat("x", pad) + `"`
	v := `"a"`
	if isNew {
		v = `"b"`
	}
	var b strings.Builder
	var level func(k int)
	level = func(k int) {
		id := fmt.Sprint(1000000 + k)
		if isNew && !sh.sameID {
			id = fmt.Sprint(2000000 + k)
		}
		if sh.arrays {
			b.WriteString("[" + id + "," + padText)
			if k+1 < depth {
				b.WriteByte(',')
				level(k + 1)
			}
			b.WriteString("," + v + "]")
			return
		}
		b.WriteString(`{"id":` + id + `,"a_pad":` + padText)
		if k+1 < depth {
			b.WriteString(`,"c":`)
			level(k + 1)
		}
		b.WriteString(`,"v":` + v + "}")
	}
	level(0)
	return []byte(b.String())
}

// deepOptions compiles one route's compare section as the gateway does.
func deepOptions(tb testing.TB, compareYAML string) *compare.Options {
	tb.Helper()
	set, err := rules.Parse("cutover.yaml", strings.NewReader(`backends:
  old: {url: "http://127.0.0.1:8081"}
  new: {url: "http://127.0.0.1:8082"}
routes:
  - name: r
    match: {path: "/r"}
    compare:
`+compareYAML))
	if err != nil {
		tb.Fatal(err)
	}
	return set.Route("r").Compare
}

var deepCases = []struct {
	name  string
	shape deepShape
	rules string
}{
	{"exact, objects", deepShape{}, "      {}\n"},
	{"exact, arrays", deepShape{arrays: true}, "      {}\n"},
	{"exact, only the innermost member differs", deepShape{sameID: true}, "      {}\n"},
	{"ignore $..[0], arrays", deepShape{arrays: true}, "      ignore: [\"$..[0]\"]\n"},
	{"ignore $..id and a filter", deepShape{}, "      ignore: [\"$..id\", \"$..[?@.internal == true]\"]\n"},
	{"unordered $..*, arrays", deepShape{arrays: true}, "      unordered: [\"$..*\"]\n"},
	{"rename", deepShape{}, "      ignore: [\"$..id\"]\n      rename:\n        - {from: \"$.old_name\", to: new_name}\n"},
}

func deepResponse(body []byte) compare.Response {
	return compare.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
}

// Work grows with the answer, not with its size times its depth: four
// times the bytes and four times the levels cost at most about four times
// the allocations, counted (bytes and objects), which do not depend on the
// machine's speed. Before, go-cmp's path filter and transformer (depth²),
// the pruner walking each level's subtree again, filters decoding the
// subtree at every location and unordered arrays copying their children's
// encodings (size × depth) made one comparison of 256 KiB under a filter
// allocate 1.75 GB, and of 1 MiB under unordered $..* 12.9 GB: 0.1–2 s.
func TestDeepDocumentsCostWhatTheirSizeDoes(t *testing.T) {
	for _, c := range deepCases {
		t.Run(c.name, func(t *testing.T) {
			o := deepOptions(t, c.rules)
			cost := func(depth, size int) (bytes, objects float64) {
				old, nw := deepResponse(deepDoc(depth, size, c.shape, false)), deepResponse(deepDoc(depth, size, c.shape, true))
				if r := o.Compare(old, nw); r.Outcome != compare.Mismatch { // and warms the pools
					t.Fatalf("depth %d: %s %s %s", depth, r.Outcome, r.Reason, r.Detail)
				}
				// The least of several comparisons, each counted alone: a
				// comparison that finds the pool empty (after a collection,
				// or a Put that -race drops on purpose, one in four) builds
				// its session anew, and an average over a few of them
				// measured the pool more than the document.
				bytes, objects = math.Inf(1), math.Inf(1)
				var m0, m1 runtime.MemStats
				for range 8 {
					runtime.ReadMemStats(&m0)
					o.Compare(old, nw)
					runtime.ReadMemStats(&m1)
					bytes, objects = min(bytes, float64(m1.TotalAlloc-m0.TotalAlloc)), min(objects, float64(m1.Mallocs-m0.Mallocs))
				}
				return bytes, objects
			}
			b1, n1 := cost(32, 64<<10)
			b4, n4 := cost(128, 256<<10)
			t.Logf("per comparison: %.0f bytes and %.0f objects at 64 KiB and 32 levels, %.0f and %.0f at 256 KiB and 128 levels (%.1f×, %.1f×)", b1, n1, b4, n4, b4/b1, n4/n1)
			if b4 > 6*b1 || n4 > 6*n1 {
				t.Errorf("four times the size and depth cost %.1f× the bytes and %.1f× the objects: more than the size", b4/b1, n4/n1)
			}
		})
	}
}

// BenchmarkDeep: go test -run '^$' -bench BenchmarkDeep -benchtime 3x -benchmem ./compare/
func BenchmarkDeep(b *testing.B) {
	for _, c := range deepCases {
		o := deepOptions(b, c.rules)
		for _, depth := range []int{1, 32, 128} {
			old, nw := deepResponse(deepDoc(depth, 256<<10, c.shape, false)), deepResponse(deepDoc(depth, 256<<10, c.shape, true))
			b.Run(fmt.Sprintf("%s/256K/depth=%d", c.name, depth), func(b *testing.B) {
				b.SetBytes(int64(len(old.Body)))
				for b.Loop() {
					o.Compare(old, nw)
				}
			})
		}
	}
}
