package compare

// This file: the public verdict types and Options.Compare, which runs
// status, headers and bodies through the fast path or go-cmp.

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
)

// Response is one backend's answer as the comparison sees it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Outcome is the verdict of one comparison.
type Outcome uint8

// Outcomes.
const (
	Match    Outcome = iota // the answers are the same under the rules
	Mismatch                // at least one difference survived the rules
	Error                   // the answers could not be compared; Result.Reason says why
)

func (o Outcome) String() string {
	switch o {
	case Match:
		return "match"
	case Mismatch:
		return "mismatch"
	default:
		return "error"
	}
}

// MarshalText writes the outcome's name, so JSON output says "match".
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Kind says how a value differs.
type Kind string

// Kinds of difference.
const (
	Changed Kind = "changed" // present in both, different values
	Missing Kind = "missing" // present in old, absent in new
	Extra   Kind = "extra"   // absent in old, present in new
	Type    Kind = "type"    // present in both, different JSON types
)

// Difference is one place where old and new disagree.
type Difference struct {
	// Path is a normalized JSONPath ($['a'][0]) for body differences ($ for
	// a whole body that is not JSON, or not JSON on both sides), "status"
	// for the status code and "header:Name" for a header. Under rename
	// rules, paths are in new's terms. In an unordered array an element's
	// index is its index in old, or in new when old has no such element.
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Old and New hold the compact JSON text of each side's value, empty
	// when that side has none, cut at Limits.MaxValueBytes (a cut value
	// ends with "…"), or, where both cut texts would read the same, cut to
	// that many bytes around their first difference ("…" at each cut). A
	// text body or header value is a JSON string; a binary body is a
	// string describing its size and hash.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// Hit says how many differences a rule absorbed in one comparison.
type Hit struct {
	Rule  int `json:"rule"` // index in Options.Rules
	Count int `json:"count"`
}

// Result is the verdict of one comparison with its explanation.
type Result struct {
	Outcome Outcome `json:"outcome"`
	// Reason is one of the Reason constants when Outcome is Error. With
	// Mismatch (the status codes differ) it says why the bodies could not
	// be compared.
	Reason string `json:"reason,omitempty"`
	// Detail explains Reason for people (an offset, a member name).
	Detail string `json:"detail,omitempty"`
	// Side is "old", "new" or "both": which answer Reason is about.
	Side  string       `json:"side,omitempty"`
	Diffs []Difference `json:"diffs,omitempty"`
	// MoreDiffs counts differences beyond Limits.MaxDiffs, not listed.
	MoreDiffs int `json:"more_diffs,omitempty"`
	// Hits lists the rules that absorbed differences, by rule index; nil
	// when none did.
	Hits []Hit `json:"hits,omitempty"`
	// Fast says the verdict came from the fast path, without go-cmp.
	Fast bool `json:"fast,omitempty"`
}

// session is the reusable memory of one comparison.
type session struct {
	a, b, renamed document
	w             walker
}

// comparison collects a Result.
type comparison struct {
	o     *Options
	lim   Limits
	diffs []Difference
	more  int
	hits  hits
	fail  *failure
	side  string
	slow  bool

	slowOnly bool
}

func (c *comparison) add(d Difference) {
	if len(c.diffs) >= c.lim.MaxDiffs {
		c.more++
		return
	}
	c.diffs = append(c.diffs, d)
}

func (c *comparison) failed(side string, f *failure) {
	if c.fail == nil {
		c.fail, c.side = f, side
	}
}

// Compare compares old and new under o: the status code always, the
// headers that rules name, and the bodies. A nil o compares exactly. It
// never panics: a panic inside (go-cmp's included) becomes an Error with
// reason panic.
func (o *Options) Compare(old, new Response) Result {
	if o == nil {
		o = &Options{}
	}
	return o.compare(old, new, false)
}

// compare is Compare; slowOnly skips the fast path (identical bytes and
// the walker), so tests can hold the two paths to the same verdicts.
func (o *Options) compare(old, new Response, slowOnly bool) (res Result) {
	defer func() {
		if p := recover(); p != nil {
			res = Result{Outcome: Error, Reason: ReasonPanic, Detail: fmt.Sprint(p)}
		}
	}()
	c := &comparison{o: o, lim: o.Limits(), slowOnly: slowOnly}
	if old.Status != new.Status {
		c.add(Difference{Path: "status", Kind: Changed, Old: strconv.Itoa(old.Status), New: strconv.Itoa(new.Status)})
	}
	o.compareHeaders(c, old.Header, new.Header)
	o.compareBodies(c, old, new)

	res = Result{Diffs: c.diffs, MoreDiffs: c.more, Fast: c.fail == nil && !c.slow}
	for r, n := range c.hits {
		if n > 0 {
			res.Hits = append(res.Hits, Hit{Rule: r, Count: int(n)})
		}
	}
	if c.fail != nil {
		res.Reason, res.Detail, res.Side = c.fail.reason, c.fail.detail, c.side
		if old.Status == new.Status {
			res.Outcome, res.Fast = Error, false
			return res
		}
	}
	if len(res.Diffs) > 0 || res.MoreDiffs > 0 {
		res.Outcome = Mismatch
	}
	return res
}

func (o *Options) compareBodies(c *comparison, old, new Response) {
	a, fa := decodeBody(old.Header, old.Body, c.lim.MaxBodyBytes)
	b, fb := decodeBody(new.Header, new.Body, c.lim.MaxBodyBytes)
	if c.failedEither(fa, fb) {
		return
	}
	ca, cb := classify(old.Header, a), classify(new.Header, b)
	switch {
	case ca != cb:
		d := Difference{Path: "$", Kind: Type, Old: c.describe(ca, a), New: c.describe(cb, b)}
		if ca == classEmpty {
			d.Kind = Extra
		} else if cb == classEmpty {
			d.Kind = Missing
		}
		c.add(d)
	case ca == classJSON:
		o.compareJSON(c, a, b)
	case !bytes.Equal(a, b):
		d := Difference{Path: "$", Kind: Changed, Old: c.describe(ca, a), New: c.describe(cb, b)}
		if ca == classText && d.Old == d.New {
			// Cut where they differ, not where they are the same.
			d.Old, d.New = truncateApart(appendJSONString(nil, string(a)), appendJSONString(nil, string(b)), c.lim.MaxValueBytes)
		}
		c.add(d)
	}
}

func (o *Options) compareJSON(c *comparison, a, b []byte) {
	s, _ := o.sessions.Get().(*session)
	if s == nil {
		s = new(session)
	}
	defer o.release(s)
	if !o.renames && !c.slowOnly && bytes.Equal(a, b) {
		// Identical bytes are the same document under any symmetric rule;
		// they must still be valid JSON.
		if f := s.a.validate(a, c.lim.MaxDepth); f != nil {
			c.failed("both", f)
		}
		return
	}
	fa := s.a.parse(a, c.lim.MaxDepth)
	fb := s.b.parse(b, c.lim.MaxDepth)
	if c.failedEither(fa, fb) {
		return
	}
	da := &s.a
	if o.renames {
		h, f := o.rename(&s.a, &s.renamed, c.lim)
		if f != nil {
			c.failed("old", f)
			return
		}
		c.hits.merge(o, h)
		da = &s.renamed
	}
	s.w.reset(o, da, &s.b)
	if !c.slowOnly && s.w.run() {
		c.hits.merge(o, s.w.hits)
		return
	}
	c.slow = true
	w := &s.w
	if c.slowOnly {
		w = nil
	}
	r := o.explain(da, &s.b, c.lim, w)
	if len(r.diffs) == 0 && r.more == 0 {
		if c.slowOnly {
			c.hits.merge(o, r.hits)
			return
		}
		c.failed("both", &failure{ReasonInconsistent, "the fast path saw a difference that go-cmp did not"})
		return
	}
	for _, d := range r.diffs {
		c.add(d)
	}
	c.more += r.more
	c.hits.merge(o, r.hits)
}

// failedEither records the failure of the old body, the new one or both,
// and reports whether there was one.
func (c *comparison) failedEither(fa, fb *failure) bool {
	switch {
	case fa != nil && fb != nil:
		c.failed("both", fa)
	case fa != nil:
		c.failed("old", fa)
	case fb != nil:
		c.failed("new", fb)
	default:
		return false
	}
	return true
}
