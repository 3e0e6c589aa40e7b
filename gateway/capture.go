package gateway

import (
	"io"
	"net/http"
)

// capture passes the primary's body through to the client and keeps a copy
// of at most max bytes for the comparison. Past max it stops copying (the
// client still gets every byte) and the comparison is skipped as too_large.
type capture struct {
	rc   io.ReadCloser
	max  int64
	buf  []byte
	over bool
	eof  bool  // the body was read to its end
	err  error // a read error other than EOF: the primary broke mid-body
}

func newCapture(rc io.ReadCloser, max int64, buf []byte) *capture {
	return &capture{rc: rc, max: max, buf: buf}
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	if n > 0 && !c.over {
		if int64(len(c.buf)+n) > c.max {
			c.over, c.buf = true, nil
		} else {
			c.buf = append(c.buf, p[:n]...)
		}
	}
	switch {
	case err == io.EOF:
		c.eof = true
	case err != nil:
		c.err = err
	}
	return n, err
}

func (c *capture) Close() error { return c.rc.Close() }

// flushOnError passes the primary's body through, and when reading it
// fails (the primary broke off mid-body) first flushes to the client what
// it was sent: ReverseProxy then aborts the connection, and net/http drops
// what it still buffered, up to 4 KiB, often the whole answer with its
// head. The client sees the answer cut where the primary cut it.
type flushOnError struct {
	rc  io.ReadCloser
	w   http.ResponseWriter
	err error // held back one read, so the bytes read with it go out first
}

func (f *flushOnError) Read(p []byte) (int, error) {
	if f.err != nil {
		f.flush()
		return 0, f.err
	}
	n, err := f.rc.Read(p)
	if err != nil && err != io.EOF {
		if n > 0 {
			f.err = err
			return n, nil
		}
		f.flush()
	}
	return n, err
}

func (f *flushOnError) flush() {
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
}

func (f *flushOnError) Close() error { return f.rc.Close() }
