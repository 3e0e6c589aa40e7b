package compare

// This file: compiled JSONPath in this package's terms, normalized path text
// and FoldPath.

import (
	"strconv"
	"strings"
)

// Path is a compiled JSONPath query (RFC 9535) in the terms this package
// needs to decide, while it walks two documents, whether a rule applies at a
// location. The rules package builds Paths from github.com/theory/jsonpath's
// parse tree; tests and examples use [NewPath] with [Child], [Descendant] and
// the selector constructors.
type Path struct {
	// Text is the path as the user wrote it; it names the rule in
	// descriptions and messages.
	Text     string
	Segments []Segment
}

// Segment is one step of a path: a child segment ([...]) selects among the
// children of the current nodes, a descendant segment (..[...]) among the
// children of the current nodes and of all their descendants.
type Segment struct {
	Descendant bool
	Selectors  []Selector
}

// SelectorKind tells which field of a [Selector] is meaningful.
type SelectorKind uint8

// Selector kinds of RFC 9535 section 2.3.
const (
	SelectName     SelectorKind = iota + 1 // an object member by name
	SelectIndex                            // an array element; negative counts from the end
	SelectWildcard                         // every child
	SelectSlice                            // array elements start:end:step
	SelectFilter                           // children for which Filter is true
)

// Selector picks children of a node.
type Selector struct {
	Kind  SelectorKind
	Name  string // SelectName
	Index int    // SelectIndex
	// Start, End and Step are a SelectSlice's bounds with RFC 9535 defaults
	// already applied, as github.com/theory/jsonpath's SliceSelector gives
	// them (an absent end is math.MaxInt for a positive step).
	Start, End, Step int
	// Filter reports whether a child is selected. Node and root are decoded
	// the way encoding/json decodes into any with UseNumber (json.Number for
	// numbers), so a JSONPath library can evaluate them directly.
	Filter func(node, root any) bool
	// UsesRoot says the filter refers to the root ($), so its verdict on two
	// identical subtrees may differ between two documents.
	UsesRoot bool
}

// NewPath returns a path with its text and segments.
func NewPath(text string, segments ...Segment) *Path {
	return &Path{Text: text, Segments: segments}
}

// Child returns a child segment.
func Child(sel ...Selector) Segment { return Segment{Selectors: sel} }

// Descendant returns a descendant segment.
func Descendant(sel ...Selector) Segment { return Segment{Descendant: true, Selectors: sel} }

// Name selects an object member.
func Name(name string) Selector { return Selector{Kind: SelectName, Name: name} }

// Index selects an array element; -1 is the last one.
func Index(i int) Selector { return Selector{Kind: SelectIndex, Index: i} }

// Wildcard selects every child.
func Wildcard() Selector { return Selector{Kind: SelectWildcard} }

// Slice selects array elements start:end:step with defaults applied.
func Slice(start, end, step int) Selector {
	return Selector{Kind: SelectSlice, Start: start, End: end, Step: step}
}

// Filter selects the children for which fn is true; usesRoot says whether fn
// looks at the root of the document.
func Filter(fn func(node, root any) bool, usesRoot bool) Selector {
	return Selector{Kind: SelectFilter, Filter: fn, UsesRoot: usesRoot}
}

// String returns the path's text.
func (p *Path) String() string { return p.Text }

// inSlice reports whether index i of an array of length n is selected by
// the slice, following RFC 9535 section 2.3.4.2.
func (s *Selector) inSlice(i, n int) bool {
	norm := func(x int) int {
		if x >= 0 {
			return x
		}
		return n + x
	}
	start, end := norm(s.Start), norm(s.End)
	switch {
	case s.Step > 0:
		lo, hi := max(min(start, n), 0), max(min(end, n), 0)
		return i >= lo && i < hi && (i-lo)%s.Step == 0
	case s.Step < 0:
		lo, hi := max(min(end, n-1), -1), max(min(start, n-1), -1)
		return i > lo && i <= hi && (hi-i)%(-s.Step) == 0
	}
	return false
}

// appendName appends a normalized path member selector (RFC 9535 section
// 2.7): ['name'] with ', \ and control characters escaped.
func appendName(b []byte, name string) []byte {
	b = append(b, "['"...)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch c {
		case '\'':
			b = append(b, `\'`...)
		case '\\':
			b = append(b, `\\`...)
		case '\b':
			b = append(b, `\b`...)
		case '\f':
			b = append(b, `\f`...)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '\t':
			b = append(b, `\t`...)
		default:
			if c < 0x20 {
				b = append(b, `\u00`...)
				b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, "']"...)
}

func appendIndex(b []byte, i int) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, ']')
}

// FoldPath replaces every array index of a normalized path with [*], so
// that differences at $['items'][3]['id'] and $['items'][7]['id'] count as
// one field: FoldPath("$['items'][3]['id']") is "$['items'][*]['id']".
// Text that is not a normalized path (status, header:Name) is returned as is.
func FoldPath(path string) string {
	if !strings.HasPrefix(path, "$") || !strings.Contains(path, "[") {
		return path
	}
	var b strings.Builder
	b.Grow(len(path))
	inName := false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case inName && c == '\\' && i+1 < len(path):
			b.WriteByte(c)
			b.WriteByte(path[i+1])
			i++
			continue
		case inName && c == '\'':
			inName = false
		case !inName && c == '\'':
			inName = true
		case !inName && c == '[' && i+1 < len(path) && (path[i+1] >= '0' && path[i+1] <= '9' || path[i+1] == '-'):
			j := i + 1
			for j < len(path) && path[j] != ']' {
				j++
			}
			b.WriteString("[*]")
			i = j
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
