package compare

// This file: the strict JSON parser: every byte validated into a flat array
// of nodes.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"unicode/utf8"
)

// kind is a JSON value's type.
type kind uint8

const (
	kNull kind = iota
	kFalse
	kTrue
	kNumber
	kString
	kArray
	kObject
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "boolean", "number", "string", "array", "object"}[k]
}

// node is one JSON value of a parsed document. Nodes are stored in document
// order (a node's subtree follows it), so a container's children are found
// by skipping from one child's end to the next: no pointers, no maps, one
// slice per document, reused between comparisons.
type node struct {
	kind  kind
	esc   bool  // the string value has escapes
	kesc  bool  // the member name has escapes
	count int32 // children of a container
	end   int32 // index of the first node after this subtree
	k0    int32 // member name, inside the quotes, when the parent is an object
	k1    int32
	v0    int32 // scalar text (strings inside the quotes); a container from bracket to bracket
	v1    int32
}

// document is a parsed and validated JSON text.
type document struct {
	src   []byte
	nodes []node
	// Scratch for duplicate detection: the member names of the objects
	// still open, innermost last, and indices into them.
	names []memberName
	keys  []int32
	open  []int32 // valid's stack of open containers
	// The unescaped names of an object with an escaped one, and where
	// each lies in it.
	unescaped []byte
	spans     [][2]int32

	vals []decoded // document.value's memo, by node; nil until a filter asks
	// canonChild's digests of containers, by node; nil until an
	// unordered array asks.
	digests map[int32][32]byte
}

// parse validates src and fills d. Every byte is checked: grammar, UTF-8,
// escapes (a lone surrogate is not UTF-8 text), duplicate member names,
// nesting depth and trailing data.
func (d *document) parse(src []byte, maxDepth int) *failure {
	return d.scan(src, maxDepth, true)
}

// validate checks src as parse does, with the same failure for the same
// bytes, without building the nodes: two identical answers need only be
// valid, and the nodes were most of parse's work.
func (d *document) validate(src []byte, maxDepth int) *failure {
	if d.valid(src, maxDepth) {
		return nil
	}
	return d.scan(src, maxDepth, false)
}

func (d *document) scan(src []byte, maxDepth int, tape bool) *failure {
	d.src = src
	d.nodes = d.nodes[:0]
	d.names = d.names[:0]
	d.vals, d.digests = nil, nil
	if len(src) >= 1<<31-1 {
		return &failure{ReasonTooLarge, "a JSON body of 2 GiB or more"}
	}
	p := parser{d: d, s: src, maxDepth: maxDepth}
	i := p.ws(0)
	if i == len(src) {
		return &failure{ReasonInvalidJSON, "empty body"}
	}
	if tape {
		i = p.value(i)
	} else {
		i = p.skip(i)
	}
	if p.err != nil {
		return p.err
	}
	if i = p.ws(i); i != len(src) {
		return &failure{ReasonTrailingData, fmt.Sprintf("data after the JSON value at offset %d", i)}
	}
	return nil
}

type parser struct {
	d        *document
	s        []byte
	depth    int
	maxDepth int
	err      *failure
}

func (p *parser) fail(reason string, at int, format string, args ...any) int {
	if p.err == nil {
		p.err = &failure{reason, fmt.Sprintf(format, args...) + fmt.Sprintf(" at offset %d", at)}
	}
	return -1
}

func (p *parser) ws(i int) int {
	for i < len(p.s) {
		switch p.s[i] {
		case ' ', '\n', '\r', '\t':
			i++
		default:
			return i
		}
	}
	return i
}

