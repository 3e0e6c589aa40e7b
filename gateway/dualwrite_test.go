package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const dualWrite = "routes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: dual-write\n"

func TestFailedPrimaryWriteNeverReachesTheSecondary(t *testing.T) {
	tests := []struct {
		name    string
		primary func(b *backend)
		status  int
	}{
		{"primary answers 500", func(b *backend) {
			b.setHandler(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "db down", http.StatusInternalServerError) })
		}, http.StatusInternalServerError},
		{"primary refuses with 409", func(b *backend) {
			b.setHandler(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "conflict", http.StatusConflict) })
		}, http.StatusConflict},
		{"primary is down", func(b *backend) { b.srv.Close() }, http.StatusBadGateway},
		{"primary resets the connection", func(b *backend) {
			b.setHandler(func(w http.ResponseWriter, r *http.Request) {
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
			})
		}, http.StatusBadGateway},
	}
	for _, tt := range tests {
		for _, mode := range []string{"async", "sync"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				old := newBackend(t, "old", jsonAnswer("old", `{"ok":true}`))
				new := newBackend(t, "new", jsonAnswer("new", `{"ok":true}`))
				g := startGateway(t, old, new, dualWrite+"    secondary_writes: "+mode+"\n")
				tt.primary(old)
				res, body := g.do("PUT", "/users/1", `{"name":"Ada"}`)
				if res.StatusCode != tt.status {
					t.Errorf("client got %d %q, want %d", res.StatusCode, body, tt.status)
				}
				// A write that would reach the secondary is queued in
				// ModifyResponse, before the client has its answer; so an
				// empty queue now means nothing was, or will be, sent.
				if d := g.proxy.QueueDepth(); d != 0 {
					t.Errorf("queue depth = %d, want 0", d)
				}
				if n := new.count(); n != 0 {
					t.Errorf("the secondary got %d requests, want none", n)
				}
				if v := g.route("users"); v.Writes.SecondaryAttempted != 0 {
					t.Errorf("secondary writes attempted = %d, want 0", v.Writes.SecondaryAttempted)
				}
			})
		}
	}
}

func TestSyncWriteWaitsForTheSecondaryAsyncDoesNot(t *testing.T) {
	for _, mode := range []string{"sync", "async"} {
		t.Run(mode, func(t *testing.T) {
			g := newGate(t)
			var arrived atomic.Bool
			old := newBackend(t, "old", jsonAnswer("old", `{"ok":true}`))
			new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
				arrived.Store(true)
				g.wait()
				jsonAnswer("new", `{"ok":true}`)(w, r)
			})
			gwy := startGateway(t, old, new, dualWrite+"    secondary_writes: "+mode+"\n")
			done := make(chan *http.Response, 1)
			go func() {
				res, _ := send(t, gwy.srv.URL, "PUT", "/users/1", `{"name":"Ada"}`)
				done <- res
			}()
			eventually(t, "the secondary write to arrive", arrived.Load)
			if mode == "async" {
				res := <-done
				if res.Header.Get("X-Served-By") != "old" {
					t.Errorf("async: client got %v", res.Header)
				}
				g.release()
			} else {
				select {
				case <-done:
					t.Fatal("sync: the client got its answer before the secondary answered")
				case <-time.After(50 * time.Millisecond):
				}
				g.release()
				if res := <-done; res.Header.Get("X-Served-By") != "old" {
					t.Errorf("sync: the client must still get the primary's answer, got %v", res.Header)
				}
			}
			eventually(t, "the write to be counted", func() bool { return gwy.route("users").Writes.SecondarySucceeded == 1 })
		})
	}
}

