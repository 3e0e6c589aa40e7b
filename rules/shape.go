package rules

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// shapeProblems checks the parsed file against the configuration's Go types
// before it is decoded, and returns every problem in file order: unknown
// keys, and scalars of the wrong kind. The decoder stops at its first
// problem, and it converts where it should refuse: "min_samples: 2.9"
// became 2 and "match_rate: '0.5'" a number, so a typo loosened a
// readiness threshold without a word.
//
// Whole numbers (int fields) must be whole (1000, 1e3, 100.0), numbers
// (float fields) numbers (1, 0.99, 1e-4), switches (bool fields) true or
// false; none may be quoted. Strings take any scalar (a header value of 42 is "42"). Values
// whose type decodes itself (durations, sizes, status ranges, rule shapes)
// are left to it, as are aliases, tags and merge keys.
func shapeProblems(name string, file *ast.File) Problems {
	c := shapeChecker{name: name}
	for _, doc := range file.Docs {
		if doc.Body != nil {
			c.check(doc.Body, reflect.TypeFor[Config]())
		}
	}
	slices.SortStableFunc(c.problems, func(a, b *Problem) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return c.problems
}

type shapeChecker struct {
	name     string
	problems Problems
}

func (c *shapeChecker) fail(n ast.Node, hint, format string, args ...any) {
	p := &Problem{File: c.name, Msg: fmt.Sprintf(format, args...), Hint: hint}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		p.Line, p.Col = tk.Position.Line, tk.Position.Column
	}
	c.problems = append(c.problems, p)
}

func (c *shapeChecker) check(n ast.Node, t reflect.Type) {
	if a, ok := n.(*ast.AnchorNode); ok {
		n = a.Value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n == nil || decodesItself(t) {
		return
	}
	switch n.(type) {
	case *ast.NullNode, *ast.AliasNode, *ast.TagNode:
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		pairs, ok := mappingPairs(n)
		if !ok {
			return // the decoder says what it wanted
		}
		fields := yamlFields(t)
		for _, mv := range pairs {
			if mv.Key == nil || mv.Key.IsMergeKey() || mv.Key.GetToken() == nil {
				continue
			}
			key := mv.Key.GetToken().Value
			f, ok := fields[key]
			if !ok {
				c.fail(mv.Key, "the fields here: "+strings.Join(slices.Sorted(maps.Keys(fields)), ", "),
					"unknown field %q", key)
				continue
			}
			c.check(mv.Value, f.Type)
		}
	case reflect.Slice:
		if seq, ok := n.(*ast.SequenceNode); ok {
			for _, v := range seq.Values {
				c.check(v, t.Elem())
			}
		}
	case reflect.Map:
		if pairs, ok := mappingPairs(n); ok {
			for _, mv := range pairs {
				c.check(mv.Value, t.Elem())
			}
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, ok := n.(*ast.IntegerNode); ok {
			return
		}
		if f, ok := plainNumber(n); !ok || f != math.Trunc(f) {
			c.fail(n, "write a whole number without quotes, e.g. 1000", "want a whole number, not %s", describe(n))
		}
	case reflect.Float32, reflect.Float64:
		switch n.(type) {
		case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
			// Infinities and NaN are refused with their meaning, later.
		default:
			if _, ok := plainNumber(n); !ok {
				c.fail(n, "write a number without quotes, e.g. 0.99", "want a number, not %s", describe(n))
			}
		}
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			c.fail(n, "write true or false, without quotes", "want true or false, not %s", describe(n))
		}
	}
}

// plainNumber is the value of a number written without quotes: a decimal
// (100.0) or one the parser reads as a plain string (1e-4, 5E-1), which the
// decoder converts.
func plainNumber(n ast.Node) (float64, bool) {
	switch x := n.(type) {
	case *ast.FloatNode:
		return x.Value, true
	case *ast.StringNode:
		if tk := x.GetToken(); tk == nil || tk.Type != token.StringType {
			return 0, false // quoted
		}
		f, err := strconv.ParseFloat(x.Value, 64)
		return f, err == nil
	}
	return 0, false
}

// mappingPairs returns the key-value pairs of a mapping; a mapping of one
// pair may come as the pair itself.
func mappingPairs(n ast.Node) ([]*ast.MappingValueNode, bool) {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m.Values, true
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{m}, true
	}
	return nil, false
}

// describe names what a value is, for a message.
func describe(n ast.Node) string {
	if _, ok := plainNumber(n); ok {
		return fmt.Sprintf("the number %s", n.String())
	}
	switch n.(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return fmt.Sprintf("the string %s", n.String())
	case *ast.IntegerNode:
		return fmt.Sprintf("the number %s", n.String())
	case *ast.BoolNode:
		return fmt.Sprintf("the switch %s", n.String())
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	}
	return n.String()
}

// yamlFields maps the YAML keys of a struct to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

// decodesItself reports whether values of t are decoded by their own
// UnmarshalYAML, which checks them.
func decodesItself(t reflect.Type) bool {
	_, own := reflect.PointerTo(t).MethodByName("UnmarshalYAML")
	return own
}
