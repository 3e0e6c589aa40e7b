package stats

import (
	"testing"

	"github.com/cutover/cutover/compare"
)

func TestFoldPath(t *testing.T) {
	for in, want := range map[string]string{
		"$['items'][3]['price']": "$['items'][*]['price']",
		"$[0][12]":               "$[*][*]",
		"$['a[1]']['b'][2]":      "$['a[1]']['b'][*]",
		"$['it\\'s'][4]":         "$['it\\'s'][*]",
		"status":                 "status",
		"header:X-Request-Id":    "header:X-Request-Id",
	} {
		if got := compare.FoldPath(in); got != want {
			t.Errorf("compare.FoldPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestShortPath(t *testing.T) {
	for in, want := range map[string]string{
		"$['items'][*]['price']": "$.items[*].price",
		"$['a b'][*]":            "$['a b'][*]",
		"$['meta']['x-id']":      "$.meta['x-id']",
		"$":                      "$",
	} {
		if got := shortPath(in); got != want {
			t.Errorf("shortPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGroupsAndSuggestions(t *testing.T) {
	reordered := []compare.Difference{
		{Path: "$['roles'][0]", Kind: compare.Changed, Old: `"admin"`, New: `"viewer"`},
		{Path: "$['roles'][1]", Kind: compare.Changed, Old: `"viewer"`, New: `"admin"`},
		{Path: "$['meta']['trace id']", Kind: compare.Changed, Old: `"a"`, New: `"b"`},
		{Path: "header:X-Served-By", Kind: compare.Changed, Old: "old-1", New: "new-1"},
		{Path: "status", Kind: compare.Changed, Old: "200", New: "500"},
	}
	pks, fp := shape(reordered, false)
	if len(pks) != 4 {
		t.Fatalf("shape = %+v", pks)
	}
	if _, fp2 := shape(reordered[2:], false); fp2 == fp {
		t.Error("different shapes share a fingerprint")
	}
	if _, fpw := shape(reordered, true); fpw == fp {
		t.Error("a write comparison shares a read's fingerprint")
	}
	got := suggestRule("user", pks, movedArrays(reordered))
	want := `# the status code differs: no rule should hide that; fix the backend
routes:
  - name: "user"
    compare:
      unordered:
        - "$.roles"
      ignore:
        - "$.meta['trace id']"
      ignore_headers:
        - "X-Served-By"
`
	if got != want {
		t.Errorf("suggested rule:\n%s\nwant:\n%s", got, want)
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s, cut := truncate("héllo", 2)
	if s != "h" || !cut {
		t.Errorf("truncate = %q %v", s, cut)
	}
}

func TestPctNeverRoundsUp(t *testing.T) {
	for f, want := range map[float64]string{0.999: "99.9%", 0.9995: "99.95%", 0.99999: "99.99%", 0.9: "90%", 1: "100%", 0.2: "20%"} {
		if got := pct(f); got != want {
			t.Errorf("pct(%v) = %q, want %q", f, got, want)
		}
	}
}
