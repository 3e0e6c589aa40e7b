package compare

// This file: rules, limits and their compilation into immutable Options.

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// RuleKind is what a rule does; its String is the YAML key that writes it.
type RuleKind uint8

// Rule kinds. Each is documented in README.md ("Comparison rules") with an example.
const (
	// RuleIgnore: the selected values are not compared. An ignored object
	// member counts as absent; an ignored array element keeps its position
	// (the element is not compared) except inside an unordered array, where
	// it is left out of the multiset.
	RuleIgnore RuleKind = iota + 1
	// RuleUnordered: the selected arrays are multisets; with By, elements
	// are matched by the value of that member.
	RuleUnordered
	// RuleTolerance: numbers at the selected locations are equal when they
	// differ by at most Absolute, or by at most Relative times the larger.
	RuleTolerance
	// RuleNormalize: strings at the selected locations are rewritten
	// (Pattern replaced by Replace, then case folded when FoldCase) on both
	// sides before they are compared.
	RuleNormalize
	// RuleCoerce: at the selected locations a string holding a JSON number
	// is that number, and "true"/"false" are booleans.
	RuleCoerce
	// RuleRename: the selected members of old are renamed to To (same
	// object) or moved to ToPath before the comparison.
	RuleRename
	// RuleAbsentEqualsNull: at the selected member locations, a member
	// missing on one side equals a member that is null on the other.
	RuleAbsentEqualsNull
	// RuleAbsentEqualsEmptyArray is RuleAbsentEqualsNull for [].
	RuleAbsentEqualsEmptyArray
	// RuleAbsentEqualsEmptyObject is RuleAbsentEqualsNull for {}.
	RuleAbsentEqualsEmptyObject
	// RuleSubset: at the selected member locations, new may have members
	// that old lacks.
	RuleSubset
	// RuleIgnoreHeader: the header Header is never compared.
	RuleIgnoreHeader
	// RuleCompareHeader: the header Header is compared ("*": every header
	// but hop-by-hop ones and Content-Length).
	RuleCompareHeader
)

var kindNames = [...]string{
	RuleIgnore: "ignore", RuleUnordered: "unordered", RuleTolerance: "tolerance",
	RuleNormalize: "normalize", RuleCoerce: "coerce", RuleRename: "rename",
	RuleAbsentEqualsNull: "absent_equals_null", RuleAbsentEqualsEmptyArray: "absent_equals_empty_array",
	RuleAbsentEqualsEmptyObject: "absent_equals_empty_object", RuleSubset: "subset",
	RuleIgnoreHeader: "ignore_headers", RuleCompareHeader: "compare_headers",
}

func (k RuleKind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("RuleKind(%d)", k)
}

// everywhere reports whether a rule of this kind may leave Path nil to
// apply at every location.
func (k RuleKind) everywhere() bool {
	switch k {
	case RuleAbsentEqualsNull, RuleAbsentEqualsEmptyArray, RuleAbsentEqualsEmptyObject, RuleSubset:
		return true
	}
	return false
}

// Rule is one compiled comparison rule. Fields other than Kind, Origin and
// Path only mean something for the kinds that name them.
type Rule struct {
	Kind RuleKind
	// Origin says where the rule was written ("defaults", "route user");
	// it starts the rule's description, and rules of one origin are one
	// section: where normalize rules of several reach a place, only the
	// first section's apply there (in order).
	Origin string
	// Path selects where the rule applies. Kinds that allow it treat nil
	// as every location.
	Path *Path

	By string // RuleUnordered: match elements by this member

	// RuleTolerance: non-negative decimal numbers as text, empty when not
	// given; they are compared exactly, never through float64.
	Absolute, Relative string

	Pattern  *regexp.Regexp // RuleNormalize
	Replace  string         // RuleNormalize: regexp.Expand syntax ($1)
	FoldCase bool           // RuleNormalize

	To     string // RuleRename: the member's new name, in the same object
	ToPath *Path  // RuleRename: or a destination of names and indices from the root

	Header string // RuleIgnoreHeader, RuleCompareHeader
}

