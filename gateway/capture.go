package gateway

import (
	"io"
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
