package rules

import (
	"fmt"
	"regexp"
	"strings"
)

// maxParamRegexp bounds a parameter's regexp: patterns are short, and Go's
// compile errors echo the whole pattern.
const maxParamRegexp = 256

// pattern is a compiled chi-style path pattern: literal segments, {name} and
// {name:regexp} parameters that match one segment, and a trailing * that
// matches the rest of the path, as in chi: "/orders/*" matches "/orders/"
// and "/orders/1/items" but not "/orders".
type pattern struct {
	text     string
	segments []segment
	wildcard bool // ends in /*
}

type segment struct {
	literal string
	param   string         // set for {name}
	re      *regexp.Regexp // set for {name:re}
}

func parsePattern(text string) (*pattern, error) {
	if !strings.HasPrefix(text, "/") {
		return nil, fmt.Errorf("path pattern %q must start with /", text)
	}
	p := &pattern{text: text}
	parts := strings.Split(text[1:], "/")
	seen := map[string]bool{}
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part == "*":
			if !last {
				return nil, fmt.Errorf("path pattern %q: * may only be the last segment", text)
			}
			p.wildcard = true
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name, expr, hasRe := strings.Cut(part[1:len(part)-1], ":")
			if name == "" || strings.ContainsAny(name, "{}/*") {
				return nil, fmt.Errorf("path pattern %q: parameter %q needs a name, like {id}", text, part)
			}
			if seen[name] {
				return nil, fmt.Errorf("path pattern %q: parameter {%s} appears twice", text, name)
			}
			seen[name] = true
			seg := segment{param: name}
			if hasRe {
				if len(expr) > maxParamRegexp {
					return nil, fmt.Errorf("path pattern %q: the regexp of {%s} is longer than %d characters", text, name, maxParamRegexp)
				}
				// Compiled alone first, so a failure quotes what the file
				// says, not the anchored form.
				_, err := regexp.Compile(expr)
				var re *regexp.Regexp
				if err == nil {
					re, err = regexp.Compile("^(?:" + expr + ")$")
				}
				if err != nil {
					return nil, fmt.Errorf("path pattern %q: the regexp of {%s} does not compile: %s", text, name, regexpReason(err))
				}
				seg.re = re
			}
			p.segments = append(p.segments, seg)
		case strings.ContainsAny(part, "{}*"):
			return nil, fmt.Errorf("path pattern %q: segment %q mixes text with {param} or *; a parameter or * must be a whole segment", text, part)
		default:
			p.segments = append(p.segments, segment{literal: part})
		}
	}
	return p, nil
}

// Param is one path parameter captured by a match.
type Param struct {
	Name, Value string
}

// Params are the path parameters of a matched request, in pattern order.
type Params []Param

// Get returns the value of the named parameter ("*" for the wildcard).
func (ps Params) Get(name string) (string, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

// match reports whether path matches, appending captured parameters to ps.
func (p *pattern) match(path string, ps Params) (Params, bool) {
	if len(path) == 0 || path[0] != '/' {
		return ps, false
	}
	rest := path[1:]
	for i, seg := range p.segments {
		last := i == len(p.segments)-1
		part, tail, more := strings.Cut(rest, "/")
		// Without a wildcard the last segment must end the path; with one
		// ("/orders/*") a slash must follow it.
		if !more && (!last || p.wildcard) || more && last && !p.wildcard {
			return ps, false
		}
		rest = tail
		switch {
		case seg.param != "":
			if part == "" || (seg.re != nil && !seg.re.MatchString(part)) {
				return ps, false
			}
			ps = append(ps, Param{Name: seg.param, Value: part})
		case part != seg.literal:
			return ps, false
		}
	}
	if p.wildcard {
		if len(p.segments) == 0 {
			// "/*": everything after the first slash.
			rest = path[1:]
		}
		ps = append(ps, Param{Name: "*", Value: rest})
	}
	return ps, true
}

// covers reports whether p matches every path that q matches, so that a
// route with q placed after a route with p can never be reached.
func (p *pattern) covers(q *pattern) bool {
	if !p.wildcard {
		if q.wildcard || len(p.segments) != len(q.segments) {
			return false
		}
	} else if len(q.segments) < len(p.segments) || len(q.segments) == len(p.segments) && !q.wildcard {
		// p needs a slash after its segments ("/orders/*" does not match
		// "/orders"): q must have one too.
		return false
	}
	for i, ps := range p.segments {
		qs := q.segments[i]
		if ps.param != "" && qs.param == "" && qs.literal == "" {
			// A parameter never matches an empty segment ("/users/").
			return false
		}
		switch {
		case ps.param != "" && ps.re == nil:
			// matches any one segment
		case ps.param != "":
			if qs.param != "" {
				if qs.re == nil || qs.re.String() != ps.re.String() {
					return false
				}
			} else if !ps.re.MatchString(qs.literal) {
				return false
			}
		default:
			if qs.param != "" || qs.literal != ps.literal {
				return false
			}
		}
	}
	return true
}
