package compare

import (
	"testing"
)

// FuzzCompare checks, on any pair of bodies: no panic; the fast path and
// go-cmp agree, with no rules and under a broad rule set; a valid document
// matches itself; exact comparison reports the same paths both ways;
// validate fails exactly as parse does, and valid accepts what parse does.
func FuzzCompare(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1}`, `{"a":1.0}`},
		{`9007199254740993`, `9007199254740992`},
		{`{"a":1,"a":2}`, `{"a":1}`},
		{`"\ud800"`, `"x"`},
		{`[1e1000000000]`, `[10e999999999]`},
		{`{"items":[{"id":1,"price":1.0},{"id":2}],"tags":["a","b"]}`, `{"items":[{"id":2},{"id":"1","price":1.04}],"tags":["b","a"]}`},
		{`{"meta":{"request_id":"x"},"updated_at":1,"user_name":"a"}`, `{"meta":{},"updated_at":2,"user":{"name":"a"}}`},
		{`{"created_at":"2024-01-01T00:00:00.1Z","email":"A@b"}`, `{"created_at":"2024-01-01T00:00:00Z","email":"a@B"}`},
		{`[{"type":"internal","x":1},{"x":null}]`, `[{"type":"internal","x":2},{}]`},
		{`{} `, ` {}x`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	all := mustNew(rulePool()...)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, o := range []*Options{nil, all} {
			r := o.Compare(jsonResponse(string(a)), jsonResponse(string(b)))
			if r.Reason == ReasonPanic || r.Reason == ReasonInconsistent {
				t.Fatalf("%s: %s", r.Reason, r.Detail)
			}
			checkAgree(t, o, string(a), string(b))
		}
		if err := validateAgrees(a, DefaultMaxDepth); err != nil {
			t.Fatal(err)
		}
		var d document
		parsed := d.parse(a, DefaultMaxDepth)
		if parsed == nil {
			if r := (*Options)(nil).Compare(jsonResponse(string(a)), jsonResponse(string(a))); r.Outcome != Match {
				t.Fatalf("a valid document does not match itself: %s %s", r.Outcome, r.Reason)
			}
		}
		checkSymmetric(t, string(a), string(b))
	})
}