// value parses the value at i, appends its nodes and returns the offset
// after it, or -1 with p.err set.
func (p *parser) value(i int) int {
	if i >= len(p.s) {
		return p.fail(ReasonInvalidJSON, i, "unexpected end of JSON")
	}
	idx := len(p.d.nodes)
	p.d.nodes = append(p.d.nodes, node{v0: int32(i)})
	n := &p.d.nodes[idx]
	switch c := p.s[i]; c {
	case '{':
		return p.container(i, idx, kObject, '}')
	case '[':
		return p.container(i, idx, kArray, ']')
	case '"':
		end, esc := p.str(i + 1)
		if end < 0 {
			return -1
		}
		n.kind, n.esc, n.v0, n.v1 = kString, esc, int32(i+1), int32(end-1)
		n.end = int32(idx + 1)
		return end
	case 't':
		return p.literal(i, idx, "true", kTrue)
	case 'f':
		return p.literal(i, idx, "false", kFalse)
	case 'n':
		return p.literal(i, idx, "null", kNull)
	default:
		if c == '-' || c >= '0' && c <= '9' {
			end := p.number(i)
			if end < 0 {
				return -1
			}
			n.kind, n.v1, n.end = kNumber, int32(end), int32(idx+1)
			return end
		}
		return p.fail(ReasonInvalidJSON, i, "unexpected %q", rune(c))
	}
}

func (p *parser) literal(i, idx int, w string, k kind) int {
	end := p.word(i, w)
	if end >= 0 {
		n := &p.d.nodes[idx]
		n.kind, n.v1, n.end = k, int32(end), int32(idx+1)
	}
	return end
}

// word checks that the literal w is at i and returns the offset after it.
func (p *parser) word(i int, w string) int {
	if !bytes.HasPrefix(p.s[i:], []byte(w)) {
		return p.fail(ReasonInvalidJSON, i, "invalid literal")
	}
	return i + len(w)
}

// skip checks the value at i as value does, with the same failures, and
// keeps nothing but the member names of the objects still open.
func (p *parser) skip(i int) int {
	if i >= len(p.s) {
		return p.fail(ReasonInvalidJSON, i, "unexpected end of JSON")
	}
	switch c := p.s[i]; c {
	case '{':
		return p.container(i, -1, kObject, '}')
	case '[':
		return p.container(i, -1, kArray, ']')
	case '"':
		end, _ := p.str(i + 1)
		return end
	case 't':
		return p.word(i, "true")
	case 'f':
		return p.word(i, "false")
	case 'n':
		return p.word(i, "null")
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return p.number(i)
		}
		return p.fail(ReasonInvalidJSON, i, "unexpected %q", rune(c))
	}
}

// number checks the RFC 8259 number grammar and returns the offset after it.
func (p *parser) number(i int) int {
	s, start := p.s, i
	if s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j - i
	}
	switch {
	case i < len(s) && s[i] == '0':
		if i++; i < len(s) && s[i] >= '0' && s[i] <= '9' {
			return p.fail(ReasonInvalidJSON, start, "invalid number (leading zero)")
		}
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i += digits()
	default:
		return p.fail(ReasonInvalidJSON, start, "invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		n := digits()
		if n == 0 {
			return p.fail(ReasonInvalidJSON, start, "invalid number")
		}
		i += n
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		n := digits()
		if n == 0 {
			return p.fail(ReasonInvalidJSON, start, "invalid number")
		}
		if n > maxExponentDigits && n-leadingZeros(s[i:i+n]) > maxExponentDigits {
			// Exact arithmetic on it would cost the square of its length
			// (math/big reads decimal text so), for every comparison.
			return p.fail(ReasonTooLarge, start, "a number whose exponent has %d digits, more than %d", n-leadingZeros(s[i:i+n]), maxExponentDigits)
		}
		i += n
	}
	return i
}

// leadingZeros counts the zeros digits start with (they cost nothing: the
// exponent is read without them).
func leadingZeros(digits []byte) int {
	return len(digits) - len(bytes.TrimLeft(digits, "0"))
}

// maxExponentDigits bounds the digits of a number's exponent: far more than
// any answer writes (1e308 is float64's largest), far fewer than make exact
// comparison slow.
const maxExponentDigits = 1000

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// specials marks, in the high bit of each of 8 bytes read little-endian,
// the bytes that need attention inside a string: control characters, the
// quote, the backslash and non-ASCII bytes. It is zero when there is none.
// The expressions are the "has a byte less than n" (n at most 0x80) and
// "has a zero byte" bit tricks. Above a marked byte a borrow may mark more,
// but below the first such byte nothing borrows: the lowest mark is
// exactly that byte. (A missed first byte would make the scan skip it; a
// mark too low would only slow it.)
func specials(x uint64) uint64 {
	return hasZero(x^(lsb*'"')) | hasZero(x^(lsb*'\\')) | hasLess(x, 0x20) | x&msb
}

