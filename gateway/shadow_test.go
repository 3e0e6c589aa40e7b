package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/stats"
)

const userJSON = `{"id": 7, "name": "Ada", "roles": ["admin", "dev"], "balance": 12.50}`

// gate holds a misbehaving secondary until the test has seen the client's
// answer, so "the client did not wait" is checked, not hoped.
type gate struct {
	open     chan struct{}
	released atomic.Bool
}

func newGate(t *testing.T) *gate {
	g := &gate{open: make(chan struct{})}
	t.Cleanup(g.release)
	return g
}

func (g *gate) wait() { <-g.open }

func (g *gate) release() {
	if g.released.CompareAndSwap(false, true) {
		close(g.open)
	}
}

func TestClientNeverSeesTheSecondary(t *testing.T) {
	tests := []struct {
		name string
		// secondary builds the misbehaving new backend's handler.
		secondary func(g *gate) http.HandlerFunc
		// gated: the secondary is still blocked when the client has its answer
		gated   bool
		outcome stats.Outcome
		reason  string
	}{
		{"hangs", func(g *gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				g.wait()
				jsonAnswer("new", userJSON)(w, r)
			}
		}, true, stats.Match, ""},
		{"resets the connection", func(*gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					conn.Close()
				}
			}
		}, false, stats.Error, stats.ReasonSecondaryFailed},
		{"resets mid-body", func(*gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				conn, buf, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\": 7, ")
				buf.Flush()
				conn.Close()
			}
		}, false, stats.Error, stats.ReasonSecondaryFailed},
		{"answers 500", func(*gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "boom", http.StatusInternalServerError)
			}
		}, false, stats.Mismatch, ""},
		{"answers garbage", func(*gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"id": 7, "name": `))
			}
		}, false, stats.Error, ""},
		{"answers slowly", func(g *gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				g.wait()
				time.Sleep(20 * time.Millisecond)
				jsonAnswer("new", userJSON)(w, r)
			}
		}, true, stats.Match, ""},
		{"drips its body", func(g *gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				rc := http.NewResponseController(w)
				for i := range len(userJSON) {
					w.Write([]byte{userJSON[i]})
					rc.Flush()
					if i == 3 {
						g.wait() // the client must have its answer by now
					}
				}
			}
		}, true, stats.Match, ""},
		{"answers a huge body", func(*gate) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"pad": "` + strings.Repeat("x", 3<<20) + `"}`))
			}
		}, false, stats.Skipped, stats.ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGate(t)
			old := newBackend(t, "old", jsonAnswer("old", userJSON))
			new := newBackend(t, "new", tt.secondary(g))
			gwy := startGateway(t, old, new, "routes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n")

			direct, directBody := send(t, old.srv.URL, "GET", "/users/7?x=1", "")
			res, body := gwy.do("GET", "/users/7?x=1", "")
			if tt.gated && g.released.Load() {
				t.Fatal("the secondary was released before the client had its answer")
			}
			assertSameResponse(t, direct, directBody, res, body)
			g.release()

			eventually(t, "the read's outcome", func() bool { return total(gwy.route("users")) == 1 })
			v := gwy.route("users")
			if got := outcomeOf(v); got != tt.outcome {
				t.Errorf("outcome = %s, want %s (%+v)", got, tt.outcome, v.Reads)
			}
			if tt.reason != "" && v.Reads.Reasons[string(tt.outcome)+"/"+tt.reason] != 1 {
				t.Errorf("reasons = %v, want %s/%s", v.Reads.Reasons, tt.outcome, tt.reason)
			}
		})
	}
}

// assertSameResponse checks that the client got byte for byte what the
// primary answers directly: status, headers (but Date) and body.
func assertSameResponse(t *testing.T, want *http.Response, wantBody []byte, got *http.Response, gotBody []byte) {
	t.Helper()
	if got.StatusCode != want.StatusCode {
		t.Errorf("status = %d, want %d", got.StatusCode, want.StatusCode)
	}
	if !bytes.Equal(gotBody, wantBody) {
		t.Errorf("body = %q, want %q", gotBody, wantBody)
	}
	wh, gh := want.Header.Clone(), got.Header.Clone()
	wh.Del("Date")
	gh.Del("Date")
	if len(wh) != len(gh) {
		t.Errorf("headers = %v, want %v", gh, wh)
	}
	for k, v := range wh {
		if strings.Join(gh[k], "\n") != strings.Join(v, "\n") {
			t.Errorf("header %s = %q, want %q", k, gh[k], v)
		}
	}
}

