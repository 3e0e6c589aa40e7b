package compare

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The speed contract: comparing two equal documents under a
// realistic rule set costs at most 3× one encoding/json decode of one of
// them, and at least 20× less than decoding both and calling cmp.Equal.
// `go test -run TestSpeedRatios -ratios ./compare/` measures all three in
// one run and prints the ratios.

var ratios = flag.Bool("ratios", false, "measure and check the speed ratios (at most 3× a decode, at least 20× faster than decode + cmp.Equal)")

// realisticRules are what a migration of a list API typically needs.
func realisticRules() *Options {
	return mustNew(
		Rule{Kind: RuleIgnore, Path: testPath("$.meta.request_id"), Origin: "defaults"},
		Rule{Kind: RuleIgnore, Path: testPath("$..updated_at"), Origin: "defaults"},
		Rule{Kind: RuleIgnoreHeader, Header: "Date", Origin: "defaults"},
		Rule{Kind: RuleCompareHeader, Header: "Content-Type", Origin: "defaults"},
		Rule{Kind: RuleUnordered, Path: testPath("$..tags"), Origin: "route"},
		Rule{Kind: RuleUnordered, Path: testPath("$.data"), By: "id", Origin: "route"},
		Rule{Kind: RuleTolerance, Path: testPath("$..price"), Absolute: "0.01", Origin: "route"},
		Rule{Kind: RuleNormalize, Path: testPath("$..created_at"), Pattern: regexp.MustCompile(`\.\d+Z$`), Replace: "Z", Origin: "route"},
		Rule{Kind: RuleNormalize, Path: testPath("$..email"), FoldCase: true, Origin: "route"},
	)
}

// listDoc generates a list answer of about size bytes. variant changes
// what a second backend would: the request id and update times (ignored),
// member order and tag order (irrelevant under the rules); diff changes
// one item's name.
func listDoc(size int, variant, diff bool) []byte {
	r := rand.New(rand.NewPCG(uint64(size), 7))
	var b strings.Builder
	reqID := "3f2a9c1e-8d4b-4c2e-9f1a-7b6d5e4c3b2a"
	if variant {
		reqID = "9b8a7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
	}
	fmt.Fprintf(&b, `{"meta":{"request_id":%q,"page":1,"per_page":50},"data":[`, reqID)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		name := fmt.Sprintf("Customer %d", r.IntN(100000))
		if diff && i == 1 {
			name += "!"
		}
		updated := fmt.Sprintf("2024-05-%02dT10:%02d:00Z", 1+i%28, r.IntN(60))
		if variant {
			updated = "2024-06-01T00:00:00Z"
		}
		tags := []string{"gold", "eu", "newsletter"}
		if variant {
			tags[0], tags[2] = tags[2], tags[0]
		}
		fields := []string{
			fmt.Sprintf(`"id":%d`, 1000+i),
			fmt.Sprintf(`"name":%q`, name),
			fmt.Sprintf(`"email":"customer%d@example.com"`, i),
			fmt.Sprintf(`"price":%d.%02d`, r.IntN(500), r.IntN(100)),
			fmt.Sprintf(`"created_at":"2023-01-%02dT08:00:00Z"`, 1+i%28),
			fmt.Sprintf(`"updated_at":%q`, updated),
			fmt.Sprintf(`"active":%v`, i%3 != 0),
			fmt.Sprintf(`"tags":["%s","%s","%s"]`, tags[0], tags[1], tags[2]),
			fmt.Sprintf(`"address":{"street":"%d Main St","city":"Springfield","zip":"%05d"}`, r.IntN(999), r.IntN(99999)),
		}
		if variant {
			fields[1], fields[3] = fields[3], fields[1]
		}
		b.WriteString("{" + strings.Join(fields, ",") + "}")
	}
	b.WriteString("]}")
	return []byte(b.String())
}

var sizes = []struct {
	name string
	n    int
}{{"1KB", 1 << 10}, {"16KB", 16 << 10}, {"256KB", 256 << 10}}

type pair struct{ name, a, b string }

func pairs(n int) []pair {
	a := string(listDoc(n, false, false))
	return []pair{
		{"identical", a, a},
		{"equivalent", a, string(listDoc(n, true, false))},
		{"one-diff", a, string(listDoc(n, true, true))},
	}
}

func response(body string) Response {
	return Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "Date": {"now"}}, Body: []byte(body)}
}

func BenchmarkCompare(b *testing.B) {
	o := realisticRules()
	for _, s := range sizes {
		for _, p := range pairs(s.n) {
			b.Run(s.name+"/"+p.name, func(b *testing.B) {
				benchCompare(b, o, p)
			})
		}
	}
}

func benchCompare(b *testing.B, o *Options, p pair) {
	old, new := response(p.a), response(p.b)
	want := Match
	if p.name == "one-diff" {
		want = Mismatch
	}
	if r := o.Compare(old, new); r.Outcome != want {
		b.Fatalf("%s: %s %s %v", p.name, r.Outcome, r.Reason, r.Diffs)
	}
	b.SetBytes(int64(len(p.a) + len(p.b)))
	b.ReportAllocs()
	for b.Loop() {
		o.Compare(old, new)
	}
}

