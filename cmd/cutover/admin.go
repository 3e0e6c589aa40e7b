package main

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/fleet"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
)

// adminHandler serves the admin listener: dashboard, API, metrics, probes.
// The dashboard's numbers are the fleet's when dashboard.prometheus_url is
// set (read at every view, so a reload switches it), else this replica's.
func (in *instance) adminHandler(view stats.View) http.Handler {
	return web.New(web.Options{
		Stats: fleet.New(fleet.Options{
			Local:     view,
			Config:    view.Config,
			Dashboard: func() rules.Dashboard { return in.live.Current().Dashboard },
			Logger:    in.log,
		}),
		Rules:   rulesStatus{in},
		Metrics: promhttp.HandlerFor(in.registry, promhttp.HandlerOpts{ErrorLog: nil}),
		Ready:   in.ready.Load,
		Logger:  in.log,
	})
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
		Reloads:   map[string]int64{"ok": r.in.reloads.ok.Load(), "failed": r.in.reloads.failed.Load()},
	}
	if st.LastError != "" {
		out.LastErrorAt = r.in.reloads.lastError.Load()
	}
	for _, rt := range set.Routes {
		out.Routes = append(out.Routes, ruleRoute(rt))
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
