package rules

// This file: the compare: section of the configuration: its YAML shape,
// validation with positions, and compilation into compare.Options.

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"

	"github.com/cutover/cutover/compare"
	"github.com/goccy/go-yaml"
)

// CompareConfig is a compare: section, in defaults or in a route. A route's
// rules add to the defaults' (and come before them, so that a route's rule
// wins where both reach a place) unless it says inherit: false. README.md
// ("Comparison rules") describes every key with an example.
type CompareConfig struct {
	// Inherit, in a route, set to false drops the defaults' rules.
	Inherit *bool `yaml:"inherit"`
	// Ignore lists JSONPaths (RFC 9535) of values not compared.
	Ignore []string `yaml:"ignore"`
	// IgnoreHeaders are never compared; CompareHeaders are ("*": all).
	IgnoreHeaders  []string `yaml:"ignore_headers"`
	CompareHeaders []string `yaml:"compare_headers"`
	// Unordered arrays are multisets, or matched by a key member.
	Unordered []UnorderedRule `yaml:"unordered"`
	// Tolerance lets numbers differ by an absolute or relative bound.
	Tolerance []ToleranceRule `yaml:"tolerance"`
	// Normalize rewrites strings before they are compared.
	Normalize []NormalizeRule `yaml:"normalize"`
	// Coerce makes 1 equal "1" and true equal "true" at these paths.
	Coerce []string `yaml:"coerce"`
	// Rename maps old's members to new's names or places.
	Rename []RenameRule `yaml:"rename"`
	// AbsentEqualsNull and its variants let a missing member equal null,
	// [] or {}: true for everywhere, or a list of JSONPaths.
	AbsentEqualsNull        Scope `yaml:"absent_equals_null"`
	AbsentEqualsEmptyArray  Scope `yaml:"absent_equals_empty_array"`
	AbsentEqualsEmptyObject Scope `yaml:"absent_equals_empty_object"`
	// Subset lets new have members old lacks: true, or a list of JSONPaths.
	Subset Scope `yaml:"subset"`
	// Noise sets when a path's difference rate beats its rate between old
	// and backends.noise; a route's setting replaces the defaults'.
	Noise *NoiseConfig `yaml:"noise"`
}

// NoiseConfig holds Diffy-style noise thresholds (see compare.NoiseThresholds).
type NoiseConfig struct {
	Relative *float64 `yaml:"relative"`
	Absolute *float64 `yaml:"absolute"`
}

// UnorderedRule is written "$.roles" or {path: "$.items", by: id}.
type UnorderedRule struct {
	Path string `yaml:"path"`
	By   string `yaml:"by"`
}

// UnmarshalYAML accepts a bare path or a mapping.
func (u *UnorderedRule) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		*u = UnorderedRule{Path: s}
		return nil
	}
	type plain UnorderedRule
	return unmarshal((*plain)(u))
}

// ToleranceRule is {path: "$..price", absolute: 0.01, relative: 0.001}.
type ToleranceRule struct {
	Path     string  `yaml:"path"`
	Absolute Decimal `yaml:"absolute"`
	Relative Decimal `yaml:"relative"`
}

// NormalizeRule is {path, pattern, replace} and/or {path, fold_case: true}.
type NormalizeRule struct {
	Path     string `yaml:"path"`
	Pattern  string `yaml:"pattern"`
	Replace  string `yaml:"replace"`
	FoldCase bool   `yaml:"fold_case"`
}

// RenameRule is {from: "$.items[*].sku", to: product_id} (same object) or
// {from: "$.user_name", to: "$.user.name"} (another place).
type RenameRule struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
}

// Decimal keeps a number's text as written, so 0.1 stays 0.1 and is never
// rounded through float64.
type Decimal struct {
	raw    string
	set    bool
	quoted bool // written as a string: taken, with a warning
}

