package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/cutover/cutover/stats"
	"github.com/go-chi/chi/v5"
)

// StatsSource is the read-only view of the statistics the admin surface
// shows (stats.View implements it).
type StatsSource interface {
	// Routes returns every route, configured ones first in file order.
	Routes() []stats.RouteView
	// Evidence returns the parts of one route's evidence that q asks for;
	// false for a route neither configured nor seen.
	Evidence(route string, q stats.EvidenceQuery) (stats.Evidence, bool)
}

// RulesSource reports the state of the rules: the version in force and the
// outcome of the last reload.
type RulesSource interface {
	RulesStatus() RulesStatus
}

// RulesStatus is what /api/v1/rules shows.
type RulesStatus struct {
	// Version identifies the rules in force (a hash of the file), Source the
	// file, LoadedAt when they were loaded.
	Version  string    `json:"version"`
	Source   string    `json:"source"`
	LoadedAt time.Time `json:"loaded_at"`
	// LastError is the last failed reload's message (the previous rules stay
	// in force), LastErrorAt its time; empty after a good reload.
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
	// Reloads counts reloads by outcome, as cutover_rules_reload_total
	// names them ("ok", "error"; "failed" is error's earlier name).
	Reloads map[string]int64 `json:"reloads"`
	// RestartPending names the settings read only at start whose value in
	// the file differs from the one running: they apply at the next restart.
	RestartPending []string    `json:"restart_pending"`
	Routes         []RuleRoute `json:"routes"`
	// Rules are the compare rules with the number of times each forgave a
	// difference.
	Rules []RuleHits `json:"rules"`
}

// RuleRoute is one configured route as the rules page lists it.
type RuleRoute struct {
	Name      string         `json:"name"`
	Methods   []string       `json:"methods,omitempty"`
	Path      string         `json:"path"`
	Phase     string         `json:"phase"`
	Sample    float64        `json:"sample"`
	Overrides []RuleOverride `json:"overrides,omitempty"`
}

// RuleOverride is one override of a route.
type RuleOverride struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
}

// RuleHits is one compare rule and its hit count.
type RuleHits struct {
	Route string `json:"route"` // "" for defaults
	Kind  string `json:"kind"`  // ignore, ignore_headers, unordered, ...
	Rule  string `json:"rule"`
	Hits  int64  `json:"hits"`
}

// Options configure the admin handler. Every nil field has the default its
// comment names.
type Options struct {
	// Stats is required.
	Stats StatsSource
	// Rules is shown by /api/v1/rules and the rules page (nil: an empty
	// status).
	Rules RulesSource
	// Metrics serves /metrics (nil: 404). Pass promhttp.HandlerFor of the
	// gateway's own registry.
	Metrics http.Handler
	// Held lists held secondary writes and acts on them (nil: an empty
	// list, and actions answer 404).
	Held HeldWrites
	// Healthy answers /healthz and Ready /readyz (nil: always true).
	Healthy, Ready func() bool
	Logger         *slog.Logger // slog.Default()

	// Auth, when set, is asked for every request but the probes (and those
	// too unless ProbesOpen). Nil serves everyone: only for loopback.
	Auth       Authenticator
	ProbesOpen bool
	// Debug serves /debug/pprof/ (nil: not served).
	Debug http.Handler
	// Audit receives one JSON line per operator action (nil: only the log).
	Audit io.Writer
	// ResetRoute forgets a route's evidence (POST /api/v1/routes/{name}/reset);
	// replicaOnly is ?scope=replica, the caller's word that it means this
	// replica's share of a fleet's evidence. nil leaves the action out.
	ResetRoute func(route string, replicaOnly bool) error
}

// Authenticator says who a request comes from (Credentials implements it).
type Authenticator interface {
	Authenticate(r *http.Request) (Role, string)
}

