package compare

// This file: canonical encodings: the keys that pair elements of unordered
// arrays.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
)

// Canonical encodings identify the elements of unordered arrays: two
// elements are the same multiset member exactly when their encodings are
// equal. An encoding applies the rules that are equivalences — ignore,
// normalize, coerce, absent_equals_* (a member that such a rule lets be
// absent is left out) and nested unordered arrays — and not tolerance or
// subset, which are not (1.00 ≈ 1.01 ≈ 1.02 does not make 1.00 ≈ 1.02).

// Inside a node's encoding, a container whose own encoding is longer than
// canonInline bytes is written as the SHA-256 of that encoding, computed
// once per document (see canonChild). Written out in full, every level of
// nested unordered arrays re-encoded and copied its whole subtree, once per
// ancestor and again for every slot key above it (size × depth²). The
// choice depends on the encoding alone, so equal values still encode alike.
const canonInline = 256

// canon appends the canonical encoding of node n of d at frame f of t.
func (o *Options) canon(dst []byte, d *document, t *tracker, n int32, f frame) []byte {
	nd := &d.nodes[n]
	e := o.effects(t, f)
	switch nd.kind {
	case kObject:
		type member struct {
			name []byte
			node int32
			f    frame
		}
		ms := make([]member, 0, nd.count)
		for c := n + 1; c < nd.end; c = d.nodes[c].end {
			name := d.memberName(c)
			cf := t.child(f, &loc{name: name, d: d, node: c, has: true})
			ce := o.effects(t, cf)
			if ce.ignore >= 0 || o.absorbs(&ce, d, c, false) >= 0 {
				continue
			}
			ms = append(ms, member{name, c, cf})
		}
		slices.SortFunc(ms, func(x, y member) int { return bytes.Compare(x.name, y.name) })
		dst = append(dst, 'o')
		dst = binary.AppendUvarint(dst, uint64(len(ms)))
		for _, m := range ms {
			dst = binary.AppendUvarint(dst, uint64(len(m.name)))
			dst = append(dst, m.name...)
			dst = o.canonChild(dst, d, t, m.node, m.f)
		}
		return dst
	case kArray:
		k := t.mark()
		defer t.rewind(k)
		if e.unordered >= 0 {
			var elems [][]byte
			i := 0
			for c := n + 1; c < nd.end; c, i = d.nodes[c].end, i+1 {
				cf := t.child(f, &loc{index: i, length: int(nd.count), isIndex: true, d: d, node: c, has: true})
				if o.effects(t, cf).ignore >= 0 {
					continue
				}
				elems = append(elems, o.canonChild(nil, d, t, c, cf))
			}
			slices.SortFunc(elems, bytes.Compare)
			dst = append(dst, 'b')
			dst = binary.AppendUvarint(dst, uint64(len(elems)))
			for _, el := range elems {
				dst = binary.AppendUvarint(dst, uint64(len(el)))
				dst = append(dst, el...)
			}
			return dst
		}
		dst = append(dst, 'a')
		dst = binary.AppendUvarint(dst, uint64(nd.count))
		i := 0
		for c := n + 1; c < nd.end; c, i = d.nodes[c].end, i+1 {
			cf := t.child(f, &loc{index: i, length: int(nd.count), isIndex: true, d: d, node: c, has: true})
			if o.effects(t, cf).ignore >= 0 {
				dst = append(dst, '~')
				continue
			}
			dst = o.canonChild(dst, d, t, c, cf)
		}
		return dst
	}
	var s scalarInfo
	o.scalar(&s, d, n, &e, t, f)
	switch s.kind {
	case kNull:
		return append(dst, 'n')
	case kTrue:
		return append(dst, 't')
	case kFalse:
		return append(dst, 'f')
	case kNumber:
		dec := parseDecimal(s.text)
		dst = append(dst, 'd')
		dst = dec.appendCanonical(dst)
		return append(dst, ';')
	}
	dst = append(dst, 's')
	dst = binary.AppendUvarint(dst, uint64(len(s.text)))
	return append(dst, s.text...)
}

// canonChild appends the encoding of node n inside its parent's: as canon
// writes it, or for a container whose encoding is long, 'h' and the digest
// of that encoding. Digests are kept by node: a node's rule states, and so
// its encoding, depend only on its location.
func (o *Options) canonChild(dst []byte, d *document, t *tracker, n int32, f frame) []byte {
	if d.nodes[n].kind < kArray {
		return o.canon(dst, d, t, n, f)
	}
	if sum, ok := d.digests[n]; ok {
		dst = append(dst, 'h')
		return append(dst, sum[:]...)
	}
	p0 := len(dst)
	k := t.mark()
	dst = o.canon(dst, d, t, n, f)
	t.rewind(k)
	if len(dst)-p0 <= canonInline {
		return dst
	}
	sum := sha256.Sum256(dst[p0:])
	if d.digests == nil {
		d.digests = make(map[int32][sha256.Size]byte)
	}
	d.digests[n] = sum
	dst = append(dst[:p0], 'h')
	return append(dst, sum[:]...)
}

// slotKey appends the key that pairs element n (at frame f) of an
// unordered array: with by, the canonical value of that member when the
// element is an object that has it (and neither ignores it nor lets it be
// absent: a null id under absent_equals_null pairs as no id); otherwise
// the canonical element itself.
func (o *Options) slotKey(dst []byte, d *document, t *tracker, n int32, f frame, by string) []byte {
	nd := &d.nodes[n]
	if by != "" && nd.kind == kObject {
		for c := n + 1; c < nd.end; c = d.nodes[c].end {
			name := d.memberName(c)
			if string(name) != by {
				continue
			}
			k := t.mark()
			// The document's own bytes for the name: []byte(by) copied the
			// string for every element (81 % of an equal comparison's
			// allocations with unordered-by rules).
			cf := t.child(f, &loc{name: name, d: d, node: c, has: true})
			if e := o.effects(t, cf); e.ignore < 0 && o.absorbs(&e, d, c, false) < 0 {
				dst = append(dst, 'k')
				dst = o.canon(dst, d, t, c, cf)
				t.rewind(k)
				return dst
			}
			t.rewind(k)
			break
		}
	}
	k := t.mark()
	dst = append(dst, 'v')
	dst = o.canon(dst, d, t, n, f)
	t.rewind(k)
	return dst
}
