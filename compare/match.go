package compare

// This file: rule paths evaluated while walking a document: states carried
// from node to child, and the effects of the rules that select a node.

import "encoding/json"

// matcher runs every rule path at once over a document, as a set of states
// (path, next segment) carried from a node to its children: the cost per
// node is the number of live states, whatever the number of rules.
type matcher struct {
	paths []*Path
	rule  []int32
}

func (m *matcher) add(p *Path, rule int32) {
	m.paths = append(m.paths, p)
	m.rule = append(m.rule, rule)
}

type state struct{ path, seg int32 }

// frame is one node's states and the rules whose path selects it, as
// ranges of a tracker's buffers.
type frame struct{ s0, s1, m0, m1 int32 }

// tracker holds the states of the nodes on the current walk, stack-like:
// a child's frame lies above its parent's and is dropped by rewinding.
type tracker struct {
	m       *matcher
	states  []state
	matched []int32 // rule indices, ascending within a frame
}

// loc is a child location: a member name or an array index, and the child's
// value when a filter needs it.
type loc struct {
	name    []byte
	index   int
	length  int
	isIndex bool

	d    *document // the child is node of d, or
	node int32
	pure any // the child is this decoded value of a tree with root root
	root any
	has  bool // the location has a value (false for an absent member)
}

func (t *tracker) reset(m *matcher) {
	t.m, t.states, t.matched = m, t.states[:0], t.matched[:0]
}

type mark struct{ s, m int }

func (t *tracker) mark() mark { return mark{len(t.states), len(t.matched)} }

func (t *tracker) rewind(k mark) { t.states, t.matched = t.states[:k.s], t.matched[:k.m] }

// root returns the frame of a document's root.
func (t *tracker) root() frame {
	s0, m0 := int32(len(t.states)), int32(len(t.matched))
	for i, p := range t.m.paths {
		if len(p.Segments) == 0 {
			t.addMatch(m0, t.m.rule[i])
		} else {
			t.states = append(t.states, state{int32(i), 0})
		}
	}
	return frame{s0, int32(len(t.states)), m0, int32(len(t.matched))}
}

// child returns the frame of location c under a node with frame f.
func (t *tracker) child(f frame, c *loc) frame {
	m0 := int32(len(t.matched))
	// Most locations select nothing and only carry descendant segments
	// down ($..updated_at): the child then shares its parent's states.
	shared := true
	for i := f.s0; i < f.s1 && shared; i++ {
		st := t.states[i]
		seg := &t.m.paths[st.path].Segments[st.seg]
		shared = seg.Descendant && !selects(seg, c)
	}
	if shared {
		return frame{f.s0, f.s1, m0, m0}
	}
	s0 := int32(len(t.states))
	for i := f.s0; i < f.s1; i++ {
		st := t.states[i]
		p := t.m.paths[st.path]
		seg := &p.Segments[st.seg]
		if seg.Descendant {
			t.add(s0, st)
		}
		if selects(seg, c) {
			if int(st.seg)+1 == len(p.Segments) {
				t.addMatch(m0, t.m.rule[st.path])
			} else {
				t.add(s0, state{st.path, st.seg + 1})
			}
		}
	}
	return frame{s0, int32(len(t.states)), m0, int32(len(t.matched))}
}

func (t *tracker) add(s0 int32, st state) {
	for _, x := range t.states[s0:] {
		if x == st {
			return
		}
	}
	t.states = append(t.states, st)
}

func (t *tracker) addMatch(m0 int32, rule int32) {
	ms := t.matched[m0:]
	i := len(ms)
	for i > 0 && ms[i-1] >= rule {
		if ms[i-1] == rule {
			return
		}
		i--
	}
	t.matched = append(t.matched, 0)
	ms = t.matched[m0:]
	copy(ms[i+1:], ms[i:])
	ms[i] = rule
}

func selects(seg *Segment, c *loc) bool {
	for i := range seg.Selectors {
		s := &seg.Selectors[i]
		switch s.Kind {
		case SelectName:
			if !c.isIndex && string(c.name) == s.Name {
				return true
			}
		case SelectIndex:
			if c.isIndex && (s.Index == c.index || s.Index < 0 && c.length+s.Index == c.index) {
				return true
			}
		case SelectWildcard:
			return true
		case SelectSlice:
			if c.isIndex && s.inSlice(c.index, c.length) {
				return true
			}
		case SelectFilter:
			if c.has && s.Filter(c.value(), c.rootValue()) {
				return true
			}
		}
	}
	return false
}

func (c *loc) value() any {
	if c.d != nil {
		return c.d.value(c.node)
	}
	return c.pure
}

func (c *loc) rootValue() any {
	if c.d != nil {
		return c.d.value(0)
	}
	return c.root
}

