package gateway

import "testing"

func TestBodyBuffersAreReusedWithoutAllocating(t *testing.T) {
	var b bodyBuffers
	// sync.Pool may drop what it holds (at a collection, and at random
	// under the race detector), so reuse is checked over several rounds.
	var prev []byte
	reused := false
	for range 20 {
		buf := b.get(1000)
		if cap(buf) < 1001 || len(buf) != 0 {
			t.Fatalf("get(1000) gave len %d, cap %d", len(buf), cap(buf))
		}
		reused = reused || prev != nil && &buf[:1][0] == &prev[:1][0]
		b.put(append(buf, "answer"...))
		prev = buf
	}
	if !reused {
		t.Error("a returned buffer was never handed out again")
	}
	if big := b.get(maxPooledBuffer); cap(big) <= maxPooledBuffer {
		t.Errorf("an answer over the pooled size got a buffer of %d", cap(big))
	}
	if raceEnabled {
		return // the race detector's pool drops a quarter of what it is given
	}
	if n := testing.AllocsPerRun(100, func() { b.put(b.get(1000)) }); n != 0 {
		t.Errorf("get and put allocate %.1f times a round trip, want 0", n)
	}
}
