package compare_test

import (
	"fmt"
	"net/http"

	"github.com/cutover/cutover/compare"
)

func jsonAnswer(body string) compare.Response {
	return compare.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

// A nil *Options compares exactly: numbers by value, key order ignored.
func ExampleOptions_Compare_exact() {
	var exact *compare.Options
	r := exact.Compare(
		jsonAnswer(`{"id": 9007199254740993, "price": 1.50, "tags": ["a"]}`),
		jsonAnswer(`{"tags": ["a"], "price": 1.5, "id": 9007199254740992}`),
	)
	fmt.Println(r.Outcome)
	for _, d := range r.Diffs {
		fmt.Println(d.Kind, d.Path, d.Old, "→", d.New)
	}
	// Output:
	// mismatch
	// changed $['id'] 9007199254740993 → 9007199254740992
}

// Rules absorb the differences that do not matter, and say which did.
func ExampleNew() {
	o, err := compare.New([]compare.Rule{
		{Kind: compare.RuleIgnore, Origin: "defaults", Path: compare.NewPath("$..updated_at",
			compare.Descendant(compare.Name("updated_at")))},
		{Kind: compare.RuleUnordered, Origin: "route", Path: compare.NewPath("$.items",
			compare.Child(compare.Name("items"))), By: "id"},
		{Kind: compare.RuleTolerance, Origin: "route", Path: compare.NewPath("$..price",
			compare.Descendant(compare.Name("price"))), Absolute: "0.01"},
	}, compare.Limits{}, compare.NoiseThresholds{})
	if err != nil {
		panic(err)
	}
	r := o.Compare(
		jsonAnswer(`{"items":[{"id":1,"price":9.99},{"id":2,"price":5}],"updated_at":"10:00"}`),
		jsonAnswer(`{"items":[{"id":2,"price":5.00},{"id":1,"price":10.00}],"updated_at":"10:01"}`),
	)
	fmt.Println(r.Outcome)
	for _, h := range r.Hits {
		fmt.Printf("%s absorbed %d\n", &o.Rules()[h.Rule], h.Count)
	}
	// Output:
	// match
	// defaults: ignore $..updated_at absorbed 1
	// route: unordered $.items by id absorbed 1
	// route: tolerance $..price absolute 0.01 absorbed 1
}

// Broken answers are errors with a reason, never silently equal.
func ExampleOptions_Compare_error() {
	r := (*compare.Options)(nil).Compare(jsonAnswer(`{"a":1,"a":2}`), jsonAnswer(`{"a":2}`))
	fmt.Println(r.Outcome, r.Reason, r.Side)
	// Output:
	// error duplicate_key old
}

func ExampleFoldPath() {
	fmt.Println(compare.FoldPath("$['items'][3]['sku']"))
	fmt.Println(compare.FoldPath("$['odd[1]'][0]"))
	// Output:
	// $['items'][*]['sku']
	// $['odd[1]'][*]
}

func ExamplePath_Select() {
	p := compare.NewPath("$..id", compare.Descendant(compare.Name("id")))
	paths, _ := p.Select([]byte(`{"id":1,"items":[{"id":2},{"sku":"x"}]}`))
	fmt.Println(paths)
	// Output:
	// [$['id'] $['items'][0]['id']]
}

// A path counts as a real difference only when it differs clearly more
// often between old and new than between two instances of old.
func ExampleNoiseThresholds_Real() {
	var t compare.NoiseThresholds             // Diffy's defaults: 20 % and 0.03 %
	fmt.Println(t.Real(120, 1000, 100, 1000)) // 12 % against 10 % noise
	fmt.Println(t.Real(300, 1000, 100, 1000)) // 30 % against 10 %
	fmt.Println(t.Real(1, 1000, 0, 1000))     // no noise at all
	// Output:
	// false
	// true
	// true
}

func ExampleCancel() {
	diffs := []compare.Difference{
		{Path: "$['server_time']", Kind: compare.Changed},
		{Path: "$['total']", Kind: compare.Changed},
	}
	noise := []compare.Difference{{Path: "$['server_time']", Kind: compare.Changed}}
	real, cancelled := compare.Cancel(diffs, noise)
	fmt.Println(len(real), real[0].Path, len(cancelled))
	// Output:
	// 1 $['total'] 1
}
