package stats

import "strings"

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
