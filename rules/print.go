package rules

import (
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"

	"github.com/goccy/go-yaml"
)

// masked replaces every secret in text: values that came from ${VAR} and
// passwords in URLs.
func (s *Set) masked(text string) string {
	for _, sec := range s.secrets {
		text = strings.ReplaceAll(text, sec, "****")
	}
	return text
}

// maskURL hides the password of a URL's userinfo.
func maskURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	if _, ok := u.User.Password(); ok {
		c := *u
		c.User = url.UserPassword(u.User.Username(), "****")
		return strings.Replace(c.String(), "%2A%2A%2A%2A", "****", 1)
	}
	return u.String()
}

// Print writes the configuration as cutover understood it: the file after
// ${VAR} expansion, then the defaults and limits in force. Secrets (values
// from the environment, URL passwords) are masked.
func (s *Set) Print(w io.Writer) error {
	cfg := *s.config
	cfg.Backends.Old.URL = maskURL(s.Backends.Old.URL)
	cfg.Backends.New.URL = maskURL(s.Backends.New.URL)
	if cfg.Backends.Noise != nil && s.Backends.Noise != nil {
		n := *cfg.Backends.Noise
		n.URL = maskURL(s.Backends.Noise.URL)
		cfg.Backends.Noise = &n
	}
	if s.Dashboard.PrometheusURL != nil {
		cfg.Dashboard.PrometheusURL = maskURL(s.Dashboard.PrometheusURL)
	}
	src, err := yaml.MarshalWithOptions(&cfg, yaml.OmitEmpty(), yaml.OmitZero())
	if err != nil {
		return err
	}
	eff, err := yaml.Marshal(map[string]any{
		"listen": s.Listen,
		"admin":  map[string]any{"listen": s.Admin.Listen, "auth": map[string]any{"enabled": s.Admin.Auth.Enabled(), "probes_open": s.Admin.Auth.ProbesOpen, "basic_users": len(s.Admin.Auth.Basic)}},
		"backends": map[string]any{
			"old": map[string]any{"url": maskURL(s.Backends.Old.URL), "timeout": s.Backends.Old.Timeout.String()},
			"new": map[string]any{"url": maskURL(s.Backends.New.URL), "timeout": s.Backends.New.Timeout.String()},
		},
		"server": map[string]any{
			"read_header_timeout": s.Server.ReadHeaderTimeout.String(), "idle_timeout": s.Server.IdleTimeout.String(),
			"max_header_bytes": s.Server.MaxHeaderBytes, "max_request_body": s.Server.MaxRequestBody,
			"shutdown_timeout": s.Server.ShutdownTimeout.String(), "drain_delay": s.Server.DrainDelay.String(),
			"trusted_proxies": prefixes(s.Server.TrustedProxies),
		},
		"shadow": map[string]any{"max_body": s.Shadow.MaxBody, "workers": s.Shadow.Workers, "lag_factor": s.Shadow.LagFactor, "marker_header": s.Shadow.MarkerHeader,
			"idempotency_header": s.Shadow.IdempotencyHeader, "write_buffer": s.Shadow.WriteBuffer, "breaker_open_for": s.Shadow.BreakerOpenFor.String()},
		"queue": map[string]any{"max_attempts": s.Queue.MaxAttempts, "max_age": s.Queue.MaxAge.String(), "base_backoff": s.Queue.BaseBackoff.String(),
			"max_backoff": s.Queue.MaxBackoff.String(), "workers": s.Queue.Workers, "recheck_after": s.Queue.RecheckAfter.String()},
		"readiness": map[string]any{"min_samples": s.Readiness.MinSamples, "match_rate": s.Readiness.MatchRate,
			"secondary_write_success": s.Readiness.SecondaryWriteSuccess, "p99_latency_increase": s.Readiness.P99LatencyIncrease,
			"unresolved_retries": s.Readiness.UnresolvedRetries, "p99_latency_slack": s.Readiness.P99LatencySlack.String()},
		"dashboard": map[string]any{"prometheus_url": maskURL(s.Dashboard.PrometheusURL), "prometheus_selector": s.Dashboard.PrometheusSelector,
			"prometheus_timeout": s.Dashboard.PrometheusTimeout.String()},
		"routes": s.routeSummary(),
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "# %s (version %s), as read, secrets masked:\n%s\n# In force, defaults applied:\n%s", s.Source, s.Version, s.masked(string(src)), s.masked(string(eff)))
	return err
}

func (s *Set) routeSummary() []map[string]any {
	var out []map[string]any
	for _, r := range append(append([]*Route(nil), s.Routes...), s.Default) {
		m := map[string]any{"name": r.Name, "phase": r.Phase.String(), "sample": r.Sample, "secondary_writes": r.SecondaryWrites.String(), "read": r.Read}
		if r.pattern != nil {
			m["path"] = r.pattern.text
		}
		if r.methods != nil {
			m["methods"] = r.methods
		}
		var ws []string
		for _, w := range r.writeSuccess {
			ws = append(ws, w.raw)
		}
		m["write_success"] = ws
		for _, o := range r.Overrides {
			m["overrides"] = append(asSlice(m["overrides"]), map[string]any{"name": o.Name, "phase": o.Phase.String(), o.from.kind: o.from.name, "values": o.values})
		}
		out = append(out, m)
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// prefixes writes trusted proxies as the list they are in a file, not as
// one string ("[10.0.0.0/8 192.168.0.0/16]").
func prefixes(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
