package compare

// This file: JSON text output: strings, compaction and truncation of values
// in differences.

import "unicode/utf8"

// appendJSONString appends s as a JSON string. Invalid UTF-8 (only possible
// in text bodies and headers, never in parsed JSON) is written as \ufffd.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, `\n`...)
			case c == '\r':
				dst = append(dst, `\r`...)
			case c == '\t':
				dst = append(dst, `\t`...)
			case c < 0x20 || c == 0x7f:
				dst = append(dst, `\u00`...)
				dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// compact appends JSON text without the whitespace between tokens.
func compact(dst, src []byte) []byte {
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case inString:
			dst = append(dst, c)
			if c == '\\' && i+1 < len(src) {
				i++
				dst = append(dst, src[i])
			} else if c == '"' {
				inString = false
			}
		case c == ' ' || c == '\n' || c == '\r' || c == '\t':
		default:
			inString = c == '"'
			dst = append(dst, c)
		}
	}
	return dst
}

// truncate cuts s to at most n bytes at a character boundary, marking the
// cut with "…".
func truncate(s []byte, n int) string {
	if len(s) <= n {
		return string(s)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return string(s[:cut]) + "…"
}

// truncateApart is truncate for the texts of two different values, so
// that they never read the same: where each cut at n would, both are cut
// to n bytes around their first difference instead, "…" marking each cut.
// A long string whose 300th character changed shows that character.
func truncateApart(a, b []byte, n int) (string, string) {
	ta, tb := truncate(a, n), truncate(b, n)
	if ta != tb {
		return ta, tb
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	start := max(0, i-n/2)
	for start > 0 && !utf8.RuneStart(a[start]) {
		start-- // a and b are the same up to i
	}
	return "…" + truncate(a[start:], n), "…" + truncate(b[start:], n)
}
