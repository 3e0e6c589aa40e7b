package compare

// This file: go-cmp: the options and the Reporter that turn its report into
// Differences and rule hits.

import (
	"reflect"
	"slices"
	"strings"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// explain runs go-cmp over the two built trees and returns every difference
// it reports, with the per-rule hits that its Reporter saw. With w, pairs
// of subtrees that the walker proves equal are pruned first (see prune.go);
// without, go-cmp sees everything.
func (o *Options) explain(a, b *document, lim Limits, w *walker) *reporter {
	if w != nil {
		w.restart(o, a, b) // keeps the pairs the fast path saw differ
	} else {
		w = &walker{o: o, a: a, b: b}
		w.ta.reset(&o.m)
		w.tb.reset(&o.m)
		w.noPrune = true
	}
	ba := &builder{o: o, d: a, t: &w.ta}
	bb := &builder{o: o, d: b, t: &w.tb, isNew: true}
	pr := pruner{w: w, a: ba, b: bb}
	xa, xb := pr.pair(0, 0, w.ta.root(), w.tb.root())
	r := &reporter{o: o, lim: lim, scopes: [2]map[scopeKey]scope{ba.scopes, bb.scopes}}
	cmp.Equal(xa, xb,
		// Arrays are built as map[int]any: they compare by position.
		// go-cmp's own slice diff finds an edit script instead, with a
		// randomised tie-break (see internal/diff.randBool): paths would
		// change from run to run. (Not a Transformer from []any: go-cmp
		// re-runs a transformer and compares its whole output at every
		// triangular-numbered call, superlinear in depth.)
		cmpopts.IgnoreUnexported(bag{}),
		// slot.Index is not compared. Not cmpopts.IgnoreFields: its filter
		// scans the whole path at every node (size × depth).
		cmp.FilterPath(slotIndex, cmp.Ignore()),
		cmp.FilterPath(r.absorbed, cmp.Ignore()),
		cmp.Reporter(r),
	)
	return r
}

// slotIndex reports whether p ends at the Index field of a slot.
func slotIndex(p cmp.Path) bool {
	sf, ok := p.Last().(cmp.StructField)
	return ok && sf.Name() == "Index" && len(p) >= 2 && p.Index(-2).Type() == slotType
}

// reporter is the cmp.Reporter that turns go-cmp's report into
// Differences, and counts what each rule absorbed.
type reporter struct {
	o      *Options
	lim    Limits
	scopes [2]map[scopeKey]scope // old, new
	path   cmp.Path
	diffs  []Difference
	more   int
	hits   hits
	bags   []bagFrame
}

// bagFrame follows an unordered array: it absorbed a difference (of order)
// when it paired elements across different indices.
type bagFrame struct {
	depth int
	moved bool
	rule  int32
}

// PushStep implements cmp.Reporter.
func (r *reporter) PushStep(ps cmp.PathStep) {
	r.path = append(r.path, ps)
	if ps.Type() == bagType {
		vx, _ := ps.Values()
		r.bags = append(r.bags, bagFrame{depth: len(r.path), rule: vx.Interface().(bag).rule})
	}
}

// PopStep implements cmp.Reporter.
func (r *reporter) PopStep() {
	if n := len(r.bags); n > 0 && r.bags[n-1].depth == len(r.path) {
		if f := r.bags[n-1]; f.moved {
			r.hits.add(r.o, f.rule)
		}
		r.bags = r.bags[:n-1]
	}
	r.path = r.path[:len(r.path)-1]
}

// Report implements cmp.Reporter.
func (r *reporter) Report(rs cmp.Result) {
	switch {
	case rs.Equal() && rs.ByIgnore():
		r.ignored()
	case rs.Equal() && rs.ByMethod():
		vx, vy := r.path.Last().Values()
		if x, ok := vx.Interface().(same); ok {
			r.hits.merge(r.o, x.hits)
			return
		}
		if x, ok := vx.Interface().(scalar); ok {
			y := vy.Interface().(scalar)
			if _, credit := r.o.scalarEqual(&x.s, &y.s); credit >= 0 {
				r.hits.add(r.o, credit)
			}
		}
	case !rs.Equal():
		r.record()
	}
}

// ignored credits the rule behind an Ignore go-cmp applied.
func (r *reporter) ignored() {
	switch s := r.path.Last().(type) {
	case cmp.StructField:
		if s.Name() == "Index" {
			if vx, vy := s.Values(); vx.Int() != vy.Int() && len(r.bags) > 0 {
				r.bags[len(r.bags)-1].moved = true
			}
		}
	case cmp.MapIndex:
		vx, vy := s.Values()
		gx, okx := placeholder(vx)
		gy, oky := placeholder(vy)
		switch {
		case okx && oky:
			if !exactEqual(gx.d, gx.n, gy.d, gy.n) {
				r.hits.add(r.o, gx.rule)
			}
		case okx && !vy.IsValid():
			r.hits.add(r.o, gx.rule)
		case oky && !vx.IsValid():
			r.hits.add(r.o, gy.rule)
		default:
			if rule := r.absorber(r.path); rule >= 0 {
				r.hits.add(r.o, rule)
			}
		}
	}
}

func placeholder(v reflect.Value) (ignored, bool) {
	if !v.IsValid() {
		return ignored{}, false
	}
	g, ok := v.Interface().(ignored)
	return g, ok
}

// absentLike reports whether a map entry counts as absent: missing, or
// ignored.
func absentLike(v reflect.Value) bool {
	_, ok := placeholder(v)
	return !v.IsValid() || ok
}

// absorbed is the FilterPath of the Ignore option: a value present on one
// side only that is ignored, or that a rule lets be absent.
func (r *reporter) absorbed(p cmp.Path) bool {
	mi, ok := p.Last().(cmp.MapIndex)
	if !ok || mi.Type() != anyType {
		return false
	}
	vx, vy := mi.Values()
	ax, ay := absentLike(vx), absentLike(vy)
	switch {
	case ax && ay:
		return true
	case !ax && !ay:
		return false
	}
	return r.absorber(p) >= 0
}

// absorber returns the rule that lets the member at the end of p, present
// on one side only, be absent on the other; or -1.
func (r *reporter) absorber(p cmp.Path) int32 {
	mi := p.Last().(cmp.MapIndex)
	if mi.Key().Kind() != reflect.String || len(p) < 2 {
		return -1
	}
	vx, _ := mi.Values()
	px, py := p.Index(-2).Values()
	side, parent := 0, px
	if absentLike(vx) {
		side, parent = 1, py
	}
	if parent.Kind() == reflect.Interface {
		parent = parent.Elem()
	}
	if parent.Kind() != reflect.Map {
		return -1
	}
	sc, ok := r.scopes[side][scopeKey{parent.Pointer(), mi.Key().String()}]
	if !ok {
		return -1
	}
	return r.o.absorbs(&sc.e, sc.d, sc.n, side == 1)
}

// record adds the difference at the current path.
func (r *reporter) record() {
	if len(r.diffs) >= r.lim.MaxDiffs {
		r.more++
		return
	}
	vx, vy := r.path.Last().Values()
	vx, vy = elem(vx), elem(vy)
	d := Difference{Path: r.jsonPath()}
	switch {
	case absentLike(vx):
		d.Kind, d.New = Extra, r.render(vy)
	case absentLike(vy):
		d.Kind, d.Old = Missing, r.render(vx)
	default:
		d.Kind, d.Old, d.New = Changed, r.render(vx), r.render(vy)
		if d.Old == d.New {
			// Both cut before they differ: cut them where they do, from
			// renders long enough to reach it (bounded: 1 MiB).
			const far = 1 << 20
			d.Old, d.New = truncateApart(renderValue(nil, vx.Interface(), far), renderValue(nil, vy.Interface(), far), r.lim.MaxValueBytes)
		}
		if jsonType(vx) != jsonType(vy) {
			d.Kind = Type
		}
	}
	r.diffs = append(r.diffs, d)
}

func elem(v reflect.Value) reflect.Value {
	if v.IsValid() && v.Kind() == reflect.Interface {
		return v.Elem()
	}
	return v
}

// jsonType names the JSON type of a built value as written (before
// coerce): "1" and 1 differ in type, true and false do not.
func jsonType(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case scalar:
		k := x.s.d.nodes[x.s.n].kind
		if k == kTrue {
			k = kFalse
		}
		return k.String()
	case map[string]any:
		return "object"
	case map[int]any:
		return "array"
	case bag:
		return "array"
	}
	return v.Type().String()
}

