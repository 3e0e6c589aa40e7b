package web

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Operator actions change state, so they need an operator's credentials,
// refuse requests a browser sends on behalf of another site, and are written
// to the audit log whether they succeed or not.

// auditEntry is one line of the audit log (JSON lines).
type auditEntry struct {
	Time   time.Time `json:"time"`
	Who    string    `json:"who"`
	Remote string    `json:"remote"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Status int       `json:"status"`
	Error  string    `json:"error,omitempty"`
}

// auditLog serialises lines to the configured writer.
type auditLog struct {
	mu sync.Mutex
	w  io.Writer
}

func (a *auditLog) write(e auditEntry) error {
	if a == nil || a.w == nil {
		return nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(append(b, '\n')); err != nil {
		return err
	}
	// Operator actions are rare and each is on disk (the queue's commit)
	// before it is answered: so is its line, through a power loss too.
	if f, ok := a.w.(interface{ Sync() error }); ok {
		return f.Sync()
	}
	return nil
}

// sameOrigin reports whether a state-changing request came from this admin
// surface's own pages or from a non-browser client. A browser always sends
// Origin on a cross-site POST; Sec-Fetch-Site, when present, says the same.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// action is one operator action: it returns what it acted on (for the
// audit log), the status, and an error to show.
type action func(r *http.Request) (target string, status int, err error)

// operator wraps an action with the operator checks and the audit log.
func (h *handler) operator(name string, act action) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who := "anonymous"
		// A refused attempt names what it asked for by its path: the
		// action that would name its target does not run.
		asked := r.URL.Path
		if h.o.Auth != nil {
			role, id := h.o.Auth.Authenticate(r)
			if id != "" {
				who = id
			}
			if role == RoleNone {
				h.audit(r, auditEntry{Who: who, Action: name, Target: asked, Status: http.StatusUnauthorized, Error: "no valid credentials"})
				w.Header().Add("WWW-Authenticate", `Basic realm="cutover", charset="UTF-8"`)
				h.error(w, r, http.StatusUnauthorized, "credentials required: an operator's token or user")
				return
			}
			if role < RoleOperator {
				h.audit(r, auditEntry{Who: who, Action: name, Target: asked, Status: http.StatusForbidden, Error: "not an operator"})
				h.error(w, r, http.StatusForbidden, "these credentials may not do this; an operator's may")
				return
			}
		}
		if !sameOrigin(r) {
			h.audit(r, auditEntry{Who: who, Action: name, Target: asked, Status: http.StatusForbidden, Error: "cross-site request"})
			h.error(w, r, http.StatusForbidden, "cross-site request refused: use the dashboard on this origin, or a client that sends no Origin")
			return
		}
		target, status, err := act(r)
		e := auditEntry{Who: who, Action: name, Target: target, Status: status}
		if err != nil {
			e.Error = err.Error()
		}
		h.audit(r, e)
		if err != nil {
			h.error(w, r, status, err.Error())
			return
		}
		// A replay is accepted into the queue (202), not yet delivered.
		result := "done"
		if status == http.StatusAccepted {
			result = "queued"
		}
		writeJSON(w, status, map[string]string{"action": name, "target": target, "status": result})
	}
}

// audit records one attempt, refused or not, in the log and the audit log;
// a failed audit write is logged as an error with the entry it lost.
func (h *handler) audit(r *http.Request, e auditEntry) {
	e.Time = time.Now().UTC()
	e.Remote, _, _ = net.SplitHostPort(r.RemoteAddr)
	h.o.Logger.Info("operator action", "who", e.Who, "action", e.Action, "target", e.Target, "status", e.Status, "remote", e.Remote)
	if err := h.auditLog.write(e); err != nil {
		h.o.Logger.Error("audit log write failed: the action above is in this log only", "action", e.Action, "error", err.Error())
	}
}
