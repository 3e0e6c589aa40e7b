package rules_test

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/rules"
)

func TestParseDesignExample(t *testing.T) {
	set, err := rules.LoadFile("testdata/design.yaml")
	if err != nil {
		t.Fatalf("the DESIGN.md example must load: %v", err)
	}
	if got := len(set.Routes); got != 3 {
		t.Fatalf("routes = %d, want 3", got)
	}
	if set.Backends.Old.Timeout.String() != "2s" || set.Backends.New.URL.Host != "127.0.0.1:8082" {
		t.Errorf("backends = %+v", set.Backends)
	}
	if set.Default.Name != rules.Unmatched || set.Default.Phase != rules.ShadowRead {
		t.Errorf("default route = %s %s", set.Default.Name, set.Default.Phase)
	}
	if set.Readiness.MatchRate != 0.999 || set.Readiness.MinSamples != 1000 {
		t.Errorf("readiness = %+v", set.Readiness)
	}
	if set.Version == "" {
		t.Error("a loaded set has a version")
	}
}

// A request that matches no route gets the default route with its path as
// the parameter "*", as a route "/*" would: each path its own resource.
// A route that takes GET takes HEAD too.
func TestMatch(t *testing.T) {
	set, err := rules.LoadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		route        string
		params       string
	}{
		{"GET", "/users/42", "user", "id=42"},
		{"PUT", "/users/42", "user", "id=42"},
		{"HEAD", "/users/42", "user", "id=42"}, // a route that takes GET takes HEAD
		{"OPTIONS", "/users/42", "unmatched", "*=users/42"},
		{"HEAD", "/search", "unmatched", "*=search"}, // POST only
		{"POST", "/users/42", "unmatched", "*=users/42"},
		{"GET", "/users/42/", "unmatched", "*=users/42/"},
		{"GET", "/users/", "unmatched", "*=users/"},
		{"GET", "/users", "unmatched", "*=users"},
		{"POST", "/search", "search", ""},
		{"GET", "/search", "unmatched", "*=search"},
		{"GET", "/orders/7", "orders", "*=7"},
		{"DELETE", "/orders/7/items/3", "orders", "*=7/items/3"},
		{"GET", "/orders/", "orders", "*="},
		{"GET", "/orders", "unmatched", "*=orders"},
		{"GET", "/", "unmatched", "*="},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r, ps := set.Match(tt.method, tt.path, nil)
			if r.Name != tt.route {
				t.Fatalf("route = %q, want %q", r.Name, tt.route)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.Name+"="+p.Value)
			}
			if g := strings.Join(got, ","); g != tt.params {
				t.Errorf("params = %q, want %q", g, tt.params)
			}
		})
	}
}

// A route that names HEAD takes the HEADs of its paths, wherever it is in
// the file: the HEAD a route taking GET is given is only for the paths no
// route names HEAD for, so such a route is never said to be shadowed.
func TestANamedHeadWinsOverTheOneAGetImplies(t *testing.T) {
	for _, methods := range []string{"[HEAD]", "[HEAD, DELETE]"} {
		set, err := rules.Parse("cfg.yaml", strings.NewReader("backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\nroutes:\n"+
			"  - {name: user, match: {methods: [GET], path: \"/users/{id}\"}}\n"+
			"  - {name: user-head, match: {methods: "+methods+", path: \"/users/{id}\"}}\n"))
		if err != nil {
			t.Fatalf("%s: %v", methods, err)
		}
		for method, want := range map[string]string{"HEAD": "user-head", "GET": "user"} {
			if r, _ := set.Match(method, "/users/1", nil); r.Name != want {
				t.Errorf("%s after a GET route: %s /users/1 went to %s, want %s", methods, method, r.Name, want)
			}
		}
	}
}

// A request no route matches is a resource per path; a long path is keyed
// by its hash, whole: two that differ only at the end are two resources.
func TestTheResourceOfAnUnmatchedRequestIsItsPath(t *testing.T) {
	set, err := rules.LoadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key := func(path string) string {
		r, ps := set.Match("PUT", path, nil)
		req := httptest.NewRequest("PUT", "http://x"+path, nil)
		return r.ResourceKey(req, ps)
	}
	if k := key("/things/7"); k != "unmatched|things/7" {
		t.Errorf("key of /things/7 = %q", k)
	}
	a, b := key("/"+strings.Repeat("x", 2000)+"a"), key("/"+strings.Repeat("x", 2000)+"b")
	if a == b || len(a) > 100 || len(b) > 100 || !strings.HasPrefix(a, "unmatched|") {
		t.Errorf("keys of two long paths: %q and %q, want two short ones", a, b)
	}
}