// BenchmarkDecode is the yardstick: encoding/json into any, one document.
func BenchmarkDecode(b *testing.B) {
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) { benchDecode(b, listDoc(s.n, false, false)) })
	}
}

func benchDecode(b *testing.B, doc []byte) {
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := json.Unmarshal(doc, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeCmpEqual is the naive engine: decode both, cmp.Equal.
func BenchmarkDecodeCmpEqual(b *testing.B) {
	for _, s := range sizes {
		p := pairs(s.n)[1]
		b.Run(s.name, func(b *testing.B) { benchDecodeCmp(b, p) })
	}
}

func benchDecodeCmp(b *testing.B, p pair) {
	b.SetBytes(int64(len(p.a) + len(p.b)))
	b.ReportAllocs()
	for b.Loop() {
		var x, y any
		json.Unmarshal([]byte(p.a), &x)
		json.Unmarshal([]byte(p.b), &y)
		cmp.Equal(x, y)
	}
}

// TestSpeedRatios measures, in one run, the comparison of equal documents
// against the two yardsticks and checks the contract.
func TestSpeedRatios(t *testing.T) {
	if !*ratios {
		t.Skip("run with -ratios")
	}
	if raceEnabled {
		t.Skip("timings under -race mean nothing")
	}
	o := realisticRules()
	t.Logf("%-6s %-10s %12s %10s %9s %12s %12s", "size", "pair", "ns/op", "MB/s", "allocs", "÷decode", "naive÷this")
	for _, s := range sizes {
		ps := pairs(s.n)
		dec := testing.Benchmark(func(b *testing.B) { benchDecode(b, []byte(ps[0].a)) })
		naive := testing.Benchmark(func(b *testing.B) { benchDecodeCmp(b, ps[1]) })
		for _, p := range ps {
			r := testing.Benchmark(func(b *testing.B) { benchCompare(b, o, p) })
			perDecode := float64(r.NsPerOp()) / float64(dec.NsPerOp())
			speedup := float64(naive.NsPerOp()) / float64(r.NsPerOp())
			mbs := float64(r.Bytes) * float64(r.N) / r.T.Seconds() / 1e6
			t.Logf("%-6s %-10s %12d %10.1f %9d %11.2f× %11.1f×", s.name, p.name, r.NsPerOp(), mbs, r.AllocsPerOp(), perDecode, speedup)
			if p.name != "one-diff" && (perDecode > 3 || speedup < 20) {
				t.Errorf("%s %s: %.2f× a decode (want ≤ 3), %.1f× faster than decode+cmp.Equal (want ≥ 20)", s.name, p.name, perDecode, speedup)
			}
		}
		t.Logf("%-6s %-10s %12d  (encoding/json into any, one document)", s.name, "decode", dec.NsPerOp())
		t.Logf("%-6s %-10s %12d  (decode both + cmp.Equal)", s.name, "naive", naive.NsPerOp())
	}
}

// BenchmarkValidateEscapedNames: one object of 5,000 members whose names
// are escaped, as Python's json.dumps writes non-ASCII names. The check
// for duplicate names once compared every pair.
func BenchmarkValidateEscapedNames(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 5000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"\u00e9l\u00e8ve-%d":%d`, i, i)
	}
	sb.WriteString("}")
	doc := []byte(sb.String())
	r := jsonResponse(sb.String())
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		if res := (*Options)(nil).Compare(r, r); res.Outcome != Match {
			b.Fatalf("%s %s", res.Outcome, res.Detail)
		}
	}
}

// BenchmarkValidate: checking one 16 KB answer, which is all two identical
// answers need, with the fast check (valid) and with the scan it answers
// for (scan, which still finds the reason when valid says no). "records"
// is what `cutover bench` serves: small records, a space after each colon
// and comma.
func BenchmarkValidate(b *testing.B) {
	var records strings.Builder
	records.WriteString(`{"meta": {"page": 1, "total": 9007199254740993}, "items": [`)
	for i := 0; records.Len() < 16<<10-120; i++ {
		if i > 0 {
			records.WriteString(", ")
		}
		fmt.Fprintf(&records, `{"id": %d, "name": "item-%05d", "price": %d.%02d, "tags": ["a", "b"], "active": %t}`, i, i, i*7%1000, i%100, i%2 == 0)
	}
	records.WriteString(`], "next": null}`)
	for _, doc := range []struct {
		name string
		src  []byte
	}{{"records", []byte(records.String())}, {"list", listDoc(16<<10, false, false)}} {
		for _, check := range []struct {
			name string
			ok   func(*document, []byte) bool
		}{
			{"valid", func(d *document, src []byte) bool { return d.valid(src, DefaultMaxDepth) }},
			{"scan", func(d *document, src []byte) bool { return d.scan(src, DefaultMaxDepth, false) == nil }},
		} {
			b.Run(doc.name+"/"+check.name, func(b *testing.B) {
				var d document
				b.ReportAllocs()
				b.SetBytes(int64(len(doc.src)))
				for b.Loop() {
					if !check.ok(&d, doc.src) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}
