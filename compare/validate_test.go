package compare

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
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
		if err := validateAgrees([]byte(src), DefaultMaxDepth); err != nil {
			t.Error(err)
		}
	}
}

// validateAgrees checks validate and its fast check, valid, against parse
// on src: validate fails exactly as parse does, and valid accepts exactly
// what parse accepts (validate would hide a refusal too many, asking scan
// for the reason, and only be slower).
func validateAgrees(src []byte, maxDepth int) error {
	var d, v, f document
	parsed, checked := d.parse(src, maxDepth), v.validate(src, maxDepth)
	if !reflect.DeepEqual(parsed, checked) {
		return fmt.Errorf("%.80q: parse says %v, validate says %v", src, parsed, checked)
	}
	if ok := f.valid(src, maxDepth); ok != (parsed == nil) {
		return fmt.Errorf("%.80q: parse says %v, valid says %v", src, parsed, ok)
	}
	return nil
}

// The fast check walks the document with a stack where parse recurses, so
// every way a container can open, close, nest and fail is tried here, with
// the whitespace JSON allows at every place it may stand, and the depth
// limit reached exactly and passed, by empty containers too.
func TestValidAcceptsExactlyWhatParseAccepts(t *testing.T) {
	sources := []string{
		`[]`, `{}`, `[[]]`, `[{}]`, `{"a":[]}`, `{"a":{}}`, `[[],{},[{}]]`,
		` [ 1 , { "a" : [ true , false , null ] , "b" : "x" } ] `,
		"\t{\n\"a\"\r:\t1\n}\r\n",
		`[1,]`, `{"a":1,}`, `[,1]`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{1:2}`, `{"a":1 "b":2}`,
		`[}`, `{]`, `[1}`, `{"a":1]`, `]`, `}`, `[`, `{`, `{"a":`, `{"a"`, `[1`, `[1,`,
		`"x"`, `"x`, `x`, `1`, `-0`, `-`, `01`, `1.`, `.1`, `1e`, `1e+`, `1.5e-3`, `-12.5E+07`,
		"1e" + strings.Repeat("0", maxExponentDigits+5) + "1",
		"1e" + strings.Repeat("1", maxExponentDigits+1),
		`true`, `tru`, `truex`, `[true false]`, `nul`, `[null]`, `falsey`, `[falsx]`, `[trux]`, `[nulx]`, `f`, `t`, `n`,
		"[1]\x00", "\x00[1]", "[\x0b1]", `[1] [2]`, `[1] ,`, ` `, ``,
		`{"a":1,"a":2}`, `{"a":{"a":1},"b":{"a":1}}`, `{"a":1,"b":{"c":1,"c":2}}`, `{"\u0061":1,"a":2}`,
		`{"abcdefghijklmnopqrstuvwxyz0123456789":1,"abcdefghijklmnopqrstuvwxyz0123456789":2}`,
		`["` + strings.Repeat("long ", 20) + `", "é\n\u00e9"]`,
		`["\ud83d\ude00", "\ud800"]`, "[\"\xff\"]", "[\"\x01\"]", `["a\qb"]`,
	}
	for _, src := range sources {
		if err := validateAgrees([]byte(src), DefaultMaxDepth); err != nil {
			t.Error(err)
		}
	}
	for depth := 1; depth <= 4; depth++ {
		for _, open := range []string{"[", `{"a":`} {
			for extra := range 2 {
				nest := strings.Repeat(open, depth-1+extra)
				closing := strings.Repeat(map[string]string{"[": "]", `{"a":`: "}"}[open], depth-1+extra)
				for _, inner := range []string{"[]", "{}", "1"} {
					if err := validateAgrees([]byte(nest+inner+closing), depth); err != nil {
						t.Error(err)
					}
				}
			}
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
	// Nor one that unescaped a long member name.
	s = new(session)
	s.b.unescaped = make([]byte, 0, 1<<20+1)
	o.release(s)
	if got, _ := o.sessions.Get().(*session); got != nil {
		t.Fatal("a session holding 1 MiB of unescaped names was pooled")
	}
}

// A string's scan reads 8 bytes at a time and stops at the first byte that
// needs attention: wherever that byte falls in a word (and past the last
// whole word), the string ends at its quote, keeps its escapes and UTF-8,
// and fails at a control character or invalid UTF-8, at that byte. Each
// input is scanned as it is and with 8 spaces after it, so that the word
// holding the byte is read whole at every offset.
func TestTheStringScanStopsAtEveryPosition(t *testing.T) {
	for n := range 20 {
		pad := strings.Repeat("a", n)
		for _, tt := range []struct {
			body, text, reason string
		}{
			{pad, pad, ""},
			{pad + `\"b`, pad + `"b`, ""},
			{pad + `\\`, pad + `\`, ""},
			{pad + `\n\t`, pad + "\n\t", ""},
			{pad + "é\u00a0x", pad + "é\u00a0x", ""},
			{pad + "é", pad + "é", ""},
			{pad + `é\n`, pad + "é\n", ""},
			{pad + "\x7f~ ", pad + "\x7f~ ", ""},
			{pad + "\n", "", ReasonInvalidJSON},
			{pad + "é\n", "", ReasonInvalidJSON},
			{pad + "\x1f", "", ReasonInvalidJSON},
			{pad + "\xff", "", ReasonInvalidUTF8},
			{pad + "\xc3", "", ReasonInvalidUTF8},
		} {
			for _, tail := range []string{"", "        "} {
				src := []byte(`"` + tt.body + `"` + tail)
				if err := validateAgrees(src, DefaultMaxDepth); err != nil {
					t.Fatal(err)
				}
				var d document
				err := d.parse(src, DefaultMaxDepth)
				switch {
				case tt.reason == "" && err != nil:
					t.Errorf("%q: %v, want valid", src, err)
				case tt.reason == "" && d.text(0) != tt.text:
					t.Errorf("%q: text %q, want %q", src, d.text(0), tt.text)
				case tt.reason != "" && (err == nil || err.reason != tt.reason):
					t.Errorf("%q: %v, want %s", src, err, tt.reason)
				case tt.reason != "":
					// The offending byte is the last of the body.
					if at := fmt.Sprintf("at offset %d", len(tt.body)); !strings.HasSuffix(err.detail, at) {
						t.Errorf("%q: %v, want it %s", src, err, at)
					}
				}
			}
			// Unterminated: the scan must not run past the end.
			src := []byte(`"` + tt.body)
			var d document
			if err := d.parse(src, DefaultMaxDepth); err == nil {
				t.Errorf("%q: valid without its closing quote", src)
			}
		}
	}
}

// specials marks exactly the first byte of a word that needs attention
// inside a string, for every byte value at every position, among plain
// neighbours and among the neighbours the bit tricks may mark falsely
// above a real mark.
func TestSpecialsMarksTheFirstByteThatNeedsAttention(t *testing.T) {
	for _, fill := range []byte{'a', ' ', '#', ']', 0x01, 0x21, 0x7f, 0x80} {
		for k := range 8 {
			for b := range 256 {
				var w [8]byte
				for j := range w {
					w[j] = fill
				}
				w[k] = byte(b)
				want := 8
				for j, c := range w {
					if special[c] != 0 {
						want = j
						break
					}
				}
				m := specials(binary.LittleEndian.Uint64(w[:]))
				got := 8
				if m != 0 {
					got = bits.TrailingZeros64(m) / 8
				}
				if got != want {
					t.Fatalf("% x: first marked byte %d, want %d", w, got, want)
				}
			}
		}
	}
}

// An object with an escaped member name is checked for duplicates by
// sorting its unescaped names, not by comparing every pair (quadratic, for
// the 50,000 escaped names of a large json.dumps output); it reports what
// comparing every pair did: the first member whose name an earlier one has.
func TestEscapedNamesFindTheFirstDuplicate(t *testing.T) {
	spellings := map[string][]string{
		"a": {`a`, `\u0061`}, "b": {`b`, `\u0062`}, "é": {`é`, `\u00e9`}, "ab": {`ab`, `a\u0062`}, "": {``},
	}
	keys := []string{"a", "b", "é", "ab", ""}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := 2 + rng.IntN(7)
		src := "{"
		want, wantName, wantAt := -1, "", 0
		seen := map[string]bool{}
		for i := range n {
			k := keys[rng.IntN(len(keys))]
			sp := spellings[k][rng.IntN(len(spellings[k]))]
			if i > 0 {
				src += ","
			}
			if seen[k] && want < 0 {
				want, wantName, wantAt = i, k, len(src)+1
			}
			seen[k] = true
			src += `"` + sp + `":` + fmt.Sprint(i)
		}
		src += "}"
		var d document
		f := d.validate([]byte(src), 64)
		switch {
		case want < 0 && f != nil:
			t.Fatalf("%s: %v, want valid", src, f)
		case want >= 0 && (f == nil || f.reason != ReasonDuplicateKey || !strings.Contains(f.detail, fmt.Sprintf("duplicate member %q at offset %d", wantName, wantAt))):
			t.Fatalf("%s: %v, want the duplicate %q of member %d", src, f, wantName, want)
		}
	}
}
