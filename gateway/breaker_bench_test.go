package gateway

import (
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/cutover/cutover/rules"
)

// BenchmarkBreakerCheck is what every read asks on the request path, while
// secondary exchanges go through the same breaker: "lock-free" is the
// atomic open(), "gobreaker State" the mutex it replaced.
func BenchmarkBreakerCheck(b *testing.B) {
	for _, bc := range []struct {
		name string
		open func(*breaker) bool
	}{
		{"lock-free", (*breaker).open},
		{"gobreaker State", func(br *breaker) bool { return br.cb.State() == gobreaker.StateOpen }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			br := newBreaker(rules.New, time.Second, newMetrics(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if i%4 == 0 {
						// One secondary exchange for every three checks.
						br.cb.Execute(func() (struct{}, error) { return struct{}{}, nil })
						continue
					}
					if bc.open(br) {
						b.Error("a breaker that never failed is open")
						return
					}
				}
			})
		})
	}
}
