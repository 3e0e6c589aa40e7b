package gateway

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
)

// The connections in an exchange under a client's stop: taking any of them
// out keeps every other one findable, and stop's end cuts exactly the ones
// still in an exchange.
func TestTheWatchedConnectionsStayFindable(t *testing.T) {
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &h1Client{stop: stop}
	conns := make([]*h1Conn, 6)
	peers := make([]net.Conn, len(conns))
	watches := make([]watch, len(conns))
	for i := range conns {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		conns[i], peers[i] = &h1Conn{conn: a}, b
		w, err := c.watch(stop, conns[i])
		if err != nil {
			t.Fatal(err)
		}
		watches[i] = w
	}
	check := func(when string) {
		t.Helper()
		for i, pc := range c.watched {
			if pc.slot != i+1 {
				t.Fatalf("%s: watched[%d] has slot %d", when, i, pc.slot)
			}
		}
	}
	for _, i := range []int{2, 0, 5, 3} {
		if !watches[i].end() {
			t.Fatalf("ending the watch on connection %d reported it cut", i)
		}
		check("after ending " + string(rune('0'+i)))
		if conns[i].slot != 0 {
			t.Fatalf("connection %d keeps slot %d", i, conns[i].slot)
		}
	}
	if len(c.watched) != 2 || c.watched[0] == c.watched[1] {
		t.Fatalf("%d watched, want connections 1 and 4", len(c.watched))
	}
	c.cutDone = make(chan struct{})
	c.cutWatched()
	for i, pc := range conns {
		// A connection not cut reads what its peer writes; a cut one
		// fails at once, and its peer's write ends when the pipe closes.
		var wg sync.WaitGroup
		wg.Go(func() { peers[i].Write([]byte{1}) })
		_, err := pc.conn.Read(make([]byte, 1))
		pc.conn.Close()
		wg.Wait()
		cut := errors.Is(err, os.ErrDeadlineExceeded)
		if want := i == 1 || i == 4; cut != want {
			t.Errorf("connection %d: cut %v, want %v", i, cut, want)
		}
		if i == 1 || i == 4 {
			if watches[i].end() {
				t.Errorf("connection %d: ending its watch after the cut reported it uncut", i)
			}
		}
	}
	cancel()
	if _, err := c.watch(stop, conns[0]); !errors.Is(err, context.Canceled) {
		t.Errorf("an exchange beginning after the cut: %v, want context.Canceled", err)
	}
}