// String describes the rule for people: "defaults: ignore $..updated_at".
func (r *Rule) String() string {
	var b strings.Builder
	if r.Origin != "" {
		b.WriteString(r.Origin)
		b.WriteString(": ")
	}
	b.WriteString(r.Kind.String())
	b.WriteByte(' ')
	switch {
	case r.Kind == RuleIgnoreHeader || r.Kind == RuleCompareHeader:
		b.WriteString(r.Header)
		return b.String()
	case r.Path != nil:
		b.WriteString(r.Path.Text)
	default:
		b.WriteString("everywhere")
	}
	switch r.Kind {
	case RuleUnordered:
		if r.By != "" {
			b.WriteString(" by " + r.By)
		}
	case RuleTolerance:
		if r.Absolute != "" {
			b.WriteString(" absolute " + r.Absolute)
		}
		if r.Relative != "" {
			b.WriteString(" relative " + r.Relative)
		}
	case RuleNormalize:
		if r.Pattern != nil {
			fmt.Fprintf(&b, " %s => %q", shorten(r.Pattern.String(), 40), r.Replace)
		}
		if r.FoldCase {
			b.WriteString(" fold_case")
		}
	case RuleRename:
		if r.ToPath != nil {
			b.WriteString(" to " + r.ToPath.Text)
		} else {
			b.WriteString(" to " + r.To)
		}
	}
	return b.String()
}

func shorten(s string, n int) string { return truncate([]byte(s), n) }

// Limits bound the work of one comparison. Zero fields take the defaults.
type Limits struct {
	// MaxDepth is the deepest nesting of arrays and objects accepted
	// (default 128); deeper documents are an error, too_deep.
	MaxDepth int
	// MaxBodyBytes bounds a body after content decoding (default 8 MiB), so
	// a small gzip bomb cannot become gigabytes; beyond it: too_large.
	MaxBodyBytes int64
	// MaxDiffs bounds the differences listed in a Result (default 100);
	// the rest are counted in MoreDiffs.
	MaxDiffs int
	// MaxValueBytes bounds the Old and New text of a difference (default
	// 256 bytes); longer values are cut at a character boundary and end
	// with "…" (so they are no longer valid JSON).
	MaxValueBytes int
}

// Default limits.
const (
	DefaultMaxDepth      = 128
	DefaultMaxBodyBytes  = 8 << 20
	DefaultMaxDiffs      = 100
	DefaultMaxValueBytes = 256
)

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxDiffs <= 0 {
		l.MaxDiffs = DefaultMaxDiffs
	}
	if l.MaxValueBytes <= 0 {
		l.MaxValueBytes = DefaultMaxValueBytes
	}
	return l
}

// Options are compiled comparison rules. They are immutable once built and
// safe for concurrent use by many goroutines. A nil *Options, like the zero
// value, compares exactly: status and body, and no header.
type Options struct {
	rules  []Rule
	limits Limits
	noise  NoiseThresholds
	m      matcher
	// tol holds the parsed bounds of each tolerance rule, by rule index.
	tol map[int32][2]*decimal

	compareAll    bool
	headerNames   []headerRule
	ignoreHeaders []headerRule

	renames bool // some rule renames: old is rewritten, and identical bytes prove nothing
	// deep says identical subtrees must still be walked: a filter looks at
	// the root, or a rename makes the two sides asymmetric.
	deep bool

	sessions sync.Pool // *session
}

type headerRule struct {
	name string // canonical
	rule int32
}

