package gateway

import (
	"context"
	"errors"
	"log/slog"
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
}

func newBreaker(side rules.Side, openFor time.Duration, m *metrics, log *slog.Logger) *breaker {
	gauge := m.circuitOpen.WithLabelValues(side.String())
	gauge.Set(0)
	return &breaker{cb: gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:    side.String(),
		Timeout: openFor,
		// Our own shutdown is not the secondary's fault.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				gauge.Set(1)
				log.Warn("secondary breaker open: shadow reads skipped, writes queued", slog.String(keyBackend, name))
			} else {
				gauge.Set(0)
				log.Info("secondary breaker "+to.String(), slog.String(keyBackend, name))
			}
		},
	})}
}

// open reports whether the breaker refuses requests now.
func (b *breaker) open() bool { return b.cb.State() == gobreaker.StateOpen }

func isBreakerOpen(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}
