package gateway

import "sync"

// bodyBuffers recycles the buffers that hold answers for a comparison: at
// 16 KB every shadowed read needs two, and allocating them fresh was a large
// share of the garbage collector's work. A buffer goes back when the read's
// outcome is recorded (recordRead), the last moment anything reads it.
//
// The pool holds *[]byte; the boxes pool keeps the emptied pointers, so
// that neither get nor put allocates one.
type bodyBuffers struct{ pool, boxes sync.Pool }

// maxPooledBuffer bounds what is kept: rarer, larger answers are allocated
// and left to the collector, so one huge answer does not pin memory.
const maxPooledBuffer = 64 << 10

// get returns an empty buffer with room for n bytes (and one more, which
// readBounded uses to tell a body of exactly the limit from a longer one).
func (b *bodyBuffers) get(n int64) []byte {
	if n+1 > maxPooledBuffer {
		return make([]byte, 0, n+1)
	}
	if p, ok := b.pool.Get().(*[]byte); ok {
		buf := *p
		*p = nil
		b.boxes.Put(p)
		if int64(cap(buf)) >= n+1 {
			return buf[:0]
		}
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
	p, _ := b.boxes.Get().(*[]byte)
	if p == nil {
		p = new([]byte)
	}
	*p = buf
	b.pool.Put(p)
}

// forBody returns a pooled buffer for an answer of declared length cl: one
// with room for it or, when the length is unknown (a chunked answer), any
// the pool holds, which the reader grows and put recycles. nil when cl is
// over max: the answer is skipped as too large.
func (b *bodyBuffers) forBody(cl, max int64) []byte {
	if cl > max {
		return nil
	}
	if cl < 0 {
		cl = 0 // any buffer the pool holds
	}
	return b.get(cl)
}

// copyBuffers lends ReverseProxy the buffer it copies each answer through.
// Without a pool it allocates 32 KB per request, which at a few thousand
// requests a second was most of the garbage the collector had to chase.
type copyBuffers struct{ pool sync.Pool }

const copyBufferSize = 32 << 10

// Get implements httputil.BufferPool. The pool holds array pointers, so
// neither Get nor Put allocates.
func (c *copyBuffers) Get() []byte {
	if p, ok := c.pool.Get().(*[copyBufferSize]byte); ok {
		return p[:]
	}
	return make([]byte, copyBufferSize)
}

// Put implements httputil.BufferPool.
func (c *copyBuffers) Put(buf []byte) {
	if cap(buf) < copyBufferSize {
		return
	}
	c.pool.Put((*[copyBufferSize]byte)(buf[:copyBufferSize]))
}
