package main

import (
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
	"github.com/cutover/cutover/web"
)

// adminHandler serves the admin listener: dashboard, API, metrics, probes.
func (in *instance) adminHandler(view stats.View) http.Handler {
	return web.New(web.Options{
		Stats:   view,
		Rules:   rulesStatus{in},
		Metrics: promhttp.HandlerFor(in.registry, promhttp.HandlerOpts{ErrorLog: nil}),
		Ready:   in.ready.Load,
		Held:    heldWrites{in.proxy},
		Logger:  in.log,
	})
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
		out[i] = web.HeldWrite(w)
	}
	return out, nil
}

func (h heldWrites) Redrive(id uint64) error { return heldError(h.p.Redrive(id)) }
func (h heldWrites) Discard(id uint64) error { return heldError(h.p.Discard(id)) }

func heldError(err error) error {
	switch {
	case errors.Is(err, gateway.ErrNoSuchWrite):
		return web.ErrNoSuchWrite
	case errors.Is(err, gateway.ErrNotReplayable):
		return web.ErrNotReplayable
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
