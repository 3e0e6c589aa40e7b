package stats_test

import (
	"testing"
	"time"

	"github.com/cutover/cutover/stats"
)

// BenchmarkReadMatch is the cost the request path pays per read outcome.
func BenchmarkReadMatch(b *testing.B) {
	s, _ := stats.Open(stats.Options{})
	ev := match("user")
	ev.Override = "acme"
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Read(ev)
		}
	})
}

// BenchmarkReadMismatch includes field counting and grouping; sampling is
// rate-limited, so most mismatches only count.
func BenchmarkReadMismatch(b *testing.B) {
	s, _ := stats.Open(stats.Options{Samples: stats.SampleOptions{Refresh: time.Hour}})
	ev := priceMismatch("user", 1)
	b.ReportAllocs()
	for b.Loop() {
		s.Read(ev)
	}
}

// BenchmarkRoutesView is the cost of one /api/v1/routes over 20 routes.
func BenchmarkRoutesView(b *testing.B) {
	s, _ := stats.Open(stats.Options{})
	var infos []stats.RouteInfo
	for i := range 20 {
		ri := userRoute
		ri.Name = string(rune('a'+i)) + "route"
		infos = append(infos, ri)
		ev := match(ri.Name)
		for range 100 {
			s.Read(ev)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Routes(infos)
	}
}
