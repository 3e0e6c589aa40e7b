package stats

import "strings"

// foldPath replaces every array index of a normalized path by [*], so that
// $['items'][3]['price'] and $['items'][7]['price'] count as one field.
//
// TEMPORARY: compare.FoldPath replaces it when the compare branch lands.
func foldPath(p string) string {
	if !strings.HasPrefix(p, "$") || !strings.Contains(p, "[") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p))
	inName := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case inName:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(p) {
				i++
				b.WriteByte(p[i])
			} else if c == '\'' {
				inName = false
			}
		case c == '\'':
			inName = true
			b.WriteByte(c)
		case c == '[' && i+1 < len(p) && p[i+1] >= '0' && p[i+1] <= '9' || c == '[' && i+1 < len(p) && p[i+1] == '-':
			j := i + 1
			for j < len(p) && p[j] != ']' {
				j++
			}
			b.WriteString("[*]")
			i = j
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// shortPath writes a folded normalized path in the shorthand people write in
// YAML ($.items[*].price) where a name is a plain identifier, and keeps the
// bracket form for any other name.
func shortPath(p string) string {
	rest, ok := strings.CutPrefix(p, "$")
	if !ok {
		return p
	}
	var b strings.Builder
	b.WriteByte('$')
	for rest != "" {
		end := nameEnd(rest)
		if end < 0 {
			return p
		}
		sel := rest[:end]
		if raw, ok := strings.CutPrefix(sel, "['"); ok && isIdent(raw[:len(raw)-2]) {
			b.WriteString("." + raw[:len(raw)-2])
		} else {
			b.WriteString(sel)
		}
		rest = rest[end:]
	}
	return b.String()
}

// nameEnd returns the length of a leading ['name'] selector of s, or -1.
func nameEnd(s string) int {
	if !strings.HasPrefix(s, "['") {
		if strings.HasPrefix(s, "[") {
			if i := strings.IndexByte(s, ']'); i > 0 {
				return i + 1
			}
		}
		return -1
	}
	for i := 2; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '\'':
			if i+1 < len(s) && s[i+1] == ']' {
				return i + 2
			}
			return -1
		}
	}
	return -1
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
