package compare

// This file: the fast check that a JSON text is valid, for identical
// answers, which need nothing else.

import (
	"encoding/binary"
	"math/bits"
)

// valid reports whether scan accepts src, checking what scan checks in one
// loop, with the open containers on a stack where scan recurses, and the
// short strings ended without a call: 0.76× scan's time on 16 KB of small
// records, 0.86× on the list answer (BenchmarkValidate). It says nothing of
// why not: validate asks scan then, so a failure reads as scan's, detail
// for detail.
func (d *document) valid(src []byte, maxDepth int) bool {
	d.src = src
	d.nodes = d.nodes[:0]
	d.vals, d.digests = nil, nil
	s, n := src, len(src)
	if n == 0 || n >= 1<<31-1 {
		return false
	}
	p := parser{d: d, s: src, maxDepth: maxDepth}
	// open holds, per open container, -1 for an array or, for an object,
	// where its member names start in names.
	names, open := d.names[:0], d.open[:0]
	ok := false
	i, k0, top := 0, 0, int32(0)
	esc := false

value:
	for i < n && s[i] <= ' ' {
		if !isSpace(s[i]) {
			goto done
		}
		i++
	}
	if i >= n {
		goto done
	}
	switch c := s[i]; c {
	case '"':
		if i, _ = shortString(&p, i+1); i < 0 {
			goto done
		}
	case '{', '[':
		if len(open) >= maxDepth {
			goto done
		}
		for i++; i < n && s[i] <= ' '; i++ {
			if !isSpace(s[i]) {
				goto done
			}
		}
		if i < n && (s[i] == '}' && c == '{' || s[i] == ']' && c == '[') {
			i++
			break
		}
		if c == '[' {
			open = append(open, -1)
			goto value
		}
		open = append(open, int32(len(names)))
		goto member
	case 't':
		if i+4 > n || string(s[i:i+4]) != "true" {
			goto done
		}
		i += 4
	case 'f':
		if i+5 > n || string(s[i:i+5]) != "false" {
			goto done
		}
		i += 5
	case 'n':
		if i+4 > n || string(s[i:i+4]) != "null" {
			goto done
		}
		i += 4
	default:
		if c != '-' && (c < '0' || c > '9') {
			goto done
		}
		if i = p.number(i); i < 0 {
			goto done
		}
	}

	// After a value: a comma, or the brackets it closes.
after:
	for i < n && s[i] <= ' ' {
		if !isSpace(s[i]) {
			goto done
		}
		i++
	}
	if len(open) == 0 {
		ok = i == n
		goto done
	}
	if i >= n {
		goto done
	}
	top = open[len(open)-1]
	switch s[i] {
	case ',':
		if i++; top < 0 {
			goto value
		}
		for i < n && s[i] <= ' ' {
			if !isSpace(s[i]) {
				goto done
			}
			i++
		}
		goto member
	case ']':
		if top >= 0 {
			goto done
		}
	case '}':
		if top < 0 {
			goto done
		}
		if len(names)-int(top) > 1 && d.duplicate(names[top:]) >= 0 {
			goto done
		}
		names = names[:top]
	default:
		goto done
	}
	open = open[:len(open)-1]
	i++
	goto after

	// A member name, its colon, then its value.
member:
	if i >= n || s[i] != '"' {
		goto done
	}
	k0 = i + 1
	if i, esc = shortString(&p, k0); i < 0 {
		goto done
	}
	names = append(names, memberName{int32(k0), int32(i - 1), esc})
	for i < n && s[i] <= ' ' {
		if !isSpace(s[i]) {
			goto done
		}
		i++
	}
	if i >= n || s[i] != ':' {
		goto done
	}
	i++
	goto value

done:
	d.names, d.open = names[:0], open[:0]
	return ok
}

// shortString is p.str for the short strings most names and many values
// are: up to four words are read, and at the first byte that needs
// attention the common case, the closing quote, ends the string without
// p.str's call and its tail loop; anything else goes on in p.str from that
// byte.
func shortString(p *parser, i int) (int, bool) {
	s := p.s
	j := i
	for ; j+8 <= len(s) && j < i+32; j += 8 {
		if m := specials(binary.LittleEndian.Uint64(s[j:])); m != 0 {
			if j += bits.TrailingZeros64(m) / 8; s[j] == '"' {
				return j + 1, false
			}
			break
		}
	}
	return p.str(j)
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }
