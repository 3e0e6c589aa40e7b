package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A write the secondary keeps refusing is given up, shown by the admin API
// (its times in UTC, though the process's zone is not), and re-driven by an
// operator's POST once the secondary is fixed.
func TestGivenUpWriteReplayedThroughTheAdminAPI(t *testing.T) {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZONEINFO", filepath.Join(strings.TrimSpace(string(goroot)), "lib", "time", "zoneinfo.zip"))
	t.Setenv("TZ", "Asia/Kolkata")
	primary, secondary := newStore(), newStore()
	secondary.failing.Store(true)
	old, new := httptest.NewServer(primary), httptest.NewServer(secondary)
	defer old.Close()
	defer new.Close()
	p := startServe(t, fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
backends:
  old: {url: %q}
  new: {url: %q}
queue: {max_attempts: 2, base_backoff: 5ms, max_backoff: 10ms}
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`, old.URL, new.URL), t.TempDir())
	client := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest("PUT", "http://"+p.proxy+"/items/7", strings.NewReader(`{"n": 1}`))
	req.Header.Set("Idempotency-Key", "write-7")
	res, err := client.Do(req)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %v %v", res, err)
	}
	res.Body.Close()

	type page struct {
		Writes []struct {
			ID             string `json:"id"`
			Kind           string `json:"kind"`
			Target         string `json:"target"`
			IdempotencyKey string `json:"idempotency_key"`
			Attempts       int    `json:"attempts"`
			Recorded       string `json:"recorded"`
			Held           string `json:"held"`
		} `json:"writes"`
	}
	var held page
	deadline := time.Now().Add(10 * time.Second)
	for len(held.Writes) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the write was never given up\n%s", p.stderr)
		}
		time.Sleep(10 * time.Millisecond)
		getJSON(t, client, "http://"+p.admin+"/api/v1/held?kind=gave_up", &held)
	}
	w := held.Writes[0]
	if w.Kind != "gave_up" || w.Target != "/items/7" || w.IdempotencyKey != "write-7" || w.Attempts != 2 {
		t.Errorf("held write %+v", w)
	}
	if !strings.HasSuffix(w.Recorded, "Z") || !strings.HasSuffix(w.Held, "Z") {
		t.Errorf("held write times %q, %q: want UTC (README: times are RFC 3339 in UTC)", w.Recorded, w.Held)
	}
	var rules struct {
		LoadedAt string `json:"loaded_at"`
	}
	getJSON(t, client, "http://"+p.admin+"/api/v1/rules", &rules)
	if !strings.HasSuffix(rules.LoadedAt, "Z") {
		t.Errorf("rules loaded_at %q: want UTC", rules.LoadedAt)
	}

	// A cross-site POST is refused; the operator's own is carried out.
	secondary.failing.Store(false)
	cross, _ := http.NewRequest("POST", "http://"+p.admin+"/api/v1/held/"+w.ID+"/replay", nil)
	cross.Header.Set("Origin", "http://evil.example")
	if res, err := client.Do(cross); err != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site replay: %v %v, want 403", res, err)
	}
	res, err = client.Post("http://"+p.admin+"/api/v1/held/"+w.ID+"/replay", "", nil)
	if err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("replay: %v %v", res, err)
	}
	res.Body.Close()
	deadline = time.Now().Add(10 * time.Second)
	for len(secondary.log()["/items/7"]) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the replayed write never reached the secondary")
		}
		time.Sleep(10 * time.Millisecond)
	}
	getJSON(t, client, "http://"+p.admin+"/api/v1/held", &held)
	if len(held.Writes) != 0 {
		t.Errorf("still held after the replay: %+v", held.Writes)
	}
	if res, _ := client.Post("http://"+p.admin+"/api/v1/held/"+w.ID+"/replay", "", nil); res == nil || res.StatusCode != http.StatusNotFound {
		t.Errorf("a second replay: %v, want 404", res)
	}
}
