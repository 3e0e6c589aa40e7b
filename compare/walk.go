package compare

// This file: the fast path: one pass over both documents that proves
// equality under the rules.

import (
	"bytes"
	"slices"
)

// walker is the fast path: it compares two parsed documents under the rules
// in one pass, building nothing, and stops at the first difference it
// cannot absorb. It only ever proves equality: when it returns false the
// documents go to go-cmp, which decides again and explains (see explain.go).
// Both read the rules through the same helpers (effects, absorbs, scalar,
// canon, slotKey), and property tests hold them to the same verdicts and
// the same per-rule hit counts.
type walker struct {
	o      *Options
	a, b   *document
	ta, tb tracker
	hits   hits
	mem    []member
	slots  []slotRef
	keys   []byte
	// unequal holds the pairs of containers that equal found to differ,
	// so that the pruner does not walk them again (see pruner.child).
	unequal map[[2]int32]struct{}

	noPrune bool // explain without pruning (tests of the two paths)
}

// member is an object member or array element on one side.
type member struct {
	name []byte
	node int32
	f    frame
	ign  int32 // ignore rule, or -1
}

// slotRef is an element of an unordered array with its pairing key.
type slotRef struct {
	k0, k1 int32 // key in walker.keys
	node   int32
	index  int32
	f      frame
}

func (w *walker) reset(o *Options, a, b *document) {
	w.restart(o, a, b)
	if len(w.unequal) > 1<<12 {
		w.unequal = nil // keep the pool small after a huge document
	}
	clear(w.unequal)
}

// restart is reset for a new walk over the same documents: the pairs known
// to differ stay known.
func (w *walker) restart(o *Options, a, b *document) {
	w.o, w.a, w.b = o, a, b
	w.ta.reset(&o.m)
	w.tb.reset(&o.m)
	w.hits = nil
	w.mem, w.slots, w.keys = w.mem[:0], w.slots[:0], w.keys[:0]
}

// run reports whether the documents are equal under the rules.
func (w *walker) run() bool {
	return w.equal(0, 0, w.ta.root(), w.tb.root())
}

func (w *walker) equal(a, b int32, fa, fb frame) bool {
	if w.equalNodes(a, b, fa, fb) {
		return true
	}
	if w.a.nodes[a].kind >= kArray && w.b.nodes[b].kind >= kArray {
		// Every pair that differs lies on the path to the first difference,
		// which the pruner then follows level by level: without this it
		// walked the subtree below each level again (size × depth).
		if w.unequal == nil {
			w.unequal = make(map[[2]int32]struct{})
		}
		w.unequal[[2]int32{a, b}] = struct{}{}
	}
	return false
}

// knownUnequal reports whether equal already found that a and b differ.
// A node's rule states depend only on its location, so the verdict for a
// pair of nodes does not change between walks of the same documents.
func (w *walker) knownUnequal(a, b int32) bool {
	_, ok := w.unequal[[2]int32{a, b}]
	return ok
}

func (w *walker) equalNodes(a, b int32, fa, fb frame) bool {
	na, nb := &w.a.nodes[a], &w.b.nodes[b]
	if !w.o.deep && na.kind == nb.kind && w.sameFrames(fa, fb) && bytes.Equal(w.a.raw(a), w.b.raw(b)) {
		// Identical text is an identical value, and with the same rule
		// states the rules act alike on both: nothing to compare and
		// nothing absorbed. (The states differ, for example, for elements
		// of an unordered array paired across different indices.)
		return true
	}
	ea, eb := w.o.effects(&w.ta, fa), w.o.effects(&w.tb, fb)
	if na.kind >= kArray || nb.kind >= kArray {
		switch {
		case na.kind != nb.kind:
			return false
		case na.kind == kObject:
			return w.objects(a, b, fa, fb)
		case ea.unordered != eb.unordered:
			return false
		case ea.unordered >= 0:
			return w.bag(a, b, fa, fb, ea.unordered)
		}
		return w.array(a, b, fa, fb)
	}
	if ea == none && eb == none {
		return rawEqual(w.a, a, w.b, b)
	}
	var sa, sb scalarInfo
	w.o.scalar(&sa, w.a, a, &ea, &w.ta, fa)
	w.o.scalar(&sb, w.b, b, &eb, &w.tb, fb)
	eq, credit := w.o.scalarEqual(&sa, &sb)
	if eq && credit >= 0 {
		w.hits.add(w.o, credit)
	}
	return eq
}

func (w *walker) sameFrames(fa, fb frame) bool {
	return slices.Equal(w.ta.states[fa.s0:fa.s1], w.tb.states[fb.s0:fb.s1]) &&
		slices.Equal(w.ta.matched[fa.m0:fa.m1], w.tb.matched[fb.m0:fb.m1])
}

