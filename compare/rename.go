package compare

// This file: rename rules: old rewritten into new's terms before anything
// else.

import (
	"encoding/json"
	"slices"
	"strings"
)

// rename rewrites old (d) into out under the rename rules, so that every
// later step sees old in new's terms. Every rename path is evaluated on old
// as received; the first rename rule that selects a member applies.
// Renames are applied deepest first; one whose destination already exists,
// or whose destination parent is not an object, is skipped (the comparison
// then shows both names).
func (o *Options) rename(d, out *document, lim Limits) (hits, *failure) {
	root := d.pure(0)
	var t tracker
	t.reset(&o.m)
	type target struct {
		parent map[string]any
		key    string
		rule   int32
	}
	var found []target
	// The walk follows the tree it will edit (v) and, beside it, d's node
	// of the same value (n): filters read the node's value, as they do
	// everywhere else (numbers float64 cannot hold compared by value), and
	// what is moved is the tree's value, as written.
	type member struct {
		key  string
		node int32
	}
	var walk func(v any, n int32, f frame)
	walk = func(v any, n int32, f frame) {
		switch x := v.(type) {
		case map[string]any:
			members := make([]member, 0, len(x))
			for c := n + 1; c < d.nodes[n].end; c = d.nodes[c].end {
				members = append(members, member{d.name(c), c})
			}
			slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
			for _, mb := range members {
				m := t.mark()
				cf := t.child(f, &loc{name: []byte(mb.key), d: d, node: mb.node, has: true})
				for _, r := range t.matched[cf.m0:cf.m1] {
					if o.rules[r].Kind == RuleRename {
						found = append(found, target{x, mb.key, r})
						break
					}
				}
				walk(x[mb.key], mb.node, cf)
				t.rewind(m)
			}
		case []any:
			c := n + 1
			for i, e := range x {
				m := t.mark()
				walk(e, c, t.child(f, &loc{index: i, length: len(x), isIndex: true, d: d, node: c, has: true}))
				t.rewind(m)
				c = d.nodes[c].end
			}
		}
	}
	walk(root, 0, t.root())
	var h hits
	for i := len(found) - 1; i >= 0; i-- {
		tg := found[i]
		v, ok := tg.parent[tg.key]
		if !ok {
			continue
		}
		r := &o.rules[tg.rule]
		dst, name := tg.parent, r.To
		if r.ToPath != nil {
			if dst, name = destination(root, r.ToPath); dst == nil {
				continue
			}
		}
		if _, taken := dst[name]; taken {
			continue
		}
		dst[name] = v
		delete(tg.parent, tg.key)
		h.add(o, tg.rule)
	}
	if f := out.parse(encode(nil, root), lim.MaxDepth); f != nil {
		return nil, f
	}
	return h, nil
}

// destination finds (making objects on the way) the object and member name
// that a singular path names, or nil when the way is blocked; then the
// objects it made are taken out again, so that old gains nothing that is
// not in it (a missing member followed by an index made {} in old).
func destination(root any, p *Path) (map[string]any, string) {
	cur := root
	segs := p.Segments
	// made is the object where the first missing member was made: every
	// object made after it is inside it.
	var made map[string]any
	var madeName string
	blocked := func() (map[string]any, string) {
		if made != nil {
			delete(made, madeName)
		}
		return nil, ""
	}
	for i, s := range segs {
		sel := s.Selectors[0]
		if i == len(segs)-1 {
			m, ok := cur.(map[string]any)
			if !ok {
				return blocked()
			}
			return m, sel.Name
		}
		switch x := cur.(type) {
		case map[string]any:
			if sel.Kind != SelectName {
				return blocked()
			}
			next, ok := x[sel.Name]
			if !ok {
				next = map[string]any{}
				x[sel.Name] = next
				if made == nil {
					made, madeName = x, sel.Name
				}
			}
			cur = next
		case []any:
			j := sel.Index
			if j < 0 {
				j += len(x)
			}
			if sel.Kind != SelectIndex || j < 0 || j >= len(x) {
				return blocked()
			}
			cur = x[j]
		default:
			return blocked()
		}
	}
	return nil, ""
}

// encode writes a decoded value as JSON with sorted member names.
func encode(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		if x {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case json.Number:
		return append(dst, x...)
	case bigNumber:
		return append(dst, x...)
	case string:
		return appendJSONString(dst, x)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = encode(dst, e)
		}
		return append(dst, ']')
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
			dst = encode(dst, x[k])
		}
		return append(dst, '}')
	}
	panic("compare: encode of an unexpected type")
}