// New returns the admin surface as one handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &handler{o: o, auditLog: &auditLog{w: o.Audit}}
	r := chi.NewRouter()
	// Every path but the scrape and the probes answers only loopback
	// names without admin.auth: a route added later is guarded too.
	r.Use(securityHeaders, h.loopbackHost)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { h.error(w, r, http.StatusNotFound, "not found") })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		h.error(w, r, http.StatusMethodNotAllowed, "method not allowed")
	})

	probes := r.With()
	if !o.ProbesOpen {
		probes = r.With(h.requireRole(RoleViewer))
	}
	probes.Get("/healthz", probe(o.Healthy))
	probes.Get("/readyz", probe(o.Ready))

	r.Route("/api/v1", func(r chi.Router) {
		r.Use(noStore)
		// Operator actions check their own credentials (and say so in the
		// audit log when they refuse).
		if o.ResetRoute != nil {
			r.Post("/routes/{name}/reset", h.operator("reset_route", h.resetRoute))
		}
		r.Post("/held/{id}/replay", h.operator("replay_write", h.heldAction(true)))
		r.Post("/held/{id}/discard", h.operator("discard_write", h.heldAction(false)))
		r.Group(func(r chi.Router) {
			r.Use(h.requireRole(RoleViewer))
			r.Get("/routes", h.routes)
			r.Get("/diffs", h.diffs)
			r.Get("/fields", h.fields)
			r.Get("/history", h.history)
			r.Get("/rules", h.rules)
			r.Get("/held", h.held)
		})
	})
	r.Group(func(r chi.Router) {
		r.Use(h.requireRole(RoleViewer))
		r.Get("/", h.index)
		r.Get("/assets/*", h.assets)
		if o.Metrics != nil {
			// Scraped by name (a Prometheus beside the gateway): no
			// bodies, no actions.
			r.Get("/metrics", o.Metrics.ServeHTTP)
			r.Head("/metrics", o.Metrics.ServeHTTP)
		}
	})
	if o.Debug != nil {
		// A CPU profile costs the proxy while it runs: operators only.
		r.With(h.requireRole(RoleOperator)).Mount("/debug/pprof", o.Debug)
	}
	return r
}

type handler struct {
	o        Options
	auditLog *auditLog
}

// resetRoute forgets one route's evidence, e.g. after a fix on the new
// backend, so the verdict judges only answers given since.
func (h *handler) resetRoute(r *http.Request) (string, int, error) {
	name := chi.URLParam(r, "name")
	if _, ok := h.o.Stats.Evidence(name, stats.EvidenceQuery{}); !ok {
		return name, http.StatusNotFound, fmt.Errorf("no route %q", name)
	}
	if err := h.o.ResetRoute(name, r.URL.Query().Get("scope") == "replica"); err != nil {
		var refused *Refused
		if errors.As(err, &refused) {
			return name, http.StatusConflict, err
		}
		return name, http.StatusInternalServerError, err
	}
	return name, http.StatusOK, nil
}

// Refused is an operator action refused for a reason the operator can act
// on (409 Conflict, the reason as the error).
type Refused struct{ Reason string }

func (e *Refused) Error() string { return e.Reason }

// errorBody is the one shape of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// error is the one error funnel of the admin surface: the client gets a
// short message, the log the request.
func (h *handler) error(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if status >= 500 {
		h.o.Logger.Error("admin request failed", "path", r.URL.Path, "status", status, "msg", msg)
	}
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	// The default escaping of <, > and & stays on: values come from
	// backends, and a JSON answer opened as a page must not become markup.
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func probe(ok func() bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if ok != nil && !ok() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("not ok\n"))
			return
		}
		w.Write([]byte("ok\n"))
	}
}

// loopbackHost refuses, when the admin surface has no authentication, a
// request whose Host is not a loopback name. Without it the surface is safe
// only because it listens on loopback (serve refuses anything else), and a
// web page can get around that: its host name, rebound in DNS to 127.0.0.1,
// makes the browser send the page's requests here as same-origin ones,
// answers readable and actions allowed (DNS rebinding).
func (h *handler) loopbackHost(next http.Handler) http.Handler {
	if h.o.Auth != nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !byName(r.URL.Path) && !loopbackName(r.Host) {
			h.error(w, r, http.StatusMisdirectedRequest, "the admin surface without admin.auth answers only to a loopback host name (127.0.0.1, [::1], localhost): set admin.auth to reach it by another name")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// byName reports whether a path is reached by host name without admin.auth:
// the scrape (a Prometheus beside the gateway) and the probes, which carry
// no bodies and no actions.
func byName(path string) bool {
	return path == "/metrics" || path == "/healthz" || path == "/readyz"
}

// loopbackName reports whether a Host header names this machine's loopback.
func loopbackName(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
