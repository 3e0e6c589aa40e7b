package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkAsyncDualWrite measures async dual writes through the gateway
// with the queue on disk and in memory (go test -bench AsyncDualWrite
// ./gateway; cutover bench --only-queue measures the same across
// processes).
func BenchmarkAsyncDualWrite(b *testing.B) {
	for _, mode := range []string{"memory", "disk"} {
		b.Run(mode, func(b *testing.B) {
			ok := func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Write([]byte(`{"ok": true}`))
			}
			old, new := newBackend(b, "old", ok), newBackend(b, "new", ok)
			src := fmt.Sprintf("backends:\n  old: {url: %q}\n  new: {url: %q}\nroutes:\n  - name: items\n    match: {path: \"/items/{id}\"}\n    phase: dual-write\n", old.srv.URL, new.srv.URL)
			dir := ""
			if mode == "disk" {
				dir = b.TempDir()
			}
			g := startProxy(b, src, dir)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			var n atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					res, err := client.Post(g.srv.URL+fmt.Sprintf("/items/%d", i%1000), "application/json", strings.NewReader(`{"name": "item", "price": 12.5}`))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
			})
			b.StopTimer()
			client.CloseIdleConnections()
			mfs, _ := g.reg.Gather()
			for _, mf := range mfs {
				switch mf.GetName() {
				case "cutover_queue_commit_seconds":
					h := mf.GetMetric()[0].GetHistogram()
					b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1e6, "µs/commit")
				case "cutover_queue_commit_changes":
					h := mf.GetMetric()[0].GetHistogram()
					b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount()), "changes/commit")
				}
			}
		})
	}
}