// UnmarshalYAML keeps the scalar's text.
func (d *Decimal) UnmarshalYAML(b []byte) error {
	var s string
	text := strings.TrimSpace(string(b))
	if strings.HasPrefix(text, `"`) || strings.HasPrefix(text, `'`) {
		if err := yaml.Unmarshal(b, &s); err != nil {
			return err
		}
		text = s
		d.quoted = true
	}
	d.raw, d.set = text, true
	return nil
}

// MarshalYAML writes the number back as it was written, a number.
func (d Decimal) MarshalYAML() ([]byte, error) { return []byte(d.raw), nil }

// IsZero says the file did not set it.
func (d Decimal) IsZero() bool { return !d.set }

// Scope is true (everywhere), false (nowhere) or a list of JSONPaths.
type Scope struct {
	All bool
	// Off is false written out: in a route, the defaults' rules of the
	// kind do not apply.
	Off   bool
	Paths []string
}

// UnmarshalYAML accepts a boolean or a list of paths.
func (s *Scope) UnmarshalYAML(unmarshal func(any) error) error {
	var b bool
	if err := unmarshal(&b); err == nil {
		*s = Scope{All: b, Off: !b}
		return nil
	}
	var ps []string
	if err := unmarshal(&ps); err != nil {
		return fmt.Errorf("write true, false or a list of JSONPaths: %w", err)
	}
	*s = Scope{Paths: ps}
	return nil
}

// MarshalYAML writes the scope back.
func (s Scope) MarshalYAML() (any, error) {
	if s.Paths != nil {
		return s.Paths, nil
	}
	return s.All, nil
}

// Limits of the rules language, so a configuration cannot make the
// comparison expensive.
const (
	MaxPatternLength = 1000 // bytes of one normalize pattern
	MaxRules         = 1000 // rules of one compare section
)