func hasZero(x uint64) uint64 { return (x - lsb) & ^x & msb }

func hasLess(x, n uint64) uint64 { return (x - lsb*n) & ^x & msb }

// special marks the bytes a string scan must stop at: control characters,
// the quote, the backslash and every non-ASCII byte.
const special = "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01"

// str scans a string whose opening quote precedes i and returns the offset
// after the closing quote and whether it holds escapes.
func (p *parser) str(i int) (int, bool) {
	s, esc := p.s, false
	for {
		for i+8 <= len(s) {
			m := specials(binary.LittleEndian.Uint64(s[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(s) && special[s[i]] == 0 {
			i++
		}
		if i >= len(s) {
			return p.fail(ReasonInvalidJSON, i, "unterminated string"), esc
		}
		switch c := s[i]; {
		case c == '"':
			return i + 1, esc
		case c == '\\':
			esc = true
			if i = p.escape(i); i < 0 {
				return -1, esc
			}
		case c < 0x20:
			return p.fail(ReasonInvalidJSON, i, "control character in string"), esc
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				return p.fail(ReasonInvalidUTF8, i, "invalid UTF-8 in string"), esc
			}
			i += size
		default:
			i++
		}
	}
}

// escape checks the escape at i (a backslash) and returns the offset after
// it. A \u escape of a lone surrogate has no UTF-8 form: encoding/json would
// turn it into U+FFFD and make two different strings equal.
func (p *parser) escape(i int) int {
	s := p.s
	if i+1 >= len(s) {
		return p.fail(ReasonInvalidJSON, i, "unterminated escape")
	}
	switch s[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2
	case 'u':
		r, ok := hex4(s, i+2)
		if !ok {
			return p.fail(ReasonInvalidJSON, i, "invalid \\u escape")
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return p.fail(ReasonInvalidUTF8, i, "lone low surrogate \\u%04x", r)
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
				if lo, ok := hex4(s, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					return i + 12
				}
			}
			return p.fail(ReasonInvalidUTF8, i, "lone high surrogate \\u%04x", r)
		}
		return i + 6
	}
	return p.fail(ReasonInvalidJSON, i, "invalid escape")
}

func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range s[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// container parses an object or array whose bracket is at i into the node
// at idx, or only checks it when idx is -1 (skip).
func (p *parser) container(i, idx int, k kind, closing byte) int {
	start := i
	if p.depth++; p.depth > p.maxDepth {
		return p.fail(ReasonTooDeep, i, "nesting deeper than %d", p.maxDepth)
	}
	count := int32(0)
	base := len(p.d.names)
	i = p.ws(i + 1)
	if i < len(p.s) && p.s[i] == closing {
		i++
	} else {
		for {
			child := len(p.d.nodes)
			var k0, k1 int
			var kesc bool
			if k == kObject {
				if i >= len(p.s) || p.s[i] != '"' {
					return p.fail(ReasonInvalidJSON, i, "expected a member name")
				}
				k0 = i + 1
				if i, kesc = p.str(i + 1); i < 0 {
					return -1
				}
				k1 = i - 1
				p.d.names = append(p.d.names, memberName{int32(k0), int32(k1), kesc})
				if i = p.ws(i); i >= len(p.s) || p.s[i] != ':' {
					return p.fail(ReasonInvalidJSON, i, "expected ':'")
				}
				i = p.ws(i + 1)
			}
			if idx < 0 {
				i = p.skip(i)
			} else {
				i = p.value(i)
			}
			if i < 0 {
				return -1
			}
			if k == kObject && idx >= 0 {
				c := &p.d.nodes[child]
				c.k0, c.k1, c.kesc = int32(k0), int32(k1), kesc
			}
			count++
			i = p.ws(i)
			if i < len(p.s) && p.s[i] == ',' {
				i = p.ws(i + 1)
				continue
			}
			if i < len(p.s) && p.s[i] == closing {
				i++
				break
			}
			return p.fail(ReasonInvalidJSON, i, "expected ',' or %q", rune(closing))
		}
	}
	p.depth--
	if idx >= 0 {
		n := &p.d.nodes[idx]
		n.kind, n.count, n.v0, n.v1, n.end = k, count, int32(start), int32(i), int32(len(p.d.nodes))
	}
	if names := p.d.names[base:]; len(names) > 1 {
		if dup := p.d.duplicate(names); dup >= 0 {
			return p.fail(ReasonDuplicateKey, int(names[dup].k0), "duplicate member %q", names[dup].text(p.s))
		}
	}
	p.d.names = p.d.names[:base]
	return i
}

// memberName is an object member's name: its bytes inside the quotes, and
// whether it has escapes.
type memberName struct {
	k0, k1 int32
	esc    bool
}

func (m memberName) raw(src []byte) []byte { return src[m.k0:m.k1] }

// bytes returns the unescaped name: a slice of src, or a new copy when the
// name has escapes.
func (m memberName) bytes(src []byte) []byte {
	if !m.esc {
		return m.raw(src)
	}
	return unescape(nil, m.raw(src))
}

// text returns the unescaped name.
func (m memberName) text(src []byte) string { return string(m.bytes(src)) }

// duplicate returns the index of a member in names (one object's, in
// document order) whose name an earlier member already has, or -1. Names
// are compared after unescaping ("a" and "\u0061" are the same name).
func (d *document) duplicate(names []memberName) int {
	src := d.src
	escaped := false
	for _, m := range names {
		escaped = escaped || m.esc
	}
	if escaped {
		return d.duplicateEscaped(names)
	}
	if len(names) <= 16 {
		// Compare a fingerprint (length, first and last byte) before the
		// bytes: most pairs of names differ in one of them.
		var fps [16]uint32
		for i, m := range names {
			fps[i] = uint32(m.k1 - m.k0)
			if m.k1 > m.k0 {
				fps[i] |= uint32(src[m.k0])<<16 | uint32(src[m.k1-1])<<24
			}
			for j := 0; j < i; j++ {
				if fps[j] == fps[i] && bytes.Equal(names[j].raw(src), m.raw(src)) {
					return i
				}
			}
		}
		return -1
	}
	keys := d.keys[:0]
	for i := range names {
		keys = append(keys, int32(i))
	}
	d.keys = keys
	slices.SortFunc(keys, func(a, b int32) int { return bytes.Compare(names[a].raw(src), names[b].raw(src)) })
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(names[keys[i]].raw(src), names[keys[i-1]].raw(src)) {
			return int(max(keys[i], keys[i-1]))
		}
	}
	return -1
}

// duplicateEscaped is duplicate for an object with an escaped name (Python's
// json.dumps escapes every non-ASCII one): each name is unescaped once, and
// sorted, so a large object costs n log n comparisons, not n². It returns
// what comparing every pair did: the first member in document order whose
// name an earlier one has.
func (d *document) duplicateEscaped(names []memberName) int {
	src, buf, spans := d.src, d.unescaped[:0], d.spans[:0]
	for _, m := range names {
		start := len(buf)
		if m.esc {
			buf = unescape(buf, m.raw(src))
		} else {
			buf = append(buf, m.raw(src)...)
		}
		spans = append(spans, [2]int32{int32(start), int32(len(buf))})
	}
	d.unescaped, d.spans = buf, spans
	name := func(i int32) []byte { return buf[spans[i][0]:spans[i][1]] }
	keys := d.keys[:0]
	for i := range names {
		keys = append(keys, int32(i))
	}
	d.keys = keys
	// Stable: within a name, members stay in document order, so the
	// second of each run is the first duplicate of that name.
	slices.SortStableFunc(keys, func(a, b int32) int { return bytes.Compare(name(a), name(b)) })
	dup := -1
	for i := 1; i < len(keys); i++ {
		first := i == 1 || !bytes.Equal(name(keys[i-1]), name(keys[i-2]))
		if first && bytes.Equal(name(keys[i]), name(keys[i-1])) && (dup < 0 || int(keys[i]) < dup) {
			dup = int(keys[i])
		}
	}
	return dup
}
