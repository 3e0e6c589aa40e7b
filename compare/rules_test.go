package compare

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func hitText(r Result) string {
	var parts []string
	for _, h := range r.Hits {
		parts = append(parts, fmt.Sprintf("%d×%d", h.Rule, h.Count))
	}
	return strings.Join(parts, " ")
}

// TestRuleVerdicts says, kind by kind, what each rule absorbs and what it
// must not, with the differences left and the hits counted.
func TestRuleVerdicts(t *testing.T) {
	ignore := func(p string) Rule { return Rule{Kind: RuleIgnore, Path: testPath(p)} }
	unordered := func(p, by string) Rule { return Rule{Kind: RuleUnordered, Path: testPath(p), By: by} }
	tol := func(p, abs, rel string) Rule {
		return Rule{Kind: RuleTolerance, Path: testPath(p), Absolute: abs, Relative: rel}
	}
	norm := func(p, pattern, repl string, fold bool) Rule {
		r := Rule{Kind: RuleNormalize, Path: testPath(p), Replace: repl, FoldCase: fold}
		if pattern != "" {
			r.Pattern = regexp.MustCompile(pattern)
		}
		return r
	}
	kind := func(k RuleKind, p string) Rule {
		r := Rule{Kind: k}
		if p != "" {
			r.Path = testPath(p)
		}
		return r
	}
	tests := []struct {
		name     string
		rules    []Rule
		old, new string
		want     Outcome
		diffs    string
		hits     string // "rule×count ..."
	}{
		{name: "ignore a member", rules: []Rule{ignore("$.meta.request_id")},
			old: `{"meta":{"request_id":"a","v":1}}`, new: `{"meta":{"request_id":"b","v":1}}`, want: Match, hits: "0×1"},
		{name: "ignore absorbs absence", rules: []Rule{ignore("$.meta.request_id")},
			old: `{"meta":{"request_id":"a"}}`, new: `{"meta":{}}`, want: Match, hits: "0×1"},
		{name: "ignore counts nothing when equal", rules: []Rule{ignore("$.meta.request_id")},
			old: `{"meta":{"request_id":"a"},"x":1}`, new: `{"meta":{"request_id":"a"},"x":1.0}`, want: Match},
		{name: "ignore descendants", rules: []Rule{ignore("$..updated_at")},
			old: `{"updated_at":1,"items":[{"id":1,"updated_at":2}]}`, new: `{"updated_at":3,"items":[{"id":1,"updated_at":4}]}`, want: Match, hits: "0×2"},
		{name: "ignore leaves the rest compared", rules: []Rule{ignore("$..updated_at")},
			old: `{"updated_at":1,"id":1}`, new: `{"updated_at":3,"id":2}`, want: Mismatch, diffs: "changed $['id'] 1 → 2", hits: "0×1"},
		{name: "ignore an array element keeps positions", rules: []Rule{ignore("$.a[0]")},
			old: `{"a":[1,2]}`, new: `{"a":[9,2]}`, want: Match, hits: "0×1"},
		{name: "ignore the last element", rules: []Rule{ignore("$.a[-1]")},
			old: `{"a":[1,2]}`, new: `{"a":[1]}`, want: Mismatch, diffs: "missing $['a'][0] 1", hits: "0×1"}, // -1 is a different element on each side
		{name: "ignore with wildcard", rules: []Rule{ignore("$.items[*].etag")},
			old: `{"items":[{"etag":"a"},{"etag":"b"}]}`, new: `{"items":[{"etag":"c"},{"etag":"d"}]}`, want: Match, hits: "0×2"},

		{name: "unordered scalars", rules: []Rule{unordered("$.roles", "")},
			old: `{"roles":["admin","user"]}`, new: `{"roles":["user","admin"]}`, want: Match, hits: "0×1"},
		{name: "unordered is a multiset", rules: []Rule{unordered("$.roles", "")},
			old: `{"roles":["a","a","b"]}`, new: `{"roles":["a","b","b"]}`, want: Mismatch,
			diffs: `missing $['roles'][1] "a"` + "\n" + `extra $['roles'][2] → "b"`, hits: "0×1"}, // b moved from 2 to 1
		{name: "unordered objects", rules: []Rule{unordered("$", "")},
			old: `[{"a":1,"b":2},{"c":3}]`, new: `[{"c":3.0},{"b":2,"a":1}]`, want: Match, hits: "0×1"},
		{name: "unordered in order counts nothing", rules: []Rule{unordered("$.roles", "")},
			old: `{"roles":["a","b"]}`, new: `{"roles":["a", "b"]}`, want: Match},
		{name: "unordered by key", rules: []Rule{unordered("$.items", "id")},
			old: `{"items":[{"id":1,"q":1},{"id":2,"q":2}]}`, new: `{"items":[{"id":2,"q":3},{"id":1,"q":1}]}`, want: Mismatch,
			diffs: "changed $['items'][1]['q'] 2 → 3", hits: "0×1"},
		{name: "unordered by key, missing and extra", rules: []Rule{unordered("$.items", "id")},
			old: `{"items":[{"id":1},{"id":2}]}`, new: `{"items":[{"id":3},{"id":1}]}`, want: Mismatch,
			diffs: `missing $['items'][1] {"id":2}` + "\n" + `extra $['items'][0] → {"id":3}`, hits: "0×1"},
		{name: "unordered by key with rules inside", rules: []Rule{unordered("$.items", "id"), tol("$.items[*].price", "0.01", "")},
			old: `{"items":[{"id":"a","price":1.00},{"id":"b","price":2}]}`, new: `{"items":[{"id":"b","price":2.001},{"id":"a","price":1}]}`,
			want: Match, hits: "0×1 1×1"},
		{name: "unordered leaves out ignored elements", rules: []Rule{unordered("$.tags", ""), ignore("$.tags[1]")},
			old: `{"tags":["x","internal"]}`, new: `{"tags":["x"]}`, want: Match},

		{name: "absolute tolerance", rules: []Rule{tol("$..price", "0.01", "")},
			old: `{"price":10.00,"n":[{"price":1}]}`, new: `{"price":10.01,"n":[{"price":1.005}]}`, want: Match, hits: "0×2"},
		{name: "tolerance is exact at the bound", rules: []Rule{tol("$.p", "0.1", "")},
			old: `{"p":1.0}`, new: `{"p":1.1}`, want: Match, hits: "0×1"},
		{name: "tolerance beyond the bound", rules: []Rule{tol("$.p", "0.1", "")},
			old: `{"p":1.0}`, new: `{"p":1.1000000000000000001}`, want: Mismatch, diffs: "changed $['p'] 1.0 → 1.1000000000000000001"},
		{name: "relative tolerance", rules: []Rule{tol("$.p", "", "0.001")},
			old: `{"p":100000}`, new: `{"p":100100}`, want: Match, hits: "0×1"},
		{name: "tolerance only where it says", rules: []Rule{tol("$.p", "1", "")},
			old: `{"p":1,"q":1}`, new: `{"p":2,"q":2}`, want: Mismatch, diffs: "changed $['q'] 1 → 2", hits: "0×1"},
		{name: "tolerance leaves big integers exact", rules: []Rule{tol("$.id", "0.5", "")},
			old: `{"id":9007199254740993}`, new: `{"id":9007199254740992}`, want: Mismatch, diffs: "changed $['id'] 9007199254740993 → 9007199254740992"},

		{name: "normalize with a pattern", rules: []Rule{norm("$..created_at", `\.\d+Z$`, "Z", false)},
			old: `{"created_at":"2024-01-01T00:00:00.123Z"}`, new: `{"created_at":"2024-01-01T00:00:00Z"}`, want: Match, hits: "0×1"},
		{name: "normalize keeps real differences", rules: []Rule{norm("$..created_at", `\.\d+Z$`, "Z", false)},
			old: `{"created_at":"2024-01-01T00:00:00.123Z"}`, new: `{"created_at":"2024-01-02T00:00:00Z"}`, want: Mismatch,
			diffs: `changed $['created_at'] "2024-01-01T00:00:00.123Z" → "2024-01-02T00:00:00Z"`},
		{name: "fold case", rules: []Rule{norm("$.email", "", "", true)},
			old: `{"email":"Ann@Example.com"}`, new: `{"email":"ann@example.com"}`, want: Match, hits: "0×1"},

		{name: "coerce numbers", rules: []Rule{kind(RuleCoerce, "$..id")},
			old: `{"id":1,"u":{"id":"2.50"}}`, new: `{"id":"1","u":{"id":2.5}}`, want: Match, hits: "0×2"},
		{name: "coerce booleans", rules: []Rule{kind(RuleCoerce, "$.ok")},
			old: `{"ok":true}`, new: `{"ok":"true"}`, want: Match, hits: "0×1"},
		{name: "coerce keeps values", rules: []Rule{kind(RuleCoerce, "$.id")},
			old: `{"id":1}`, new: `{"id":"2"}`, want: Mismatch, diffs: `type $['id'] 1 → "2"`},
		{name: "coerce is not everywhere", rules: []Rule{kind(RuleCoerce, "$.id")},
			old: `{"n":1}`, new: `{"n":"1"}`, want: Mismatch, diffs: `type $['n'] 1 → "1"`},

		{name: "rename in place", rules: []Rule{{Kind: RuleRename, Path: testPath("$.items[*].sku"), To: "product_id"}},
			old: `{"items":[{"sku":"a"},{"sku":"b"}]}`, new: `{"items":[{"product_id":"a"},{"product_id":"b"}]}`, want: Match, hits: "0×2"},
		{name: "rename is one way", rules: []Rule{{Kind: RuleRename, Path: testPath("$.a"), To: "b"}},
			old: `{"b":1}`, new: `{"a":1}`, want: Mismatch, diffs: "extra $['a'] → 1\nmissing $['b'] 1"},
		{name: "rename identical bytes", rules: []Rule{{Kind: RuleRename, Path: testPath("$.a"), To: "b"}},
			old: `{"a":1}`, new: `{"a":1}`, want: Mismatch, diffs: "extra $['a'] → 1\nmissing $['b'] 1", hits: "0×1"},
		{name: "rename moves", rules: []Rule{{Kind: RuleRename, Path: testPath("$.user_name"), ToPath: testPath("$.user.name")}},
			old: `{"user_name":"ann","user":{"id":1}}`, new: `{"user":{"id":1,"name":"ann"}}`, want: Match, hits: "0×1"},
		{name: "rename makes objects", rules: []Rule{{Kind: RuleRename, Path: testPath("$.city"), ToPath: testPath("$.address.city")}},
			old: `{"city":"Oslo"}`, new: `{"address":{"city":"Oslo"}}`, want: Match, hits: "0×1"},
		// Blocked on the way (an index into a member old lacks): skipped,
		// and old gains none of the objects made before the block.
		{name: "rename blocked makes nothing", rules: []Rule{{Kind: RuleRename, Path: testPath("$.user_name"), ToPath: testPath("$.p.items[0].name")}},
			old: `{"user_name":"x"}`, new: `{"user_name":"x"}`, want: Match},

		{name: "absent equals null", rules: []Rule{kind(RuleAbsentEqualsNull, "")},
			old: `{"a":null,"b":{"c":1}}`, new: `{"b":{"c":1,"d":null}}`, want: Match, hits: "0×2"},
		{name: "absent is not any value", rules: []Rule{kind(RuleAbsentEqualsNull, "")},
			old: `{"a":0}`, new: `{}`, want: Mismatch, diffs: "missing $['a'] 0"},
		{name: "absent equals null at a path", rules: []Rule{kind(RuleAbsentEqualsNull, "$.a")},
			old: `{"a":null,"b":null}`, new: `{}`, want: Mismatch, diffs: "missing $['b'] null", hits: "0×1"},
		{name: "absent equals empty array", rules: []Rule{kind(RuleAbsentEqualsEmptyArray, "")},
			old: `{"tags":[]}`, new: `{}`, want: Match, hits: "0×1"},
		{name: "empty array rule leaves objects", rules: []Rule{kind(RuleAbsentEqualsEmptyArray, "")},
			old: `{"tags":{}}`, new: `{}`, want: Mismatch, diffs: "missing $['tags'] {}"},
		{name: "absent equals empty object", rules: []Rule{kind(RuleAbsentEqualsEmptyObject, "")},
			old: `{}`, new: `{"meta":{}}`, want: Match, hits: "0×1"},
		{name: "null is still not empty", rules: []Rule{kind(RuleAbsentEqualsNull, "")},
			old: `{"a":null}`, new: `{"a":[]}`, want: Mismatch, diffs: "type $['a'] null → []"},

		{name: "subset lets new add members", rules: []Rule{kind(RuleSubset, "")},
			old: `{"a":1,"o":{"b":2}}`, new: `{"a":1,"x":2,"o":{"b":2,"c":[3]}}`, want: Match, hits: "0×2"},
		{name: "subset is one way", rules: []Rule{kind(RuleSubset, "")},
			old: `{"a":1,"x":2}`, new: `{"a":1}`, want: Mismatch, diffs: "missing $['x'] 2"},
		{name: "subset does not stretch arrays", rules: []Rule{kind(RuleSubset, "")},
			old: `{"a":[1]}`, new: `{"a":[1,2]}`, want: Mismatch, diffs: "extra $['a'][1] → 2"},
		{name: "subset at a path", rules: []Rule{kind(RuleSubset, "$.meta.*")},
			old: `{"meta":{}}`, new: `{"meta":{"x":1},"y":2}`, want: Mismatch, diffs: "extra $['y'] → 2", hits: "0×1"},

		{name: "rules combine", rules: []Rule{ignore("$..etag"), unordered("$.items", "id"), kind(RuleSubset, "$.items[*].*")},
			old: `{"items":[{"id":1,"etag":"a"},{"id":2,"etag":"b"}]}`,
			new: `{"items":[{"id":2,"etag":"c","new":true},{"id":1,"etag":"a"}]}`, want: Match, hits: "0×1 1×1 2×1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := New(tt.rules, Limits{}, NoiseThresholds{})
			if err != nil {
				t.Fatal(err)
			}
			r := o.Compare(jsonResponse(tt.old), jsonResponse(tt.new))
			if r.Outcome != tt.want {
				t.Fatalf("outcome = %s %s %s, want %s\n%s", r.Outcome, r.Reason, r.Detail, tt.want, diffText(r))
			}
			if got := diffText(r); got != tt.diffs {
				t.Errorf("diffs:\n%s\nwant:\n%s", got, tt.diffs)
			}
			if got := hitText(r); got != tt.hits {
				t.Errorf("hits = %q, want %q", got, tt.hits)
			}
			slow := o.compareSlow(tt.old, tt.new)
			if slow.Outcome != r.Outcome || diffText(slow) != diffText(r) || !slices.Equal(slow.Hits, r.Hits) {
				t.Errorf("the slow path disagrees: %s %s\n%s", slow.Outcome, hitText(slow), diffText(slow))
			}
		})
	}
}