var (
	decimalText = regexp.MustCompile(`^(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	headerToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// compare compiles a route's compare section on top of the defaults' (def
// is nil when compiling the defaults themselves).
func (c *compiler) compare(path string, def, own *CompareConfig) *compare.Options {
	var rules []compare.Rule
	var noise compare.NoiseThresholds
	if def != nil {
		// The route's rules come first: where a rule of one kind applies
		// (tolerance, unordered, rename...), the first that reaches a
		// place does, and a route's rule refines its defaults'.
		rules = c.compareRules(path, "route", own, true)
		if own.Inherit == nil || *own.Inherit {
			for _, r := range c.compareRules("$.defaults.compare", "defaults", def, false) {
				if !own.turnsOff(r.Kind) {
					rules = append(rules, r)
				}
			}
			noise = c.noise("$.defaults.compare.noise", def.Noise, false)
		}
		if own.Noise != nil {
			noise = c.noise(path+".noise", own.Noise, true)
		}
	} else {
		noise = c.noise(path+".noise", own.Noise, true)
		if own.Inherit != nil {
			c.fail(path+".inherit", "inherit belongs in a route's compare section", "the defaults have nothing to inherit from")
		}
		rules = c.compareRules(path, "defaults", own, true)
	}
	if len(rules) > MaxRules {
		c.fail(path, "merge paths with wildcards or descendant segments", "%d comparison rules are more than %d", len(rules), MaxRules)
		return nil
	}
	o, err := compare.New(rules, compare.Limits{}, noise)
	if err != nil {
		// Validation above should have said it with a position.
		c.fail(path, "", "%v", err)
		return nil
	}
	return o
}

// turnsOff reports whether the section writes false for a kind that
// takes true or paths (subset, absent_equals_*): in a route, the
// defaults' rules of that kind then do not apply. Of the others, a route
// says what it adds; inherit: false drops them all.
func (cc *CompareConfig) turnsOff(k compare.RuleKind) bool {
	switch k {
	case compare.RuleAbsentEqualsNull:
		return cc.AbsentEqualsNull.Off
	case compare.RuleAbsentEqualsEmptyArray:
		return cc.AbsentEqualsEmptyArray.Off
	case compare.RuleAbsentEqualsEmptyObject:
		return cc.AbsentEqualsEmptyObject.Off
	case compare.RuleSubset:
		return cc.Subset.Off
	}
	return false
}

// compareRules turns one compare section into rules; report says whether
// to report its problems (the defaults' are reported once, not per route).
func (c *compiler) compareRules(path, origin string, cc *CompareConfig, report bool) []compare.Rule {
	rc := ruleCompiler{c: c, report: report}
	var rules []compare.Rule
	add := func(r compare.Rule, ok bool) {
		if ok {
			r.Origin = origin
			rules = append(rules, r)
		}
	}
	for i, p := range cc.Ignore {
		at := fmt.Sprintf("%s.ignore[%d]", path, i)
		jp, ok := rc.path(at, p)
		if ok && wholeDocument(jp) {
			rc.fail(at, "ignore only the parts that differ, like $.meta.request_id or $..updated_at",
				"ignoring %s ignores the whole document: every answer would match", p)
			ok = false
		}
		add(compare.Rule{Kind: compare.RuleIgnore, Path: jp}, ok)
	}
	for i, h := range cc.IgnoreHeaders {
		add(compare.Rule{Kind: compare.RuleIgnoreHeader, Header: h}, rc.header(fmt.Sprintf("%s.ignore_headers[%d]", path, i), h, false))
	}
	for i, h := range cc.CompareHeaders {
		add(compare.Rule{Kind: compare.RuleCompareHeader, Header: h}, rc.header(fmt.Sprintf("%s.compare_headers[%d]", path, i), h, true))
	}
	for i, u := range cc.Unordered {
		at := fmt.Sprintf("%s.unordered[%d]", path, i)
		jp, ok := rc.path(at, u.Path)
		add(compare.Rule{Kind: compare.RuleUnordered, Path: jp, By: u.By}, ok)
	}
	for i, t := range cc.Tolerance {
		at := fmt.Sprintf("%s.tolerance[%d]", path, i)
		jp, ok := rc.path(at, t.Path)
		for _, b := range []struct {
			key string
			d   Decimal
		}{{"absolute", t.Absolute}, {"relative", t.Relative}} {
			switch {
			case b.d.set && !decimalText.MatchString(b.d.raw):
				rc.fail(at+"."+b.key, "write a non-negative number like 0.01", "%s %q is not a non-negative number", b.key, b.d.raw)
				ok = false
			case b.d.set && b.d.quoted:
				// Accepted (check --print wrote bounds so before 2026-11-25),
				// but a number in quotes is refused everywhere else.
				rc.warn(at+"."+b.key, "write the number without quotes, like "+b.key+": "+b.d.raw, "%s %q is a string; it is taken as the number it holds, which a later version will refuse", b.key, b.d.raw)
			}
		}
		if !t.Absolute.set && !t.Relative.set {
			rc.fail(at, "write absolute: 0.01 (a difference) or relative: 0.001 (a share of the larger value)", "tolerance has no bound")
			ok = false
		}
		add(compare.Rule{Kind: compare.RuleTolerance, Path: jp, Absolute: t.Absolute.raw, Relative: t.Relative.raw}, ok)
	}
	for i, n := range cc.Normalize {
		at := fmt.Sprintf("%s.normalize[%d]", path, i)
		jp, ok := rc.path(at, n.Path)
		r := compare.Rule{Kind: compare.RuleNormalize, Path: jp, Replace: n.Replace, FoldCase: n.FoldCase}
		switch {
		case n.Pattern != "":
			re, good := rc.regexp(at+".pattern", n.Pattern)
			r.Pattern, ok = re, ok && good
		case n.Replace != "":
			rc.fail(at+".replace", "add pattern: the regular expression that replace rewrites", "replace without a pattern")
			ok = false
		case !n.FoldCase:
			rc.fail(at, "write pattern: and replace:, or fold_case: true", "normalize does nothing")
			ok = false
		}
		add(r, ok)
	}
	for i, p := range cc.Coerce {
		jp, ok := rc.path(fmt.Sprintf("%s.coerce[%d]", path, i), p)
		add(compare.Rule{Kind: compare.RuleCoerce, Path: jp}, ok)
	}
	for i, rn := range cc.Rename {
		add(rc.rename(fmt.Sprintf("%s.rename[%d]", path, i), rn))
	}
	for _, s := range []struct {
		key   string
		kind  compare.RuleKind
		scope Scope
	}{
		{"absent_equals_null", compare.RuleAbsentEqualsNull, cc.AbsentEqualsNull},
		{"absent_equals_empty_array", compare.RuleAbsentEqualsEmptyArray, cc.AbsentEqualsEmptyArray},
		{"absent_equals_empty_object", compare.RuleAbsentEqualsEmptyObject, cc.AbsentEqualsEmptyObject},
		{"subset", compare.RuleSubset, cc.Subset},
	} {
		if s.scope.All {
			add(compare.Rule{Kind: s.kind}, true)
		}
		for i, p := range s.scope.Paths {
			at := fmt.Sprintf("%s.%s[%d]", path, s.key, i)
			jp, ok := rc.path(at, p)
			if ok && len(jp.Segments) == 0 {
				rc.fail(at, "these rules apply to members: write $..* (or true) for every member", "%s selects the whole document, not members", p)
				ok = false
			}
			add(compare.Rule{Kind: s.kind, Path: jp}, ok)
		}
	}
	return rules
}

// noise compiles noise thresholds; unset values take compare's defaults.
func (c *compiler) noise(path string, nc *NoiseConfig, report bool) compare.NoiseThresholds {
	var t compare.NoiseThresholds
	if nc == nil {
		return t
	}
	rc := ruleCompiler{c: c, report: report}
	if nc.Relative != nil {
		if x := *nc.Relative; !(x >= 0) || math.IsInf(x, 1) { // NaN too
			rc.fail(path+".relative", "write 0.2 for 20 % above the noise rate", "relative %v is not a number of 0 or more", *nc.Relative)
		}
		t.Relative = max(*nc.Relative, 0)
	}
	if nc.Absolute != nil {
		if x := *nc.Absolute; !(x >= 0 && x <= 1) { // NaN too
			rc.fail(path+".absolute", "write a share between 0 and 1, like 0.0003 for 0.03 %", "absolute %v is not a share", *nc.Absolute)
		}
		t.Absolute = min(max(*nc.Absolute, 0), 1)
	}
	return t
}

// ruleCompiler reports the problems of one compare section.
type ruleCompiler struct {
	c      *compiler
	report bool
}

func (rc ruleCompiler) warn(path, hint, format string, args ...any) {
	if rc.report {
		rc.c.warn(path, hint, format, args...)
	}
}

func (rc ruleCompiler) fail(path, hint, format string, args ...any) {
	if rc.report {
		rc.c.fail(path, hint, format, args...)
	}
}

func (rc ruleCompiler) path(at, text string) (*compare.Path, bool) {
	if text == "" {
		rc.fail(at, "write a JSONPath such as $.meta.request_id", "empty JSONPath")
		return nil, false
	}
	p, err := CompilePath(text)
	if err != nil {
		rc.fail(at, "JSONPath is RFC 9535: $.a.b, $..name, $.items[*].id, $.items[?@.type == 'x']", "%v", err)
		return nil, false
	}
	return p, true
}

func (rc ruleCompiler) header(at, name string, star bool) bool {
	switch {
	case star && name == "*":
		return true
	case name == "*":
		rc.fail(at, "to compare no header, write no compare_headers; to compare all but some, write compare_headers: [\"*\"] and list those here", "ignore_headers cannot name \"*\"")
		return false
	}
	if !headerToken.MatchString(name) {
		hint := "write a header name like X-Request-Id"
		if star {
			hint += `, or "*" for every header`
		}
		rc.fail(at, hint, "%q is not a header name", name)
		return false
	}
	return true
}

func (rc ruleCompiler) regexp(at, pattern string) (*regexp.Regexp, bool) {
	if len(pattern) > MaxPatternLength {
		rc.fail(at, "shorten it, or normalize with several rules", "pattern %q… is longer than %d bytes", shortText(pattern, 40), MaxPatternLength)
		return nil, false
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		rc.fail(at, "Go regular expressions are RE2: https://golang.org/s/re2syntax", "bad pattern %q: %s", shortText(pattern, 60), regexpReason(err))
		return nil, false
	}
	return re, true
}

func (rc ruleCompiler) rename(at string, rn RenameRule) (compare.Rule, bool) {
	r := compare.Rule{Kind: compare.RuleRename}
	from, ok := rc.path(at+".from", rn.From)
	r.Path = from
	if ok {
		if n := len(from.Segments); n == 0 || !endsWithName(from) {
			rc.fail(at+".from", "rename renames object members: end the path with a name, like $.items[*].sku", "%s does not select members by name", rn.From)
			ok = false
		}
	}
	switch {
	case rn.To == "":
		rc.fail(at, "write to: new_name, or to: $.new.place", "rename has no to")
		ok = false
	case strings.HasPrefix(rn.To, "$"):
		to, good := rc.path(at+".to", rn.To)
		if good && !singular(to) {
			rc.fail(at+".to", "a destination names one place: member names and indices only, ending with a name", "%s is not a single place", rn.To)
			good = false
		}
		if good && ok && mayLieWithin(to, from) {
			// Moved into itself, a member would be cut off from the
			// document: old would lose it, and a difference with it.
			rc.fail(at+".to", "move it beside what it renames, like $.a_z, not inside it", "%s lies inside %s, which it moves", rn.To, rn.From)
			good = false
		}
		r.ToPath, ok = to, ok && good
	default:
		r.To = rn.To
	}
	return r, ok
}

// mayLieWithin reports whether the single place to may be inside (or be) a
// node that from selects. A filter, and a slice or an index counted from the
// end, are taken to select anything.
func mayLieWithin(to, from *compare.Path) bool {
	return within(from.Segments, to.Segments)
}

func within(from, to []compare.Segment) bool {
	if len(from) == 0 {
		return true // to is at or below what from selects
	}
	if len(to) < len(from) {
		return false
	}
	if from[0].Descendant {
		// Its selectors may pick a node at any depth from here.
		for j := range to {
			if selects(from[0], to[j].Selectors[0]) && within(from[1:], to[j+1:]) {
				return true
			}
		}
		return false
	}
	return selects(from[0], to[0].Selectors[0]) && within(from[1:], to[1:])
}

// selects reports whether a segment may select the step of a single place.
func selects(seg compare.Segment, step compare.Selector) bool {
	return slices.ContainsFunc(seg.Selectors, func(sel compare.Selector) bool {
		switch sel.Kind {
		case compare.SelectName:
			return step.Kind == compare.SelectName && step.Name == sel.Name
		case compare.SelectIndex:
			return step.Kind == compare.SelectIndex && (step.Index == sel.Index || step.Index < 0 || sel.Index < 0)
		case compare.SelectSlice:
			if step.Kind != compare.SelectIndex {
				return false
			}
			if step.Index < 0 || sel.Step <= 0 || sel.Start < 0 || sel.End < 0 {
				return true
			}
			return step.Index >= sel.Start && step.Index < sel.End && (step.Index-sel.Start)%sel.Step == 0
		}
		return true // a wildcard, a filter
	})
}

// regexpReason says why a regexp does not compile without echoing the whole
// pattern, which Go's error does.
func regexpReason(err error) string {
	if se := (*syntax.Error)(nil); errors.As(err, &se) {
		return fmt.Sprintf("%s: %q", se.Code, shortText(se.Expr, 40))
	}
	return err.Error()
}
