package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cutover/cutover/gateway"
	"github.com/cutover/cutover/stats"
)

// misbehave is how a faulty backend answers while its fault holds; it may
// apply the write to k first (a backend that breaks after committing).
type misbehave func(k *kv, w http.ResponseWriter, r *http.Request)

// faulty serves k, misbehaving until healed.
type faulty struct {
	k      *kv
	fault  misbehave
	healed atomic.Bool
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.fault == nil || f.healed.Load() {
		f.k.ServeHTTP(w, r)
		return
	}
	f.fault(f.k, w, r)
}

var (
	// hang reads the request (so the server notices the client leaving)
	// and never answers.
	hang misbehave = func(_ *kv, _ http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}
	slow misbehave = func(k *kv, w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
		k.ServeHTTP(w, r)
	}
	// drip applies, then sends its answer a byte at a time, slower than the
	// gateway waits for it.
	drip misbehave = func(k *kv, w http.ResponseWriter, r *http.Request) {
		status, body := k.apply(r)
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(status)
		rc := http.NewResponseController(w)
		for i := range len(body) {
			if _, err := w.Write([]byte{body[i]}); err != nil {
				return
			}
			rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(80 * time.Millisecond):
			}
		}
	}
	// resetMidBody applies, then breaks the connection halfway through its
	// answer.
	resetMidBody misbehave = func(k *kv, w http.ResponseWriter, r *http.Request) {
		_, body := k.apply(r)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body)+100, body[:len(body)/2])
		buf.Flush()
		conn.Close()
	}
	storm misbehave = func(_ *kv, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}
	garbage misbehave = func(k *kv, w http.ResponseWriter, r *http.Request) {
		k.apply(r)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"v": tru`)
	}
	fail500 misbehave = func(_ *kv, w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusInternalServerError)
	}
)

// exchange is one request of the script and what the client got.
type exchange struct {
	req    string
	status int
	header http.Header
	body   string
}

// script sends interleaved writes and reads of three resources, one at a
// time, and returns what the client got for each.
func script(t *testing.T, base string, client *http.Client, rounds int, midway func()) []exchange {
	t.Helper()
	var out []exchange
	do := func(method, path, body string) {
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: body: %v", method, path, err)
		}
		h := res.Header.Clone()
		h.Del("Date")
		out = append(out, exchange{req: method + " " + path, status: res.StatusCode, header: h, body: string(b)})
	}
	for i := range rounds {
		if i == rounds/2 && midway != nil {
			midway()
		}
		path := fmt.Sprintf("/items/k%d", i%3)
		do("PUT", path, fmt.Sprintf(`{"v": %d}`, i))
		do("GET", path, "")
	}
	return out
}

const faultRounds = 9 // 9 writes and 9 reads, three per resource

func faultConfig(old, new, phase string) string {
	return fmt.Sprintf(`backends:
  old: {url: %q, timeout: 150ms}
  new: {url: %q, timeout: 150ms}
shadow:
  breaker_open_for: 100ms
queue:
  base_backoff: 10ms
  max_backoff: 50ms
routes:
  - name: items
    match: {path: "/items/{id}"}
    phase: %s
`, old, new, phase)
}

// The latency evidence is of reads both backends answered: a secondary
// that refuses connections (it would look faster than old) or hangs past
// its timeout (as slow as the timeout) adds nothing to it, nor does a
// primary that is down.
func TestLatencyIsMeasuredWhereBothAnswered(t *testing.T) {
	for _, tt := range []struct {
		name             string
		oldDown, newDown bool
		newFault         misbehave
	}{
		{name: "new refuses connections", newDown: true},
		{name: "new hangs", newFault: hang},
		{name: "old is down", oldDown: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old, new := newServer(t, &faulty{k: newKV()}), newServer(t, &faulty{k: newKV(), fault: tt.newFault})
			if tt.oldDown {
				old.down()
			}
			if tt.newDown {
				new.down()
			}
			g := startProxy(t, faultConfig(old.url(), new.url(), "shadow-read"), t.TempDir())
			for range 3 {
				g.do("GET", "/items/a", "")
			}
			eventually(t, "the three reads recorded", func() bool { return total(g.route("items")) == 3 })
			v := g.route("items")
			if l := v.Latency; l.Old.Count != 0 || l.New.Count != 0 || l.P99Increase != nil {
				t.Errorf("latency = %+v, reads %v: want none measured", l, outcomes(v))
			}
		})
	}
}

// outcomes names every read outcome a route recorded, with its count:
// "match", "mismatch", "pending", "transient", and "skipped/reason" or
// "error/reason".
func outcomes(v stats.RouteView) map[string]int64 {
	m := map[string]int64{}
	for k, n := range map[string]int64{"match": v.Reads.Matched, "mismatch": v.Reads.Mismatched, "pending": v.Reads.Pending, "transient": v.Reads.Transient} {
		if n > 0 {
			m[k] = n
		}
	}
	for k, n := range v.Reads.Reasons {
		if n > 0 && !strings.HasPrefix(k, "write:") {
			m[k] = n
		}
	}
	return m
}

func TestFaultModes(t *testing.T) {
	tests := []struct {
		name string
		// secondary and primary misbehave until healed (nil: healthy).
		secondary, primary misbehave
		// refused: the secondary is down from the start; downMidRun: it
		// goes down halfway through.
		refused, downMidRun, primaryDown bool
		// reads lists the outcomes a read may end in.
		reads []string
		// failedWrites: some first attempts fail (and are retried).
		failedWrites bool
		// verify: the writes are held to verify (primary timeout).
		verify bool
	}{
		{name: "secondary refuses connections", refused: true, failedWrites: true,
			reads: []string{"pending"}},
		{name: "secondary goes down mid-run", downMidRun: true, failedWrites: true,
			reads: []string{"match", "pending", "error/secondary_failed", "skipped/breaker_open"}},
		{name: "secondary hangs", secondary: hang, failedWrites: true,
			reads: []string{"pending"}},
		{name: "secondary is slow", secondary: slow,
			reads: []string{"match", "pending"}},
		{name: "secondary drips its answer", secondary: drip, failedWrites: true,
			reads: []string{"pending"}},
		{name: "secondary resets mid-body", secondary: resetMidBody, failedWrites: true,
			reads: []string{"pending"}},
		{name: "secondary 5xx storm", secondary: storm, failedWrites: true,
			reads: []string{"pending"}},
		{name: "secondary answers garbage", secondary: garbage,
			reads: []string{"pending", "error/invalid_json"}},
		{name: "primary is down", primaryDown: true,
			reads: []string{"error/primary_failed"}},
		// A read right after a refused write may find the write's intent
		// not yet dropped (its handler ends after the client has the 500):
		// pending, never a wrong mismatch.
		{name: "primary answers 500", primary: fail500,
			reads: []string{"error/primary_failed", "mismatch", "pending"}},
		{name: "primary times out", primary: hang, verify: true,
			reads: []string{"error/primary_failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			client := &http.Client{Transport: &http.Transport{}}

			// The reference: the same primary behind a gateway that never
			// involves the secondary.
			refPrimary := &faulty{k: newKV(), fault: tt.primary}
			refOld := newServer(t, refPrimary)
			refNew := newServer(t, &faulty{k: newKV()})
			if tt.primaryDown {
				refOld.down()
			}
			ref := startProxy(t, faultConfig(refOld.url(), refNew.url(), "prepare"), t.TempDir())
			want := script(t, ref.srv.URL, client, faultRounds, nil)
			ref.close()
			refOld.down()
			refNew.down()

			primary := &faulty{k: newKV(), fault: tt.primary}
			secondary := &faulty{k: newKV(), fault: tt.secondary}
			old, new := newServer(t, primary), newServer(t, secondary)
			if tt.primaryDown {
				old.down()
			}
			if tt.refused {
				new.down()
			}
			g := startProxy(t, faultConfig(old.url(), new.url(), "shadow-read"), t.TempDir())
			var midway func()
			if tt.downMidRun {
				midway = new.down
			}
			got := script(t, g.srv.URL, client, faultRounds, midway)

			// Client responses are those of a run without a secondary.
			if len(got) != len(want) {
				t.Fatalf("%d answers, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].status != want[i].status || got[i].body != want[i].body || fmt.Sprint(got[i].header) != fmt.Sprint(want[i].header) {
					t.Errorf("%s: got %d %v %q\nwant %d %v %q", want[i].req, got[i].status, got[i].header, got[i].body,
						want[i].status, want[i].header, want[i].body)
				}
			}

			// Every read ends while the fault still holds.
			eventually(t, "every read's outcome", func() bool { return total(g.route("items")) == faultRounds })

			// Heal; no write is lost: the secondary ends with exactly the
			// writes the primary applied, in the same order per resource.
			secondary.healed.Store(true)
			new.up()
			eventually(t, "the queue to drain", func() bool { return g.proxy.QueueDepth() == 0 })
			if diff := secondary.k.sameAs(primary.k); diff != "" {
				t.Errorf("secondary differs from primary: %s", diff)
			}

			// Outcomes are counted, with the right reasons.
			v := g.route("items")
			allowed := map[string]bool{}
			for _, o := range tt.reads {
				allowed[o] = true
			}
			for o, n := range outcomes(v) {
				if !allowed[o] {
					t.Errorf("%d reads ended %s; allowed: %v (all: %v)", n, o, tt.reads, outcomes(v))
				}
			}
			accepted := int64(len(primary.k.log()["/items/k0"]) + len(primary.k.log()["/items/k1"]) + len(primary.k.log()["/items/k2"]))
			// A failed first attempt is counted after its retry is
			// scheduled: the retry may land first.
			eventually(t, "every write's outcome", func() bool {
				w := g.route("items").Writes
				return w.SecondarySucceeded+w.RetriedOK+w.GaveUp == accepted && w.SecondaryAttempted >= accepted
			})
			w := g.route("items").Writes
			if w.SecondaryAttempted != accepted || w.SecondarySucceeded+w.RetriedOK != accepted || w.GaveUp != 0 {
				t.Errorf("writes %+v; the primary accepted %d", w, accepted)
			}
			if tt.failedWrites != (w.SecondaryFailed > 0) {
				t.Errorf("first attempts failed: %d, want failures: %v", w.SecondaryFailed, tt.failedWrites)
			}
			// Verify records are committed off the request path: wait for
			// them as the durability tests do.
			wantHeld := map[bool]int{true: faultRounds}[tt.verify]
			var held []gateway.HeldWrite
			eventually(t, "the writes held to verify", func() bool {
				var err error
				held, err = g.proxy.HeldWrites("verify", "", 0, 100)
				return err == nil && len(held) >= wantHeld
			})
			w = g.route("items").Writes
			if len(held) != wantHeld || int(w.ToVerify) != wantHeld {
				t.Errorf("%d writes held to verify (view %d), want %d", len(held), w.ToVerify, wantHeld)
			}
			for _, h := range held {
				if h.Reason != "timeout" || h.Status != http.StatusGatewayTimeout || !strings.HasPrefix(h.Resource, "items|k") {
					t.Errorf("verify record %+v: want reason timeout, status 504, the resource named", h)
				}
			}

			// No goroutine is left behind.
			g.close()
			old.down()
			new.down()
			client.CloseIdleConnections()
			noLeaks(t, before)
		})
	}
}

// noLeaks waits for the goroutine count to come back to what it was, and
// shows the stacks of those left if it does not.
func noLeaks(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines left behind (%d before):\n%s", runtime.NumGoroutine()-before, before, interesting(b.String()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// interesting drops the testing framework's own goroutines from a dump.
func interesting(dump string) string {
	var keep []string
	for _, g := range strings.Split(dump, "\n\n") {
		if !strings.Contains(g, "testing.(*T).Run") && !strings.Contains(g, "testing.tRunner") {
			keep = append(keep, g)
		}
	}
	sort.Strings(keep)
	return strings.Join(keep, "\n\n")
}
