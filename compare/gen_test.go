package compare

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
)

// gen makes random JSON documents from a small vocabulary, so that the
// rules of rulePool find something to act on, and near-copies of them.
type gen struct{ r *rand.Rand }

var names = []string{"id", "name", "price", "updated_at", "created_at", "tags", "roles", "items", "meta",
	"request_id", "email", "count", "ok", "type", "x", "user_name", "user", "é"}

func (g gen) value(depth int) any {
	switch n := g.r.IntN(10); {
	case depth > 3 || n < 5:
		return g.scalar()
	case n < 7:
		a := make([]any, g.r.IntN(4))
		for i := range a {
			a[i] = g.value(depth + 1)
		}
		return a
	default:
		m := map[string]any{}
		for range g.r.IntN(5) {
			m[names[g.r.IntN(len(names))]] = g.value(depth + 1)
		}
		return m
	}
}

func (g gen) scalar() any {
	switch g.r.IntN(9) {
	case 0:
		return nil
	case 1:
		return g.r.IntN(2) == 0
	case 2, 3:
		return json.Number(fmt.Sprint(g.r.IntN(5)))
	case 4:
		return json.Number(fmt.Sprintf("%d.%02d", g.r.IntN(3), g.r.IntN(100)))
	case 5:
		return []string{"a", "A", "b", "1", "2.5", "true", "Ann@x.io", "ann@x.io", "2024-01-01T00:00:00.5Z"}[g.r.IntN(9)]
	case 6:
		return fmt.Sprintf("2024-01-01T00:00:0%d.%dZ", g.r.IntN(2), g.r.IntN(1000))
	case 7:
		return "internal"
	}
	return map[string]any{"type": []string{"internal", "public"}[g.r.IntN(2)], "id": json.Number(fmt.Sprint(g.r.IntN(3)))}
}

// mutate returns a near-copy of v: most of it equal, some of it changed in
// the ways the rules are about.
func (g gen) mutate(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			switch g.r.IntN(20) {
			case 0: // drop
			case 1:
				m[k] = nil
			case 2:
				m[names[g.r.IntN(len(names))]] = g.value(2)
				m[k] = g.mutate(e)
			default:
				m[k] = g.mutate(e)
			}
		}
		if g.r.IntN(15) == 0 {
			m[names[g.r.IntN(len(names))]] = []any{}
		}
		return m
	case []any:
		a := make([]any, 0, len(x))
		for _, e := range x {
			if g.r.IntN(15) != 0 {
				a = append(a, g.mutate(e))
			}
		}
		if g.r.IntN(4) == 0 {
			g.r.Shuffle(len(a), func(i, j int) { a[i], a[j] = a[j], a[i] })
		}
		if g.r.IntN(10) == 0 {
			a = append(a, g.scalar())
		}
		return a
	case json.Number:
		switch g.r.IntN(8) {
		case 0:
			return json.Number(string(x) + "e0")
		case 1:
			return string(x)
		case 2:
			return json.Number(string(x) + "1")
		case 3:
			return g.scalar()
		}
		return x
	case string:
		switch g.r.IntN(8) {
		case 0:
			return strings.ToUpper(x)
		case 1:
			if isNumber([]byte(x)) {
				return json.Number(x)
			}
		case 2:
			return g.scalar()
		case 3:
			return strings.Replace(x, ".5Z", ".500Z", 1)
		}
		return x
	case bool:
		if g.r.IntN(6) == 0 {
			return fmt.Sprint(x)
		}
	}
	if g.r.IntN(12) == 0 {
		return g.scalar()
	}
	return v
}

// text writes v as JSON with shuffled member order, random spacing and
// some escaped characters: none of which may matter.
func (g gen) text(v any) string {
	var b strings.Builder
	g.write(&b, v)
	return b.String()
}

func (g gen) write(b *strings.Builder, v any) {
	sp := func() {
		if g.r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t ", "\r\n"}[g.r.IntN(4)])
		}
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		g.r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			sp()
			g.str(b, k)
			sp()
			b.WriteByte(':')
			sp()
			g.write(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			sp()
			g.write(b, e)
		}
		b.WriteByte(']')
	case string:
		g.str(b, x)
	default:
		out, _ := json.Marshal(x)
		b.Write(out)
	}
}

func (g gen) str(b *strings.Builder, s string) {
	if g.r.IntN(5) == 0 {
		b.WriteByte('"')
		for _, r := range s {
			fmt.Fprintf(b, `\u%04x`, r)
		}
		b.WriteByte('"')
		return
	}
	out, _ := json.Marshal(s)
	b.Write(out)
}

// rulePool is a set of rules over the generator's vocabulary, including a
// filter selector like the rules package builds from ?@.type == 'internal'.
func rulePool() []Rule {
	internal := Filter(func(node, _ any) bool {
		m, ok := node.(map[string]any)
		return ok && m["type"] == "internal"
	}, false)
	p := testPath
	return []Rule{
		{Kind: RuleIgnore, Path: p("$..updated_at")},
		{Kind: RuleIgnore, Path: p("$.meta.request_id")},
		{Kind: RuleIgnore, Path: p("$.items[0]")},
		{Kind: RuleIgnore, Path: NewPath("$..[?@.type == 'internal']", Descendant(internal))},
		{Kind: RuleUnordered, Path: p("$..tags")},
		{Kind: RuleUnordered, Path: p("$.roles")},
		{Kind: RuleUnordered, Path: p("$..items"), By: "id"},
		{Kind: RuleUnordered, Path: p("$")},
		{Kind: RuleTolerance, Path: p("$..price"), Absolute: "0.05"},
		{Kind: RuleTolerance, Path: p("$..count"), Relative: "0.5"},
		{Kind: RuleNormalize, Path: p("$..created_at"), Pattern: regexp.MustCompile(`\.\d+Z$`), Replace: "Z"},
		{Kind: RuleNormalize, Path: p("$..*"), FoldCase: true},
		{Kind: RuleCoerce, Path: p("$..id")},
		{Kind: RuleCoerce, Path: p("$..*")},
		{Kind: RuleAbsentEqualsNull},
		{Kind: RuleAbsentEqualsNull, Path: p("$.meta.*")},
		{Kind: RuleAbsentEqualsEmptyArray},
		{Kind: RuleAbsentEqualsEmptyObject, Path: p("$..user")},
		{Kind: RuleSubset},
		{Kind: RuleSubset, Path: p("$.items[*].*")},
		{Kind: RuleRename, Path: p("$..x"), To: "name"},
		{Kind: RuleRename, Path: p("$.user_name"), ToPath: p("$.user.name")},
	}
}

// ruleSet picks some rules of the pool.
func (g gen) ruleSet() []Rule {
	var rs []Rule
	for _, r := range rulePool() {
		if g.r.IntN(5) == 0 {
			rs = append(rs, r)
		}
	}
	return rs
}
