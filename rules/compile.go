package rules

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults applied once at compile time, so the request path only reads.
const (
	DefaultListen            = ":8080"
	DefaultAdminListen       = "127.0.0.1:9090"
	DefaultBackendTimeout    = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxRequestBody    = 16 << 20
	DefaultShutdownTimeout   = 30 * time.Second
	DefaultShadowMaxBody     = 1 << 20
	DefaultShadowWorkers     = 1024
	// DefaultShadowLagFactor lets a route's reads waiting on the
	// secondary reach eight times its requests in flight (once the shadow
	// work in flight is past LagFloor and eight times all requests in
	// flight): a secondary less than eight times slower than the primary
	// has every read compared.
	DefaultShadowLagFactor = 8
	// LagFloor is the shadow work in flight that shadow.lag_factor never
	// refuses, however few clients are waiting.
	LagFloor                 = 128
	DefaultMarkerHeader      = "X-Cutover-Shadow"
	DefaultIdempotencyHeader = "Idempotency-Key"
	// DefaultBreakerOpenFor is how long a tripped breaker refuses before it
	// lets a probe through: short, because a healthy secondary should be
	// compared again soon, and the queue waits for it.
	DefaultBreakerOpenFor    = 10 * time.Second
	DefaultQueueMaxAttempts  = 20
	DefaultQueueMaxAge       = 24 * time.Hour
	DefaultQueueBaseBackoff  = 200 * time.Millisecond
	DefaultQueueMaxBackoff   = 30 * time.Second
	DefaultQueueWorkers      = 16
	DefaultPrometheusTimeout = 3 * time.Second
	DefaultP99LatencySlack   = 2 * time.Millisecond
)

// DefaultReadiness returns the migration playbook's bar (DESIGN.md): the
// thresholds of a readiness section that sets nothing.
func DefaultReadiness() Readiness { return defaultReadiness }

// defaultReadiness is DefaultReadiness's value; never written.
var defaultReadiness = Readiness{
	MinSamples:            1000,
	MatchRate:             0.999,
	SecondaryWriteSuccess: 0.9995,
	P99LatencyIncrease:    0.20,
	P99LatencySlack:       DefaultP99LatencySlack,
	UnresolvedRetries:     0,
}

var routeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// compiler collects every problem of one configuration instead of stopping
// at the first, so `cutover check` can list them all.
type compiler struct {
	loc      *locator
	problems Problems
	warnings Problems // accepted, but told: see Set.Warnings
	// unexpanded are the paths of values with a variable that is not set:
	// reported as that, and checked no further (what else is wrong with
	// "http://${HOST}" follows from it).
	unexpanded map[string]bool
}

// warn tells of something accepted that will not be for long, or that
// likely does not do what its author meant.
func (c *compiler) warn(path, hint, format string, args ...any) {
	c.warnings = append(c.warnings, c.loc.problem(path, hint, format, args...))
}

func (c *compiler) fail(path, hint, format string, args ...any) {
	if c.unexpanded[path] {
		return
	}
	c.problems = append(c.problems, c.loc.problem(path, hint, format, args...))
}