// value is pure(n) for filters, decoded once per document: a filter in a
// descendant segment ($..[?@.x]) is evaluated at every location, by the
// walker, the pruner and the builders, and decoding each location's
// subtree anew cost size × depth per pass. Values share their subtrees, so
// filters must only read them (rename, which edits its tree, calls pure).
func (d *document) value(n int32) any {
	if len(d.vals) != len(d.nodes) {
		d.vals = make([]decoded, len(d.nodes))
	}
	if v := &d.vals[n]; v.ok {
		return v.v
	}
	var v any
	nd := &d.nodes[n]
	switch nd.kind {
	case kArray:
		a := make([]any, 0, nd.count)
		for c := n + 1; c < nd.end; c = d.nodes[c].end {
			a = append(a, d.value(c))
		}
		v = a
	case kObject:
		m := make(map[string]any, nd.count)
		for c := n + 1; c < nd.end; c = d.nodes[c].end {
			m[d.name(c)] = d.value(c)
		}
		v = m
	default:
		v = d.pure(n)
		if _, ok := v.(bigNumber); ok {
			// Compared with another of the answer's, by value:
			// 9007199254740993 and 9007199254740993.0 are one number.
			dec := parseDecimal(d.raw(n))
			v = bigNumber(dec.appendCanonical(nil))
		}
	}
	d.vals[n] = decoded{v, true}
	return v
}

// decoded is a memoized value of document.value.
type decoded struct {
	v  any
	ok bool
}

// pure decodes node n the way encoding/json decodes into any with
// UseNumber, for filters and for rewriting old under rename rules; a
// number a filter could not compare exactly is a bigNumber.
func (d *document) pure(n int32) any {
	nd := &d.nodes[n]
	switch nd.kind {
	case kNull:
		return nil
	case kFalse:
		return false
	case kTrue:
		return true
	case kNumber:
		raw := d.raw(n)
		if !FloatExact(raw) {
			return bigNumber(raw)
		}
		return json.Number(raw)
	case kString:
		return d.text(n)
	case kArray:
		a := make([]any, 0, nd.count)
		for c := n + 1; c < nd.end; c = d.nodes[c].end {
			a = append(a, d.pure(c))
		}
		return a
	default:
		m := make(map[string]any, nd.count)
		for c := n + 1; c < nd.end; c = d.nodes[c].end {
			m[d.name(c)] = d.pure(c)
		}
		return m
	}
}

// effects are the rules that apply at one location, the first (lowest
// index) of each kind, or -1.
type effects struct {
	ignore, unordered, tolerance, coerce                int32
	absentNull, absentArray, absentObject, subset, norm int32
}

var none = effects{-1, -1, -1, -1, -1, -1, -1, -1, -1}

func (o *Options) effects(t *tracker, f frame) effects {
	if f.m0 == f.m1 {
		return none
	}
	e := none
	for _, r := range t.matched[f.m0:f.m1] {
		var p *int32
		switch o.rules[r].Kind {
		case RuleIgnore:
			p = &e.ignore
		case RuleUnordered:
			p = &e.unordered
		case RuleTolerance:
			p = &e.tolerance
		case RuleCoerce:
			p = &e.coerce
		case RuleNormalize:
			p = &e.norm
		case RuleAbsentEqualsNull:
			p = &e.absentNull
		case RuleAbsentEqualsEmptyArray:
			p = &e.absentArray
		case RuleAbsentEqualsEmptyObject:
			p = &e.absentObject
		case RuleSubset:
			p = &e.subset
		default:
			continue
		}
		if *p < 0 {
			*p = r
		}
	}
	return e
}

// absorbs returns the rule that lets a member present on one side only
// (node n of d, on the new side when isNew) count as equal to its absence,
// or -1. Ignore rules are handled by the caller.
func (o *Options) absorbs(e *effects, d *document, n int32, isNew bool) int32 {
	nd := &d.nodes[n]
	switch {
	case e.absentNull >= 0 && nd.kind == kNull:
		return e.absentNull
	case e.absentArray >= 0 && nd.kind == kArray && nd.count == 0:
		return e.absentArray
	case e.absentObject >= 0 && nd.kind == kObject && nd.count == 0:
		return e.absentObject
	case e.subset >= 0 && isNew:
		return e.subset
	}
	return -1
}

// Select returns the normalized paths (RFC 9535 section 2.7) of the nodes
// of the JSON document doc that p selects, in document order: what a rule
// with this path acts on. Tools use it to show a rule's reach on a sample.
func (p *Path) Select(doc []byte) ([]string, error) {
	var d document
	if f := d.parse(doc, DefaultMaxDepth); f != nil {
		return nil, f
	}
	m := matcher{}
	m.add(p, 0)
	var t tracker
	t.reset(&m)
	var out []string
	var walk func(n int32, f frame, path []byte)
	walk = func(n int32, f frame, path []byte) {
		if f.m0 < f.m1 {
			out = append(out, string(path))
		}
		nd := &d.nodes[n]
		i := 0
		for c := n + 1; c < nd.end; c, i = d.nodes[c].end, i+1 {
			k := t.mark()
			l := loc{index: i, length: int(nd.count), isIndex: nd.kind == kArray, d: &d, node: c, has: true}
			child := appendIndex(path, i)
			if nd.kind == kObject {
				l.name = d.memberName(c)
				child = appendName(path, string(l.name))
			}
			walk(c, t.child(f, &l), child)
			t.rewind(k)
		}
	}
	walk(0, t.root(), []byte{'$'})
	return out, nil
}
