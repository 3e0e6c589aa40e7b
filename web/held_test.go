package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/web"
)

// heldStub stands for the gateway's held writes (web never imports the
// gateway): a list, and the actions taken on it.
type heldStub struct {
	mu      sync.Mutex
	writes  []web.HeldWrite
	actions []string
	closing bool // the gateway is shutting down
}

func (s *heldStub) HeldWrites(kind, route string, after uint64, limit int) ([]web.HeldWrite, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []web.HeldWrite
	for _, w := range s.writes {
		if w.ID > after && (kind == "" || w.Kind == kind) && (route == "" || w.Route == route) && len(out) < limit {
			out = append(out, w)
		}
	}
	return out, nil
}

func (s *heldStub) act(id uint64, what string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return web.ErrShuttingDown
	}
	for i, w := range s.writes {
		if w.ID == id {
			if what == "replay" && !w.Replayable {
				return web.ErrNotReplayable
			}
			if what == "replay" && !w.Superseded.IsZero() {
				if !force {
					return web.ErrSuperseded
				}
				what = "replay forced"
			}
			s.writes = append(s.writes[:i], s.writes[i+1:]...)
			s.actions = append(s.actions, what)
			return nil
		}
	}
	return web.ErrNoSuchWrite
}

func (s *heldStub) Redrive(id uint64, force bool) error { return s.act(id, "replay", force) }
func (s *heldStub) Discard(id uint64) error             { return s.act(id, "discard", false) }

func (s *heldStub) add(ws ...web.HeldWrite) {
	s.mu.Lock()
	s.writes = append(s.writes, ws...)
	s.mu.Unlock()
}

func TestHeldWritesAPI(t *testing.T) {
	f := newFixture(t)
	f.held.add(web.HeldWrite{ID: 3, Kind: "gave_up", Route: "user", Method: "PUT", Target: "/users/1", Replayable: true},
		web.HeldWrite{ID: 4, Kind: "verify", Route: "user", Method: "PUT", Target: "/users/2", Reason: "timeout", Status: 504, Replayable: true},
		web.HeldWrite{ID: 5, Kind: "gave_up", Route: "orders", Method: "POST", Target: "/orders", Reason: "too_large"},
		web.HeldWrite{ID: 6, Kind: "gave_up", Route: "user", Method: "PUT", Target: "/users/1", Replayable: true,
			Superseded: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)})
	get := func(q string) (int, map[string]any) {
		res, err := http.Get(f.srv.URL + "/api/v1/held" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		json.NewDecoder(res.Body).Decode(&v)
		return res.StatusCode, v
	}
	if code, v := get("?kind=verify"); code != 200 || len(v["writes"].([]any)) != 1 {
		t.Errorf("kind=verify: %d %v", code, v)
	}
	if _, v := get("?after=5"); len(v["writes"].([]any)) != 1 || v["writes"].([]any)[0].(map[string]any)["superseded"] != "2026-11-24T12:00:00Z" {
		t.Errorf("the superseded write: %v, want superseded at 2026-11-24T12:00:00Z", v)
	} else if next, ok := v["next"]; !ok || next != "" {
		t.Errorf("the last page: next = %v (present: %v), want \"\" as README shows: a poller loops until it is empty", next, ok)
	}
	if _, v := get("?after=4&limit=1"); v["writes"].([]any)[0].(map[string]any)["superseded"] != nil {
		t.Errorf("a write nothing overtook: %v, want no superseded field", v)
	}
	if code, v := get("?limit=2"); code != 200 || v["next"] != "4" {
		t.Errorf("a page of 2: %d %v, want next 4", code, v)
	}
	if code, _ := get("?kind=lost"); code != http.StatusBadRequest {
		t.Errorf("a bad kind: %d", code)
	}
	post := func(path string) int {
		res, err := http.Post(f.srv.URL+path, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		// A replay is queued, not delivered, and says so; a discard is done.
		var body struct{ Action, Target, Status string }
		if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		if want := map[int]string{http.StatusAccepted: "queued", http.StatusOK: "done"}[res.StatusCode]; want != "" && body.Status != want {
			t.Errorf("POST %s: %d with status %q, want %q", path, res.StatusCode, body.Status, want)
		}
		// As README shows it.
		if path == "/api/v1/held/3/replay" && res.StatusCode == http.StatusAccepted && (body.Action != "replay_write" || body.Target != "write 3") {
			t.Errorf("POST %s: %+v, want action replay_write, target write 3", path, body)
		}
		return res.StatusCode
	}
	for _, c := range []struct {
		path string
		want int
	}{
		{"/api/v1/held/3/replay", http.StatusAccepted},
		{"/api/v1/held/3/replay", http.StatusNotFound},
		{"/api/v1/held/5/replay", http.StatusConflict},
		{"/api/v1/held/5/discard", http.StatusOK},
		{"/api/v1/held/x/discard", http.StatusBadRequest},
		// Overtaken by a later write: refused unless forced.
		{"/api/v1/held/6/replay", http.StatusConflict},
		{"/api/v1/held/6/replay?force=yes", http.StatusBadRequest},
		{"/api/v1/held/6/replay?force=true", http.StatusAccepted},
	} {
		if got := post(c.path); got != c.want {
			t.Errorf("POST %s: %d, want %d", c.path, got, c.want)
		}
	}
	// While the gateway shuts down the write stays held: 503, not 500.
	f.held.mu.Lock()
	f.held.closing = true
	f.held.mu.Unlock()
	if got := post("/api/v1/held/4/discard"); got != http.StatusServiceUnavailable {
		t.Errorf("a discard while shutting down: %d, want 503", got)
	}
	f.held.mu.Lock()
	f.held.closing = false
	f.held.mu.Unlock()
	if res, _ := http.Get(f.srv.URL + "/api/v1/held/4/replay"); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET of an action: %d, want 405", res.StatusCode)
	}
	if got := strings.Join(f.held.actions, ","); got != "replay,discard,replay forced" {
		t.Errorf("actions carried out: %s", got)
	}
}
