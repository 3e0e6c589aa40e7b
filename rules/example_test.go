package rules_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
)

// A route's compare section becomes the Options the gateway and `cutover
// diff` use; a route's rules come after the defaults'.
func ExampleParse_compare() {
	const config = `
backends:
  old: {url: "http://127.0.0.1:8081"}
  new: {url: "http://127.0.0.1:8082"}
defaults:
  compare:
    ignore: ["$.meta.request_id"]
routes:
  - name: user
    match: {path: "/users/{id}"}
    compare:
      unordered: ["$.roles"]
      coerce: ["$.id"]
`
	set, err := rules.Parse("cutover.yaml", strings.NewReader(config))
	if err != nil {
		fmt.Println(err)
		return
	}
	answer := func(body string) compare.Response {
		return compare.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
	}
	o := set.Route("user").Compare
	r := o.Compare(
		answer(`{"id": 7, "roles": ["admin", "dev"], "meta": {"request_id": "a1"}}`),
		answer(`{"id": "7", "roles": ["dev", "admin"], "meta": {"request_id": "b2"}}`),
	)
	fmt.Println(r.Outcome)
	for _, h := range r.Hits {
		fmt.Println(o.Rules()[h.Rule].String())
	}
	// Output:
	// match
	// route: unordered $.roles
	// route: coerce $.id
	// defaults: ignore $.meta.request_id
}

// Problems come with their place in the file and a hint.
func ExampleParse_problems() {
	const config = `
backends:
  old: {url: "http://127.0.0.1:8081"}
  new: {url: "http://127.0.0.1:8082"}
defaults:
  compare:
    ignore: ["$"]
    normalize:
      - {path: "$..at", pattern: "(unclosed"}
`
	_, err := rules.Parse("cutover.yaml", strings.NewReader(config))
	for _, p := range rules.AsProblems(err) {
		fmt.Println(p.Error())
	}
	// Output:
	// cutover.yaml:7:14: ignoring $ ignores the whole document: every answer would match (ignore only the parts that differ, like $.meta.request_id or $..updated_at)
	// cutover.yaml:9:34: bad pattern "(unclosed": missing closing ): "(unclosed" (Go regular expressions are RE2: https://golang.org/s/re2syntax)
}
