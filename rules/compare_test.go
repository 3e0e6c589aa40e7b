package rules_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/theory/jsonpath"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
)

func answer(body string, header ...string) compare.Response {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return compare.Response{Status: 200, Header: h, Body: []byte(body)}
}

// TestCompareFromYAML runs every rule kind from YAML to a verdict.
func TestCompareFromYAML(t *testing.T) {
	set, err := rules.LoadFile("testdata/compare.yaml")
	if err != nil {
		t.Fatal(err)
	}
	users, legacy, items := set.Route("users").Compare, set.Route("legacy").Compare, set.Route("items").Compare
	tests := []struct {
		name     string
		o        *compare.Options
		old, new compare.Response
		want     compare.Outcome
	}{
		{"defaults ignore", users, answer(`{"meta":{"request_id":"a"},"updated_at":1}`), answer(`{"meta":{"request_id":"b"},"updated_at":2}`), compare.Match},
		{"defaults ignore headers", users, answer(`{}`, "Date", "a"), answer(`{}`, "Date", "b"), compare.Match},
		{"defaults compare headers", users, answer(`{}`, "Content-Type", "application/json"), answer(`{}`, "Content-Type", "application/json; charset=utf-8"), compare.Mismatch},
		{"unordered", users, answer(`{"roles":["a","b"]}`), answer(`{"roles":["b","a"]}`), compare.Match},
		{"unordered by", users, answer(`{"addresses":[{"kind":"home","c":1},{"kind":"work","c":2}]}`), answer(`{"addresses":[{"kind":"work","c":2},{"kind":"home","c":1}]}`), compare.Match},
		{"tolerance absolute", users, answer(`{"a":{"balance":10.00}}`), answer(`{"a":{"balance":10.01}}`), compare.Match},
		{"tolerance absolute beyond", users, answer(`{"a":{"balance":10.00}}`), answer(`{"a":{"balance":10.02}}`), compare.Mismatch},
		{"tolerance relative", users, answer(`{"score":1000}`), answer(`{"score":1001}`), compare.Match},
		{"normalize pattern", users, answer(`{"x":{"created_at":"2024-01-01T00:00:00.123456Z"}}`), answer(`{"x":{"created_at":"2024-01-01T00:00:00Z"}}`), compare.Match},
		{"normalize case", users, answer(`{"email":"Ann@Example.com"}`), answer(`{"email":"ann@example.com"}`), compare.Match},
		{"coerce", users, answer(`{"id":42}`), answer(`{"id":"42"}`), compare.Match},
		{"rename in place", users, answer(`{"user_name":"ann"}`), answer(`{"name":"ann"}`), compare.Match},
		{"rename move", users, answer(`{"zip":"0150"}`), answer(`{"address":{"zip":"0150"}}`), compare.Match},
		{"absent equals null", users, answer(`{"nickname":null}`), answer(`{}`), compare.Match},
		{"absent equals empty array", users, answer(`{}`), answer(`{"tags":[]}`), compare.Match},
		{"absent equals empty array only there", users, answer(`{}`), answer(`{"other":[]}`), compare.Mismatch},
		{"absent equals empty object", users, answer(`{"prefs":{}}`), answer(`{}`), compare.Match},
		{"subset", users, answer(`{"links":{"self":"/u/1"}}`), answer(`{"links":{"self":"/u/1","next":"/u/2"}}`), compare.Match},
		{"subset only there", users, answer(`{}`), answer(`{"extra":1}`), compare.Mismatch},
		{"inherit false drops defaults", legacy, answer(`{"updated_at":1,"debug":1}`), answer(`{"updated_at":2,"debug":2}`), compare.Mismatch},
		{"inherit false keeps its own", legacy, answer(`{"debug":1}`), answer(`{"debug":2}`), compare.Match},
		{"filter", items, answer(`{"items":[{"internal":true,"v":1},{"v":2}]}`), answer(`{"items":[{"internal":true,"v":9},{"v":2}]}`), compare.Match},
		{"filter leaves the rest", items, answer(`{"items":[{"internal":false,"v":1}]}`), answer(`{"items":[{"internal":false,"v":9}]}`), compare.Mismatch},
		{"unmatched requests follow the defaults", set.Default.Compare, answer(`{"updated_at":1}`), answer(`{"updated_at":2}`), compare.Match},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.o.Compare(tt.old, tt.new)
			if r.Outcome != tt.want {
				t.Errorf("%s %s, want %s: %+v", r.Outcome, r.Reason, tt.want, r.Diffs)
			}
		})
	}
	if got := users.Noise(); got.Relative != 0.5 || got.Absolute != 0.001 {
		t.Errorf("noise thresholds = %+v", got)
	}
}

