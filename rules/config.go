package rules

// Config is the YAML file as written, before defaults and compilation. Field
// names are the contract of DESIGN.md; everything a user can write is here.
//
// Pointers mark values whose absence means "use the default" where the zero
// value is a legal setting (a sample of 0 shadows nothing; 0 unresolved
// retries is the default threshold).
type Config struct {
	Listen    string          `yaml:"listen"`
	Admin     AdminConfig     `yaml:"admin"`
	Server    ServerConfig    `yaml:"server"`
	Shadow    ShadowConfig    `yaml:"shadow"`
	Backends  BackendsConfig  `yaml:"backends"`
	Defaults  DefaultsConfig  `yaml:"defaults"`
	Routes    []RouteConfig   `yaml:"routes"`
	Readiness ReadinessConfig `yaml:"readiness"`
	Queue     QueueConfig     `yaml:"queue"`
	Dashboard DashboardConfig `yaml:"dashboard"`
	Redact    RedactConfig    `yaml:"redact"`
}

// AdminConfig is the admin listener: dashboard, /metrics and /api/v1.
type AdminConfig struct {
	Listen string     `yaml:"listen"`
	Auth   AuthConfig `yaml:"auth"`
	// Pprof serves Go's profiler at /debug/pprof/ (operators only when auth
	// is set): for finding where the CPU goes under real traffic.
	Pprof bool `yaml:"pprof"`
}

