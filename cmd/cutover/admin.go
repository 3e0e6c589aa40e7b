package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/fleet"
	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
)

// adminHandler serves the admin listener: dashboard, API, metrics, probes.
// The dashboard's numbers are the fleet's when dashboard.prometheus_url is
// set (read at every view, so a reload switches it), else this replica's.
func (in *instance) adminHandler(view stats.View, auth rules.Auth, audit io.Writer) (http.Handler, error) {
	creds, err := credentials(auth)
	if err != nil {
		return nil, err
	}
	o := web.Options{
		Stats: fleet.New(fleet.Options{
			Local:     view,
			Config:    view.Config,
			Dashboard: func() rules.Dashboard { return in.live.Current().Dashboard },
			Logger:    in.log,
		}),
		Rules:      rulesStatus{in},
		Metrics:    promhttp.HandlerFor(in.registry, promhttp.HandlerOpts{}),
		Ready:      in.ready.Load,
		Logger:     in.log,
		ProbesOpen: auth.ProbesOpen,
		Audit:      audit,
		ResetRoute: func(route string, replicaOnly bool) error {
			if in.live.Current().Dashboard.PrometheusURL != nil && !replicaOnly {
				// The verdicts shown sum every replica's evidence: clearing
				// this replica's share alone and answering 200 would say
				// the evidence started again when it did not.
				return &web.Refused{Reason: "the verdicts are the fleet's (dashboard.prometheus_url), summed over every replica's evidence: a reset here clears only this replica's share. To start the evidence again, reset the route on every replica with ?scope=replica"}
			}
			in.store.Reset(route)
			return nil
		},
		Held: heldWrites{in.proxy},
	}
	if creds != nil {
		o.Auth = creds
	}
	if in.live.Current().Admin.Pprof {
		o.Debug = pprofHandler()
	}
	return web.New(o), nil
}

// heldWrites adapts the gateway's held writes to the admin surface.
type heldWrites struct{ p *gateway.Proxy }

func (h heldWrites) HeldWrites(kind, route string, after uint64, limit int) ([]web.HeldWrite, error) {
	ws, err := h.p.HeldWrites(kind, route, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]web.HeldWrite, len(ws))
	for i, w := range ws {
		// The API's times are UTC; the gateway's clock is local.
		w.Recorded, w.Held, w.Superseded = w.Recorded.UTC(), w.Held.UTC(), w.Superseded.UTC()
		out[i] = web.HeldWrite(w)
	}
	return out, nil
}

func (h heldWrites) Redrive(id uint64, force bool) error { return heldError(h.p.Redrive(id, force)) }
func (h heldWrites) Discard(id uint64) error             { return heldError(h.p.Discard(id)) }

func heldError(err error) error {
	switch {
	case errors.Is(err, gateway.ErrNoSuchWrite):
		return web.ErrNoSuchWrite
	case errors.Is(err, gateway.ErrNotReplayable):
		return web.ErrNotReplayable
	case errors.Is(err, gateway.ErrShuttingDown):
		return web.ErrShuttingDown
	case errors.Is(err, gateway.ErrSuperseded):
		return web.ErrSuperseded
	case errors.Is(err, gateway.ErrResourceQueued):
		return web.ErrResourceQueued
	}
	return err
}

// reloadCounts counts rule reloads by outcome for the rules page.
type reloadCounts struct {
	ok, failed atomic.Int64
	lastError  atomic.Pointer[time.Time]
}

// rulesStatus adapts the live rules to what the admin surface shows.
type rulesStatus struct{ in *instance }

