package gateway

import (
	"runtime"
	"testing"
	"time"
	"weak"
)

// goroutinesSettle waits until the process runs at most want goroutines,
// for at most 5 s, and returns how many it runs then (fewer when one that
// ran before the test has ended since).
func goroutinesSettle(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	return runtime.NumGoroutine()
}

// The runner keeps a goroutine after its function returns and gives it
// a later function, so shadowed reads run on grown stacks: a hundred
// functions one after the other run on a few goroutines, not a hundred
// (a function that comes before the last goroutine is back waiting gets a
// new one). Functions that overlap never wait for each other. close waits
// for running functions and ends the kept goroutines.
func TestTheRunnerKeepsItsGoroutinesBetweenFunctions(t *testing.T) {
	base := runtime.NumGoroutine()
	r := newRunner(time.Hour)
	for range 100 {
		done := make(chan struct{})
		r.run(func() { close(done) })
		<-done
	}
	if n := runtime.NumGoroutine(); n > base+3 {
		t.Errorf("%d goroutines kept after 100 functions one after the other, want at most 3", n-base)
	}
	r.close()
	if n := goroutinesSettle(base); n > base {
		t.Errorf("%d goroutines after close, want at most %d", n, base)
	}

	// Two at once: the second does not wait for the first.
	r = newRunner(time.Hour)
	hold, started := make(chan struct{}), make(chan struct{}, 2)
	for range 2 {
		r.run(func() { started <- struct{}{}; <-hold })
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("a function waited for another to end")
		}
	}
	close(hold)

	// close waits for a function still running, then ends every kept one.
	finished := make(chan struct{})
	release := make(chan struct{})
	r.run(func() { <-release; close(finished) })
	closed := make(chan struct{})
	go func() { r.close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("close returned while a function ran")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	select {
	case <-finished:
	default:
		t.Fatal("close returned before the running function did")
	}
	if n := goroutinesSettle(base); n > base {
		t.Errorf("%d goroutines after close, want at most %d", n, base)
	}
}

// A goroutine idle for the runner's idle time ends by itself.
func TestAnIdleRunnerGoroutineEnds(t *testing.T) {
	r := newRunner(10 * time.Millisecond)
	defer r.close()
	done := make(chan struct{})
	r.run(func() { close(done) })
	<-done
	// The runner's own goroutines, not the process's: another test's
	// goroutine ending meanwhile would pass for this one.
	ended := make(chan struct{})
	go func() { r.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Error("the idle goroutine stayed 5 s after its function")
	}
}

// A kept goroutine waiting for work holds nothing of the function it last
// ran: a shadowed read's answers (a body may be megabytes, not pooled)
// are the collector's once the read settles, not 10 s later.
func TestAKeptGoroutineHoldsNothingOfItsLastFunction(t *testing.T) {
	r := newRunner(time.Hour)
	defer r.close()
	body := make([]byte, 1<<20)
	held := weak.Make(&body[0])
	done := make(chan struct{})
	func(b []byte) { r.run(func() { b[0] = 1; close(done) }) }(body)
	body = nil
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for held.Value() != nil && time.Now().Before(deadline) {
		runtime.GC()
		runtime.Gosched()
	}
	if held.Value() != nil {
		t.Fatal("the 1 MiB the last function used is still reachable 5 s after it returned")
	}
}
