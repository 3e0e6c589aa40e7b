package compare

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

// members appends the members of object n with their frames.
func (w *walker) members(d *document, t *tracker, n int32, f frame) {
	for c := n + 1; c < d.nodes[n].end; c = d.nodes[c].end {
		name := d.memberName(c)
		cf := t.child(f, &loc{name: name, d: d, node: c, has: true})
		w.mem = append(w.mem, member{name, c, cf, w.o.effects(t, cf).ignore})
	}
}

func (w *walker) objects(a, b int32, fa, fb frame) bool {
	base, ka, kb := len(w.mem), w.ta.mark(), w.tb.mark()
	defer func() { w.mem = w.mem[:base]; w.ta.rewind(ka); w.tb.rewind(kb) }()
	w.members(w.a, &w.ta, a, fa)
	mid := len(w.mem)
	w.members(w.b, &w.tb, b, fb)
	end := len(w.mem)
	lockstep := mid-base == end-mid
	for i := 0; lockstep && i < mid-base; i++ {
		lockstep = bytes.Equal(w.mem[base+i].name, w.mem[mid+i].name)
	}
	if !lockstep {
		byName := func(x, y member) int { return bytes.Compare(x.name, y.name) }
		slices.SortFunc(w.mem[base:mid], byName)
		slices.SortFunc(w.mem[mid:end], byName)
	}
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
			ok = w.pair(w.mem[i], w.mem[j], true)
			i, j = i+1, j+1
		case c < 0:
			ok = w.alone(w.mem[i], false, true)
			i++
		default:
			ok = w.alone(w.mem[j], true, true)
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
	for i := range max(la, lb) {
		ka, kb := w.ta.mark(), w.tb.mark()
		var ok bool
		switch {
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
