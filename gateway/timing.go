package gateway

import (
	"context"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// legTimer measures a backend's own time for one request: from the request
// written to the first byte of its answer. Both moments are seen on the
// transport's own goroutines. Measured where the gateway's goroutines wake
// up instead, the secondary would look slower than it is: its goroutine
// waits behind the request path's, which the Go scheduler favours (seen as a
// p99 of 4.7 ms against 0.34 ms for two identical backends).
type legTimer struct {
	now          func() time.Time
	wrote, first atomic.Int64 // UnixNano; 0 until seen
	trace        httptrace.ClientTrace
}

func newLegTimer(now func() time.Time) *legTimer {
	t := &legTimer{now: now}
	t.trace.WroteRequest = func(httptrace.WroteRequestInfo) { t.wrote.Store(t.now().UnixNano()) }
	t.trace.GotFirstResponseByte = func() { t.first.Store(t.now().UnixNano()) }
	return t
}

func (t *legTimer) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &t.trace)
}

// latency returns the backend's time, or fallback when the answer never
// came (or the request was never fully written).
func (t *legTimer) latency(fallback time.Duration) time.Duration {
	if t == nil {
		return fallback
	}
	w, f := t.wrote.Load(), t.first.Load()
	if w == 0 || f == 0 || f < w {
		return fallback
	}
	return time.Duration(f - w)
}