// ServerConfig bounds what a client can make the proxy listener hold.
type ServerConfig struct {
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	IdleTimeout       Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    ByteSize `yaml:"max_header_bytes"`
	MaxRequestBody    ByteSize `yaml:"max_request_body"`
	// ShutdownTimeout bounds the drain of in-flight requests and shadow work
	// after SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// DrainDelay keeps serving after SIGTERM while /readyz answers 503, so a
	// load balancer can take the replica out first.
	DrainDelay Duration `yaml:"drain_delay"`
	// TrustedProxies are the networks (CIDRs) whose X-Forwarded-* headers
	// are believed and extended; anyone else's are replaced.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// ShadowConfig bounds the work done off the request path.
type ShadowConfig struct {
	// MaxBody caps the bytes of each answer kept for comparison; larger
	// answers are streamed whole to the client and skipped as too_large.
	MaxBody ByteSize `yaml:"max_body"`
	// Workers caps the shadow requests and comparisons in flight; a read that
	// finds them all busy is skipped as busy.
	Workers int `yaml:"workers"`
	// LagFactor bounds the reads waiting on a slow secondary: once the
	// shadow work in flight is past LagFloor and this many times the
	// requests in flight, a read whose route has this many times its
	// requests in flight waiting on the secondary is skipped as
	// secondary_slow. Unset means the default; 0 turns it off.
	LagFactor *int `yaml:"lag_factor"`
	// MarkerHeader is added to every request sent to the secondary.
	MarkerHeader string `yaml:"marker_header"`
	// IdempotencyHeader carries the key shared by both copies of a write.
	IdempotencyHeader string `yaml:"idempotency_header"`
	// WriteBuffer caps the request body kept to replay a write to the
	// secondary; a larger write reaches the primary and is recorded as needing
	// repair.
	WriteBuffer ByteSize `yaml:"write_buffer"`
	// BreakerOpenFor is how long the secondary's tripped circuit breaker
	// refuses before it lets one probe through (default 10s; 0 is refused).
	BreakerOpenFor Duration `yaml:"breaker_open_for"`
}

// BackendsConfig names the two sides of the migration.
type BackendsConfig struct {
	Old BackendConfig `yaml:"old"`
	New BackendConfig `yaml:"new"`
	// Noise is an optional second instance of old: what differs between old
	// and noise is noise, not a migration difference.
	Noise *BackendConfig `yaml:"noise"`
}

// BackendConfig is one upstream service.
type BackendConfig struct {
	URL     string   `yaml:"url"`
	Timeout Duration `yaml:"timeout"`
}

// DefaultsConfig applies to every route that does not say otherwise, and to
// requests that match no route (reported as "unmatched").
type DefaultsConfig struct {
	Phase           string        `yaml:"phase"`
	SecondaryWrites string        `yaml:"secondary_writes"`
	Sample          *float64      `yaml:"sample"`
	WriteSuccess    []StatusRange `yaml:"write_success"`
	Compare         CompareConfig `yaml:"compare"`
}

// RouteConfig is one entry of routes:.
type RouteConfig struct {
	Name            string           `yaml:"name"`
	Match           MatchConfig      `yaml:"match"`
	Phase           string           `yaml:"phase"`
	SecondaryWrites string           `yaml:"secondary_writes"`
	Sample          *float64         `yaml:"sample"`
	Read            bool             `yaml:"read"`
	WriteSuccess    []StatusRange    `yaml:"write_success"`
	ResourceKey     []string         `yaml:"resource_key"`
	Compare         CompareConfig    `yaml:"compare"`
	Overrides       []OverrideConfig `yaml:"overrides"`
}

// MatchConfig selects requests by method and chi-style path pattern.
type MatchConfig struct {
	Methods []string `yaml:"methods"`
	Path    string   `yaml:"path"`
}

// OverrideConfig moves one tenant or entity to another phase.
type OverrideConfig struct {
	Name  string     `yaml:"name"`
	When  WhenConfig `yaml:"when"`
	Phase string     `yaml:"phase"`
}

// WhenConfig says which requests an override applies to: exactly one of
// Header, PathParam or Query, compared with Equals or In.
type WhenConfig struct {
	Header    string   `yaml:"header"`
	PathParam string   `yaml:"path_param"`
	Query     string   `yaml:"query"`
	Equals    *string  `yaml:"equals"`
	In        []string `yaml:"in"`
}

// ReadinessConfig holds the thresholds a route must meet to be ready.
type ReadinessConfig struct {
	MinSamples            *int     `yaml:"min_samples"`
	MatchRate             *float64 `yaml:"match_rate"`
	SecondaryWriteSuccess *float64 `yaml:"secondary_write_success"`
	P99LatencyIncrease    *float64 `yaml:"p99_latency_increase"`
	// P99LatencySlack is an absolute allowance on top of the increase
	// (default 2ms), so sub-millisecond jitter is not a regression.
	P99LatencySlack   Duration `yaml:"p99_latency_slack"`
	UnresolvedRetries *int     `yaml:"unresolved_retries"`
}

// QueueConfig tunes the retry of failed secondary writes.
type QueueConfig struct {
	MaxAttempts  int      `yaml:"max_attempts"`
	MaxAge       Duration `yaml:"max_age"`
	BaseBackoff  Duration `yaml:"base_backoff"`
	MaxBackoff   Duration `yaml:"max_backoff"`
	Workers      int      `yaml:"workers"`
	RecheckAfter Duration `yaml:"recheck_after"`
}

// DashboardConfig says where the admin dashboard takes its numbers from.
// Unset, each replica shows its own statistics; with PrometheusURL the
// numbers and readiness verdicts are Prometheus' sums across replicas.
type DashboardConfig struct {
	// PrometheusURL is the base URL of a Prometheus that scrapes every
	// replica's /metrics (e.g. http://prometheus.monitoring:9090).
	PrometheusURL string `yaml:"prometheus_url"`
	// PrometheusSelector is the label matchers that pick this deployment's
	// replicas among everything Prometheus scrapes, as written inside {}:
	// job="cutover", namespace="shop". Empty: every cutover series.
	PrometheusSelector string `yaml:"prometheus_selector"`
	// PrometheusTimeout bounds the queries of one view (default 3s); past it
	// the dashboard shows the local replica's numbers and says why.
	PrometheusTimeout Duration `yaml:"prometheus_timeout"`
}
