package gateway

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"
)

// What the external tests need of the package's internals.

// SecondaryClient is the client that sends the secondary its copies.
type SecondaryClient = secondaryClient

// NewSecondaryClient returns the client a Proxy would use for target, with
// stop as the Proxy's stop context. Its shadow.idempotency_header is
// WriteKeyHeader written in lower case, as a user may write it.
func NewSecondaryClient(stop context.Context, target *url.URL, timeout time.Duration, maxIdle int) SecondaryClient {
	return newSecondaryClient(stop, target, timeout, maxIdle, strings.ToLower(WriteKeyHeader))
}

// WriteKeyHeader is the idempotency header of NewSecondaryClient's clients.
const WriteKeyHeader = "X-Write-Key"

// WritesAwaiting counts the writes waiting for earlier writes of their
// resource queued for the backend they go to.
func (p *Proxy) WritesAwaiting() int64 { return p.awaiting.Load() }

// CloseClient closes c as the Proxy's Close does.
func CloseClient(c SecondaryClient) { c.close() }

// IsStaleConnection reports whether err says a reused connection was found
// closed before any answer.
func IsStaleConnection(err error) bool {
	var s errStale
	return errors.As(err, &s)
}

// SweepIdleAfter runs the idle sweep of c as if d had passed.
func SweepIdleAfter(c SecondaryClient, d time.Duration) {
	h := c.(*h1Client)
	h.now = func() time.Time { return time.Now().Add(d) }
	h.closeExpired()
}

// RouteLoad returns a route's client requests and shadowed reads in flight,
// as shadow.lag_factor counts them.
func (p *Proxy) RouteLoad(route string) (clients, shadows int64) {
	l := p.loadOf(route, "")
	return l.clients.Load(), l.shadows.Load()
}