func TestSameRequestReachesBothBackends(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"ok":true}`))
	new := newBackend(t, "new", jsonAnswer("new", `{"ok":true}`))
	g := startGateway(t, old, new, "routes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n  - name: search\n    match: {methods: [POST], path: /search}\n    read: true\n    phase: shadow-read\n")

	headers := []string{
		"X-Tenant", "acme",
		"Accept", "application/json",
		"X-Multi", "a", "X-Multi", "b",
		"Connection", "X-Hop",
		"X-Hop", "must not pass",
		"Keep-Alive", "timeout=5",
		"Proxy-Authorization", "Basic c2VjcmV0",
		"Upgrade", "h2c",
	}
	cases := []struct{ method, target, body string }{
		{"PUT", "/users/42?b=2&a=1&a=%2F;x", `{"name": "Ada", "note": "ünïcödé"}`},
		{"GET", "/users/42?fields=name", ""},
		{"POST", "/search?q=a+b", `{"query": {"name": "Ada"}}`},
	}
	for _, c := range cases {
		t.Run(c.method, func(t *testing.T) {
			before := len(new.seen())
			g.do(c.method, c.target, c.body, headers...)
			eventually(t, "the secondary's copy", func() bool { return len(new.seen()) == before+1 && g.proxyIdle() })
			o, n := old.seen()[len(old.seen())-1], new.seen()[len(new.seen())-1]
			if o.Method != n.Method || o.Target != n.Target || string(o.Body) != string(n.Body) {
				t.Errorf("old got %s %s %q\nnew got %s %s %q", o.Method, o.Target, o.Body, n.Method, n.Target, n.Body)
			}
			if o.Target != c.target || string(o.Body) != c.body {
				t.Errorf("the primary got %s %q, want %s %q", o.Target, o.Body, c.target, c.body)
			}
			if n.Header.Get("X-Cutover-Shadow") != "1" || o.Header.Get("X-Cutover-Shadow") != "" {
				t.Errorf("the marker must be on the secondary's copy only: old %q new %q", o.Header.Get("X-Cutover-Shadow"), n.Header.Get("X-Cutover-Shadow"))
			}
			oh, nh := o.Header.Clone(), n.Header.Clone()
			nh.Del("X-Cutover-Shadow")
			for _, h := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Upgrade", "Connection"} {
				if oh.Get(h) != "" || nh.Get(h) != "" {
					t.Errorf("hop-by-hop header %s reached a backend: old %q new %q", h, oh.Get(h), nh.Get(h))
				}
			}
			if oh.Get("X-Forwarded-For") == "" || oh.Get("X-Forwarded-Host") == "" || oh.Get("X-Forwarded-Proto") != "http" {
				t.Errorf("forwarding headers missing: %v", oh)
			}
			if c.method == "PUT" {
				key := oh.Get("Idempotency-Key")
				if key == "" || nh.Get("Idempotency-Key") != key {
					t.Errorf("idempotency key: old %q new %q, want the same generated key on both", key, nh.Get("Idempotency-Key"))
				}
			}
			// Every header that is not per-connection is the same on both.
			if len(oh) != len(nh) {
				t.Errorf("header sets differ:\nold %v\nnew %v", oh, nh)
			}
			for k, v := range oh {
				if k == "Content-Length" && c.body == "" {
					continue
				}
				if strings.Join(nh[k], "\x00") != strings.Join(v, "\x00") {
					t.Errorf("header %s: old %q new %q", k, v, nh[k])
				}
			}
		})
	}
}

func TestClientIdempotencyKeyIsPassedThrough(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"ok":true}`))
	new := newBackend(t, "new", jsonAnswer("new", `{"ok":true}`))
	g := startGateway(t, old, new, dualWrite)
	g.do("PUT", "/users/1", `{}`, "Idempotency-Key", "client-chosen-1")
	eventually(t, "the secondary's copy", func() bool { return new.count() == 1 })
	if o, n := old.seen()[0].Header.Get("Idempotency-Key"), new.seen()[0].Header.Get("Idempotency-Key"); o != "client-chosen-1" || n != o {
		t.Errorf("keys: old %q new %q, want the client's on both", o, n)
	}
}

// A write larger than shadow.write_buffer, and within
// server.max_request_body, streams to the primary whole, with either
// framing, and the secondary gets nothing: the write is given up as
// too_large, since its body cannot be repeated.
func TestAWriteLargerThanTheReplayBufferReachesThePrimaryWhole(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"ok":true}`))
	new := newBackend(t, "new", jsonAnswer("new", `{"ok":true}`))
	g := startGateway(t, old, new, `server: {max_request_body: 8KiB}