func compile(cfg *Config, loc *locator) (*Set, error) {
	c := &compiler{loc: loc}
	secrets := c.expandEnv(cfg, os.LookupEnv)
	s := &Set{
		loc:       loc,
		config:    cfg,
		secrets:   secrets,
		Listen:    or(cfg.Listen, DefaultListen),
		Admin:     Admin{Listen: or(cfg.Admin.Listen, DefaultAdminListen), Auth: c.auth(cfg.Admin.Auth), Pprof: cfg.Admin.Pprof},
		Readiness: c.readiness(cfg.Readiness),
	}
	c.listenAddr("$.listen", s.Listen)
	c.listenAddr("$.admin.listen", s.Admin.Listen)
	if !s.Admin.Auth.Enabled() && !loopbackAddr(s.Admin.Listen) {
		c.fail("$.admin.listen", "set admin.auth (token_file, token_env or basic), or listen on 127.0.0.1",
			"admin.listen %q is reachable from other hosts but admin.auth is not set: it shows request bodies and answers", s.Admin.Listen)
	}
	s.Server = c.server(cfg.Server)
	s.Shadow = c.shadow(cfg.Shadow)
	s.Queue = c.queue(cfg.Queue)
	s.Dashboard = c.dashboard(cfg.Dashboard)
	s.Redact = c.redact(cfg.Redact)
	s.Backends.Old = c.backend("$.backends.old", &cfg.Backends.Old, true)
	s.Backends.New = c.backend("$.backends.new", &cfg.Backends.New, true)
	if cfg.Backends.Noise != nil {
		b := c.backend("$.backends.noise", cfg.Backends.Noise, true)
		s.Backends.Noise = &b
	}

	def := c.defaults(&cfg.Defaults)
	s.Default = def
	names := map[string]string{}
	var where []string // of each of s.Routes, which may share a name
	var paths []string // of each of s.Routes, its place in the file
	for i := range cfg.Routes {
		path := fmt.Sprintf("$.routes[%d]", i)
		r := c.route(path, &cfg.Routes[i], &cfg.Defaults, def)
		if r == nil {
			continue
		}
		at := c.loc.problem(path+".name", "", "").where()
		if prev, dup := names[r.Name]; dup {
			c.fail(path+".name", "route names must be unique; metrics and statistics are keyed by them", "route name %q is already used by %s", r.Name, prev)
		} else {
			names[r.Name] = at
		}
		for j, earlier := range s.Routes {
			if earlier.pattern != nil && r.pattern != nil && earlier.pattern.covers(r.pattern) && methodsCover(earlier.methods, r.methods) {
				c.fail(path+".match.path", "put the more specific route first, or narrow the earlier one's methods",
					"route %q can never match: route %q (%s) already matches every request it would", r.Name, earlier.Name, where[j])
				break
			}
		}
		s.Routes = append(s.Routes, r)
		where = append(where, at)
		paths = append(paths, path)
	}
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	c.lint(s, paths)
	s.Warnings = c.warnings
	return s, nil
}

func (p *Problem) where() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("line %d", p.Line)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func methodsCover(a, b []string) bool {
	if a == nil {
		return true
	}
	if b == nil {
		return false
	}
	for _, m := range b {
		found := false
		for _, n := range a {
			found = found || n == m
		}
		if !found {
			return false
		}
	}
	return true
}

func (c *compiler) duration(path string, d *Duration, def time.Duration) time.Duration {
	if err := d.parse(); err != nil {
		c.fail(path, "", "%v", err)
		return def
	}
	return d.Or(def)
}

func (c *compiler) size(path string, s *ByteSize, def int64) int64 {
	if err := s.parse(); err != nil {
		c.fail(path, "", "%v", err)
		return def
	}
	return s.Or(def)
}

// labelMatchers is a PromQL label matcher list as written inside {}: what
// dashboard.prometheus_selector may hold. Checking it here turns a typo into
// a line:col error instead of a failing query on every dashboard view.
var labelMatchers = regexp.MustCompile(`^\s*(?:[A-Za-z_][A-Za-z0-9_]*\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*(?:,\s*|$))*$`)