// TestRuleDescriptions: a route's rules start with the defaults', in file
// order, and name where they come from; hits refer to them by index.
func TestRuleDescriptions(t *testing.T) {
	set, err := rules.LoadFile("testdata/compare.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range set.Route("users").Compare.Rules() {
		got = append(got, r.String())
	}
	// The route's first: a route's rule wins where a default's of the same
	// kind reaches the same place.
	want := []string{
		"route: unordered $.roles",
		"route: unordered $.addresses by kind",
		"route: tolerance $..balance absolute 0.01",
		"route: tolerance $.score relative 0.001",
		`route: normalize $..created_at \.\d+Z$ => "Z"`,
		"route: normalize $.email fold_case",
		"route: coerce $.id",
		"route: rename $.user_name to name",
		"route: rename $.zip to $.address.zip",
		"route: absent_equals_null everywhere",
		"route: absent_equals_empty_array $.tags",
		"route: absent_equals_empty_object $.prefs",
		"route: subset $.links.*",
		"defaults: ignore $.meta.request_id",
		"defaults: ignore $..updated_at",
		"defaults: ignore_headers Date",
		"defaults: ignore_headers X-Request-Id",
		"defaults: compare_headers Content-Type",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r := set.Route("users").Compare.Compare(answer(`{"updated_at":1,"roles":["a","b"]}`), answer(`{"updated_at":2,"roles":["b","a"]}`))
	if r.Outcome != compare.Match || len(r.Hits) != 2 || r.Hits[0] != (compare.Hit{Rule: 0, Count: 1}) || r.Hits[1] != (compare.Hit{Rule: 14, Count: 1}) {
		t.Errorf("result %+v: want hits for rules 0 (unordered) and 14 ($..updated_at)", r)
	}
}

const compareBase = "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\nroutes:\n  - name: r\n    match: {path: /r}\n    compare:\n"

// A tolerance bound in quotes is taken as the number it holds, as before
// 2026-11-25 (check --print wrote bounds so), and told as a warning at its
// place; the rule compares as the unquoted one does.
func TestAQuotedToleranceBoundIsTakenAndTold(t *testing.T) {
	quoted, err := rules.Parse("cfg.yaml", strings.NewReader(compareBase+"      tolerance:\n        - {path: $.a, absolute: \"0.01\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := `cfg.yaml:9:33: absolute "0.01" is a string; it is taken as the number it holds, which a later version will refuse (write the number without quotes, like absolute: 0.01)`
	if len(quoted.Warnings) != 1 || quoted.Warnings[0].Error() != want {
		t.Errorf("warnings %v, want one: %s", quoted.Warnings, want)
	}
	plain, err := rules.Parse("cfg.yaml", strings.NewReader(compareBase+"      tolerance:\n        - {path: $.a, absolute: 0.01}\n"))
	if err != nil || len(plain.Warnings) != 0 {
		t.Fatalf("unquoted: %v, warnings %v", err, plain.Warnings)
	}
	for _, pair := range [][2]string{{`{"a":1.00}`, `{"a":1.01}`}, {`{"a":1.00}`, `{"a":1.02}`}} {
		old := compare.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(pair[0])}
		new := compare.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(pair[1])}
		q, p := quoted.Routes[0].Compare.Compare(old, new), plain.Routes[0].Compare.Compare(old, new)
		if q.Outcome != p.Outcome {
			t.Errorf("%s vs %s: quoted %s, unquoted %s", pair[0], pair[1], q.Outcome, p.Outcome)
		}
	}
}

// TestCompareProblems: every bad rule is reported at its line and column,
// with a hint.
func TestCompareProblems(t *testing.T) {
	long := strings.Repeat("a", 1200)
	tests := []struct{ name, yaml, want string }{
		{"bad JSONPath", "      ignore: [\"$.a[\"]\n", `cfg.yaml:8:16: bad JSONPath "$.a[": unexpected eof at position 5 (JSONPath is RFC 9535`},
		{"not a JSONPath", "      ignore: [a.b]\n", `cfg.yaml:8:16: bad JSONPath "a.b"`},
		{"ignore everything", "      ignore: [\"$\"]\n", `cfg.yaml:8:16: ignoring $ ignores the whole document: every answer would match`},
		{"ignore every member", "      ignore: [\"$..*\"]\n", `cfg.yaml:8:16: ignoring $..* ignores the whole document`},
		{"ignore every child by a filter", "      ignore: [\"$[?@]\"]\n", `cfg.yaml:8:16: ignoring $[?@] ignores the whole document`},
		{"ignore every descendant by a filter", "      ignore: [\"$..[?(@)]\"]\n", `cfg.yaml:8:16: ignoring $..[?(@)] ignores the whole document`},
		{"ignore every element", "      ignore: [\"$[:]\"]\n", `cfg.yaml:8:16: ignoring $[:] ignores the whole document`},
		{"ignore every element backwards", "      ignore: [\"$[::-1]\"]\n", `cfg.yaml:8:16: ignoring $[::-1] ignores the whole document`},
		{"ignore every element backwards from the last", "      ignore: [\"$[-1::-1]\"]\n", `cfg.yaml:8:16: ignoring $[-1::-1] ignores the whole document`},
		{"ignore every element from the first", "      ignore: [\"$[0:]\"]\n", `cfg.yaml:8:16: ignoring $[0:] ignores the whole document`},
		{"empty path", "      coerce: [\"\"]\n", `cfg.yaml:8:16: empty JSONPath`},
		{"bad regexp", "      normalize:\n        - {path: $.a, pattern: 'a(b', replace: x}\n", "cfg.yaml:9:32: bad pattern \"a(b\": missing closing ): \"a(b\""},
		{"long regexp", "      normalize:\n        - {path: $.a, pattern: '" + long + "'}\n", "pattern \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…\"… is longer than 1000 bytes"},
		{"normalize nothing", "      normalize:\n        - {path: $.a}\n", "cfg.yaml:9:11: normalize does nothing (write pattern: and replace:, or fold_case: true)"},
		{"replace alone", "      normalize:\n        - {path: $.a, replace: x}\n", "cfg.yaml:9:32: replace without a pattern"},
		{"negative tolerance", "      tolerance:\n        - {path: $.a, absolute: -1}\n", `cfg.yaml:9:33: absolute "-1" is not a non-negative number`},
		{"tolerance text", "      tolerance:\n        - {path: $.a, relative: lots}\n", `cfg.yaml:9:33: relative "lots" is not a non-negative number`},
		{"tolerance switch", "      tolerance:\n        - {path: $.a, relative: true}\n", `cfg.yaml:9:33: relative "true" is not a non-negative number`},
		{"tolerance quoted, not a number", "      tolerance:\n        - {path: $.a, absolute: \"-0.01\"}\n", `cfg.yaml:9:33: absolute "-0.01" is not a non-negative number`},
		{"tolerance without bound", "      tolerance:\n        - {path: $.a}\n", "cfg.yaml:9:11: tolerance has no bound"},
		{"unordered typo", "      unordered:\n        - {path: $.a, bye: id}\n", `cfg.yaml:9:23: unknown field "bye"`},
		{"rename to nowhere", "      rename:\n        - {from: $.a}\n", "cfg.yaml:9:11: rename has no to"},
		{"rename from an index", "      rename:\n        - {from: \"$.a[0]\", to: b}\n", `cfg.yaml:9:18: $.a[0] does not select members by name`},
		{"rename to many places", "      rename:\n        - {from: $.a, to: \"$..b\"}\n", `cfg.yaml:9:27: $..b is not a single place`},
		{"rename into itself", "      rename:\n        - {from: $.a, to: $.a.z}\n", `cfg.yaml:9:27: $.a.z lies inside $.a, which it moves`},
		{"rename onto itself", "      rename:\n        - {from: \"$.items[*].a\", to: \"$.items[0].a\"}\n", `$.items[0].a lies inside $.items[*].a, which it moves`},
		{"rename into a descendant", "      rename:\n        - {from: \"$..a\", to: \"$.b.a.c\"}\n", `$.b.a.c lies inside $..a, which it moves`},
		{"rename into a slice", "      rename:\n        - {from: \"$.items[0:4].a\", to: \"$.items[2].a.b\"}\n", `$.items[2].a.b lies inside $.items[0:4].a, which it moves`},
		{"bad header", "      ignore_headers: [\"Bad Header\"]\n", `cfg.yaml:8:24: "Bad Header" is not a header name`},
		{"star only compares", "      ignore_headers: [\"*\"]\n", `cfg.yaml:8:24: ignore_headers cannot name "*"`},
		{"scope is not a path", "      subset: [\"$\"]\n", "cfg.yaml:8:16: $ selects the whole document, not members"},
		{"scope type", "      subset: {a: 1}\n", "cfg.yaml:8:"},
		{"noise", "      noise: {absolute: 2}\n", "cfg.yaml:8:25: absolute 2 is not a share"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rules.Parse("cfg.yaml", strings.NewReader(compareBase+tt.yaml))
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

// Ignoring every child of the root, however written ($.*, $[?@], $[:]), is
// refused: every answer would match. What selects some children is not.
func TestIgnoringSomeChildrenOfTheRootIsAccepted(t *testing.T) {
	for _, p := range []string{"$[1:]", "$[:-1]", "$[::2]", "$[0]", "$[?@.internal]", "$[?@ == 1]", "$.a[:]", "$.a[?@]",
		"$[:1048576]", "$[-1048577:]", "$[-2::-1]", "$[::-1][0]", "$[5:]", "$[:0]", "$[::-2]"} {
		if _, err := rules.Parse("cfg.yaml", strings.NewReader(compareBase+"      ignore: [\""+p+"\"]\n")); err != nil {
			t.Errorf("ignore %s: %v", p, err)
		}
	}
}

func TestDefaultsProblemsReportedOnce(t *testing.T) {
	src := "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\ndefaults:\n  compare:\n    ignore: [\"$[\"]\n" +
		"routes:\n  - name: a\n    match: {path: /a}\n  - name: b\n    match: {path: /b}\n"
	_, err := rules.Parse("cfg.yaml", strings.NewReader(src))
	if ps := rules.AsProblems(err); len(ps) != 1 || ps[0].Line != 6 {
		t.Errorf("want one problem on line 6, got:\n%v", err)
	}
	src = "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\ndefaults:\n  compare:\n    inherit: false\n"
	if _, err := rules.Parse("cfg.yaml", strings.NewReader(src)); err == nil || !strings.Contains(err.Error(), "cfg.yaml:6:14: the defaults have nothing to inherit from") {
		t.Errorf("inherit in defaults: %v", err)
	}
}

// TestCompiledPathsSelectLikeJSONPath holds the compare package's matcher
// to theory/jsonpath: a compiled path selects exactly the nodes that
// SelectLocated finds, but for numbers a float64 cannot hold exactly,
// which no filter selects by comparing them (9007199254740993 > 1 is not
// taken, as 9007199254740993 == 9007199254740992 would be).
func TestCompiledPathsSelectLikeJSONPath(t *testing.T) {
	docs := []string{
		`{"a":{"b":1,"c":[2,3,{"b":4}]},"id":5,"x":[{"id":6,"k":"v","n":1},{"id":7,"k":"w","n":9007199254740993}],"e":[],"o":{}}`,
		`[{"a":1},{"a":[1,{"a":2}]},"a",null,true]`,
		`{"o'k":{"\u00e9":[[0,[1]]]},"":{"":1}}`,
	}
	paths := []string{
		"$", "$.a.b", "$..b", "$..id", "$.x[-1]", "$.x[0:3:2]", "$.x[::-1].id", "$[1:]", "$[-2:]", "$.x[?@.k == 'v']",
		"$..[?@.a]", "$['a','id']", "$.a.c[*]", "$..*", "$.*", "$[0].a", "$..a[1].a", "$.x[?@.n > 1]", "$.x[?length(@.k) == 1].id",
		"$.x[?@.id == $.id]", "$..c[?@ == 3]", "$.e[*]", "$.o.*", "$.nothing", "$..[0]", "$..[-1]", "$[\"o'k\"]..*", "$['']['']",
		"$..[?match(@, '[a-z]')]", "$.a..b", "$..c..b", "$[*][*]", "$..[1:][0]",
	}
	for _, doc := range docs {
		var v any
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		v = uncomparable(v)
		for _, text := range paths {
			jp, err := jsonpath.Parse(text)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, n := range jp.SelectLocated(v) {
				want = append(want, n.Path.String())
			}
			p, err := rules.CompilePath(text)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Select([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(want)
			want = slices.Compact(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s on %s:\nselects %q\njsonpath %q", text, doc, got, want)
			}
		}
	}
}

// uncomparable gives theory/jsonpath the numbers a float64 cannot hold
// exactly as a type it compares with no number, as the compare package does.
func uncomparable(v any) any {
	type bigNumber string
	switch x := v.(type) {
	case json.Number:
		if !compare.FloatExact([]byte(x)) {
			return bigNumber(x)
		}
	case []any:
		for i := range x {
			x[i] = uncomparable(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = uncomparable(x[k])
		}
	}
	return v
}

// Renames whose destination lies outside what they move are taken, however
// the source selects: by descendant, by slice.
func TestRenamesOutsideWhatTheyMoveAreTaken(t *testing.T) {
	for _, rn := range []string{
		`{from: "$..legacy_id", to: "$.id"}`,
		`{from: "$.items[0:2].a", to: "$.items[5].a"}`,
		`{from: "$.a", to: "$.b.a"}`,
		`{from: "$.a.b", to: "$.a"}`,
	} {
		if _, err := rules.Parse("cfg.yaml", strings.NewReader(compareBase+"      rename:\n        - "+rn+"\n")); err != nil {
			t.Errorf("rename %s: %v", rn, err)
		}
	}
}

// A filter compares numbers as 64-bit floats: a number it would take for
// its neighbours is refused in the filter's text, and in the answers it is
// selected by no comparison with a number but !=, and compared with
// another such number by value, so an ignore rule never hides the
// difference of an element it does not name.
func TestFiltersNeverTakeOneBigNumberForAnother(t *testing.T) {
	for _, text := range []string{"$.items[?@.id == 9007199254740993]", "$.items[?@.id > 12345678901234567]", "$[?@.n == 0.1234567890123456789]"} {
		if _, err := rules.CompilePath(text); err == nil || !strings.Contains(err.Error(), "15 significant digits") {
			t.Errorf("%s: %v, want it refused", text, err)
		}
	}
	for _, text := range []string{"$.items[?@.id == 900719925474099]", "$.a1[?@.x2 == 1e300]", "$['9007199254740993']", "$.x[?@.s == '9007199254740993']", "$[?@.p == -0.25]"} {
		if _, err := rules.CompilePath(text); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
	set := parsed(t, "routes:\n  - name: r\n    match: {path: \"/r\"}\n    compare:\n      ignore: [\"$.items[?@.id == $.target]\", \"$.more[?@.id > 5]\", \"$.bills[?@.billed != @.paid]\"]\n")
	for _, tc := range []struct{ old, new string }{
		// The item's id is 9007199254740992, the target ...993: one float64.
		{`{"target":9007199254740993,"items":[{"id":9007199254740992,"x":1}]}`, `{"target":9007199254740993,"items":[{"id":9007199254740992,"x":2}]}`},
		// -1e400 is no float64 at all.
		{`{"more":[{"id":-1e400,"x":1}]}`, `{"more":[{"id":-1e400,"x":2}]}`},
		// Billed and paid are one number, written two ways: != does not
		// select the bill (it compared their text).
		{`{"bills":[{"billed":9007199254740993,"paid":9007199254740993.0,"x":1}]}`, `{"bills":[{"billed":9007199254740993,"paid":9007199254740993.0,"x":2}]}`},
		{`{"bills":[{"billed":1e400,"paid":10e399,"x":1}]}`, `{"bills":[{"billed":1e400,"paid":10e399,"x":2}]}`},
	} {
		res := set.Route("r").Compare.Compare(compare.Response{Status: 200, Body: []byte(tc.old)}, compare.Response{Status: 200, Body: []byte(tc.new)})
		if res.Outcome != compare.Mismatch || len(res.Diffs) != 1 || !strings.HasSuffix(res.Diffs[0].Path, "['x']") {
			t.Errorf("%s → %s: %s %+v, want the x that no rule names as a difference", tc.old, tc.new, res.Outcome, res.Diffs)
		}
	}
	// A number a filter compares exactly is still selected.
	res := set.Route("r").Compare.Compare(compare.Response{Status: 200, Body: []byte(`{"more":[{"id":6,"x":1}]}`)}, compare.Response{Status: 200, Body: []byte(`{"more":[{"id":6,"x":2}]}`)})
	if res.Outcome != compare.Match {
		t.Errorf("id 6 > 5: %s %+v, want the ignore to apply", res.Outcome, res.Diffs)
	}
}

// A rename's filter compares such numbers by value too: with a equal to b
// written two ways, x is not renamed, and new's y is a difference. The
// rename walk fed filters the numbers as written.
func TestARenamesFilterComparesBigNumbersByValue(t *testing.T) {
	set := parsed(t, "defaults:\n  compare:\n    rename: [{from: \"$.items[?@.a != @.b].x\", to: y}]\n")
	checkVerdicts(t, set, []verdictCase{
		{"", `{"items":[{"a":1e400,"b":10e399,"x":5}]}`, `{"items":[{"a":1e400,"b":10e399,"y":5}]}`, compare.Mismatch},
		{"", `{"items":[{"a":9007199254740993,"b":9007199254740993.0,"x":5}]}`, `{"items":[{"a":9007199254740993,"b":9007199254740993.0,"y":5}]}`, compare.Mismatch},
		{"", `{"items":[{"a":1e400,"b":2e400,"x":5}]}`, `{"items":[{"a":1e400,"b":2e400,"y":5}]}`, compare.Match},
		{"", `{"items":[{"a":1,"b":2,"x":5}]}`, `{"items":[{"a":1,"b":2,"y":5}]}`, compare.Match},
	})
}

// Where a route's rule and a default's of the same kind reach one place,
// the route's applies (it refines the defaults); within one section, the
// first in the file. Defaults came first, so a route could not loosen a
// default tolerance or key an array the defaults made a multiset.
func TestARouteRuleWinsOverTheDefaults(t *testing.T) {
	set := parsed(t, "defaults:\n  compare:\n    tolerance: [{path: \"$..price\", absolute: 0.01}]\n    unordered: [\"$..items\"]\n"+
		"routes:\n  - name: r\n    match: {path: \"/r\"}\n    compare:\n      tolerance: [{path: \"$.price\", absolute: 1}]\n      unordered: [{path: \"$.items\", by: id}]\n")
	res := set.Route("r").Compare.Compare(
		compare.Response{Status: 200, Body: []byte(`{"price":10,"items":[{"id":1,"q":1},{"id":2,"q":2}]}`)},
		compare.Response{Status: 200, Body: []byte(`{"price":10.5,"items":[{"id":2,"q":2},{"id":1,"q":5}]}`)})
	if res.Outcome != compare.Mismatch || len(res.Diffs) != 1 || res.Diffs[0].Path != "$['items'][0]['q']" {
		t.Errorf("%s %+v: want the price within the route's tolerance, and the items matched by id: one difference, at $['items'][0]['q']", res.Outcome, res.Diffs)
	}
}

// normalize is one of those kinds: where a route's normalize rules reach a
// place, the defaults' do not apply there, so a route can make a default
// normalization narrower, not only looser; several rules of one section on
// one place still apply in order. The defaults' rule used to be applied
// after the route's, and "AB-1" and "ab-9" matched on a route that folds
// case only.
func TestARoutesNormalizeReplacesTheDefaults(t *testing.T) {
	set := parsed(t, "defaults:\n  compare:\n    normalize: [{path: \"$..code\", pattern: \"[0-9]\", replace: \"\"}]\n"+
		"routes:\n  - name: r\n    match: {path: \"/r\"}\n    compare:\n      normalize: [{path: \"$.code\", fold_case: true}, {path: \"$.code\", pattern: \"^x-\", replace: \"\"}]\n")
	checkVerdicts(t, set, []verdictCase{
		{"r", `{"code":"AB-1"}`, `{"code":"ab-9"}`, compare.Mismatch},          // the route's rules only: digits count
		{"r", `{"code":"X-AB-1"}`, `{"code":"ab-1"}`, compare.Match},           // both of the route's, in order
		{"r", `{"n":{"code":"AB-1"}}`, `{"n":{"code":"AB-9"}}`, compare.Match}, // elsewhere the defaults' applies
	})
}

// subset and absent_equals_* take true or paths; false, written in a
// route, turns the defaults' rules of that kind off for the route (the
// other kinds are lists: a route adds to them). It used to do nothing,
// and a route that said subset: false still let new add members.
func TestFalseInARouteTurnsTheDefaultsOff(t *testing.T) {
	set := parsed(t, "defaults:\n  compare:\n    subset: true\n    absent_equals_null: true\n    absent_equals_empty_array: [\"$.tags\"]\n    absent_equals_empty_object: true\n"+
		"routes:\n  - name: strict\n    match: {path: \"/strict\"}\n    compare:\n      subset: false\n      absent_equals_null: false\n      absent_equals_empty_array: false\n      absent_equals_empty_object: false\n"+
		"  - name: loose\n    match: {path: \"/loose\"}\n    compare:\n      subset: false\n"+
		"  - name: inheriting\n    match: {path: \"/inheriting\"}\n")
	checkVerdicts(t, set, []verdictCase{
		{"strict", `{}`, `{"debug":"leak"}`, compare.Mismatch},
		{"strict", `{"a":null}`, `{}`, compare.Mismatch},
		{"strict", `{"tags":[]}`, `{}`, compare.Mismatch},
		{"strict", `{"o":{}}`, `{}`, compare.Mismatch},
		{"loose", `{}`, `{"debug":"leak"}`, compare.Mismatch},
		{"loose", `{"a":null,"tags":[],"o":{}}`, `{}`, compare.Match}, // only subset is off
		{"inheriting", `{"a":null,"tags":[],"o":{}}`, `{"debug":"leak"}`, compare.Match},
	})
}

// An unordered array keyed by a member pairs an element whose key the
// rules let be absent (null under absent_equals_null) with one that has no
// key, as the two elements are equal; it paired them by the null.
func TestAKeyTheRulesLetBeAbsentPairsWithNoKey(t *testing.T) {
	set := parsed(t, "defaults:\n  compare:\n    absent_equals_null: true\n    unordered: [{path: \"$.items\", by: id}]\n")
	checkVerdicts(t, set, []verdictCase{
		{"", `{"items":[{"id":null,"q":1}]}`, `{"items":[{"q":1}]}`, compare.Match},
		{"", `{"items":[{"id":2,"q":2},{"id":null,"q":1}]}`, `{"items":[{"q":1},{"id":2,"q":2}]}`, compare.Match},
		{"", `{"items":[{"id":null,"q":1}]}`, `{"items":[{"q":2}]}`, compare.Mismatch},
	})
}

// verdictCase is two JSON bodies (status 200) and the outcome wanted
// under a route's rules ("": the defaults).
type verdictCase struct {
	route, old, new string
	want            compare.Outcome
}

func checkVerdicts(t *testing.T, set *rules.Set, cases []verdictCase) {
	t.Helper()
	for _, tc := range cases {
		r := set.Default
		if tc.route != "" {
			r = set.Route(tc.route)
		}
		res := r.Compare.Compare(compare.Response{Status: 200, Body: []byte(tc.old)}, compare.Response{Status: 200, Body: []byte(tc.new)})
		if res.Outcome != tc.want {
			t.Errorf("route %q: %s → %s: %s %+v, want %s", tc.route, tc.old, tc.new, res.Outcome, res.Diffs, tc.want)
		}
	}
}

// parsed is the configuration base+yaml, compiled; a problem fails the test.
func parsed(t *testing.T, yaml string) *rules.Set {
	t.Helper()
	set, err := rules.Parse("cfg.yaml", strings.NewReader(base+yaml))
	if err != nil {
		t.Fatal(err)
	}
	return set
}