func TestPhaseAndReads(t *testing.T) {
	set, err := rules.LoadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	orders := set.Route("orders")
	req := httptest.NewRequest("GET", "/orders/1", nil)
	if p, o := orders.PhaseFor(req, nil); p != rules.DualWrite || o != nil {
		t.Errorf("without tenant: %s %v", p, o)
	}
	req.Header.Set("X-Tenant", "acme")
	if p, o := orders.PhaseFor(req, nil); p != rules.Cutover || o == nil {
		t.Errorf("tenant acme: %s %v", p, o)
	}
	if !set.Route("search").IsRead("POST") {
		t.Error("read: true makes POST a read")
	}
	if set.Route("user").IsRead("PUT") || !set.Route("user").IsRead("HEAD") {
		t.Error("PUT is a write, HEAD a read")
	}
	if !orders.WriteSucceeded(201) || orders.WriteSucceeded(500) || orders.WriteSucceeded(302) {
		t.Error("default write success is 2xx")
	}
}

func TestBreakerOpenForDefaultsWhenLeftOut(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want time.Duration
	}{
		{"", rules.DefaultBreakerOpenFor},
		{"shadow: {}\n", rules.DefaultBreakerOpenFor},
		{"shadow:\n  breaker_open_for: 3s\n", 3 * time.Second},
	} {
		set, err := rules.Parse("cfg.yaml", strings.NewReader("backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\n"+tt.src))
		if err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		if got := set.Shadow.BreakerOpenFor; got != tt.want {
			t.Errorf("%q: breaker_open_for = %v, want %v", tt.src, got, tt.want)
		}
	}
}

