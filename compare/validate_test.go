package compare

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Identical answers are only validated (validate), not parsed into nodes:
// the verdict on them must be the one parse would give, failure for
// failure, detail for detail. FuzzCompare checks the same on any input.
func TestValidateFailsExactlyAsParseDoes(t *testing.T) {
	many := func(dup bool) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range 20 {
			fmt.Fprintf(&b, `"k%02d": %d, `, i, i)
		}
		if dup {
			b.WriteString(`"k07": 0, `)
		}
		b.WriteString(`"z": {"a": [1, {"b": null}]}}`)
		return b.String()
	}
	for _, src := range []string{
		`{"a": 1, "b": [true, false, null, "x", -1.5e3]}`,
		`{"a": 1, "a": 2}`,
		`{"a": {"b": 1, "b": 2}, "c": 3}`,
		`{"a": 1, "\u0061": 2}`,
		`[{"a": 1}, {"a": 2}, {"x": {"y": 1, "y": 1}}]`,
		many(false),
		many(true),
		`{"a": 1, "b": {"a": 1}, "a": 3}`,
		"\"\xc3\x28\"",
		`"\ud800"`,
		`{"a" 1}`,
		`{"a": 1,}`,
		`[1, 2`,
		`01`,
		`tru`,
		`{} x`,
		``,
		strings.Repeat("[", DefaultMaxDepth+1) + strings.Repeat("]", DefaultMaxDepth+1),
		`{"a": [1, 2, {"b": "\q"}]}`,
	} {
		var d, v document
		parsed, checked := d.parse([]byte(src), DefaultMaxDepth), v.validate([]byte(src), DefaultMaxDepth)
		if !reflect.DeepEqual(parsed, checked) {
			t.Errorf("%.60q: parse says %v, validate says %v", src, parsed, checked)
		}
	}
}

// A session goes back to the pool only when what it holds is small: the
// names a validation collects count, not only the parse's nodes.
func TestASessionThatGrewLargeIsNotPooled(t *testing.T) {
	o := mustNew()
	s := new(session)
	s.a.names = make([]memberName, 0, 1<<18+1)
	o.release(s)
	if got, _ := o.sessions.Get().(*session); got != nil {
		t.Fatal("a session holding 2^18 names was pooled")
	}
}

// A string's scan reads 8 bytes at a time and stops at the first byte that
// needs attention: wherever that byte falls in a word (and past the last
// whole word), the string ends at its quote, keeps its escapes and UTF-8,
// and fails at a control character or invalid UTF-8.
func TestTheStringScanStopsAtEveryPosition(t *testing.T) {
	for n := range 20 {
		pad := strings.Repeat("a", n)
		for _, tt := range []struct {
			body, text, reason string
		}{
			{pad, pad, ""},
			{pad + `\"b`, pad + `"b`, ""},
			{pad + `\\`, pad + `\`, ""},
			{pad + "é\u00a0x", pad + "é\u00a0x", ""},
			{pad + "\x7f~ ", pad + "\x7f~ ", ""},
			{pad + "\n", "", ReasonInvalidJSON},
			{pad + "\x1f", "", ReasonInvalidJSON},
			{pad + "\xff", "", ReasonInvalidUTF8},
			{pad + "\xc3", "", ReasonInvalidUTF8},
		} {
			src := []byte(`"` + tt.body + `"`)
			var d, v document
			err := d.parse(src, DefaultMaxDepth)
			if verr := v.validate(src, DefaultMaxDepth); !reflect.DeepEqual(err, verr) {
				t.Fatalf("%q: parse says %v, validate says %v", src, err, verr)
			}
			switch {
			case tt.reason == "" && err != nil:
				t.Errorf("%q: %v, want valid", src, err)
			case tt.reason == "" && d.text(0) != tt.text:
				t.Errorf("%q: text %q, want %q", src, d.text(0), tt.text)
			case tt.reason != "" && (err == nil || err.reason != tt.reason):
				t.Errorf("%q: %v, want %s", src, err, tt.reason)
			}
			// Unterminated: the scan must not run past the end.
			if err := d.parse(src[:len(src)-1], DefaultMaxDepth); err == nil {
				t.Errorf("%q: valid without its closing quote", src[:len(src)-1])
			}
		}
	}
}
