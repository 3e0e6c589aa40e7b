package gateway

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

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

// A chunked answer declares no length: it is read into whatever buffer the
// pool holds, grown when too small, and that buffer comes back. Reading
// each one into a fresh 64 KB buffer made a 16 KB chunked shadow read
// allocate 145 KB (BenchmarkShadowReadChunked).
func TestAnAnswerOfUnknownLengthIsReadIntoAPooledBuffer(t *testing.T) {
	var b bodyBuffers
	body := bytes.Repeat([]byte(`{"k": 1}`), 2<<10) // 16 KB
	const limit = 1 << 20
	rd := bytes.NewReader(body)
	read := func() []byte {
		rd.Reset(body)
		got, over, err := readBoundedInto(b.forBody(-1, limit), rd, limit, -1)
		if err != nil || over || !bytes.Equal(got, body) {
			t.Fatalf("read %d bytes, over %t, error %v; want the %d-byte body", len(got), over, err, len(body))
		}
		return got
	}
	first := read()
	if c := cap(first); c < len(body) || c > 2*len(body)+1 {
		t.Errorf("a %d-byte body grew a buffer of %d", len(body), c)
	}
	b.put(first)
	if raceEnabled {
		return // the race detector's pool drops a quarter of what it is given
	}
	if n := testing.AllocsPerRun(100, func() { b.put(read()) }); n != 0 {
		t.Errorf("reading a chunked answer into a pooled buffer allocates %.1f times, want 0", n)
	}
}

func TestABoundedReadStopsOneBytePastTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size, hint int64
		over       bool
	}{
		{"known length under the limit", 100, 100, false},
		{"known length at the limit", 1000, 1000, false},
		{"unknown length at the limit", 1000, -1, false},
		{"unknown length one byte over the limit", 1001, -1, true},
		{"unknown length over the limit", 5000, -1, true},
		{"declared over the limit", 5000, 5000, true},
	} {
		// net/http's bodies report the end with their last bytes; a
		// bytes.Reader reports it in a read of its own.
		for _, endWithData := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, end with the data %t", tc.name, endWithData), func(t *testing.T) {
				body := bytes.Repeat([]byte("x"), int(tc.size))
				rd := bytes.NewReader(body)
				var r io.Reader = rd
				if endWithData {
					r = iotest.DataErrReader(rd)
				}
				got, over, err := readBoundedInto(nil, r, 1000, tc.hint)
				if err != nil || over != tc.over || !bytes.Equal(got, body[:min(tc.size, 1000)]) {
					t.Fatalf("got %d bytes, over %t, error %v; want %d bytes, over %t", len(got), over, err, min(tc.size, 1000), tc.over)
				}
				if left := rd.Len(); tc.over && !endWithData && left != int(tc.size)-1001 {
					t.Errorf("%d bytes left unread, want %d: the read goes one byte past the limit, no further", left, tc.size-1001)
				}
			})
		}
	}
}
