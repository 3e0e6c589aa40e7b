package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/cutover/cutover/compare"
)

// Unmatched is the route name of requests that match no route; they follow
// the defaults.
const Unmatched = "unmatched"

// maxPathInKey is the longest path of a request no route matches that its
// resource key holds as it is (ResourceKey).
const maxPathInKey = 512

// Set is one compiled, immutable configuration. The gateway reads it through
// an atomic pointer; a reload builds a new Set and swaps it whole.
type Set struct {
	// Version identifies the source text (a hash prefix); Source is the file
	// it came from and Loaded when it was compiled.
	Version string
	Source  string
	Loaded  time.Time

	Listen    string
	Admin     Admin
	Server    Server
	Shadow    Shadow
	Backends  Backends
	Readiness Readiness
	Queue     Queue
	Dashboard Dashboard
	Redact    Redact

	// Routes in file order; the first that matches a request wins.
	Routes []*Route
	// Default is the route of requests that match no route.
	Default *Route

	// Warnings are what the file says that is accepted but should change
	// (check prints them; serve logs them at each load).
	Warnings Problems

	config  *Config  // as decoded and expanded, for printing
	secrets []string // values that came from ${VAR}; never printed
	loc     *locator // where each value is in the file (Problem)
}

// Problem places a problem with the value at path (such as
// "$.admin.auth.token_file") at that value's line and column in the file:
// for what only a program that uses the configuration finds, like a file
// it names that cannot be read.
func (s *Set) Problem(path, hint, format string, args ...any) *Problem {
	if s.loc == nil {
		return &Problem{File: s.Source, Msg: fmt.Sprintf(format, args...), Hint: hint}
	}
	return s.loc.problem(path, hint, format, args...)
}

// Admin is the compiled admin section.
type Admin struct {
	Listen string
	Auth   Auth
	Pprof  bool
}

// Dashboard is the compiled dashboard section. It is read on every view,
// so a reload changes it without a restart.
type Dashboard struct {
	// PrometheusURL is nil when each replica shows its own statistics.
	PrometheusURL *url.URL
	// PrometheusSelector is validated label matchers without braces ("" for
	// none).
	PrometheusSelector string
	PrometheusTimeout  time.Duration
}

// Server holds the proxy listener's limits with defaults applied.
type Server struct {
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxRequestBody    int64
	ShutdownTimeout   time.Duration
	DrainDelay        time.Duration
	TrustedProxies    []netip.Prefix
}

// Shadow holds the bounds of off-path work with defaults applied.
type Shadow struct {
	MaxBody           int64
	Workers           int
	LagFactor         int // 0: off
	MarkerHeader      string
	IdempotencyHeader string
	WriteBuffer       int64
	BreakerOpenFor    time.Duration
}

// Backends are the upstreams; Noise is nil unless configured.
type Backends struct {
	Old, New Backend
	Noise    *Backend
}

// Backend is a compiled upstream.
type Backend struct {
	URL     *url.URL
	Timeout time.Duration
}

// Get returns the backend of a side.
func (b *Backends) Get(s Side) Backend {
	if s == New {
		return b.New
	}
	return b.Old
}

// Readiness holds the thresholds of the readiness verdict.
type Readiness struct {
	MinSamples            int
	MatchRate             float64
	SecondaryWriteSuccess float64
	P99LatencyIncrease    float64
	P99LatencySlack       time.Duration
	UnresolvedRetries     int
}

// Queue tunes retries of secondary writes.
type Queue struct {
	MaxAttempts  int
	MaxAge       time.Duration
	BaseBackoff  time.Duration
	MaxBackoff   time.Duration
	Workers      int
	RecheckAfter time.Duration
}

// Route is one compiled entry of routes: (or the defaults, for Unmatched).
type Route struct {
	Name            string
	Phase           Phase
	SecondaryWrites WriteMode
	// Sample is the share of reads that are shadowed, in [0, 1].
	Sample float64
	// Read marks a route whose every method only reads (e.g. POST /search).
	Read    bool
	Compare *compare.Options
	// Overrides in file order; the first that applies wins.
	Overrides []*Override

	methods      []string // nil matches every method
	impliedHead  bool     // methods has GET and not HEAD: HEAD when no route names it
	pattern      *pattern // nil for the default route
	writeSuccess []StatusRange
	resourceKey  []keyPart
}