// With a slow secondary, rate × its slowness reads wait on it at once (1,000
// at 10,000 req/s and 100 ms), and each collection marks what every one of
// them keeps; the longer the mark, the more client requests it delays
// (README, "Performance"). So a read in flight keeps only what its
// comparison needs, not the primary's exchange that led to it.
func TestAShadowedReadWaitingOnTheSecondaryKeepsLittle(t *testing.T) {
	g, silent := startBeforeASilentSecondary(t, "1m")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	t.Cleanup(client.CloseIdleConnections)
	get := func(i int) {
		res, err := client.Get(fmt.Sprintf("%s/users/%d", g.srv.URL, i))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET /users/%d: %s", i, res.Status)
		}
	}
	// Connections to the old backend and the pools exist before the count
	// starts.
	const warm, reads = 20, 200
	for i := range warm {
		get(i)
	}
	silent.waitHeads(t, g, warm)
	before := heapObjects()
	for i := range reads {
		get(warm + i)
	}
	silent.waitHeads(t, g, reads)
	after := heapObjects()
	ended := g.route("users").Reads.Total
	silent.close()
	if ended != 0 {
		t.Fatalf("%d reads ended; all should still wait on the secondary", ended)
	}
	eventually(t, "the reads to end once the secondary hangs up", func() bool { return total(g.route("users")) == warm+reads })
	// What each read in flight adds: the gateway's exchange and the
	// primary's answer, the secondary's request, connection and
	// goroutine; and the silent backend's connection (about five
	// objects). Before a read let go of the primary's timer (whose trace
	// is chained to ReverseProxy's, which holds the client's
	// ResponseWriter) and its capture, it was about 78; since, about 50,
	// with Go 1.26's net/http.
	per := float64(after-before) / reads
	t.Logf("%.1f heap objects per read in flight", per)
	if per > 65 {
		t.Errorf("a read waiting on the secondary keeps %.1f heap objects, want at most 65", per)
	}
}

// Shutting down with reads still waiting on a secondary that never answers:
// once Close's own deadline passes, they end at once as skipped/shutdown,
// long before the secondary's timeout, and Close reports its deadline.
func TestCloseEndsTheReadsWaitingOnTheSecondary(t *testing.T) {
	g, silent := startBeforeASilentSecondary(t, "30s")
	const reads = 3
	for i := range reads {
		if res, _ := g.do("GET", fmt.Sprintf("/users/%d", i), ""); res.StatusCode != http.StatusOK {
			t.Fatalf("GET: %s", res.Status)
		}
	}
	silent.waitHeads(t, g, reads)
	g.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- g.proxy.Close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close: %v, want its deadline", err)
		}
	case <-time.After(15 * time.Second):
		// Half the secondary's timeout: after that, the cleanup's Close
		// waits for the first one, which ends with the timeout.
		t.Fatal("Close waited on the secondary after its deadline")
	}
	v := g.route("users").Reads
	if got := v.Reasons[string(stats.Skipped)+"/"+stats.ReasonShutdown]; got != reads || v.Total != reads {
		t.Errorf("reads = %+v, want all %d skipped/%s", v, reads, stats.ReasonShutdown)
	}
	assertLoadsEnd(t, g, "users")
}

// startBeforeASilentSecondary runs a gateway that shadows /users/{id} (route
// users) from a plain old backend to one that never answers, whose timeout
// is newTimeout. The old backend is not newBackend: that keeps every
// request it sees. shadow.lag_factor is off: the tests hold more reads on
// the secondary than the one client sending them would be allowed.
func startBeforeASilentSecondary(t testing.TB, newTimeout string) (*gw, *silentBackend) {
	t.Helper()
	old := httptest.NewServer(jsonAnswer("old", userJSON))
	t.Cleanup(old.Close)
	silent := newSilentBackend(t)
	g := startProxy(t, fmt.Sprintf(`backends:
  old: {url: %q, timeout: 2s}
  new: {url: %q, timeout: %s}
shadow: {lag_factor: 0}
routes:
  - name: users
    match: {path: "/users/{id}"}
    phase: shadow-read
`, old.URL, silent.url(), newTimeout), t.TempDir())
	return g, silent
}

// Close is not held by a shadowed read whose client is still being sent the
// primary's answer (a handler that outlived the server's drain): that
// handler is not shadow work yet. When its answer ends, the read is
// skipped as shutdown, and the secondary is not asked.
func TestCloseDoesNotWaitForAnAnswerStillStreaming(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	stream := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items": [`))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte(`1]}`))
	}
	old, new := newBackend(t, "old", stream), newBackend(t, "new", stream)
	g := startGateway(t, old, new, "routes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n")
	res, err := http.Get(g.srv.URL + "/users/1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.ReadFull(res.Body, make([]byte, len(`{"items": [`))); err != nil {
		t.Fatalf("the answer's first bytes: %v", err)
	}
	closed := make(chan error, 1)
	go func() {
		// Time to spare: it was held to its deadline, and said so.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		closed <- g.proxy.Close(ctx)
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a client's answer still streaming")
	}
	open()
	if body, err := io.ReadAll(res.Body); err != nil || string(body) != `1]}` {
		t.Fatalf("the rest of the answer: %q, %v", body, err)
	}
	eventually(t, "the read recorded", func() bool { return total(g.route("users")) == 1 })
	if v := g.route("users").Reads; v.Reasons["skipped/"+stats.ReasonShutdown] != 1 {
		t.Errorf("reads = %+v, want one skipped/%s", v, stats.ReasonShutdown)
	}
	if n := new.count(); n != 0 {
		t.Errorf("the secondary got %d requests after Close, want none", n)
	}
	assertLoadsEnd(t, g, "users")
}
