package compare

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestFastPathAgreesWithGoCmp holds the fast path (identical bytes, the
// walker) to go-cmp's verdicts and hit counts on generated pairs under
// random rule sets.
func TestFastPathAgreesWithGoCmp(t *testing.T) {
	n := 4000
	if testing.Short() {
		n = 500
	}
	g := gen{rand.New(rand.NewPCG(1, 2))}
	fast := 0
	for i := range n {
		doc := g.value(0)
		a, b := g.text(doc), g.text(g.mutate(doc))
		if i%7 == 0 {
			b = g.text(doc)
		}
		rules := g.ruleSet()
		o := mustNew(rules...)
		checkAgree(t, o, a, b)
		if o.Compare(jsonResponse(a), jsonResponse(b)).Fast {
			fast++
		}
		if t.Failed() {
			for _, r := range rules {
				t.Logf("rule %s", &r)
			}
			t.FailNow()
		}
	}
	t.Logf("%d pairs, %d decided by the fast path", n, fast)
	// Agreement alone cannot tell a working fast path from one that always
	// defers to go-cmp: it must decide a good share itself (about 60 % of
	// these pairs when it was written).
	if fast < n/3 {
		t.Errorf("the fast path decided only %d of %d pairs", fast, n)
	}
}

func checkAgree(t *testing.T, o *Options, a, b string) {
	t.Helper()
	got := o.Compare(jsonResponse(a), jsonResponse(b))
	slow := o.compareSlow(a, b)
	if got.Outcome != slow.Outcome || got.Reason != slow.Reason || diffText(got) != diffText(slow) {
		t.Errorf("old %s\nnew %s\nfast path: %s %s (fast=%v)\n%s\ngo-cmp: %s %s\n%s", a, b,
			got.Outcome, got.Reason, got.Fast, diffText(got), slow.Outcome, slow.Reason, diffText(slow))
		return
	}
	if !slices.Equal(got.Hits, slow.Hits) {
		t.Errorf("old %s\nnew %s\n%s: hits %s, go-cmp's %s", a, b, got.Outcome, hitText(got), hitText(slow))
	}
}

// TestSelfAndSymmetry: a document equals itself under any rules that do
// not rename, and exact comparison reports the same paths both ways.
func TestSelfAndSymmetry(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	for range 2000 {
		doc := g.value(0)
		a, b := g.text(doc), g.text(g.mutate(doc))
		rules := g.ruleSet()
		rules = slices.DeleteFunc(rules, func(r Rule) bool { return r.Kind == RuleRename })
		o := mustNew(rules...)
		if r := o.Compare(jsonResponse(a), jsonResponse(g.text(doc))); r.Outcome != Match {
			t.Fatalf("%s does not match itself: %s\n%s", a, r.Outcome, diffText(r))
		}
		checkSymmetric(t, a, b)
	}
}

func checkSymmetric(t *testing.T, a, b string) {
	t.Helper()
	ab := (*Options)(nil).Compare(jsonResponse(a), jsonResponse(b))
	ba := (*Options)(nil).Compare(jsonResponse(b), jsonResponse(a))
	if ab.Outcome != ba.Outcome || ab.Reason != ba.Reason && ab.Side != "both" {
		t.Fatalf("%s / %s: %s %s one way, %s %s the other", a, b, ab.Outcome, ab.Reason, ba.Outcome, ba.Reason)
	}
	mirror := map[Kind]Kind{Missing: Extra, Extra: Missing, Changed: Changed, Type: Type}
	var x, y []string
	for _, d := range ab.Diffs {
		x = append(x, string(d.Kind)+" "+d.Path+" "+d.Old+" "+d.New)
	}
	for _, d := range ba.Diffs {
		y = append(y, string(mirror[d.Kind])+" "+d.Path+" "+d.New+" "+d.Old)
	}
	sort.Strings(x)
	sort.Strings(y)
	if !slices.Equal(x, y) || ab.MoreDiffs != ba.MoreDiffs {
		t.Fatalf("%s / %s:\n%v\none way, mirrored the other:\n%v", a, b, x, y)
	}
}

// TestReencodedAnswersMatch: an answer re-encoded by another serializer
// (encoding/json sorts keys, escapes <, > and & as \u003c..., drops spaces)
// is the same answer.
func TestReencodedAnswersMatch(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(5, 6))}
	docs := []string{string(listDoc(4<<10, false, false)), `{"html":"<a href=\"x\">&amp;</a>","n":1.50,"e":1E+2}`}
	for range 500 {
		docs = append(docs, g.text(g.value(0)))
	}
	for _, a := range docs {
		var v any
		dec := json.NewDecoder(strings.NewReader(a))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if r := (*Options)(nil).Compare(jsonResponse(a), jsonResponse(string(b))); r.Outcome != Match {
			t.Fatalf("%s\nre-encoded as\n%s\n%s %s\n%s", a, b, r.Outcome, r.Reason, diffText(r))
		}
	}
}
