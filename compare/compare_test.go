package compare

import (
	"strings"
	"testing"
)

// diffText renders a result's differences one per line, "kind path old new",
// for tables that read like the diff a user sees.
func diffText(r Result) string {
	var b strings.Builder
	for _, d := range r.Diffs {
		b.WriteString(string(d.Kind) + " " + d.Path)
		if d.Old != "" {
			b.WriteString(" " + d.Old)
		}
		if d.New != "" {
			b.WriteString(" → " + d.New)
		}
		b.WriteString("\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// TestExactVerdicts is the table of tricky pairs: what exact comparison (no
// rules) must call equal, different, or not comparable.
func TestExactVerdicts(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name, old, new string
		want           Outcome
		reason         string // for Error
		diffs          string // for Mismatch: diffText
	}{
		// Numbers are compared by value, exactly.
		{name: "1 and 1.0", old: `1`, new: `1.0`, want: Match},
		{name: "1 and 1e0", old: `[1]`, new: `[1e0]`, want: Match},
		{name: "100 and 1E2", old: `100`, new: `1E2`, want: Match},
		{name: "0.1 and 0.10 and 1e-1", old: `[0.1, 0.1]`, new: `[0.10, 1e-1]`, want: Match},
		{name: "-0 and 0", old: `[-0, 0.0, -0.0e5]`, new: `[0, -0, 0e-7]`, want: Match},
		{name: "2^53+1 is not 2^53", old: `9007199254740993`, new: `9007199254740992`, want: Mismatch,
			diffs: "changed $ 9007199254740993 → 9007199254740992"},
		{name: "big integers", old: `123456789012345678901234567890`, new: `123456789012345678901234567891`, want: Mismatch,
			diffs: "changed $ 123456789012345678901234567890 → 123456789012345678901234567891"},
		{name: "float64 rounding does not hide 0.1+0.2", old: `0.30000000000000004`, new: `0.3`, want: Mismatch,
			diffs: "changed $ 0.30000000000000004 → 0.3"},
		{name: "huge exponents equal", old: `1e1000000000`, new: `10e999999999`, want: Match},
		{name: "huge exponents differ", old: `1e1000000000`, new: `1e1000000001`, want: Mismatch,
			diffs: "changed $ 1e1000000000 → 1e1000000001"},
		{name: "exponent beyond int64", old: `1e99999999999999999999`, new: `1e99999999999999999998`, want: Mismatch,
			diffs: "changed $ 1e99999999999999999999 → 1e99999999999999999998"},
		{name: "exponent beyond int64 equal", old: `1e99999999999999999999`, new: `0.1e100000000000000000000`, want: Match},
		{name: "tiny numbers", old: `1e-400`, new: `2e-400`, want: Mismatch, diffs: "changed $ 1e-400 → 2e-400"},

		// Strings are compared after unescaping.
		{name: "escaped é", old: `"\u00e9"`, new: `"é"`, want: Match},
		{name: "escaped slash", old: `"a\/b"`, new: `"a/b"`, want: Match},
		{name: "surrogate pair", old: `"\ud83d\ude00"`, new: `"😀"`, want: Match},
		{name: "escaped member names", old: `{"\u0061":1}`, new: `{"a":1}`, want: Match},
		{name: "NUL is a character", old: `"a\u0000"`, new: `"a"`, want: Mismatch, diffs: `changed $ "a\u0000" → "a"`},
		{name: "case matters", old: `"Ann"`, new: `"ann"`, want: Mismatch, diffs: `changed $ "Ann" → "ann"`},

		// Key order and whitespace never matter; array order does.
		{name: "key order", old: `{"a":1,"b":[1,2],"c":{"d":null}}`, new: "{\"c\" : {\"d\":null},\n\t\"b\":[1, 2], \"a\":1}", want: Match},
		{name: "array order", old: `[1,2]`, new: `[2,1]`, want: Mismatch, diffs: "changed $[0] 1 → 2\nchanged $[1] 2 → 1"},

		// Types.
		{name: "number and string", old: `{"id":1}`, new: `{"id":"1"}`, want: Mismatch, diffs: `type $['id'] 1 → "1"`},
		{name: "null and object", old: `{"a":null}`, new: `{"a":{}}`, want: Mismatch, diffs: `type $['a'] null → {}`},
		{name: "array and object", old: `[]`, new: `{}`, want: Mismatch, diffs: `type $ [] → {}`},
		{name: "true and false", old: `true`, new: `false`, want: Mismatch, diffs: `changed $ true → false`},
		{name: "null and absent", old: `{"a":null}`, new: `{}`, want: Mismatch, diffs: `missing $['a'] null`},

		// Missing and extra, with normalized paths.
		{name: "missing and extra", old: `{"a":1,"o'k":2}`, new: `{"a":1,"b":[3]}`, want: Mismatch,
			diffs: "extra $['b'] → [3]\nmissing $['o\\'k'] 2"},
		{name: "longer array", old: `{"x":[1]}`, new: `{"x":[1,{"y":2}]}`, want: Mismatch, diffs: `extra $['x'][1] → {"y":2}`},

		// Documents that cannot be compared are errors, never equal.
		{name: "duplicate key", old: `{"a":1,"a":1}`, new: `{"a":1}`, want: Error, reason: ReasonDuplicateKey},
		{name: "duplicate escaped key", old: `{"a":1}`, new: `{"a":1,"\u0061":1}`, want: Error, reason: ReasonDuplicateKey},
		{name: "duplicate key in identical bodies", old: `{"a":1,"a":2}`, new: `{"a":1,"a":2}`, want: Error, reason: ReasonDuplicateKey},
		{name: "invalid UTF-8", old: "\"\xff\"", new: `"?"`, want: Error, reason: ReasonInvalidUTF8},
		{name: "invalid UTF-8 in identical bodies", old: "\"\xc3\x28\"", new: "\"\xc3\x28\"", want: Error, reason: ReasonInvalidUTF8},
		{name: "lone surrogate", old: `"\ud800"`, new: `"\ud801"`, want: Error, reason: ReasonInvalidUTF8},
		{name: "trailing data", old: `{} x`, new: `{}`, want: Error, reason: ReasonTrailingData},
		{name: "two documents", old: `{}{}`, new: `{}`, want: Error, reason: ReasonTrailingData},
		{name: "truncated", old: `{"a":`, new: `{"a":1}`, want: Error, reason: ReasonInvalidJSON},
		{name: "leading zero", old: `01`, new: `1`, want: Error, reason: ReasonInvalidJSON},
		{name: "control character", old: "\"a\tb\"", new: `"a\tb"`, want: Error, reason: ReasonInvalidJSON},
		{name: "too deep", old: deep(129), new: deep(129), want: Error, reason: ReasonTooDeep},
		{name: "deep enough", old: deep(128), new: deep(128), want: Match},
		{name: "byte order mark", old: "\ufeff{}", new: `{}`, want: Error, reason: ReasonInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, o := range []*Options{nil, mustNew()} {
				r := o.Compare(jsonResponse(tt.old), jsonResponse(tt.new))
				if r.Outcome != tt.want || r.Reason != tt.reason {
					t.Fatalf("outcome = %s %s (%s), want %s %s\n%s", r.Outcome, r.Reason, r.Detail, tt.want, tt.reason, diffText(r))
				}
				if got := diffText(r); got != tt.diffs {
					t.Errorf("diffs:\n%s\nwant:\n%s", got, tt.diffs)
				}
				if slow := o.compareSlow(tt.old, tt.new); slow.Outcome != r.Outcome || diffText(slow) != diffText(r) {
					t.Errorf("slow path: %s\n%s", slow.Outcome, diffText(slow))
				}
			}
		})
	}
}

func (o *Options) compareSlow(old, new string) Result {
	if o == nil {
		o = &Options{}
	}
	return o.compare(jsonResponse(old), jsonResponse(new), true)
}

func TestStatusAndHeaders(t *testing.T) {
	old := jsonResponse(`{}`)
	new := jsonResponse(`{}`)
	new.Status = 404
	old.Header.Set("X-Version", "1")
	new.Header.Set("X-Version", "2")
	new.Header.Set("Date", "today")
	r := (*Options)(nil).Compare(old, new)
	if got, want := diffText(r), "changed status 200 → 404"; r.Outcome != Mismatch || got != want {
		t.Errorf("nil options: %s %s, want mismatch %s (headers are not compared unless a rule names them)", r.Outcome, got, want)
	}
	o := mustNew(Rule{Kind: RuleCompareHeader, Header: "x-version"})
	if got, want := diffText(o.Compare(old, new)), "changed status 200 → 404\nchanged header:X-Version \"1\" → \"2\""; got != want {
		t.Errorf("compare_headers: %s, want %s", got, want)
	}
	new.Status = 200
	o = mustNew(Rule{Kind: RuleCompareHeader, Header: "*"}, Rule{Kind: RuleIgnoreHeader, Header: "X-Version"})
	r = o.Compare(old, new)
	if got, want := diffText(r), `extra header:Date → "today"`; got != want {
		t.Errorf("compare all: %s, want %s", got, want)
	}
	if len(r.Hits) != 1 || r.Hits[0] != (Hit{Rule: 1, Count: 1}) {
		t.Errorf("hits = %v, want the ignored X-Version counted once", r.Hits)
	}
}

func TestBodyFailureWithStatusDifference(t *testing.T) {
	old, new := jsonResponse(`{}`), jsonResponse(`<html>`)
	new.Status = 502
	r := (*Options)(nil).Compare(old, new)
	if r.Outcome != Mismatch || r.Reason != ReasonInvalidJSON || r.Side != "new" {
		t.Errorf("got %s %s %s: a different status is a mismatch even when a body is broken", r.Outcome, r.Reason, r.Side)
	}
	new.Status = 200
	if r := (*Options)(nil).Compare(old, new); r.Outcome != Error || r.Side != "new" {
		t.Errorf("got %s %s: same status, broken body is an error", r.Outcome, r.Side)
	}
}