func TestProblemsHavePositions(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "listen: x\nbackends:\n  old: {url: \"http://a\", timout: 2s}\n", `cfg.yaml:3:26: unknown field "timout"`},
		{"wrong type", "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\nroutes: {name: x}\n", "cfg.yaml:4:"},
		{"unknown phase", base + "routes:\n  - name: a\n    match: {path: /a}\n    phase: shadow\n", `cfg.yaml:7:12: unknown phase "shadow"`},
		{"bad duration", "backends:\n  old: {url: \"http://a\", timeout: soon}\n  new: {url: \"http://b\"}\n", `cfg.yaml:2:35: "soon" is not a duration`},
		{"bad pattern", base + "routes:\n  - name: a\n    match: {path: \"/a/{id\"}\n", `cfg.yaml:6:19: path pattern "/a/{id": segment "{id"`},
		{"bad parameter regexp", base + "routes:\n  - name: a\n    match: {path: \"/a/{id:[0-9+}\"}\n", `the regexp of {id} does not compile: missing closing ]: "[0-9+"`},
		{"wildcard inside", base + "routes:\n  - name: a\n    match: {path: \"/a/*/b\"}\n", `cfg.yaml:6:19: path pattern "/a/*/b": * may only be the last segment`},
		{"duplicate name", base + "routes:\n  - name: a\n    match: {path: /a}\n  - name: a\n    match: {path: /b}\n", `cfg.yaml:7:11: route name "a" is already used by line 5`},
		{"unreachable", base + "routes:\n  - name: all\n    match: {path: \"/o/*\"}\n  - name: one\n    match: {methods: [GET], path: \"/o/{id}\"}\n", `cfg.yaml:8:35: route "one" can never match: route "all" (line 5)`},
		{"override param", base + "routes:\n  - name: a\n    match: {path: \"/a/{id}\"}\n    overrides:\n      - when: {path_param: tenant, equals: x}\n        phase: cutover\n", `cfg.yaml:8:28: the path pattern "/a/{id}" has no parameter "tenant"`},
		{"missing backend", "backends:\n  old: {url: \"http://a\"}\n", "cfg.yaml:2:6: backend new needs a url"},
		{"no backends at all", "listen: \"127.0.0.1:0\"\n", "cfg.yaml:1:1: backend old needs a url"},
		{"breaker open for nothing", base + "shadow:\n  breaker_open_for: 0ms\n", "cfg.yaml:5:21: a breaker cannot be open for 0ms"},
		{"negative lag factor", base + "shadow:\n  lag_factor: -1\n", "cfg.yaml:5:15: lag_factor must not be negative, not -1 (use a positive number, 0 to turn the limit off"},
		{"sample", base + "defaults:\n  sample: 2\n", "cfg.yaml:5:11: sample 2 is not a share"},
		// What serve could not start with, check and a reload refuse too.
		{"admin open to others", base + "admin: {listen: \"0.0.0.0:9090\"}\n", `cfg.yaml:4:17: admin.listen "0.0.0.0:9090" is reachable from other hosts but admin.auth is not set`},
		{"listen without a port", "listen: \"8080\"\n" + base, `cfg.yaml:1:9: "8080" is not an address to listen on`},
		{"admin port out of range", base + "admin: {listen: \"127.0.0.1:70000\"}\n", `cfg.yaml:4:17: "127.0.0.1:70000" is not an address to listen on: port "70000"`},
		{"admin address from an unset variable", base + "admin: {listen: \"${CUTOVER_TEST_UNSET_ADMIN}\"}\n", `CUTOVER_TEST_UNSET_ADMIN`},
		// The YAML decoder's own words get a hint of what to do.
		{"tab indentation", "backends:\n\told: {url: \"http://a\"}\n", "cfg.yaml:2:1: found character '\t' that cannot start any token (YAML is indented with spaces: replace the tabs)"},
		{"key twice", base + "defaults:\n  phase: prepare\n  phase: dual-write\n", `cfg.yaml:6:3: mapping key "phase" already defined at [5:3] (a key appears once in a mapping: merge the two)`},
		{"misindented value", base + "defaults:\n  phase: prepare\n   x: y\n", `mapping value is not allowed in this context (check the indentation above this line, and quote a value that holds ": ")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rules.Parse("cfg.yaml", strings.NewReader(tt.yaml))
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			if ps := rules.AsProblems(err); len(ps) == 0 {
				t.Errorf("error %T carries no Problems", err)
			}
		})
	}
}

const base = "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\n"

// A number of the wrong kind is refused, never converted: the decoder made
// "min_samples: 2.9" 2 and "match_rate: '0.5'" 0.5, so a typo loosened a
// readiness threshold and check said ok. Every such problem and every
// unknown field is reported at once, in file order (the decoder stopped at
// one, not always the first).
func TestNumbersAndSwitchesOfTheWrongKindAreRefused(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"readiness:\n  min_samples: 2.9\n", `cfg.yaml:5:16: want a whole number, not the number 2.9`},
		{"readiness:\n  min_samples: -0.5\n", `cfg.yaml:5:16: want a whole number, not the number -0.5`},
		{"readiness:\n  min_samples: 2.5e0\n", `cfg.yaml:5:16: want a whole number, not the number 2.5e0`},
		{"readiness:\n  min_samples: \"1000\"\n", `cfg.yaml:5:16: want a whole number, not the string "1000"`},
		{"readiness:\n  unresolved_retries: 2.7\n", `cfg.yaml:5:23: want a whole number`},
		{"shadow:\n  workers: 1.5\n", `cfg.yaml:5:12: want a whole number`},
		{"shadow:\n  lag_factor: 2.5\n", `cfg.yaml:5:15: want a whole number`},
		{"queue:\n  max_attempts: '5'\n", `cfg.yaml:5:17: want a whole number`},
		{"readiness:\n  match_rate: \"0.5\"\n", `cfg.yaml:5:15: want a number, not the string "0.5"`},
		{"readiness:\n  p99_latency_increase: \"0.3\"\n", `cfg.yaml:5:25: want a number`},
		{"defaults:\n  sample: \"0.5\"\n", `cfg.yaml:5:11: want a number`},
		{"routes:\n  - name: a\n    match: {path: /a}\n    read: \"yes\"\n", `cfg.yaml:7:11: want true or false, not the string "yes"`},
		{"admin: {pprof: 1}\n", `cfg.yaml:4:16: want true or false, not the number 1`},
	} {
		_, err := rules.Parse("cfg.yaml", strings.NewReader(base+tt.src))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want it to contain %s", tt.src, err, tt.want)
		}
	}
	// What stays valid: integers where numbers are wanted, numbers with an
	// exponent (the YAML parser reads 1e-4 as a plain string; the decoder
	// converts it), whole numbers written as decimals, any scalar where a
	// string is (a header value of 42).
	for _, src := range []string{
		"readiness: {match_rate: 1e-1, min_samples: 1e3}\n",
		"readiness: {min_samples: 100.0, secondary_write_success: 5E-1}\n",
		"defaults:\n  compare:\n    noise: {relative: 0.3, absolute: 1e-4}\n",
	} {
		if _, err := rules.Parse("cfg.yaml", strings.NewReader(base+src)); err != nil {
			t.Errorf("%q: %v", src, err)
		}
	}
	set, err := rules.Parse("cfg.yaml", strings.NewReader(base+"readiness: {match_rate: 1e-1, min_samples: 1e3}\n"))
	if err != nil || set.Readiness.MatchRate != 0.1 || set.Readiness.MinSamples != 1000 {
		t.Errorf("match_rate 1e-1, min_samples 1e3: %+v, %v", set.Readiness, err)
	}
	src := base + "readiness: {match_rate: 1, min_samples: 10}\ndefaults: {sample: 0}\nroutes:\n  - name: a\n    match: {path: \"/a/{id}\"}\n    overrides:\n      - {name: o, when: {header: X-Tenant, equals: 42}, phase: cutover}\n      - {name: p, when: {header: X-Shard, in: [1, 2]}, phase: cutover}\n"
	if _, err := rules.Parse("cfg.yaml", strings.NewReader(src)); err != nil {
		t.Errorf("a valid file: %v", err)
	}

	_, err = rules.Parse("cfg.yaml", strings.NewReader("listn: x\n"+base+"readiness:\n  min_samples: 2.9\n  match_rte: 0.9\nshadow: {workers: \"8\"}\n"))
	ps := rules.AsProblems(err)
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%d:%d %s", p.Line, p.Col, p.Msg))
	}
	want := []string{
		`1:1 unknown field "listn"`,
		`6:16 want a whole number, not the number 2.9`,
		`7:3 unknown field "match_rte"`,
		`8:19 want a whole number, not the string "8"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(err.Error(), "the fields here: ") || !strings.Contains(err.Error(), "match_rate") {
		t.Errorf("an unknown field's hint lists the fields: %v", err)
	}
}

