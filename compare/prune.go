package compare

// pruner builds the two go-cmp trees together. Where a pair of subtrees is
// proven equal by the walker it puts a same placeholder on both sides, so
// go-cmp (whose cost per node is high) only walks the parts that differ:
// one changed field in a long list costs about what the walker costs, not
// a full go-cmp run. The placeholders carry the hits the walker counted in
// them, which the Reporter adds. Tests build without pruning (noPrune) to
// keep go-cmp's verdicts independent of the walker's.
type pruner struct {
	w    *walker
	a, b *builder
}

// same stands for a subtree equal on both sides.
type same struct{ hits hits }

// Equal: both sides of a same pair are equal by construction.
func (same) Equal(same) bool { return true }

// pair builds nodes a and b, known or suspected to differ.
func (p *pruner) pair(a, b int32, fa, fb frame) (any, any) {
	na, nb := &p.a.d.nodes[a], &p.b.d.nodes[b]
	if !p.w.noPrune && na.kind == nb.kind && na.kind >= kArray {
		ea, eb := p.w.o.effects(p.a.t, fa), p.w.o.effects(p.b.t, fb)
		switch {
		case na.kind == kObject:
			return p.objects(a, b, fa, fb)
		case ea.unordered >= 0 && ea.unordered == eb.unordered:
			return p.bags(a, b, fa, fb, ea.unordered)
		case ea.unordered < 0 && eb.unordered < 0:
			return p.arrays(a, b, fa, fb)
		}
	}
	return p.a.build(a, fa), p.b.build(b, fb)
}

// child builds a pair of children: a same placeholder when the walker
// proves them equal, else their trees.
func (p *pruner) child(a, b int32, fa, fb frame) (any, any) {
	if !p.w.noPrune && !p.w.knownUnequal(a, b) {
		saved := p.w.hits
		p.w.hits = nil
		ka, kb := p.a.t.mark(), p.b.t.mark()
		eq := p.w.equal(a, b, fa, fb)
		p.a.t.rewind(ka)
		p.b.t.rewind(kb)
		h := p.w.hits
		p.w.hits = saved
		if eq {
			s := same{h}
			return s, s
		}
	}
	return p.pair(a, b, fa, fb)
}

func (p *pruner) objects(a, b int32, fa, fb frame) (any, any) {
	da, db := p.a.d, p.b.d
	ma := make(map[string]any, da.nodes[a].count)
	mb := make(map[string]any, db.nodes[b].count)
	type placed struct {
		node    int32
		f       frame
		ignored bool
	}
	ka, kb := p.a.t.mark(), p.b.t.mark()
	defer func() { p.a.t.rewind(ka); p.b.t.rewind(kb) }()
	inA := make(map[string]placed, da.nodes[a].count)
	for c := a + 1; c < da.nodes[a].end; c = da.nodes[c].end {
		key, cf, ign := p.a.member(ma, c, fa)
		inA[key] = placed{c, cf, ign}
	}
	ma2, mb2 := p.a.t.mark(), p.b.t.mark()
	for c := b + 1; c < db.nodes[b].end; c = db.nodes[c].end {
		key, cf, ign := p.b.member(mb, c, fb)
		mb2 = p.b.t.mark()
		x, ok := inA[key]
		switch {
		case ign:
		case ok && !x.ignored:
			ma[key], mb[key] = p.child(x.node, c, x.f, cf)
			delete(inA, key)
		default:
			mb[key] = p.b.build(c, cf)
		}
		p.a.t.rewind(ma2)
		p.b.t.rewind(mb2)
	}
	for key, x := range inA {
		if !x.ignored {
			ma[key] = p.a.build(x.node, x.f)
			p.a.t.rewind(ma2)
		}
	}
	return ma, mb
}

func (p *pruner) arrays(a, b int32, fa, fb frame) (any, any) {
	da, db := p.a.d, p.b.d
	la, lb := int(da.nodes[a].count), int(db.nodes[b].count)
	xa, xb := make(map[int]any, la), make(map[int]any, lb)
	ca, cb := a+1, b+1
	for i := range max(la, lb) {
		ka, kb := p.a.t.mark(), p.b.t.mark()
		var fca, fcb frame
		var ia, ib *ignored
		if i < la {
			fca, ia = p.a.element(ca, i, la, fa)
		}
		if i < lb {
			fcb, ib = p.b.element(cb, i, lb, fb)
		}
		switch {
		case i < la && i < lb && ia == nil && ib == nil:
			va, vb := p.child(ca, cb, fca, fcb)
			xa[i], xb[i] = va, vb
		default:
			if i < la {
				if ia != nil {
					xa[i] = *ia
				} else {
					xa[i] = p.a.build(ca, fca)
				}
			}
			if i < lb {
				if ib != nil {
					xb[i] = *ib
				} else {
					xb[i] = p.b.build(cb, fcb)
				}
			}
		}
		p.a.t.rewind(ka)
		p.b.t.rewind(kb)
		if i < la {
			ca = da.nodes[ca].end
		}
		if i < lb {
			cb = db.nodes[cb].end
		}
	}
	return xa, xb
}

func (p *pruner) bags(a, b int32, fa, fb frame, rule int32) (any, any) {
	ka, kb := p.a.t.mark(), p.b.t.mark()
	defer func() { p.a.t.rewind(ka); p.b.t.rewind(kb) }()
	ea, eb := p.a.slots(a, fa, rule), p.b.slots(b, fb, rule)
	xa := bag{Slots: make(map[string]slot, len(ea)), rule: rule}
	xb := bag{Slots: make(map[string]slot, len(eb)), rule: rule}
	inB := make(map[string]bagElem, len(eb))
	for _, e := range eb {
		inB[e.name] = e
	}
	ma, mb := p.a.t.mark(), p.b.t.mark()
	for _, e := range ea {
		y, ok := inB[e.name]
		if !ok {
			xa.Slots[e.name] = slot{p.a.build(e.node, e.f), e.index}
		} else {
			va, vb := p.child(e.node, y.node, e.f, y.f)
			xa.Slots[e.name], xb.Slots[e.name] = slot{va, e.index}, slot{vb, y.index}
			delete(inB, e.name)
		}
		p.a.t.rewind(ma)
		p.b.t.rewind(mb)
	}
	for _, y := range eb {
		if _, left := inB[y.name]; left {
			xb.Slots[y.name] = slot{p.b.build(y.node, y.f), y.index}
			p.b.t.rewind(mb)
		}
	}
	return xa, xb
}
