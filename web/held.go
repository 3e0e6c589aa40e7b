package web

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
)

// HeldWrites lists the secondary writes no retry will deliver, and carries
// out the operator's actions on them. The gateway implements it (through
// the caller's adapter: web never imports the gateway).
type HeldWrites interface {
	// HeldWrites lists held writes after the given ID, in ID order: of one
	// kind ("gave_up", "verify", or "" for both) and route ("" for all).
	HeldWrites(kind, route string, after uint64, limit int) ([]HeldWrite, error)
	// Redrive queues a held write again; Discard forgets it. Both return
	// ErrNoSuchWrite or ErrNotReplayable (wrapped or not) when they apply;
	// Redrive, unless force, ErrSuperseded or ErrResourceQueued for a
	// replay that would land over a later write of the same resource.
	Redrive(id uint64, force bool) error
	Discard(id uint64) error
}

// Errors a HeldWrites implementation returns for the API to map.
var (
	ErrNoSuchWrite   = errors.New("no such held write")
	ErrNotReplayable = errors.New("the write's body was not kept; it cannot be replayed")
	// ErrShuttingDown: the gateway is closing; the write stays held (503).
	ErrShuttingDown = errors.New("the gateway is shutting down; the write stays held: act on it after the restart")
	// ErrSuperseded and ErrResourceQueued refuse a replay that would put an
	// older value back over a newer one (409); ?force=true sends it anyway.
	ErrSuperseded = errors.New("a later write of this resource reached the backend after this write was held: " +
		"replayed, it would put the older value back over the newer one; compare the resource on both backends " +
		"and discard it, or replay with ?force=true to send it anyway")
	ErrResourceQueued = errors.New("a later write of this resource is queued for the backend: replayed now, this " +
		"write would land after it and put the older value back; replay once the queued writes landed or were given " +
		"up (it is refused as superseded if a later one landed), or replay with ?force=true to send it anyway")
)

// HeldWrite is one held write as /api/v1/held shows it. Bodies and headers
// are never shown: they may hold secrets.
type HeldWrite struct {
	ID             uint64    `json:"id,string"`
	Kind           string    `json:"kind"`
	Route          string    `json:"route"`
	Override       string    `json:"override,omitempty"`
	Resource       string    `json:"resource"`
	Backend        string    `json:"backend"`
	Method         string    `json:"method"`
	Target         string    `json:"target"`
	IdempotencyKey string    `json:"idempotency_key"`
	Recorded       time.Time `json:"recorded"`
	Held           time.Time `json:"held"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"last_error,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Status         int       `json:"status,omitempty"`
	Replayable     bool      `json:"replayable"`
	// Superseded is when a later write of the resource reached Backend
	// after this one was held: a replay is refused unless forced.
	Superseded time.Time `json:"superseded,omitzero"`
}

// heldPage is one page of held writes; next is the after= of the next page
// (empty on the last one).
type heldPage struct {
	Writes []HeldWrite `json:"writes"`
	Next   string      `json:"next"`
}

const (
	defaultHeldLimit = 100
	maxHeldLimit     = 1000
)

func (h *handler) held(w http.ResponseWriter, r *http.Request) {
	if h.o.Held == nil {
		writeJSON(w, http.StatusOK, heldPage{Writes: []HeldWrite{}})
		return
	}
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" && kind != "gave_up" && kind != "verify" {
		h.error(w, r, http.StatusBadRequest, "kind must be gave_up or verify")
		return
	}
	if len(q.Get("route")) > maxRouteName {
		h.error(w, r, http.StatusBadRequest, "route name too long")
		return
	}
	var after uint64
	if s := q.Get("after"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			h.error(w, r, http.StatusBadRequest, "after must be a write id")
			return
		}
		after = n
	}
	limit := defaultHeldLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxHeldLimit {
			h.error(w, r, http.StatusBadRequest, "limit must be a number from 1 to "+strconv.Itoa(maxHeldLimit))
			return
		}
		limit = n
	}
	ws, err := h.o.Held.HeldWrites(kind, q.Get("route"), after, limit)
	if err != nil {
		h.o.Logger.Error("listing held writes", "error", err)
		h.error(w, r, http.StatusInternalServerError, "cannot read the queue")
		return
	}
	page := heldPage{Writes: ws}
	if page.Writes == nil {
		page.Writes = []HeldWrite{}
	}
	if len(ws) == limit {
		page.Next = strconv.FormatUint(ws[len(ws)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, page)
}

// heldAction re-drives (replay) or discards one held write; it runs behind
// the operator checks and the audit log.
func (h *handler) heldAction(replay bool) action {
	return func(r *http.Request) (string, int, error) {
		target := "write " + chi.URLParam(r, "id")
		if h.o.Held == nil {
			return target, http.StatusNotFound, ErrNoSuchWrite
		}
		id, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 64)
		if err != nil {
			return target, http.StatusBadRequest, errors.New("not a write id")
		}
		if replay {
			var force bool
			switch r.URL.Query().Get("force") {
			case "", "false":
			case "true":
				force = true
				target += ", forced"
			default:
				return target, http.StatusBadRequest, errors.New("force must be true or false")
			}
			err = h.o.Held.Redrive(id, force)
		} else {
			err = h.o.Held.Discard(id)
		}
		switch {
		case err == nil && replay:
			return target, http.StatusAccepted, nil // queued; the secondary gets it later
		case err == nil:
			return target, http.StatusOK, nil
		case errors.Is(err, ErrNoSuchWrite):
			return target, http.StatusNotFound, ErrNoSuchWrite
		case errors.Is(err, ErrNotReplayable):
			return target, http.StatusConflict, ErrNotReplayable
		case errors.Is(err, ErrSuperseded):
			return target, http.StatusConflict, ErrSuperseded
		case errors.Is(err, ErrResourceQueued):
			return target, http.StatusConflict, ErrResourceQueued
		case errors.Is(err, ErrShuttingDown):
			return target, http.StatusServiceUnavailable, ErrShuttingDown
		}
		h.o.Logger.Error("held write action failed", "target", target, "error", err)
		return target, http.StatusInternalServerError, errors.New("the action failed; see the log")
	}
}