// jsonPath turns the go-cmp path into a normalized JSONPath.
func (r *reporter) jsonPath() string {
	b := []byte{'$'}
	for _, step := range r.path {
		mi, ok := step.(cmp.MapIndex)
		if !ok {
			continue
		}
		switch {
		case mi.Type() == slotType:
			vx, vy := mi.Values()
			if !vx.IsValid() {
				vx = vy
			}
			b = appendIndex(b, vx.Interface().(slot).Index)
		case mi.Key().Kind() == reflect.Int:
			b = appendIndex(b, int(mi.Key().Int()))
		default:
			b = appendName(b, mi.Key().String())
		}
	}
	return string(b)
}

// render writes a built value as compact JSON, cut at the value limit.
func (r *reporter) render(v reflect.Value) string {
	if !v.IsValid() {
		return ""
	}
	lim := r.lim.MaxValueBytes
	out := renderValue(nil, v.Interface(), lim+1)
	return truncate(out, lim)
}

// renderValue appends v as compact JSON, stopping soon after max bytes.
func renderValue(dst []byte, v any, max int) []byte {
	if len(dst) > max {
		return dst
	}
	switch x := v.(type) {
	case scalar:
		return renderNode(dst, x.s.d, x.s.n)
	case ignored:
		return renderNode(dst, x.d, x.n)
	case slot:
		return renderValue(dst, x.Elem, max)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSONString(dst, k)
			dst = append(dst, ':')
			if dst = renderValue(dst, x[k], max); len(dst) > max {
				return dst
			}
		}
		return append(dst, '}')
	case map[int]any:
		dst = append(dst, '[')
		for i := range len(x) {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst = renderValue(dst, x[i], max); len(dst) > max {
				return dst
			}
		}
		return append(dst, ']')
	case bag:
		els := make([]slot, 0, len(x.Slots))
		for _, s := range x.Slots {
			els = append(els, s)
		}
		slices.SortFunc(els, func(a, b slot) int { return a.Index - b.Index })
		dst = append(dst, '[')
		for i, s := range els {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst = renderValue(dst, s.Elem, max); len(dst) > max {
				return dst
			}
		}
		return append(dst, ']')
	}
	return append(dst, strings.TrimSpace(reflect.ValueOf(v).String())...)
}

// renderNode appends a node's text, compacted; strings keep their quotes.
func renderNode(dst []byte, d *document, n int32) []byte {
	nd := &d.nodes[n]
	if nd.kind == kString {
		dst = append(dst, '"')
		dst = append(dst, d.raw(n)...)
		return append(dst, '"')
	}
	return compact(dst, d.raw(n))
}
