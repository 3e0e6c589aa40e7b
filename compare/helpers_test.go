package compare

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// testPath parses the subset of JSONPath the tests of this package need
// ($ .name ['name'] [n] [*] .* ..name ..* ..[n] [a:b:c]); the real parser
// lives in the rules package, which this package must not import.
func testPath(text string) *Path {
	p := &Path{Text: text}
	s := strings.TrimPrefix(text, "$")
	for s != "" {
		desc := strings.HasPrefix(s, "..")
		if desc {
			s = s[2:]
		} else if s[0] == '.' {
			s = s[1:]
		}
		var sel Selector
		switch {
		case strings.HasPrefix(s, "['"):
			end := strings.Index(s, "']")
			sel, s = Name(s[2:end]), s[end+2:]
		case strings.HasPrefix(s, "["):
			end := strings.IndexByte(s, ']')
			body := s[1:end]
			s = s[end+1:]
			switch {
			case body == "*":
				sel = Wildcard()
			case strings.Contains(body, ":"):
				parts := strings.Split(body, ":")
				num := func(i int, def int) int {
					if i >= len(parts) || parts[i] == "" {
						return def
					}
					n, _ := strconv.Atoi(parts[i])
					return n
				}
				sel = Slice(num(0, 0), num(1, math.MaxInt), num(2, 1))
			default:
				n, err := strconv.Atoi(body)
				if err != nil {
					panic(fmt.Sprintf("testPath %q: %v", text, err))
				}
				sel = Index(n)
			}
		case strings.HasPrefix(s, "*"):
			sel, s = Wildcard(), s[1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			sel, s = Name(s[:end]), s[end:]
		}
		seg := Child(sel)
		if desc {
			seg = Descendant(sel)
		}
		p.Segments = append(p.Segments, seg)
	}
	return p
}

func jsonResponse(body string) Response {
	return Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

func mustNew(rules ...Rule) *Options {
	o, err := New(rules, Limits{}, NoiseThresholds{})
	if err != nil {
		panic(err)
	}
	return o
}
