package rules_test

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/theory/jsonpath"
)

// FuzzParse feeds the configuration loader any text: it must never panic,
// and it returns either a Set or Problems, never both or neither.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/design.yaml", "testdata/compare.yaml"} {
		src, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(compareBase + "      ignore: [\"$[\"]\n      unordered: [{path: $.a, by: id}, $.b]\n"))
	f.Add([]byte(compareBase + "      subset: true\n      tolerance: [{path: $.a, absolute: 1e-3}]\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		set, err := rules.Parse("fuzz.yaml", bytes.NewReader(src))
		if (set == nil) == (err == nil) {
			t.Fatalf("set %v, err %v", set != nil, err)
		}
		if err != nil && len(rules.AsProblems(err)) == 0 {
			t.Fatalf("an error without problems: %v", err)
		}
	})
}

// FuzzCompileRules compiles any JSONPath and regexp into rules and runs
// them on any document: never a panic; a compiled path selects what
// theory/jsonpath selects; a document matches itself under the rules.
func FuzzCompileRules(f *testing.F) {
	f.Add("$..id", `\d+`, []byte(`{"id":1,"a":[{"id":"2"}]}`))
	f.Add("$.a[?@.k == 'v'].b", `(?i)x`, []byte(`{"a":[{"k":"v","b":1},{"k":"w","b":2}]}`))
	f.Add("$[-1:0:-1]", `^$`, []byte(`[1,2,3]`))
	f.Add("$..*", `.*`, []byte(`{"a":{"b":[null,true,"x"]}}`))
	f.Fuzz(func(t *testing.T, path, pattern string, doc []byte) {
		p, err := rules.CompilePath(path)
		if err != nil {
			return
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(doc))
		dec.UseNumber()
		got, selErr := p.Select(doc)
		if selErr == nil && dec.Decode(&v) == nil {
			jp, err := jsonpath.Parse(path)
			if err != nil {
				t.Fatalf("compiled but does not parse: %v", err)
			}
			var want []string
			for _, n := range jp.SelectLocated(v) {
				want = append(want, n.Path.String())
			}
			slices.Sort(want)
			want = slices.Compact(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s selects %q, jsonpath %q", path, got, want)
			}
		}
		re, err := regexp.Compile(pattern)
		if err != nil || len(pattern) > rules.MaxPatternLength {
			re = nil
		}
		rs := []compare.Rule{
			{Kind: compare.RuleUnordered, Path: p, By: "id"},
			{Kind: compare.RuleTolerance, Path: p, Absolute: "0.5"},
			{Kind: compare.RuleNormalize, Path: p, Pattern: re, FoldCase: true},
			{Kind: compare.RuleCoerce, Path: p},
		}
		if len(p.Segments) > 0 { // rules refuses $ for these kinds
			rs = append(rs, compare.Rule{Kind: compare.RuleIgnore, Path: p},
				compare.Rule{Kind: compare.RuleAbsentEqualsNull, Path: p}, compare.Rule{Kind: compare.RuleSubset, Path: p})
		}
		o, err := compare.New(rs, compare.Limits{}, compare.NoiseThresholds{})
		if err != nil {
			t.Fatalf("compiled rules refused: %v", err)
		}
		r := o.Compare(answer(string(doc)), answer(strings.Clone(string(doc))))
		if r.Reason == compare.ReasonPanic || r.Reason == compare.ReasonInconsistent {
			t.Fatalf("%s: %s", r.Reason, r.Detail)
		}
		if selErr == nil && r.Outcome != compare.Match {
			t.Fatalf("a document does not match itself: %s %v", r.Outcome, r.Diffs)
		}
	})
}