// members appends the members of object n (frames are computed later,
// only for the members that need them).
func (w *walker) members(d *document, n int32) {
	for c := n + 1; c < d.nodes[n].end; c = d.nodes[c].end {
		w.mem = append(w.mem, member{name: d.memberName(c), node: c})
	}
}

// located returns m with its frame and ignore rule, under parent frame f.
func (w *walker) located(m member, t *tracker, d *document, f frame) member {
	m.f = t.child(f, &loc{name: m.name, d: d, node: m.node, has: true})
	m.ign = w.o.effects(t, m.f).ignore
	return m
}

func (w *walker) objects(a, b int32, fa, fb frame) bool {
	base := len(w.mem)
	defer func() { w.mem = w.mem[:base] }()
	w.members(w.a, a)
	mid := len(w.mem)
	w.members(w.b, b)
	end := len(w.mem)
	// With the same rule states on both sides, members of the same name
	// and text are equal and absorb nothing: skip them without a frame.
	same := !w.o.deep && w.sameFrames(fa, fb)
	pairOK := func(i, j int) bool {
		x, y := w.mem[i], w.mem[j]
		if same && w.a.nodes[x.node].kind == w.b.nodes[y.node].kind && bytes.Equal(w.a.raw(x.node), w.b.raw(y.node)) {
			return true
		}
		ka, kb := w.ta.mark(), w.tb.mark()
		ok := w.pair(w.located(x, &w.ta, w.a, fa), w.located(y, &w.tb, w.b, fb), true)
		w.ta.rewind(ka)
		w.tb.rewind(kb)
		return ok
	}
	aloneOK := func(i int, isNew bool) bool {
		t, d, f := &w.ta, w.a, fa
		if isNew {
			t, d, f = &w.tb, w.b, fb
		}
		k := t.mark()
		ok := w.alone(w.located(w.mem[i], t, d, f), isNew, true)
		t.rewind(k)
		return ok
	}
	if end-mid <= 64 && mid-base <= 64 {
		// Small objects: match names directly, trying the same position
		// first (both sides usually share an order).
		var used uint64
		for i := base; i < mid; i++ {
			name := w.mem[i].name
			j := mid + (i - base)
			if j >= end || used&(1<<(j-mid)) != 0 || !bytes.Equal(w.mem[j].name, name) {
				for j = mid; j < end; j++ {
					if used&(1<<(j-mid)) == 0 && bytes.Equal(w.mem[j].name, name) {
						break
					}
				}
			}
			var ok bool
			if j < end {
				used |= 1 << (j - mid)
				ok = pairOK(i, j)
			} else {
				ok = aloneOK(i, false)
			}
			if !ok {
				return false
			}
		}
		for j := mid; j < end; j++ {
			if used&(1<<(j-mid)) == 0 && !aloneOK(j, true) {
				return false
			}
		}
		return true
	}
	byName := func(x, y member) int { return bytes.Compare(x.name, y.name) }
	slices.SortFunc(w.mem[base:mid], byName)
	slices.SortFunc(w.mem[mid:end], byName)
	i, j := base, mid
	for i < mid || j < end {
		c := 0
		switch {
		case i == mid:
			c = 1
		case j == end:
			c = -1
		default:
			c = bytes.Compare(w.mem[i].name, w.mem[j].name)
		}
		var ok bool
		switch {
		case c == 0:
			ok = pairOK(i, j)
			i, j = i+1, j+1
		case c < 0:
			ok = aloneOK(i, false)
			i++
		default:
			ok = aloneOK(j, true)
			j++
		}
		if !ok {
			return false
		}
	}
	return true
}

// pair compares two members or elements at the same place.
func (w *walker) pair(x, y member, inObject bool) bool {
	switch {
	case x.ign >= 0 && y.ign >= 0:
		if !exactEqual(w.a, x.node, w.b, y.node) {
			w.hits.add(w.o, x.ign)
		}
		return true
	case x.ign >= 0: // ignored in old: absent there
		return w.alone(y, true, inObject)
	case y.ign >= 0:
		return w.alone(x, false, inObject)
	}
	ka, kb := w.ta.mark(), w.tb.mark()
	ok := w.equal(x.node, y.node, x.f, y.f)
	w.ta.rewind(ka)
	w.tb.rewind(kb)
	return ok
}

