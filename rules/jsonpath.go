package rules

import (
	"fmt"
	"strings"

	"github.com/cutover/cutover/compare"
	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"
)

// This file translates JSONPath text into the compare package's paths.

// CompilePath parses an RFC 9535 JSONPath with github.com/theory/jsonpath
// and translates it into the compare package's terms.
func CompilePath(text string) (*compare.Path, error) {
	jp, err := jsonpath.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("bad JSONPath %q: %s", shortText(text, 80), strings.TrimPrefix(err.Error(), "jsonpath: "))
	}
	if n, ok := inexactNumber(text); ok {
		return nil, fmt.Errorf("JSONPath %q: the number %s has more than 15 significant digits or is beyond 1e±307: a filter compares numbers as 64-bit floats, which would take it for its neighbours (and %s for it); select the element another way, or drop the filter", shortText(text, 80), n, n)
	}
	p := &compare.Path{Text: text}
	for _, seg := range jp.Query().Segments() {
		var sels []compare.Selector
		for _, sel := range seg.Selectors() {
			switch s := sel.(type) {
			case spec.Name:
				sels = append(sels, compare.Name(string(s)))
			case spec.Index:
				sels = append(sels, compare.Index(int(s)))
			case spec.WildcardSelector:
				sels = append(sels, compare.Wildcard())
			case spec.SliceSelector:
				sels = append(sels, compare.Slice(s.Start(), s.End(), s.Step()))
			case *spec.FilterSelector:
				if f := s.String(); f == "?@" || f == "?(@)" {
					// The child's own existence: every child, as *.
					sels = append(sels, compare.Wildcard())
					continue
				}
				sels = append(sels, compare.Filter(s.Eval, usesRoot(s.String())))
			default:
				return nil, fmt.Errorf("JSONPath %q: unsupported selector %s", shortText(text, 80), sel)
			}
		}
		if seg.IsDescendant() {
			p.Segments = append(p.Segments, compare.Descendant(sels...))
		} else {
			p.Segments = append(p.Segments, compare.Child(sels...))
		}
	}
	return p, nil
}

// usesRoot reports whether a filter's text refers to the root ($) outside
// string literals.
func usesRoot(filter string) bool {
	found := false
	outsideStrings(filter, func(i int) int {
		found = found || filter[i] == '$'
		return i
	})
	return found
}

// outsideStrings calls f with the index of each byte of text outside its
// string literals; f returns the index of the last byte it consumed.
func outsideStrings(text string, f func(i int) int) {
	var quote byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		default:
			i = f(i)
		}
	}
}

func endsWithName(p *compare.Path) bool {
	last := p.Segments[len(p.Segments)-1]
	for _, s := range last.Selectors {
		if s.Kind != compare.SelectName {
			return false
		}
	}
	return true
}

func singular(p *compare.Path) bool {
	if len(p.Segments) == 0 {
		return false
	}
	for _, s := range p.Segments {
		if s.Descendant || len(s.Selectors) != 1 || s.Selectors[0].Kind != compare.SelectName && s.Selectors[0].Kind != compare.SelectIndex {
			return false
		}
	}
	return p.Segments[len(p.Segments)-1].Selectors[0].Kind == compare.SelectName
}

// wholeDocument reports whether ignoring p ignores everything: $ itself,
// or every child of the root ($.*, $..*).
func wholeDocument(p *compare.Path) bool {
	if len(p.Segments) == 0 {
		return true
	}
	if len(p.Segments) > 1 {
		return false
	}
	for _, s := range p.Segments[0].Selectors {
		if s.Kind == compare.SelectWildcard || s.Kind == compare.SelectSlice && everyElement(s) {
			return true
		}
	}
	return false
}

// everyElement reports whether a slice selects every element of an array
// of any length ($[:], $[0:], $[::-1], $[-1::-1]), by RFC 9535's bounds:
// a bound beyond ±2^62 stands for the absent one (no array is that long);
// any other leaves out the elements of a long enough array.
func everyElement(s compare.Selector) bool {
	const far = 1 << 62
	switch s.Step {
	case 1:
		return (s.Start == 0 || s.Start <= -far) && s.End >= far
	case -1:
		return (s.Start == -1 || s.Start >= far) && s.End <= -far
	}
	return false
}

func shortText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// inexactNumber returns the first number of a path's text, outside string
// literals, that a filter cannot compare exactly (compare.FloatExact).
func inexactNumber(text string) (string, bool) {
	var found string
	outsideStrings(text, func(i int) int {
		c := text[i]
		if found != "" || !(c == '-' || c >= '0' && c <= '9') || i > 0 && nameByte(text[i-1]) {
			return i
		}
		j := i + 1
		for j < len(text) && (text[j] >= '0' && text[j] <= '9' || strings.IndexByte(".eE+-", text[j]) >= 0) {
			j++
		}
		if n := text[i:j]; strings.ContainsAny(n, "0123456789") && !compare.FloatExact([]byte(strings.TrimPrefix(n, "-"))) {
			found = n
		}
		return j - 1
	})
	return found, found != ""
}

// nameByte reports whether c may continue a member name shorthand (@.a1).
func nameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}