func (c *compiler) dashboard(dc DashboardConfig) Dashboard {
	d := Dashboard{
		PrometheusSelector: strings.TrimSpace(dc.PrometheusSelector),
		PrometheusTimeout:  c.duration("$.dashboard.prometheus_timeout", &dc.PrometheusTimeout, DefaultPrometheusTimeout),
	}
	if dc.PrometheusURL != "" {
		u, err := url.Parse(dc.PrometheusURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			c.fail("$.dashboard.prometheus_url", "write the base URL, like http://prometheus.monitoring:9090", "%q is not a Prometheus URL", dc.PrometheusURL)
		} else {
			d.PrometheusURL = u
		}
	} else if d.PrometheusSelector != "" {
		c.fail("$.dashboard.prometheus_selector", "set dashboard.prometheus_url too", "a selector without a Prometheus URL selects nothing")
	}
	if !labelMatchers.MatchString(d.PrometheusSelector) {
		c.fail("$.dashboard.prometheus_selector", `write label matchers as inside {}: job="cutover", namespace=~"shop|shop-canary"`, "%q is not a list of label matchers", d.PrometheusSelector)
	}
	if d.PrometheusTimeout <= 0 {
		c.fail("$.dashboard.prometheus_timeout", "", "the Prometheus timeout must be positive")
	}
	return d
}