func TestEveryProblemReported(t *testing.T) {
	src := base + "routes:\n  - name: a\n    phase: nope\n    match: {path: nope}\n  - match: {path: /b}\n"
	_, err := rules.Parse("cfg.yaml", strings.NewReader(src))
	if ps := rules.AsProblems(err); len(ps) != 3 {
		t.Fatalf("want 3 problems, got %v", err)
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := rules.LoadFile("testdata/does-not-exist.yaml")
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v", err)
	}
	// A directory is told as one, with the file to give instead.
	if _, err := rules.LoadFile("testdata"); err == nil || !strings.Contains(err.Error(), "testdata is a directory: give the configuration file, such as testdata/cutover.yaml") {
		t.Errorf("a directory: err = %v", err)
	}
}

// What a YAML file can say that a config cannot: a second document (the
// decoder reads the first only, and routes after "---" were dropped) and
// shares or factors that are not numbers (NaN compares false with every
// bound).
func TestNotANumberAndASecondDocumentAreRefused(t *testing.T) {
	const head = "backends:\n  old: {url: \"http://127.0.0.1:1\"}\n  new: {url: \"http://127.0.0.1:2\"}\n"
	for name, c := range map[string]struct{ src, want string }{
		"second document":               {head + "routes:\n  - name: a\n    match: {path: /a}\n---\nroutes:\n  - name: b\n    match: {path: /b}\n", "c.yaml:7:1: a second YAML document"},
		"second document of other keys": {head + "routes:\n  - name: a\n    match: {path: /a}\n---\nnotes: {owner: team-a}\n", "c.yaml:7:1: a second YAML document"},
		"NaN match_rate":                {head + "readiness: {match_rate: .nan}\n", "NaN is not a share"},
		"NaN sample":                    {head + "routes:\n  - name: a\n    sample: .nan\n    match: {path: /a}\n", "sample NaN is not a share"},
		"infinite p99 factor":           {head + "readiness: {p99_latency_increase: .inf}\n", "p99_latency_increase +Inf is not a number of 0 or more"},
		"NaN noise threshold":           {head + "defaults:\n  compare:\n    noise: {relative: .nan}\n", "relative NaN is not a number of 0 or more"},
		"NaN absolute in noise":         {head + "defaults:\n  compare:\n    noise: {absolute: .nan}\n", "absolute NaN is not a share"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := rules.Parse("c.yaml", strings.NewReader(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// A route after one that matches every path it matches is refused; one
// that can still be reached is not (a wildcard needs the slash after its
// segments, a parameter never matches an empty segment).
func TestAnUnreachableRouteIsRefusedAndOnlyThen(t *testing.T) {
	const head = "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\nroutes:\n"
	for _, c := range []struct {
		first, second string
		unreachable   bool
	}{
		{"/o/*", "/o/{id}", true},
		{"/o/*", "/o/", true},
		{"/o/*", "/o/*", true},
		{"/o/*", "/o/a/*", true},
		{"/users/{id}", "/users/x", true},
		{"/o/*", "/o", false},
		{"/users/{id}", "/users/", false},
		{"/users/{id:[a-z]*}", "/users/", false},
		{"/o/{id}/*", "/o/x", false},
	} {
		src := fmt.Sprintf("%s  - name: first\n    match: {path: %q}\n  - name: second\n    match: {path: %q}\n", head, c.first, c.second)
		_, err := rules.Parse("cfg.yaml", strings.NewReader(src))
		if got := err != nil && strings.Contains(err.Error(), "can never match"); got != c.unreachable || (err != nil && !got) {
			t.Errorf("%s then %s: %v, want unreachable %t", c.first, c.second, err, c.unreachable)
		}
	}
}

// A value with a variable that is not set is reported as that, once per
// variable, and not again as what it then is not (a backend URL).
func TestAnUnsetVariableIsReportedAsThatAlone(t *testing.T) {
	_, err := rules.Parse("cfg.yaml", strings.NewReader("backends:\n  old: {url: \"http://user:${CUTOVER_TEST_UNSET_A}@127.0.0.1:1${CUTOVER_TEST_UNSET_B}\"}\n  new: {url: \"http://b\"}\n"))
	var ps rules.Problems
	if !errors.As(err, &ps) || len(ps) != 2 || !strings.Contains(ps[0].Error(), "CUTOVER_TEST_UNSET_A is not set") || !strings.Contains(ps[1].Error(), "CUTOVER_TEST_UNSET_B is not set") {
		t.Errorf("a backend URL with two unset variables: %v, want each reported as unset, and nothing else", err)
	}
}

// Two routes with one name and one path: the second is told the name is
// taken and that the first (where it is, not where the second is) already
// matches what it would.
func TestADuplicateRouteNamePointsAtTheFirst(t *testing.T) {
	src := "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\nroutes:\n" +
		"  - name: a\n    match: {path: \"/x/{id}\"}\n" + // line 5
		"  - name: a\n    match: {path: \"/x/{id}\"}\n" // line 7
	_, err := rules.Parse("cfg.yaml", strings.NewReader(src))
	if err == nil || !strings.Contains(err.Error(), `route name "a" is already used by line 5`) ||
		!strings.Contains(err.Error(), `route "a" can never match: route "a" (line 5)`) {
		t.Errorf("duplicate names: %v, want the second a told line 5 has its name and matches first", err)
	}
}

// Listen addresses are taken as net.Listen takes them, service names
// included; an address from an unset variable is reported once, as that.
func TestListenAddressesAsNetListenTakesThem(t *testing.T) {
	const backends = "backends:\n  old: {url: \"http://a\"}\n  new: {url: \"http://b\"}\n"
	if _, err := rules.Parse("cfg.yaml", strings.NewReader("listen: \":http\"\nadmin: {listen: \"[::1]:9090\"}\n"+backends)); err != nil {
		t.Errorf("a service name and IPv6 loopback: %v", err)
	}
	_, err := rules.Parse("cfg.yaml", strings.NewReader("admin: {listen: \"${CUTOVER_TEST_UNSET_ADMIN}\"}\n"+backends))
	if err == nil || strings.Contains(err.Error(), "not an address") || strings.Contains(err.Error(), "reachable from other hosts") {
		t.Errorf("an unset variable: %v, want it reported as unset only", err)
	}
}

// shadow.lag_factor left out is the default; 0 is kept, as the way to turn
// the bound off, not read as "the default" as shadow.workers' 0 is.
func TestLagFactorZeroIsOffNotTheDefault(t *testing.T) {
	for src, want := range map[string]int{
		"":                             rules.DefaultShadowLagFactor,
		"shadow: {lag_factor: null}\n": rules.DefaultShadowLagFactor,
		"shadow: {lag_factor: 0}\n":    0,
		"shadow: {lag_factor: 3}\n":    3,
		"shadow: {workers: 0}\n":       rules.DefaultShadowLagFactor,
	} {
		set, err := rules.Parse("cfg.yaml", strings.NewReader(base+src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if set.Shadow.LagFactor != want {
			t.Errorf("%q: lag_factor %d, want %d", src, set.Shadow.LagFactor, want)
		}
	}
}
