package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// store is a small REST store standing for a backend: PUT sets a path's
// value, applying each idempotency key once (a repeat answers success
// without applying again), and it keeps per path the keys it applied, in
// order.
type store struct {
	mu        sync.Mutex
	applied   map[string][]string
	seen      map[string]bool
	delivered atomic.Int64 // every PUT received, repeats included
	failing   atomic.Bool  // answer 503 without applying
}

func newStore() *store { return &store{applied: map[string][]string{}, seen: map[string]bool{}} }

func (s *store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.Method != http.MethodPut {
		w.Write([]byte(`{}`))
		return
	}
	if s.failing.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	s.delivered.Add(1)
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	if !s.seen[key] {
		s.seen[key] = true
		s.applied[r.URL.Path] = append(s.applied[r.URL.Path], key)
	}
	s.mu.Unlock()
	w.Write([]byte(`{"ok": true}`))
}

func (s *store) log() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for p, ks := range s.applied {
		out[p] = slices.Clone(ks)
	}
	return out
}

// TestCrashLosesNoWrite runs a real gateway under write load and kills it
// with SIGKILL at random moments, several times, while the secondary is
// failing part of the time. Some clients retry a write whose outcome they
// did not learn (same idempotency key), others move on. After a last start
// with a healthy secondary:
//
//   - the secondary holds every write a client was told succeeded;
//   - per resource, it applied the primary's writes in the primary's order,
//     except writes the primary applied while the gateway died, which are
//     held to verify (never silently missing);
//   - repeats reached it only with a key it had seen (harmless).
func TestCrashLosesNoWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real gateway through several crashes")
	}
	primary, secondary := newStore(), newStore()
	// The secondary fails for up to a round (a start and a second); at the
	// default 20 attempts, each at least the breaker's 50 ms apart, a slow
	// machine would give writes up, which this test does not expect.
	old, new := httptest.NewServer(primary), httptest.NewServer(secondary)
	defer old.Close()
	defer new.Close()
	config := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
server: {drain_delay: 0s, shutdown_timeout: 5s}
backends:
  old: {url: %q, timeout: 1s}
  new: {url: %q, timeout: 500ms}
shadow: {breaker_open_for: 50ms}
queue: {base_backoff: 5ms, max_backoff: 50ms, max_attempts: 1000}
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`, old.URL, new.URL)
	dataDir := t.TempDir()

	var (
		addr    atomic.Pointer[string] // the running gateway's proxy address
		stop    atomic.Bool
		ackedMu sync.Mutex
		acked   = map[string]bool{} // idempotency keys a client saw succeed
		wg      sync.WaitGroup
	)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	const resources = 6
	for c := range resources {
		retries := c%2 == 0 // half the clients retry an unknown outcome
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/items/r%d", c)
			for n := 0; !stop.Load(); n++ {
				key := fmt.Sprintf("c%d-%d", c, n)
				for !stop.Load() {
					a := addr.Load()
					if a == nil {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					req, _ := http.NewRequest("PUT", "http://"+*a+path, strings.NewReader(fmt.Sprintf(`{"n": %d}`, n)))
					req.Header.Set("Idempotency-Key", key)
					res, err := client.Do(req)
					if err == nil {
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode == http.StatusOK {
							ackedMu.Lock()
							acked[key] = true
							ackedMu.Unlock()
							break
						}
					}
					if !retries {
						break // outcome unknown; move on
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill timing seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	const crashes = 5
	for i := range crashes {
		p := startServe(t, config, dataDir)
		secondary.failing.Store(i%2 == 0)
		a := p.proxy
		addr.Store(&a)
		time.Sleep(time.Duration(200+rng.IntN(800)) * time.Millisecond)
		addr.Store(nil)
		if err := p.cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		<-p.exited
	}
	stop.Store(true)
	wg.Wait()

	// Recovery: a healthy secondary and one more start.
	secondary.failing.Store(false)
	p := startServe(t, config, dataDir)
	var view []struct {
		Name   string `json:"name"`
		Writes struct {
			Pending  int64 `json:"pending_retries"`
			ToVerify int64 `json:"to_verify"`
		} `json:"writes"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		getJSON(t, client, "http://"+p.admin+"/api/v1/routes", &view)
		if len(view) > 0 && view[0].Writes.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the queue did not drain: %+v\n%s", view, p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var held struct {
		Writes []struct {
			Kind           string `json:"kind"`
			IdempotencyKey string `json:"idempotency_key"`
			Reason         string `json:"reason"`
		} `json:"writes"`
	}
	getJSON(t, client, "http://"+p.admin+"/api/v1/held?limit=1000", &held)
	toVerify := map[string]bool{}
	for _, h := range held.Writes {
		if h.Kind != "verify" {
			t.Errorf("held write %+v: only writes to verify are expected", h)
		}
		toVerify[h.IdempotencyKey] = true
	}

	prim, sec := primary.log(), secondary.log()
	var applied, missing int
	for path, want := range prim {
		applied += len(want)
		got := sec[path]
		// The secondary's writes, in order, are the primary's without those
		// held to verify.
		var expect []string
		for _, k := range want {
			if !slices.Contains(got, k) {
				missing++
				if !toVerify[k] {
					t.Errorf("%s: write %s applied by the primary is neither on the secondary nor held to verify", path, k)
				}
				continue
			}
			expect = append(expect, k)
		}
		if !slices.Equal(got, expect) {
			t.Errorf("%s: the secondary applied %v, want %v (the primary's order)", path, got, expect)
		}
	}
	for path, got := range sec {
		for _, k := range got {
			if !slices.Contains(prim[path], k) {
				t.Errorf("%s: the secondary applied %s, which the primary never did", path, k)
			}
		}
	}
	ackedMu.Lock()
	for k := range acked {
		found := false
		for _, got := range sec {
			found = found || slices.Contains(got, k)
		}
		if !found {
			t.Errorf("write %s was acknowledged to its client but is not on the secondary", k)
		}
	}
	n := len(acked)
	ackedMu.Unlock()
	if n < 50 {
		t.Errorf("only %d writes acknowledged: the load proved little", n)
	}
	t.Logf("%d crashes; %d writes applied by the primary, %d acknowledged, %d held to verify (%d not on the secondary); the secondary received %d PUTs for %d writes (repeats carried known keys)",
		crashes, applied, n, len(toVerify), missing, secondary.delivered.Load(), applied-missing)
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