func (c *compiler) server(sc ServerConfig) Server {
	return Server{
		ReadHeaderTimeout: c.duration("$.server.read_header_timeout", &sc.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		IdleTimeout:       c.duration("$.server.idle_timeout", &sc.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    int(c.size("$.server.max_header_bytes", &sc.MaxHeaderBytes, DefaultMaxHeaderBytes)),
		MaxRequestBody:    c.size("$.server.max_request_body", &sc.MaxRequestBody, DefaultMaxRequestBody),
		ShutdownTimeout:   c.duration("$.server.shutdown_timeout", &sc.ShutdownTimeout, DefaultShutdownTimeout),
		DrainDelay:        c.duration("$.server.drain_delay", &sc.DrainDelay, 0),
		TrustedProxies:    c.trustedProxies(sc.TrustedProxies),
	}
}

func (c *compiler) shadow(sc ShadowConfig) Shadow {
	s := Shadow{
		MaxBody:           c.size("$.shadow.max_body", &sc.MaxBody, DefaultShadowMaxBody),
		Workers:           sc.Workers,
		LagFactor:         DefaultShadowLagFactor,
		MarkerHeader:      or(sc.MarkerHeader, DefaultMarkerHeader),
		IdempotencyHeader: or(sc.IdempotencyHeader, DefaultIdempotencyHeader),
		WriteBuffer:       c.size("$.shadow.write_buffer", &sc.WriteBuffer, DefaultMaxRequestBody),
		BreakerOpenFor:    c.duration("$.shadow.breaker_open_for", &sc.BreakerOpenFor, DefaultBreakerOpenFor),
	}
	if sc.BreakerOpenFor.set && s.BreakerOpenFor == 0 {
		// gobreaker reads 0 as its own default, 60 s: refuse it rather than
		// open for six times the default without saying so.
		c.fail("$.shadow.breaker_open_for", "write how long a tripped breaker refuses reads, like 10s; leave it out for the default", "a breaker cannot be open for %s", strings.TrimSpace(sc.BreakerOpenFor.raw))
	}
	if s.Workers == 0 {
		s.Workers = DefaultShadowWorkers
	}
	if s.Workers < 0 {
		c.fail("$.shadow.workers", "use a positive number; 0 means the default", "workers must be positive, not %d", s.Workers)
	}
	if sc.LagFactor != nil {
		s.LagFactor = *sc.LagFactor
		if s.LagFactor < 0 {
			c.fail("$.shadow.lag_factor", "use a positive number, 0 to turn the limit off, or leave it out for the default (8)", "lag_factor must not be negative, not %d", s.LagFactor)
		}
	}
	return s
}

func (c *compiler) queue(qc QueueConfig) Queue {
	q := Queue{
		MaxAttempts:  qc.MaxAttempts,
		MaxAge:       c.duration("$.queue.max_age", &qc.MaxAge, DefaultQueueMaxAge),
		BaseBackoff:  c.duration("$.queue.base_backoff", &qc.BaseBackoff, DefaultQueueBaseBackoff),
		MaxBackoff:   c.duration("$.queue.max_backoff", &qc.MaxBackoff, DefaultQueueMaxBackoff),
		Workers:      qc.Workers,
		RecheckAfter: c.duration("$.queue.recheck_after", &qc.RecheckAfter, 0),
	}
	if q.MaxAttempts == 0 {
		q.MaxAttempts = DefaultQueueMaxAttempts
	}
	if q.Workers == 0 {
		q.Workers = DefaultQueueWorkers
	}
	if q.MaxAttempts < 0 {
		c.fail("$.queue.max_attempts", "", "max_attempts must be positive, not %d", q.MaxAttempts)
	}
	if q.Workers < 0 {
		c.fail("$.queue.workers", "", "workers must be positive, not %d", q.Workers)
	}
	if q.BaseBackoff <= 0 || q.MaxBackoff < q.BaseBackoff {
		c.fail("$.queue.max_backoff", "max_backoff must be at least base_backoff, and both positive", "backoff bounds %s..%s are not a range", q.BaseBackoff, q.MaxBackoff)
	}
	return q
}

func (c *compiler) readiness(rc ReadinessConfig) Readiness {
	r := defaultReadiness
	if rc.MinSamples != nil {
		r.MinSamples = *rc.MinSamples
		if r.MinSamples < 0 {
			c.fail("$.readiness.min_samples", "", "min_samples must not be negative")
		}
	}
	rate := func(path string, p *float64, dst *float64) {
		if p == nil {
			return
		}
		if !(*p >= 0 && *p <= 1) { // NaN too
			c.fail(path, "write a share between 0 and 1, like 0.999 for 99.9 %", "%v is not a share", *p)
			return
		}
		*dst = *p
	}
	rate("$.readiness.match_rate", rc.MatchRate, &r.MatchRate)
	rate("$.readiness.secondary_write_success", rc.SecondaryWriteSuccess, &r.SecondaryWriteSuccess)
	if rc.P99LatencyIncrease != nil {
		if x := *rc.P99LatencyIncrease; !(x >= 0) || math.IsInf(x, 1) { // NaN too
			c.fail("$.readiness.p99_latency_increase", "write 0.2 for at most 20 % slower", "p99_latency_increase %v is not a number of 0 or more", *rc.P99LatencyIncrease)
		}
		r.P99LatencyIncrease = *rc.P99LatencyIncrease
	}
	r.P99LatencySlack = c.duration("$.readiness.p99_latency_slack", &rc.P99LatencySlack, DefaultP99LatencySlack)
	if rc.UnresolvedRetries != nil {
		r.UnresolvedRetries = *rc.UnresolvedRetries
		if r.UnresolvedRetries < 0 {
			c.fail("$.readiness.unresolved_retries", "", "unresolved_retries must not be negative")
		}
	}
	return r
}

func (c *compiler) backend(path string, b *BackendConfig, required bool) Backend {
	out := Backend{Timeout: c.duration(path+".timeout", &b.Timeout, DefaultBackendTimeout)}
	if b.URL == "" {
		if required {
			c.fail(path, "give it like {url: \"http://127.0.0.1:8081\", timeout: 2s}", "backend %s needs a url", path[strings.LastIndexByte(path, '.')+1:])
		}
		return out
	}
	u, err := url.Parse(b.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.fail(path+".url", "write an absolute http:// or https:// URL", "%q is not a backend URL", b.URL)
		return out
	}
	if u.RawQuery != "" || u.Fragment != "" {
		c.fail(path+".url", "requests keep their own query; a backend URL may only add a path prefix", "backend URL %q has a query or fragment", b.URL)
	}
	if out.Timeout == 0 {
		c.fail(path+".timeout", "", "a backend timeout must be positive")
	}
	out.URL = u
	return out
}

func (c *compiler) phase(path, name string, def Phase) Phase {
	if name == "" {
		return def
	}
	p, ok := ParsePhase(name)
	if !ok {
		c.fail(path, "use one of "+strings.Join(phaseNames[:], ", "), "unknown phase %q", name)
	}
	return p
}

func (c *compiler) mode(path, name string, def WriteMode) WriteMode {
	if name == "" {
		return def
	}
	m, ok := parseMode(name)
	if !ok {
		c.fail(path, "use async, sync or off", "unknown secondary_writes mode %q", name)
	}
	return m
}

func (c *compiler) sample(path string, p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	if !(*p >= 0 && *p <= 1) { // NaN too
		c.fail(path, "write a share between 0 and 1, like 0.25 for a quarter of reads", "sample %v is not a share", *p)
		return def
	}
	return *p
}

func (c *compiler) statuses(path string, rs []StatusRange) []StatusRange {
	if len(rs) == 0 {
		return []StatusRange{{raw: "2xx", lo: 200, hi: 299}}
	}
	out := make([]StatusRange, len(rs))
	for i := range rs {
		if err := rs[i].parse(); err != nil {
			c.fail(fmt.Sprintf("%s[%d]", path, i), "", "%v", err)
		}
		out[i] = rs[i]
	}
	return out
}

func (c *compiler) defaults(d *DefaultsConfig) *Route {
	r := &Route{
		Name:            Unmatched,
		Phase:           c.phase("$.defaults.phase", d.Phase, Prepare),
		SecondaryWrites: c.mode("$.defaults.secondary_writes", d.SecondaryWrites, Async),
		Sample:          c.sample("$.defaults.sample", d.Sample, 1),
		writeSuccess:    c.statuses("$.defaults.write_success", d.WriteSuccess),
	}
	r.Compare = c.compare("$.defaults.compare", nil, &d.Compare)
	return r
}

var methodToken = regexp.MustCompile(`^[A-Z][A-Z-]{0,31}$`)

func (c *compiler) route(path string, rc *RouteConfig, d *DefaultsConfig, def *Route) *Route {
	r := &Route{
		Name:            rc.Name,
		Phase:           c.phase(path+".phase", rc.Phase, def.Phase),
		SecondaryWrites: c.mode(path+".secondary_writes", rc.SecondaryWrites, def.SecondaryWrites),
		Sample:          c.sample(path+".sample", rc.Sample, def.Sample),
		Read:            rc.Read,
		writeSuccess:    def.writeSuccess,
	}
	switch {
	case rc.Name == "":
		c.fail(path, "every route needs a name: metrics and statistics use it", "route has no name")
	case rc.Name == Unmatched:
		c.fail(path+".name", "it is reserved for requests that match no route", "route name %q is reserved", Unmatched)
	case !routeName.MatchString(rc.Name):
		c.fail(path+".name", "use letters, digits, '_', '.' or '-', at most 64 characters", "route name %q is not allowed", rc.Name)
	}
	if len(rc.WriteSuccess) > 0 {
		r.writeSuccess = c.statuses(path+".write_success", rc.WriteSuccess)
	}
	for i, m := range rc.Match.Methods {
		up := strings.ToUpper(strings.TrimSpace(m))
		if !methodToken.MatchString(up) {
			c.fail(fmt.Sprintf("%s.match.methods[%d]", path, i), "write an HTTP method like GET or POST", "%q is not an HTTP method", m)
		}
		r.methods = append(r.methods, up)
	}
	// HEAD is GET without the body (RFC 9110 section 9.3.2), as Go's
	// ServeMux takes it: a route that moves a resource's GETs to new moves
	// its HEADs too, rather than leave them to the defaults (Set.Match),
	// unless a route names HEAD for the path.
	r.impliedHead = slices.Contains(r.methods, http.MethodGet) && !slices.Contains(r.methods, http.MethodHead)
	if rc.Match.Path == "" {
		c.fail(path+".match", "write it like match: {path: \"/users/{id}\"}", "route %q has no match.path", rc.Name)
		return nil
	}
	p, err := parsePattern(rc.Match.Path)
	if err != nil {
		c.fail(path+".match.path", "patterns look like /users/{id}, /users/{id:[0-9]+} or /orders/*", "%v", err)
		return nil
	}
	r.pattern = p
	for i, k := range rc.ResourceKey {
		kp, ok := c.keyPart(fmt.Sprintf("%s.resource_key[%d]", path, i), k, p)
		if ok {
			r.resourceKey = append(r.resourceKey, kp)
		}
	}
	for i := range rc.Overrides {
		if o := c.override(fmt.Sprintf("%s.overrides[%d]", path, i), &rc.Overrides[i], p); o != nil {
			r.Overrides = append(r.Overrides, o)
		}
	}
	r.Compare = c.compare(path+".compare", &d.Compare, &rc.Compare)
	return r
}

func (c *compiler) keyPart(path, text string, p *pattern) (keyPart, bool) {
	kind, name, ok := strings.Cut(text, ":")
	if !ok || name == "" || (kind != "path" && kind != "header" && kind != "query") {
		c.fail(path, "write path:NAME, header:NAME or query:NAME", "%q is not a resource key part", text)
		return keyPart{}, false
	}
	if kind == "path" && !p.hasParam(name) {
		c.fail(path, "name a {parameter} of match.path, or * for the wildcard", "the path pattern %q has no parameter %q", p.text, name)
		return keyPart{}, false
	}
	return keyPart{kind: kind, name: name}, true
}

func (p *pattern) hasParam(name string) bool {
	if name == "*" {
		return p.wildcard
	}
	for _, s := range p.segments {
		if s.param == name {
			return true
		}
	}
	return false
}

func (c *compiler) override(path string, oc *OverrideConfig, p *pattern) *Override {
	o := &Override{Name: oc.Name, Phase: c.phase(path+".phase", oc.Phase, 0)}
	if oc.Phase == "" {
		c.fail(path, "an override exists to move some requests to another phase", "override has no phase")
	}
	w := oc.When
	var parts []keyPart
	if w.Header != "" {
		parts = append(parts, keyPart{kind: "header", name: w.Header})
	}
	if w.PathParam != "" {
		parts = append(parts, keyPart{kind: "path", name: w.PathParam})
	}
	if w.Query != "" {
		parts = append(parts, keyPart{kind: "query", name: w.Query})
	}
	if len(parts) != 1 {
		c.fail(path+".when", "write exactly one of header, path_param or query, like when: {header: X-Tenant, equals: acme}", "override must name exactly one of header, path_param or query")
		return nil
	}
	o.from = parts[0]
	if o.from.kind == "path" && !p.hasParam(o.from.name) {
		c.fail(path+".when.path_param", "name a {parameter} of match.path", "the path pattern %q has no parameter %q", p.text, o.from.name)
	}
	switch {
	case w.Equals != nil && len(w.In) > 0:
		c.fail(path+".when", "use equals for one value or in for a list, not both", "override has both equals and in")
	case w.Equals != nil:
		o.values = []string{*w.Equals}
	case len(w.In) > 0:
		o.values = w.In
	default:
		c.fail(path+".when", "add equals: VALUE or in: [A, B]", "override names no value to match")
	}
	if o.Name == "" {
		o.Name = o.from.kind + ":" + o.from.name + "=" + strings.Join(o.values, ",")
	}
	return o
}

// listenAddr checks an address to listen on: host (or none, for every
// interface) and port (a number or a service name), as net.Listen takes
// them.
func (c *compiler) listenAddr(path, addr string) {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if _, perr := net.LookupPort("tcp", port); perr != nil {
			err = fmt.Errorf("port %q is neither a number from 0 to 65535 nor a service name", port)
		}
	}
	if err != nil {
		c.fail(path, `write host:port, like "127.0.0.1:9090", or ":8080" for every interface`, "%q is not an address to listen on: %v", addr, err)
	}
}

// loopbackAddr reports whether a listen address is on loopback only.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