func (r rulesStatus) RulesStatus() web.RulesStatus {
	st := r.in.live.Status()
	set := r.in.live.Current()
	out := web.RulesStatus{
		Version:   st.Version,
		Source:    st.Source,
		LoadedAt:  st.Loaded,
		LastError: st.LastError,
		// By the outcomes of cutover_rules_reload_total; "failed" is
		// error's earlier name here, kept for the scripts that read it.
		Reloads:        map[string]int64{"ok": r.in.reloads.ok.Load(), "error": r.in.reloads.failed.Load(), "failed": r.in.reloads.failed.Load()},
		RestartPending: r.in.live.RestartPending(), // web writes none as []
	}
	if st.LastError != "" {
		out.LastErrorAt = r.in.reloads.lastError.Load()
	}
	for _, rt := range set.Routes {
		out.Routes = append(out.Routes, ruleRoute(rt))
	}
	// Every compare rule in force, per route, with the differences it
	// absorbed: an over-broad rule shows as a big number.
	hits := map[[2]string]int64{}
	for _, h := range r.in.proxy.RuleHits() {
		hits[[2]string{h.Route, h.Rule}] = h.Hits
	}
	for _, rt := range append(append([]*rules.Route(nil), set.Routes...), set.Default) {
		for _, rule := range rt.Compare.Rules() {
			name := rule.String()
			out.Rules = append(out.Rules, web.RuleHits{Route: rt.Name, Kind: rule.Kind.String(), Rule: name, Hits: hits[[2]string{rt.Name, name}]})
		}
	}
	return out
}

func ruleRoute(rt *rules.Route) web.RuleRoute {
	rr := web.RuleRoute{Name: rt.Name, Methods: rt.Methods(), Path: rt.Pattern(), Phase: rt.Phase.String(), Sample: rt.Sample}
	for _, o := range rt.Overrides {
		rr.Overrides = append(rr.Overrides, web.RuleOverride{Name: o.Name, Phase: o.Phase.String()})
	}
	return rr
}

// pprofHandler serves net/http/pprof's pages under /debug/pprof.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// configError is a problem with something a value of the configuration
// names (a file, a variable), found only when it is used: at path in the
// file (positioned places it there).
type configError struct {
	path, hint string
	err        error
}

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// positioned gives a configError the line and column of its value in
// set's file; other errors are returned as they are.
func positioned(set *rules.Set, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var each []error
		for _, e := range j.Unwrap() {
			each = append(each, positioned(set, e))
		}
		return errors.Join(each...)
	}
	var ce *configError
	if errors.As(err, &ce) {
		return set.Problem(ce.path, ce.hint, "%v", ce.err)
	}
	return err
}

// credentials reads the admin tokens named by the configuration. A token
// file or variable that is named but empty is an error: an empty token
// would lock everyone out, or worse.
func credentials(a rules.Auth) (*web.Credentials, error) {
	if !a.Enabled() {
		return nil, nil
	}
	// Every token that cannot be read is told at once, not one per try.
	var errs []error
	read := func(file, env, what string) []string {
		var out []string
		if file != "" {
			path := "$.admin.auth." + what + "_file"
			b, err := os.ReadFile(file)
			switch tok := strings.TrimSpace(string(b)); {
			case err != nil:
				errs = append(errs, &configError{path: path, hint: "put the token in it, readable by cutover's user", err: fmt.Errorf("admin.auth.%s_file: %w", what, err)})
			case tok == "":
				errs = append(errs, &configError{path: path, hint: "put the token in it", err: fmt.Errorf("admin.auth.%s_file %s is empty", what, file)})
			default:
				out = append(out, tok)
			}
		}
		if env != "" {
			if tok := strings.TrimSpace(os.Getenv(env)); tok != "" {
				out = append(out, tok)
			} else {
				errs = append(errs, &configError{path: "$.admin.auth." + what + "_env", hint: "export the token in it before starting cutover",
					err: fmt.Errorf("admin.auth.%s_env: the variable %s is empty or unset", what, env)})
			}
		}
		return out
	}
	viewer := read(a.TokenFile, a.TokenEnv, "token")
	operator := read(a.OperatorTokenFile, a.OperatorTokenEnv, "operator_token")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	basic := map[string]web.BasicUser{}
	for _, u := range a.Basic {
		basic[u.User] = web.BasicUser{Hash: u.Hash, Operator: u.Operator}
	}
	return web.NewCredentials(viewer, operator, basic), nil
}
