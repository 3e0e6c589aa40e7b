package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/cutover/cutover/rules"
)

// breaker cuts off a secondary that keeps failing (DESIGN.md guarantee 4):
// while it is open, shadow reads are skipped and secondary writes are not
// sent: they wait in the queue (a first attempt the breaker refuses counts
// as a failed attempt; later refusals do not count towards giving up).
type breaker struct {
	cb *gobreaker.CircuitBreaker[struct{}]
	// openUntil mirrors cb's open state for open(), which every read asks
	// on the request path: cb.State() takes the mutex that every secondary
	// exchange takes twice. Set from OnStateChange, which gobreaker calls
	// inside each transition: the time since epoch when the open state
	// ends, or 0 when not open. Measured from epoch, it is on the monotonic
	// clock, as gobreaker's own expiry is: a wall clock stepped back must
	// not keep reads from the call that half-opens the breaker.
	openUntil atomic.Int64
	epoch     time.Time
}

// gobreakerDefaultTimeout is what gobreaker uses for a Timeout of 0.
const gobreakerDefaultTimeout = 60 * time.Second

func newBreaker(side rules.Side, openFor time.Duration, m *metrics, log *slog.Logger) *breaker {
	gauge := m.circuitOpen.WithLabelValues(side.String())
	gauge.Set(0)
	if openFor <= 0 {
		openFor = gobreakerDefaultTimeout
	}
	b := &breaker{epoch: time.Now()}
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:    side.String(),
		Timeout: openFor,
		// Our own shutdown is not the secondary's fault.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				// gobreaker half-opens on the first call after openFor;
				// open() stops refusing then, so that call comes.
				b.openUntil.Store(int64(time.Since(b.epoch) + openFor))
				gauge.Set(1)
				log.Warn("secondary breaker open: shadow reads skipped, writes queued", slog.String(keyBackend, name))
			} else {
				b.openUntil.Store(0)
				gauge.Set(0)
				log.Info("secondary breaker "+to.String(), slog.String(keyBackend, name))
			}
		},
	})
	return b
}

// openFor returns how long the breaker stays open, 0 when it is not.
func (b *breaker) openFor() time.Duration {
	until := b.openUntil.Load()
	if until == 0 {
		return 0
	}
	return max(time.Duration(until)-time.Since(b.epoch), 0)
}

// open reports whether the breaker refuses requests now, without a lock.
func (b *breaker) open() bool { return b.openFor() > 0 }

func isBreakerOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}
