package gateway_test

import (
	"net/http"
	"sync/atomic"
	"testing"
)

func TestMismatchThatGoesAwayIsTransient(t *testing.T) {
	tests := []struct {
		name    string
		stale   int64 // answers of new that are stale before it catches up
		recheck string
		want    string
	}{
		{"caught up when read again", 1, "30ms", "transient"},
		{"still different when read again", 1 << 40, "30ms", "mismatch"},
		{"no recheck configured", 1, "", "mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reads atomic.Int64
			old := newBackend(t, "old", jsonAnswer("old", `{"v": 2}`))
			new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if reads.Add(1) <= tt.stale {
					w.Write([]byte(`{"v": 1}`))
					return
				}
				w.Write([]byte(`{"v": 2}`))
			})
			cfg := "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: shadow-read\n"
			if tt.recheck != "" {
				cfg = "queue:\n  recheck_after: " + tt.recheck + "\n" + cfg
			}
			g := startGateway(t, old, new, cfg)
			res, body := g.do("GET", "/items/1", "")
			if res.StatusCode != 200 || string(body) != `{"v": 2}` {
				t.Fatalf("client got %d %s", res.StatusCode, body)
			}
			eventually(t, "the read's outcome", func() bool { return total(g.route("items")) == 1 })
			if got := outcomes(g.route("items")); got[tt.want] != 1 {
				t.Errorf("outcomes %v, want one %s", got, tt.want)
			}
			wantReads := int64(1)
			if tt.recheck != "" {
				wantReads = 2 // read once more
			}
			if n := reads.Load(); n != wantReads {
				t.Errorf("new was read %d times, want %d", n, wantReads)
			}
		})
	}
}
