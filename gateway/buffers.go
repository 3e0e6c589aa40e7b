package gateway

import "sync"

// bodyBuffers recycles the buffers that hold answers for a comparison: at
// 16 KB every shadowed read needs two, and allocating them fresh was a large
// share of the garbage collector's work. A buffer goes back when the read's
// outcome is recorded (recordRead), the last moment anything reads it.
type bodyBuffers struct{ pool sync.Pool }

// maxPooledBuffer bounds what is kept: rarer, larger answers are allocated
// and left to the collector, so one huge answer does not pin memory.
const maxPooledBuffer = 64 << 10

// get returns an empty buffer with room for n bytes (and one more, which
// readBounded uses to tell a body of exactly the limit from a longer one).
func (b *bodyBuffers) get(n int64) []byte {
	if n+1 > maxPooledBuffer {
		return make([]byte, 0, n+1)
	}
	if p, ok := b.pool.Get().(*[]byte); ok && int64(cap(*p)) >= n+1 {
		return (*p)[:0]
	}
	size := int64(4 << 10)
	for size < n+1 {
		size *= 2
	}
	return make([]byte, 0, size)
}

// put recycles buf; nil and oversized buffers are dropped.
func (b *bodyBuffers) put(buf []byte) {
	if buf == nil || cap(buf) > maxPooledBuffer {
		return
	}
	b.pool.Put(&buf)
}

// forBody returns a pooled buffer for an answer of declared length cl, or nil
// when the length is unknown or larger than max (the reader then grows its
// own).
func (b *bodyBuffers) forBody(cl, max int64) []byte {
	if cl < 0 || cl > max {
		return nil
	}
	return b.get(cl)
}