// Override moves matching requests of a route to another phase.
type Override struct {
	Name  string
	Phase Phase

	from   keyPart
	values []string
}

type keyPart struct {
	kind string // "path", "header" or "query"
	name string
}

// Pattern returns the route's path pattern as written ("" for Unmatched).
func (r *Route) Pattern() string {
	if r.pattern == nil {
		return ""
	}
	return r.pattern.text
}

// Match returns the first route that matches method and path, and the path
// parameters it captured (appended to buf, which may be nil). A HEAD that no
// route names for the path goes to the first route that takes GET for it,
// as Go's ServeMux does. A request that matches no route gets the default
// route, which matches as "/*" would: its path is its one parameter, "*",
// so that each path is a resource of its own (ResourceKey), not all of
// them one.
func (s *Set) Match(method, path string, buf Params) (*Route, Params) {
	for _, r := range s.Routes {
		if !r.allows(method) {
			continue
		}
		if ps, ok := r.pattern.match(path, buf[:0]); ok {
			return r, ps
		}
	}
	if method == http.MethodHead {
		for _, r := range s.Routes {
			if !r.impliedHead {
				continue
			}
			if ps, ok := r.pattern.match(path, buf[:0]); ok {
				return r, ps
			}
		}
	}
	return s.Default, append(buf[:0], Param{Name: "*", Value: strings.TrimPrefix(path, "/")})
}

// Route returns the route with the given name, or nil.
func (s *Set) Route(name string) *Route {
	if name == Unmatched {
		return s.Default
	}
	for _, r := range s.Routes {
		if r.Name == name {
			return r
		}
	}
	return nil
}

func (r *Route) allows(method string) bool {
	if r.methods == nil {
		return true
	}
	for _, m := range r.methods {
		if m == method {
			return true
		}
	}
	return false
}

// IsRead reports whether a request with this method only reads: GET, HEAD
// and OPTIONS, and every method of a route marked read: true.
func (r *Route) IsRead(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return r.Read
}

// WriteSucceeded reports whether the primary's status means it accepted a
// write, so the secondary must get it too.
func (r *Route) WriteSucceeded(status int) bool {
	for _, sr := range r.writeSuccess {
		if sr.Contains(status) {
			return true
		}
	}
	return false
}

// PhaseFor returns the phase of one request: the first override that applies,
// or the route's phase. The override is nil when none applied.
func (r *Route) PhaseFor(req *http.Request, ps Params) (Phase, *Override) {
	for _, o := range r.Overrides {
		v, ok := o.from.value(req, ps)
		if !ok {
			continue
		}
		for _, want := range o.values {
			if v == want {
				return o.Phase, o
			}
		}
	}
	return r.Phase, nil
}

// ResourceKey names the resource a request acts on, so that writes to it
// are replayed in order and reads of it know about queued writes. By default
// it is the route name and its path parameters.
func (r *Route) ResourceKey(req *http.Request, ps Params) string {
	var b strings.Builder
	b.WriteString(r.Name)
	if r.pattern == nil && len(r.resourceKey) == 0 && len(ps) == 1 && len(ps[0].Value) > maxPathInKey {
		// A request no route matches is keyed by its path (Match): a long
		// one by the path's hash, so that it is not refused as a key too
		// long for the queue's index, as a route's own parameters are.
		sum := sha256.Sum256([]byte(ps[0].Value))
		b.WriteString("|sha256:")
		b.WriteString(hex.EncodeToString(sum[:]))
		return b.String()
	}
	if len(r.resourceKey) == 0 {
		for _, p := range ps {
			b.WriteByte('|')
			b.WriteString(p.Value)
		}
		return b.String()
	}
	for _, k := range r.resourceKey {
		v, _ := k.value(req, ps)
		b.WriteByte('|')
		b.WriteString(v)
	}
	return b.String()
}

func (k keyPart) value(req *http.Request, ps Params) (string, bool) {
	switch k.kind {
	case "header":
		vs := req.Header.Values(k.name)
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	case "query":
		if req.URL.RawQuery == "" {
			return "", false
		}
		vs, ok := req.URL.Query()[k.name]
		if !ok || len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	default:
		return ps.Get(k.name)
	}
}

// Methods returns the methods the route matches; nil means every method.
func (r *Route) Methods() []string { return r.methods }