// New compiles rules into Options, with limits and noise thresholds (zero
// values take the defaults). Hit counts in a [Result] refer to rules by
// their index in this slice (see [Options.Rules]).
func New(rules []Rule, limits Limits, noise NoiseThresholds) (*Options, error) {
	if noise.Relative < 0 || noise.Absolute < 0 {
		return nil, errors.New("noise thresholds must not be negative")
	}
	o := &Options{rules: append([]Rule(nil), rules...), limits: limits.withDefaults(), noise: noise.withDefaults()}
	var errs []error
	for i := range o.rules {
		r := &o.rules[i]
		if err := o.add(int32(i), r); err != nil {
			errs = append(errs, fmt.Errorf("rule %d (%s): %w", i, r, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

func (o *Options) add(i int32, r *Rule) error {
	switch r.Kind {
	case RuleIgnoreHeader, RuleCompareHeader:
		if r.Header == "" {
			return errors.New("no header name")
		}
		h := headerRule{http.CanonicalHeaderKey(r.Header), i}
		if r.Kind == RuleIgnoreHeader {
			o.ignoreHeaders = append(o.ignoreHeaders, h)
		} else if r.Header == "*" {
			o.compareAll = true
		} else {
			o.headerNames = append(o.headerNames, h)
		}
		return nil
	case 0:
		return errors.New("no kind")
	}
	if int(r.Kind) >= len(kindNames) {
		return errors.New("unknown kind")
	}
	p := r.Path
	if p == nil {
		if !r.Kind.everywhere() {
			return errors.New("no path")
		}
		p = &Path{Text: "$..*", Segments: []Segment{Descendant(Wildcard())}}
	}
	if err := checkPath(p); err != nil {
		return err
	}
	if len(p.Segments) == 0 && (r.Kind == RuleIgnore || r.Kind == RuleRename || r.Kind.everywhere()) {
		return errors.New("the path $ selects the whole document, not a part of it")
	}
	switch r.Kind {
	case RuleTolerance:
		var bounds [2]*decimal
		for j, t := range []string{r.Absolute, r.Relative} {
			if t == "" {
				continue
			}
			if !isNumber([]byte(t)) || strings.HasPrefix(t, "-") {
				return fmt.Errorf("tolerance %q is not a non-negative number", t)
			}
			d := parseDecimal([]byte(t))
			bounds[j] = &d
		}
		if bounds[0] == nil && bounds[1] == nil {
			return errors.New("a tolerance needs an absolute or a relative bound")
		}
		if o.tol == nil {
			o.tol = make(map[int32][2]*decimal)
		}
		o.tol[i] = bounds
	case RuleNormalize:
		if r.Pattern == nil && !r.FoldCase {
			return errors.New("normalize needs a pattern or fold_case")
		}
	case RuleRename:
		o.renames, o.deep = true, true
		switch {
		case r.ToPath != nil:
			if err := checkSingular(r.ToPath); err != nil {
				return err
			}
		case r.To == "":
			return errors.New("rename needs a destination")
		}
		for _, sel := range p.Segments[len(p.Segments)-1].Selectors {
			if sel.Kind != SelectName {
				return errors.New("rename renames members: its path must end with member names")
			}
		}
	}
	for _, s := range p.Segments {
		for _, sel := range s.Selectors {
			if sel.Kind == SelectFilter && sel.UsesRoot {
				o.deep = true
			}
		}
	}
	o.m.add(p, i)
	return nil
}

func checkPath(p *Path) error {
	for _, s := range p.Segments {
		if len(s.Selectors) == 0 {
			return errors.New("a path segment without selectors")
		}
		for _, sel := range s.Selectors {
			switch sel.Kind {
			case SelectName, SelectIndex, SelectWildcard, SelectSlice:
			case SelectFilter:
				if sel.Filter == nil {
					return errors.New("a filter selector without a function")
				}
			default:
				return fmt.Errorf("selector kind %d", sel.Kind)
			}
		}
	}
	return nil
}

func checkSingular(p *Path) error {
	if len(p.Segments) == 0 {
		return errors.New("the destination $ is the whole document")
	}
	for _, s := range p.Segments {
		if s.Descendant || len(s.Selectors) != 1 || s.Selectors[0].Kind != SelectName && s.Selectors[0].Kind != SelectIndex {
			return fmt.Errorf("the destination %s must name one place: member names and indices only", p.Text)
		}
	}
	if last := p.Segments[len(p.Segments)-1].Selectors[0]; last.Kind != SelectName {
		return fmt.Errorf("the destination %s must end with a member name", p.Text)
	}
	return nil
}

// Rules returns the rules in the order that [Hit.Rule] refers to. The
// slice is shared: do not modify it.
func (o *Options) Rules() []Rule {
	if o == nil {
		return nil
	}
	return o.rules
}

// Limits returns the limits with defaults applied.
func (o *Options) Limits() Limits {
	if o == nil {
		return Limits{}.withDefaults()
	}
	return o.limits.withDefaults()
}

func (o *Options) release(s *session) {
	docs := [...]*document{&s.a, &s.b, &s.renamed}
	held, heldBytes := 0, 0
	for _, d := range docs {
		held += cap(d.nodes) + cap(d.names) + cap(d.keys) + cap(d.spans) + cap(d.open)
		heldBytes += cap(d.unescaped)
	}
	if held > 1<<18 || heldBytes > 1<<20 {
		return // keep the pool small after a huge document
	}
	for _, d := range docs {
		d.src, d.vals, d.digests = nil, nil, nil
	}
	s.w.o, s.w.a, s.w.b, s.w.hits = nil, nil, nil, nil
	o.sessions.Put(s)
}
