package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"testing"
	"time"
)

// The benchmarks drive each system the same way, in one process, so their
// ns/op and allocs/op differ only by what the proxy does; the README's
// throughput table comes from `cutover bench`, which runs them apart.

var benchBody = `{"meta": {"page": 1}, "items": [` + strings.Repeat(`{"id": 12345, "name": "item-00001", "price": 12.5, "tags": ["a", "b"]},`, 13) + `{"id": 0}]}`

func benchBackend(b *testing.B) *backend {
	be := &backend{name: "bench"}
	be.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(benchBody))
	}))
	b.Cleanup(be.srv.Close)
	return be
}

func drive(b *testing.B, url, method, body string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	b.Cleanup(client.CloseIdleConnections)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, url, rd)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
	})
}

func BenchmarkPlainReverseProxy(b *testing.B) {
	old := benchBackend(b)
	u, _ := url.Parse(old.srv.URL)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.SetXForwarded() },
		Transport: &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true},
	}
	srv := httptest.NewServer(rp)
	b.Cleanup(srv.Close)
	drive(b, srv.URL+"/items/1", "GET", "")
}

func benchGateway(b *testing.B, phase string) *gw {
	g := startGateway(b, benchBackend(b), benchBackend(b), "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: "+phase+"\n")
	return g
}

func BenchmarkPrepare(b *testing.B) {
	g := benchGateway(b, "prepare")
	drive(b, g.srv.URL+"/items/1", "GET", "")
}

func BenchmarkShadowRead(b *testing.B) {
	g := benchGateway(b, "shadow-read")
	drive(b, g.srv.URL+"/items/1", "GET", "")
	b.StopTimer()
	waitSettled(b, g, b.N)
	if v := g.route("items"); v.Reads.Compared < v.Reads.Total*95/100 {
		b.Logf("only %d of %d reads compared", v.Reads.Compared, v.Reads.Total)
	}
}

// BenchmarkShadowReadChunked: 16 KB answers without a Content-Length, as
// many backends send them (net/http chunks any answer past 4 KB written
// without one). The backends' own allocations are in B/op.
func BenchmarkShadowReadChunked(b *testing.B) {
	body := []byte(`{"items": [` + strings.Repeat(`{"id": 12345, "name": "item-00001", "price": 12.5, "tags": ["a", "b"]},`, 220) + `{"id": 0}]}`)
	chunked := func() *backend {
		be := &backend{name: "bench"}
		be.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}))
		b.Cleanup(be.srv.Close)
		return be
	}
	g := startGateway(b, chunked(), chunked(), "routes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: shadow-read\n")
	drive(b, g.srv.URL+"/items/1", "GET", "")
	b.StopTimer()
	waitSettled(b, g, b.N)
	if v := g.route("items"); v.Reads.Matched < v.Reads.Total*95/100 {
		b.Errorf("only %d of %d reads matched", v.Reads.Matched, v.Reads.Total)
	}
}

func BenchmarkDualWrite(b *testing.B) {
	g := benchGateway(b, "dual-write")
	drive(b, g.srv.URL+"/items/1", "PUT", `{"name": "item", "price": 12.5}`)
	b.StopTimer()
	waitSettled(b, g, 0)
}

// waitSettled waits for the secondary writes of a run and for its reads'
// outcomes (reads, when the run sent some).
func waitSettled(b *testing.B, g *gw, reads int) {
	deadline := time.Now().Add(30 * time.Second)
	for g.proxy.QueueDepth() > 0 || total(g.route("items")) < int64(reads) {
		if time.Now().After(deadline) {
			b.Fatalf("not settled after 30 s: %d writes queued, %d of %d reads recorded", g.proxy.QueueDepth(), total(g.route("items")), reads)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkCollectionWithReadsWaiting measures what reads waiting on a slow
// secondary cost the garbage collector: each collection marks everything
// every one of them keeps, and with the new backend 100 ms slower at 10,000
// req/s about 1,000 wait at once, so each mark phase grows by that many
// times this cost and delays the client's requests that run during it
// (README, "Performance"). One op is a forced collection with 1,000 reads
// waiting; gc-µs/read is the collector's CPU per op beyond that of a
// collection before the reads, per read. It includes the test backend's
// end of each connection (a goroutine, the connection and a small buffer),
// which a real secondary keeps in its own process.
func BenchmarkCollectionWithReadsWaiting(b *testing.B) {
	g, silent := startBeforeASilentSecondary(b, "10m")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	b.Cleanup(client.CloseIdleConnections)
	get := func(i int) error {
		res, err := client.Get(fmt.Sprintf("%s/users/%d", g.srv.URL, i))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		return res.Body.Close()
	}
	const warm, reads = 20, 1000
	for i := range warm {
		if err := get(i); err != nil {
			b.Fatal(err)
		}
	}
	silent.waitHeads(b, g, warm)
	base := collectorCPU(20)
	sent := make(chan error, 1)
	go func() {
		for i := range reads {
			if err := get(warm + i); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	silent.waitHeads(b, g, reads)
	if err := <-sent; err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	per := collectorCPU(b.N)
	b.StopTimer()
	if ended := g.route("users").Reads.Total; ended != 0 {
		b.Fatalf("%d reads ended during the measure; all should still wait on the secondary", ended)
	}
	b.ReportMetric(float64(per-base)/reads/float64(time.Microsecond), "gc-µs/read")
	silent.close()
}

// collectorCPU forces n collections and returns the collector's median CPU
// time per collection.
func collectorCPU(n int) time.Duration {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	cpu := make([]float64, 0, n)
	for range n {
		metrics.Read(s)
		before := s[0].Value.Float64()
		runtime.GC()
		metrics.Read(s)
		cpu = append(cpu, s[0].Value.Float64()-before)
	}
	slices.Sort(cpu)
	return time.Duration(cpu[len(cpu)/2] * float64(time.Second))
}
