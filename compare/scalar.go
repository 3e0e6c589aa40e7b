package compare

// This file: scalars under normalize, coerce and tolerance, and exact
// equality of values.

import "bytes"

// scalarInfo is a JSON scalar as the rules see it: its kind and text after
// normalize and coerce, the tolerance that applies to it, and which rule
// changed it, so that an equality the rules made can be credited.
type scalarInfo struct {
	d    *document
	n    int32
	kind kind   // after coerce
	text []byte // strings unescaped and normalized; numbers as written
	tol  int32  // tolerance rule, or -1
	by   int32  // the first rule that changed the value, or -1
}

// scalar fills s for node n of d with effects e at frame f of t.
func (o *Options) scalar(s *scalarInfo, d *document, n int32, e *effects, t *tracker, f frame) {
	nd := &d.nodes[n]
	*s = scalarInfo{d: d, n: n, kind: nd.kind, tol: e.tolerance, by: -1}
	switch nd.kind {
	case kNumber:
		s.text = d.raw(n)
	case kString:
		s.text = d.raw(n)
		if nd.esc {
			s.text = unescape(nil, s.text)
		}
		if e.norm >= 0 {
			// The normalize rules of the first section that reaches the
			// place apply, in order: a route's replace its defaults'
			// there, as every kind that applies once.
			origin := o.rules[e.norm].Origin
			for _, r := range t.matched[f.m0:f.m1] {
				rule := &o.rules[r]
				if rule.Kind != RuleNormalize || rule.Origin != origin {
					continue
				}
				out := normalize(rule, s.text)
				if s.by < 0 && !bytes.Equal(out, s.text) {
					s.by = r
				}
				s.text = out
			}
		}
	}
	if e.coerce >= 0 && s.kind == kString {
		switch {
		case isNumber(s.text):
			s.kind = kNumber
		case string(s.text) == "true":
			s.kind = kTrue
		case string(s.text) == "false":
			s.kind = kFalse
		}
		if s.kind != kString && s.by < 0 {
			s.by = e.coerce
		}
	}
}

func normalize(r *Rule, s []byte) []byte {
	if r.Pattern != nil {
		s = r.Pattern.ReplaceAll(s, []byte(r.Replace))
	}
	if r.FoldCase {
		s = bytes.ToLower(s)
	}
	return s
}

// scalarEqual reports whether two scalars are equal under the rules and,
// when they are equal only because of a rule, which rule to credit (else
// -1). It is symmetric, as go-cmp requires of Equal methods.
func (o *Options) scalarEqual(a, b *scalarInfo) (bool, int32) {
	if a.kind != b.kind {
		return false, -1
	}
	tolerated := false
	switch a.kind {
	case kString:
		if !bytes.Equal(a.text, b.text) {
			return false, -1
		}
	case kNumber:
		if !numberEqual(a.text, b.text) {
			t := firstRule(a.tol, b.tol)
			if t < 0 {
				return false, -1
			}
			bounds := o.tol[t]
			da, db := parseDecimal(a.text), parseDecimal(b.text)
			if !within(&da, &db, bounds[0], bounds[1]) {
				return false, -1
			}
			tolerated = true
		}
	}
	switch {
	case rawEqual(a.d, a.n, b.d, b.n):
		return true, -1
	case tolerated:
		return true, firstRule(a.tol, b.tol)
	}
	return true, firstRule(a.by, b.by)
}

// firstRule returns the lower of two rule indices, ignoring -1.
func firstRule(a, b int32) int32 {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}

// rawEqual compares two scalars exactly, without rules.
func rawEqual(da *document, a int32, db *document, b int32) bool {
	na, nb := &da.nodes[a], &db.nodes[b]
	if na.kind != nb.kind {
		return false
	}
	switch na.kind {
	case kNumber:
		return numberEqual(da.raw(a), db.raw(b))
	case kString:
		ra, rb := da.raw(a), db.raw(b)
		if !na.esc && !nb.esc {
			return bytes.Equal(ra, rb)
		}
		return bytes.Equal(unescape(nil, ra), unescape(nil, rb))
	}
	return true
}

// exactEqual compares two subtrees as JSON values, without rules: key order
// and number spelling do not matter, everything else does.
func exactEqual(da *document, a int32, db *document, b int32) bool {
	na, nb := &da.nodes[a], &db.nodes[b]
	if na.kind != nb.kind {
		return false
	}
	switch na.kind {
	case kArray:
		if na.count != nb.count {
			return false
		}
		for x, y := a+1, b+1; x < na.end; x, y = da.nodes[x].end, db.nodes[y].end {
			if !exactEqual(da, x, db, y) {
				return false
			}
		}
		return true
	case kObject:
		if na.count != nb.count {
			return false
		}
		if bytes.Equal(da.raw(a), db.raw(b)) {
			return true
		}
		names := make(map[string]int32, nb.count)
		for y := b + 1; y < nb.end; y = db.nodes[y].end {
			names[db.name(y)] = y
		}
		for x := a + 1; x < na.end; x = da.nodes[x].end {
			y, ok := names[da.name(x)]
			if !ok || !exactEqual(da, x, db, y) {
				return false
			}
		}
		return true
	}
	return rawEqual(da, a, db, b)
}