// alone decides about a value present on one side only: absorbed when it
// is ignored, or (for object members) when a rule lets it be absent.
func (w *walker) alone(m member, isNew, inObject bool) bool {
	if m.ign >= 0 {
		w.hits.add(w.o, m.ign)
		return true
	}
	if !inObject {
		return false
	}
	d, t := w.a, &w.ta
	if isNew {
		d, t = w.b, &w.tb
	}
	e := w.o.effects(t, m.f)
	if r := w.o.absorbs(&e, d, m.node, isNew); r >= 0 {
		w.hits.add(w.o, r)
		return true
	}
	return false
}

// element returns element i (node n) of an array of length l as a member.
func (w *walker) element(d *document, t *tracker, f frame, n int32, i, l int) member {
	cf := t.child(f, &loc{index: i, length: l, isIndex: true, d: d, node: n, has: true})
	return member{node: n, f: cf, ign: w.o.effects(t, cf).ignore}
}

func (w *walker) array(a, b int32, fa, fb frame) bool {
	la, lb := int(w.a.nodes[a].count), int(w.b.nodes[b].count)
	ca, cb := a+1, b+1
	same := la == lb && !w.o.deep && w.sameFrames(fa, fb)
	for i := range max(la, lb) {
		ka, kb := w.ta.mark(), w.tb.mark()
		var ok bool
		switch {
		case same && w.a.nodes[ca].kind == w.b.nodes[cb].kind && bytes.Equal(w.a.raw(ca), w.b.raw(cb)):
			ok = true
		case i >= lb:
			ok = w.alone(w.element(w.a, &w.ta, fa, ca, i, la), false, false)
		case i >= la:
			ok = w.alone(w.element(w.b, &w.tb, fb, cb, i, lb), true, false)
		default:
			ok = w.pair(w.element(w.a, &w.ta, fa, ca, i, la), w.element(w.b, &w.tb, fb, cb, i, lb), false)
		}
		w.ta.rewind(ka)
		w.tb.rewind(kb)
		if !ok {
			return false
		}
		if i < la {
			ca = w.a.nodes[ca].end
		}
		if i < lb {
			cb = w.b.nodes[cb].end
		}
	}
	return true
}

// slots appends the elements of unordered array n that are not ignored,
// with their pairing keys, sorted by key then index.
func (w *walker) slotsOf(d *document, t *tracker, n int32, f frame, by string) {
	s0 := len(w.slots)
	l := int(d.nodes[n].count)
	i := 0
	for c := n + 1; c < d.nodes[n].end; c, i = d.nodes[c].end, i+1 {
		m := w.element(d, t, f, c, i, l)
		if m.ign >= 0 {
			continue
		}
		k0 := len(w.keys)
		w.keys = w.o.slotKey(w.keys, d, t, c, m.f, by)
		w.slots = append(w.slots, slotRef{int32(k0), int32(len(w.keys)), c, int32(i), m.f})
	}
	slices.SortFunc(w.slots[s0:], func(x, y slotRef) int {
		if c := bytes.Compare(w.keys[x.k0:x.k1], w.keys[y.k0:y.k1]); c != 0 {
			return c
		}
		return int(x.index - y.index)
	})
}

func (w *walker) bag(a, b int32, fa, fb frame, rule int32) bool {
	s0, k0, ka, kb := len(w.slots), len(w.keys), w.ta.mark(), w.tb.mark()
	defer func() { w.slots, w.keys = w.slots[:s0], w.keys[:k0]; w.ta.rewind(ka); w.tb.rewind(kb) }()
	by := w.o.rules[rule].By
	w.slotsOf(w.a, &w.ta, a, fa, by)
	mid := len(w.slots)
	w.slotsOf(w.b, &w.tb, b, fb, by)
	if mid-s0 != len(w.slots)-mid {
		return false
	}
	moved := false
	for i := 0; i < mid-s0; i++ {
		x, y := w.slots[s0+i], w.slots[mid+i]
		if !bytes.Equal(w.keys[x.k0:x.k1], w.keys[y.k0:y.k1]) {
			return false
		}
		moved = moved || x.index != y.index
		if !w.pair(member{node: x.node, f: x.f, ign: -1}, member{node: y.node, f: y.f, ign: -1}, false) {
			return false
		}
	}
	if moved {
		// The rule absorbed the order: elements were paired across
		// different indices.
		w.hits.add(w.o, rule)
	}
	return true
}

// hits counts, per rule index, the differences rules absorbed. It stays nil
// (no allocation) until a rule absorbs something.
type hits []int32

func (h *hits) add(o *Options, rule int32) {
	if *h == nil {
		*h = make(hits, len(o.rules))
	}
	(*h)[rule]++
}

func (h *hits) merge(o *Options, g hits) {
	for r, n := range g {
		if n > 0 {
			if *h == nil {
				*h = make(hits, len(o.rules))
			}
			(*h)[r] += n
		}
	}
}
