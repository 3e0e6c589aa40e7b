package gateway

// This file: the goroutines that run shadowed reads' secondary work, kept
// between reads.

import (
	"sync"
	"time"
)

// runner runs functions on goroutines it keeps for a while after each, so
// their stacks stay grown. A goroutine per shadowed read started with a
// small stack and copied it to grow on every read, on the way into
// net/http's request writer: 4 % of shadow-read's CPU in a profile of the
// closed loop at 16 KB. There is no queue: a function goes to a kept
// goroutine that is idle, or to a new one; the slots bound how many run.
type runner struct {
	jobs chan func()
	idle time.Duration // how long a goroutine is kept without work
	stop chan struct{}
	wg   sync.WaitGroup
}

// shadowIdle is how long a goroutine of shadow work is kept idle: long
// enough to span the gaps of steady traffic, short enough that a burst's
// goroutines (up to shadow.workers) do not stay.
const shadowIdle = 10 * time.Second

func newRunner(idle time.Duration) *runner {
	return &runner{jobs: make(chan func()), idle: idle, stop: make(chan struct{})}
}

// run runs f on an idle kept goroutine, or on a new one.
func (r *runner) run(f func()) {
	select {
	case r.jobs <- f:
		return
	default:
	}
	r.wg.Add(1)
	go r.loop(f)
}

func (r *runner) loop(f func()) {
	defer r.wg.Done()
	idle := time.NewTimer(r.idle)
	defer idle.Stop()
	for {
		f()
		// Idle, it keeps nothing of the read it ran (its answers may be
		// megabytes): not left to the compiler's liveness of f.
		f = nil
		idle.Reset(r.idle)
		select {
		case f = <-r.jobs:
		case <-idle.C:
			return
		case <-r.stop:
			return
		}
	}
}

// close ends the kept goroutines once their functions return, and waits
// for them. Nothing may be run after.
func (r *runner) close() {
	close(r.stop)
	r.wg.Wait()
}
