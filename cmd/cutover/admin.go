package main

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cutover/cutover/stats"
)

// adminHandler serves the admin listener.
// TEMPORARY: the API's first routes until the dashboard package lands.
func (in *instance) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(in.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !in.ready.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("GET /api/v1/routes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, in.store.Routes(in.routeInfo()))
	})
	mux.HandleFunc("GET /api/v1/rules", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, in.live.Status())
	})
	return mux
}

// routeInfo lists the configured routes, then the unmatched bucket.
func (in *instance) routeInfo() []stats.RouteInfo {
	set := in.live.Current()
	out := make([]stats.RouteInfo, 0, len(set.Routes)+1)
	for _, r := range set.Routes {
		out = append(out, stats.RouteInfo{Name: r.Name, Phase: r.Phase.String()})
	}
	return append(out, stats.RouteInfo{Name: set.Default.Name, Phase: set.Default.Phase.String()})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
