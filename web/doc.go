// Package web is cutover's admin surface: the dashboard (HTML, script and
// styles embedded with go:embed, working offline), the JSON API under
// /api/v1, /metrics, /healthz and /readyz, as one http.Handler.
//
// It reads a small view of the statistics ([StatsSource]) and of the rules
// ([RulesSource]) and changes nothing: it knows nothing of proxying, and
// never imports the gateway. Authentication and listeners belong to the
// caller, which wraps the handler.
package web
