// Package web is cutover's admin surface: the dashboard (HTML, script and
// styles embedded with go:embed, working offline), the JSON API under
// /api/v1, /metrics, /healthz and /readyz, as one http.Handler.
//
// It reads a small view of the statistics ([StatsSource]) and of the rules
// ([RulesSource]). The only things it changes are held secondary writes
// ([HeldWrites]: re-drive, discard), and every such action passes one
// middleware, the place for authentication. It knows nothing of proxying,
// and never imports the gateway. Listeners belong to the caller.
package web