shadow: {write_buffer: 1KiB}
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
`)
	// Every byte differs from its neighbours, so a byte lost or repeated
	// anywhere shows.
	var sb strings.Builder
	for i := 0; sb.Len() < 4000; i++ {
		fmt.Fprintf(&sb, "%d,", i)
	}
	body := `{"v": "` + sb.String() + `"}`
	for i, framing := range []string{"Content-Length", "chunked"} {
		t.Run(framing, func(t *testing.T) {
			var rd io.Reader = strings.NewReader(body)
			if framing == "chunked" {
				rd = io.MultiReader(rd) // no length known: net/http chunks it
			}
			target := fmt.Sprintf("/items/%d", i)
			req, err := http.NewRequest("PUT", g.srv.URL+target, rd)
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("PUT of %d bytes: %s", len(body), res.Status)
			}
			seen := old.seen()
			got := seen[len(seen)-1]
			if got.Target != target || string(got.Body) != body {
				t.Errorf("the primary got %s with %d bytes, want %s with the %d sent", got.Target, len(got.Body), target, len(body))
			}
			if w := g.route("items").Writes; w.GaveUp != int64(i+1) {
				t.Errorf("writes = %+v, want %d given up (too large to repeat)", w, i+1)
			}
		})
	}
	if n := len(new.seen()); n != 0 {
		t.Errorf("the secondary got %d requests, want none", n)
	}
}

// A write whose secondary answered with more than shadow.max_body landed:
// it counts as delivered, and its comparison is skipped as too_large, not
// run on the answer's first max_body bytes (an invalid_json error).
func TestAWriteAnswerOverMaxBodyLandsUncompared(t *testing.T) {
	old := newBackend(t, "old", jsonAnswer("old", `{"id": 1}`))
	new := newBackend(t, "new", jsonAnswer("new", `{"id": 1, "pad": "`+strings.Repeat("x", 200)+`"}`))
	g := startGateway(t, old, new, "shadow:\n  max_body: 100\n"+dualWrite)
	if res, _ := g.do("PUT", "/users/1", `{}`); res.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %s", res.Status)
	}
	eventually(t, "the write's comparison skipped as too_large", func() bool {
		return gathered(t, g, `cutover_write_comparisons_total{outcome="skipped",reason="too_large",route="users"}`) == 1
	})
	v := g.route("users")
	wc := v.WriteComparisons
	if v.Writes.SecondarySucceeded != 1 || wc.Compared != 0 || wc.Skipped != 1 || wc.Reasons["skipped/too_large"] != 1 {
		t.Errorf("writes = %+v, write comparisons = %+v; want one delivered, none compared, one skipped as too_large", v.Writes, wc)
	}
	if _, ok := v.Reads.Reasons["write:skipped/too_large"]; ok || len(v.Reads.Reasons) != 0 {
		t.Errorf("read reasons = %v, want none: the write comparison's reason is its own", v.Reads.Reasons)
	}
}

// A sync write waits for its first attempt, and only while one is coming:
// behind an earlier write of its resource that backs off (an hour here), it
// answers at once instead of waiting out the secondary's timeout (a minute
// here), with the queue still holding it.
func TestASyncWriteDoesNotWaitForAnAttemptThatIsNotComing(t *testing.T) {
	primary := &faulty{k: newKV()}
	secondary := &faulty{k: newKV(), fault: storm}
	old, new := newServer(t, primary), newServer(t, secondary)
	cfg := fmt.Sprintf(`backends:
  old: {url: %q, timeout: 1s}
  new: {url: %q, timeout: 1m}
queue: {base_backoff: 1h, max_backoff: 1h}
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: dual-write
    secondary_writes: sync
`, old.url(), new.url())
	g := startProxy(t, cfg, t.TempDir())
	put(t, g, "/items/a", 1) // its first attempt fails: an hour's backoff
	eventually(t, "the first write's attempt", func() bool { return g.route("items").Writes.SecondaryFailed == 1 })
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		put(t, g, "/items/a", 2)
	}()
	select {
	case <-answered:
	case <-time.After(30 * time.Second):
		t.Fatal("a sync write behind one that backs off waited for the secondary's timeout")
	}
	if w := g.route("items").Writes; w.PendingRetries != 2 {
		t.Errorf("writes = %+v, want both pending", w)
	}
	// Its answers are not compared, for a reason of its own: not busy,
	// which says to raise shadow.workers.
	eventually(t, "the second write's comparison skipped as queued", func() bool {
		return g.route("items").WriteComparisons.Reasons["skipped/queued"] == 1
	})
}
