package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cutover/cutover/stats"
)

// Limits of the query parameters: the API answers bounded documents.
const (
	defaultFieldLimit = 20
	maxFieldLimit     = 500
	maxRouteName      = 200
)

func (h *handler) routes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.o.Stats.Routes())
}

// evidence answers one route's evidence, or the error that explains why not.
func (h *handler) evidence(w http.ResponseWriter, r *http.Request, q stats.EvidenceQuery) (stats.Evidence, bool) {
	name := r.URL.Query().Get("route")
	switch {
	case name == "":
		h.error(w, r, http.StatusBadRequest, "the route query parameter is required")
		return stats.Evidence{}, false
	case len(name) > maxRouteName:
		h.error(w, r, http.StatusBadRequest, "route name too long")
		return stats.Evidence{}, false
	}
	ev, ok := h.o.Stats.Evidence(name, q)
	if !ok {
		h.error(w, r, http.StatusNotFound, "no such route")
		return stats.Evidence{}, false
	}
	return ev, true
}

func (h *handler) diffs(w http.ResponseWriter, r *http.Request) {
	if ev, ok := h.evidence(w, r, stats.EvidenceQuery{Diffs: true}); ok {
		writeJSON(w, http.StatusOK, ev.Diffs)
	}
}

func (h *handler) fields(w http.ResponseWriter, r *http.Request) {
	limit := defaultFieldLimit
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxFieldLimit {
			h.error(w, r, http.StatusBadRequest, "limit must be a number from 1 to "+strconv.Itoa(maxFieldLimit))
			return
		}
		limit = n
	}
	if ev, ok := h.evidence(w, r, stats.EvidenceQuery{Fields: limit}); ok {
		writeJSON(w, http.StatusOK, ev.Fields)
	}
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	span := time.Hour
	if s := r.URL.Query().Get("span"); s != "" {
		d, err := parseSpan(s)
		if err != nil {
			h.error(w, r, http.StatusBadRequest, err.Error())
			return
		}
		span = d
	}
	q := stats.EvidenceQuery{History: span, Override: r.URL.Query().Get("override")}
	ev, ok := h.evidence(w, r, q)
	if !ok {
		return
	}
	// The route's view lists its overrides: configured, or with evidence
	// or held writes from before a reload. A mistyped name would otherwise
	// chart zeros, as if the tenant had no traffic.
	var names []string
	for _, o := range ev.Route.Overrides {
		names = append(names, o.Override)
	}
	if q.Override != "" && !slices.Contains(names, q.Override) {
		known := "it has none"
		if len(names) > 0 {
			known = "its overrides: " + strings.Join(names, ", ")
		}
		h.error(w, r, http.StatusNotFound, fmt.Sprintf("route %s has no override %q (%s)", ev.Route.Name, q.Override, known))
		return
	}
	writeJSON(w, http.StatusOK, ev.History)
}

// parseSpan reads a Go duration or a number of days ("30d").
func parseSpan(s string) (time.Duration, error) {
	if n := len(s); n > 1 && s[n-1] == 'd' {
		days, err := strconv.Atoi(s[:n-1])
		switch {
		case err != nil:
			return 0, fmt.Errorf("span %q is not a duration: give one such as 1h, 24h or 30d", s)
		case days < 1:
			return 0, fmt.Errorf("span %q is shorter than the history's one-minute resolution: give 1m or more", s)
		case days > 3660:
			return 0, fmt.Errorf("span %q is more than 3660 days: the history keeps 30 days at most", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf("span %q is not a duration: give one such as 1h, 24h or 30d", s)
	case d < time.Minute:
		return 0, fmt.Errorf("span %q is shorter than the history's one-minute resolution: give 1m or more", s)
	}
	return d, nil
}

func (h *handler) rules(w http.ResponseWriter, r *http.Request) {
	st := RulesStatus{Reloads: map[string]int64{}, RestartPending: []string{}, Routes: []RuleRoute{}, Rules: []RuleHits{}}
	if h.o.Rules != nil {
		st = h.o.Rules.RulesStatus()
		if st.Reloads == nil {
			st.Reloads = map[string]int64{}
		}
		if st.RestartPending == nil {
			st.RestartPending = []string{}
		}
		if st.Routes == nil {
			st.Routes = []RuleRoute{}
		}
		if st.Rules == nil {
			st.Rules = []RuleHits{}
		}
	}
	writeJSON(w, http.StatusOK, st)
}
