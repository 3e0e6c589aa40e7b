package gateway_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
)

// Clients that give up mid-request are not the secondary's fault: however
// many do, its breaker stays closed and reads are still compared.
func TestClientCancellationsDoNotTripTheBreaker(t *testing.T) {
	g := newGate(t)
	var arrived atomic.Int64
	old := newBackend(t, "old", func(w http.ResponseWriter, r *http.Request) {
		arrived.Add(1)
		select { // the client leaves while the primary thinks
		case <-g.open:
		case <-r.Context().Done():
		}
		jsonAnswer("old", userJSON)(w, r)
	})
	new := newBackend(t, "new", func(w http.ResponseWriter, r *http.Request) {
		// Still asked when the client has left: its copy does not die
		// with the client's request.
		select {
		case <-g.open:
		case <-r.Context().Done():
			t.Error("the secondary's copy was cancelled with the client's request")
		}
		jsonAnswer("new", userJSON)(w, r)
	})
	gwy := startGateway(t, old, new, "routes:\n  - name: users\n    match: {path: \"/users/{id}\"}\n    phase: shadow-read\n")
	const leaving = 10 // gobreaker trips after more than 5 failures in a row
	for i := range leaving {
		// Each client leaves once the primary has its request: one that
		// left before the gateway read it would be no read at all.
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", gwy.srv.URL+"/users/7", nil)
		done := make(chan error, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		eventually(t, "the primary to have the request", func() bool { return arrived.Load() == int64(i+1) })
		cancel()
		if err := <-done; err == nil {
			t.Fatal("the client was answered before it left")
		}
	}
	g.release()
	eventually(t, "the abandoned reads' outcomes", func() bool { return total(gwy.route("users")) == leaving })
	if open := gauge(t, gwy, "cutover_circuit_open", "new"); open != 0 {
		t.Fatalf("cutover_circuit_open{backend=new} = %v after clients left", open)
	}
	// The last client to leave may race the gate's release: its primary
	// can answer in full before the cancellation arrives, and that read is
	// then compared like any other. Judge the next read by the difference.
	before := gwy.route("users").Reads.Matched
	gwy.do("GET", "/users/7", "")
	eventually(t, "the next read", func() bool { return total(gwy.route("users")) == leaving+1 })
	if v := gwy.route("users"); v.Reads.Matched != before+1 || v.Reads.Reasons["skipped/breaker_open"] != 0 {
		t.Errorf("after %d clients left, a read is not compared: %+v", leaving, v.Reads)
	}
}

// gauge reads one gauge of the gateway's registry by its one label value.
func gauge(t *testing.T, g *gw, name, label string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}
