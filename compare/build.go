package compare

// This file: the slow path's trees: each parsed document built into the
// values go-cmp compares, with the rules' per-side effects resolved.

import (
	"bytes"
	"reflect"
	"slices"
	"strconv"
)

// The slow path hands go-cmp one tree per side, built from the parsed
// document with the per-side effect of every rule already resolved:
//
//   - objects are map[string]any and arrays map[int]any, by index, so
//     that go-cmp compares them by position (see explain.go);
//   - an unordered array is a bag whose slots pair equal elements (or
//     elements with the same key) under the same slot name on both sides;
//   - every scalar is a scalar whose Equal method applies normalize,
//     coerce and tolerance;
//   - an ignored value is an ignored placeholder, which counts as absent.
//
// Rules that need both sides (absent_equals_*, subset) are applied by a
// go-cmp FilterPath from the scopes recorded here.

// ignored stands for a value an ignore rule removed.
type ignored struct {
	rule int32
	d    *document
	n    int32
}

// Equal lets two ignored values compare equal.
func (ignored) Equal(ignored) bool { return true }

// scalar is a JSON scalar under the rules.
type scalar struct {
	o *Options
	s scalarInfo
}

// Equal applies the rules to two scalars; see Options.scalarEqual.
func (x scalar) Equal(y scalar) bool {
	eq, _ := x.o.scalarEqual(&x.s, &y.s)
	return eq
}

// bag is an unordered array: elements keyed by their slot name.
type bag struct {
	Slots map[string]slot
	rule  int32
}

// slot is one element of a bag, with its index in its own array (for
// paths; go-cmp ignores it).
type slot struct {
	Elem  any
	Index int
}

var (
	anyType  = reflect.TypeFor[any]()
	bagType  = reflect.TypeFor[bag]()
	slotType = reflect.TypeFor[slot]()
)

// scopeKey names an object member by its map and name.
type scopeKey struct {
	m    uintptr
	name string
}

// scope keeps a member's effects when a rule might let it be absent.
type scope struct {
	e effects
	d *document
	n int32
}

type builder struct {
	o      *Options
	d      *document
	t      *tracker
	isNew  bool
	scopes map[scopeKey]scope
}

func (b *builder) build(n int32, f frame) any {
	nd := &b.d.nodes[n]
	e := b.o.effects(b.t, f)
	switch nd.kind {
	case kObject:
		m := make(map[string]any, nd.count)
		for c := n + 1; c < nd.end; c = b.d.nodes[c].end {
			k := b.t.mark()
			key, cf, ignored := b.member(m, c, f)
			if !ignored {
				m[key] = b.build(c, cf)
			}
			b.t.rewind(k)
		}
		return m
	case kArray:
		if e.unordered >= 0 {
			return b.bag(n, f, e.unordered)
		}
		a := make(map[int]any, nd.count)
		i := 0
		for c := n + 1; c < nd.end; c, i = b.d.nodes[c].end, i+1 {
			k := b.t.mark()
			cf, ign := b.element(c, i, int(nd.count), f)
			if ign != nil {
				a[i] = *ign
			} else {
				a[i] = b.build(c, cf)
			}
			b.t.rewind(k)
		}
		return a
	}
	var s scalarInfo
	b.o.scalar(&s, b.d, n, &e, b.t, f)
	return scalar{b.o, s}
}

// member places member c of object m: it returns the member's name and
// frame, and stores an ignored placeholder (reporting true) when an ignore
// rule applies. It records the member's scope when a rule may let it be
// absent.
func (b *builder) member(m map[string]any, c int32, f frame) (string, frame, bool) {
	name := b.d.memberName(c)
	cf := b.t.child(f, &loc{name: name, d: b.d, node: c, has: true})
	ce := b.o.effects(b.t, cf)
	key := string(name)
	if ce.absentNull >= 0 || ce.absentArray >= 0 || ce.absentObject >= 0 || ce.subset >= 0 {
		if b.scopes == nil {
			b.scopes = make(map[scopeKey]scope)
		}
		b.scopes[scopeKey{reflect.ValueOf(m).Pointer(), key}] = scope{ce, b.d, c}
	}
	if ce.ignore >= 0 {
		m[key] = ignored{ce.ignore, b.d, c}
		return key, cf, true
	}
	return key, cf, false
}

// element returns the frame of element c (index i of l) and, when an
// ignore rule applies, its placeholder.
func (b *builder) element(c int32, i, l int, f frame) (frame, *ignored) {
	cf := b.t.child(f, &loc{index: i, length: l, isIndex: true, d: b.d, node: c, has: true})
	if ce := b.o.effects(b.t, cf); ce.ignore >= 0 {
		return cf, &ignored{ce.ignore, b.d, c}
	}
	return cf, nil
}

// bag builds an unordered array: slot names are the pairing keys (see
// slotKey), numbered in index order when several elements share one.
func (b *builder) bag(n int32, f frame, rule int32) bag {
	k := b.t.mark()
	defer b.t.rewind(k)
	els := b.slots(n, f, rule)
	out := bag{Slots: make(map[string]slot, len(els)), rule: rule}
	for _, el := range els {
		out.Slots[el.name] = slot{b.build(el.node, el.f), el.index}
	}
	return out
}

// bagElem is an element of an unordered array with its slot name.
type bagElem struct {
	key   []byte
	name  string
	node  int32
	index int
	f     frame
}

// slots names the elements of unordered array n that are not ignored:
// their pairing key (see slotKey), numbered in index order when several
// share one. Their frames stay on the tracker.
func (b *builder) slots(n int32, f frame, rule int32) []bagElem {
	nd := &b.d.nodes[n]
	by := b.o.rules[rule].By
	var els []bagElem
	i := 0
	for c := n + 1; c < nd.end; c, i = b.d.nodes[c].end, i+1 {
		cf := b.t.child(f, &loc{index: i, length: int(nd.count), isIndex: true, d: b.d, node: c, has: true})
		if b.o.effects(b.t, cf).ignore >= 0 {
			continue
		}
		els = append(els, bagElem{key: b.o.slotKey(nil, b.d, b.t, c, cf, by), node: c, index: i, f: cf})
	}
	slices.SortStableFunc(els, func(x, y bagElem) int { return bytes.Compare(x.key, y.key) })
	occ := 0
	for j := range els {
		if j > 0 && bytes.Equal(els[j].key, els[j-1].key) {
			occ++
		} else {
			occ = 0
		}
		els[j].name = string(els[j].key) + "#" + strconv.Itoa(occ)
	}
	return els
}
