package compare

// This file: accessors of a parsed document: member names and string values,
// unescaped on demand.

import (
	"bytes"
	"unicode/utf8"
)

// Accessors of a parsed document's names and values.

// member returns node n's member name as it stands in the source.
func (d *document) member(n int32) memberName {
	nd := &d.nodes[n]
	return memberName{nd.k0, nd.k1, nd.kesc}
}

// name returns the unescaped member name of node n.
func (d *document) name(n int32) string { return d.member(n).text(d.src) }

// memberName returns the member name of n: a slice of the source, or a
// new unescaped copy when the name has escapes.
func (d *document) memberName(n int32) []byte { return d.member(n).bytes(d.src) }

// text returns the unescaped value of string node n.
func (d *document) text(n int32) string {
	nd := &d.nodes[n]
	raw := d.src[nd.v0:nd.v1]
	if !nd.esc {
		return string(raw)
	}
	return string(unescape(nil, raw))
}

// raw returns a node's text as written: a string without its quotes, a
// container with its brackets.
func (d *document) raw(n int32) []byte {
	nd := &d.nodes[n]
	return d.src[nd.v0:nd.v1]
}

// unescape appends the unescaped form of a validated JSON string body.
func unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				return append(dst, raw[i:]...)
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw, i+2)
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := hex4(raw, i+8)
				r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // " \ /
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}
