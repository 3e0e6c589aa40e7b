package gateway

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"sync"
)

// net/http accepts some request framings that a backend (or a proxy in front
// of it) may read differently, which is how requests are smuggled: a line
// ending in a bare LF, and Content-Length together with Transfer-Encoding
// (Go drops the Content-Length, RFC 9112 section 6.3 lets a server reject the message).
// It also hides both from the handler. So the proxy listener's connections
// watch the bytes of each request head as the server reads them, and the
// handler refuses a request whose head was ambiguous, before any backend
// sees it. Two different Content-Lengths and broken chunked bodies net/http
// already refuses.

// framingVerdict is what the scanner saw in one request head.
type framingVerdict struct {
	bareLF   bool // a line of the head, or of chunked framing, ended in LF alone
	clAndTE  bool // Content-Length and Transfer-Encoding both present
	confused bool // the scanner lost track of the framing
}

func (v framingVerdict) ambiguous() bool { return v.bareLF || v.clAndTE || v.confused }

// maxVerdicts bounds the heads remembered per connection ahead of their
// handlers (pipelining depth); past it the connection is refused.
const maxVerdicts = 64

// maxFramingLine bounds what the scanner keeps of one line: enough for a
// header name and a length.
const maxFramingLine = 256

type scanState uint8

const (
	stHead scanState = iota
	stBody
	stChunkSize
	stChunkData
	stChunkDataEnd
	stTrailers
	stOff // after a protocol switch, or when the framing was lost
)

// framingConn scans what the server reads from the connection.
type framingConn struct {
	net.Conn

	mu       sync.Mutex
	state    scanState
	line     []byte // the current line, bounded
	lineLen  int    // its full length
	prevCR   bool
	started  bool // the request line of this head was seen
	cur      framingVerdict
	sawCL    bool
	cl       int64
	sawTE    bool
	chunked  bool
	remain   int64 // body or chunk bytes still to skip
	verdicts []framingVerdict
}

// FramingListener wraps the proxy's listener so that ambiguous request heads
// are seen; serve with ConnContext set to FramingContext.
func FramingListener(ln net.Listener) net.Listener { return framingListener{ln} }

type framingListener struct{ net.Listener }

func (l framingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &framingConn{Conn: c}, nil
}

type framingKey struct{}

// FramingContext is the http.Server ConnContext that lets the proxy find the
// scanner of a request's connection.
func FramingContext(ctx context.Context, c net.Conn) context.Context {
	if fc, ok := c.(*framingConn); ok {
		return context.WithValue(ctx, framingKey{}, fc)
	}
	return ctx
}

// framingOf returns the verdict of the request head the handler is about to
// serve; ok is false when the connection is not scanned.
func framingOf(ctx context.Context) (framingVerdict, bool) {
	fc, ok := ctx.Value(framingKey{}).(*framingConn)
	if !ok {
		return framingVerdict{}, false
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if len(fc.verdicts) == 0 {
		// The scanner lost the framing earlier on this connection: it cannot
		// vouch for this head.
		return framingVerdict{confused: true}, true
	}
	v := fc.verdicts[0]
	fc.verdicts = fc.verdicts[1:]
	return v, true
}

// stopFraming turns the scanner off for a connection that switches protocols.
func stopFraming(ctx context.Context) {
	if fc, ok := ctx.Value(framingKey{}).(*framingConn); ok {
		fc.mu.Lock()
		fc.state = stOff
		fc.mu.Unlock()
	}
}

func (c *framingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.scan(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

func (c *framingConn) scan(b []byte) {
	for len(b) > 0 {
		switch c.state {
		case stOff:
			return
		case stBody, stChunkData:
			k := min(int64(len(b)), c.remain)
			c.remain -= k
			b = b[k:]
			if c.remain == 0 {
				if c.state == stBody {
					c.state = stHead
				} else {
					c.state = stChunkDataEnd
				}
			}
		default:
			i := 0
			for ; i < len(b) && b[i] != '\n'; i++ {
			}
			c.addToLine(b[:i])
			if i == len(b) {
				return
			}
			b = b[i+1:]
			c.endLine()
		}
	}
}

func (c *framingConn) addToLine(b []byte) {
	if len(b) == 0 {
		return
	}
	c.lineLen += len(b)
	if room := maxFramingLine - len(c.line); room > 0 {
		c.line = append(c.line, b[:min(room, len(b))]...)
	}
	c.prevCR = b[len(b)-1] == '\r'
}

// endLine handles one line ending in LF.
func (c *framingConn) endLine() {
	if !c.prevCR {
		c.cur.bareLF = true
	}
	line := c.line
	whole := c.lineLen <= maxFramingLine
	if c.prevCR && len(line) > 0 && whole {
		line = line[:len(line)-1]
	}
	empty := c.lineLen == 0 || (c.lineLen == 1 && c.prevCR)
	c.line, c.lineLen, c.prevCR = c.line[:0], 0, false

	switch c.state {
	case stHead:
		switch {
		case empty && !c.started:
			// RFC 9112 section 2.2: a server should ignore empty lines before a request line.
		case empty:
			c.endHead()
		case !c.started:
			c.started = true
		default:
			c.header(line, whole)
		}
	case stChunkSize:
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			c.lost()
			return
		}
		if n == 0 {
			c.state = stTrailers
			return
		}
		c.remain, c.state = n, stChunkData
	case stChunkDataEnd:
		if !empty {
			c.lost()
			return
		}
		c.state = stChunkSize
	case stTrailers:
		if empty {
			c.finish()
			c.state = stHead
		}
	}
}

// header reads one header line of a head; whole is false when the line was
// longer than the scanner keeps. Where the scanner cannot be sure of the
// framing net/http will read, the head is ambiguous: otherwise net/http
// could take a body the scanner reads as heads, and the verdicts of the
// heads hidden in it would go to the requests after it.
func (c *framingConn) header(line []byte, whole bool) {
	if line[0] == ' ' || line[0] == '\t' {
		// A folded line (obs-fold), which net/http joins to the header
		// before it: RFC 9112 section 5.2 lets a server refuse it.
		c.cur.confused = true
		return
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return // net/http refuses it, or its name is too long to frame
	}
	value = bytes.TrimSpace(value)
	name = bytes.TrimSpace(name)
	switch {
	case bytes.EqualFold(name, []byte("Content-Length")):
		c.sawCL = true
		// As net/http reads it (which refuses a sign, a list, an empty
		// value).
		n, err := strconv.ParseUint(string(value), 10, 63)
		if err != nil || !whole {
			c.cur.confused = true
			return
		}
		c.cl = int64(n)
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		c.sawTE = true
		if !whole {
			c.cur.confused = true
			return
		}
		last := value
		if i := bytes.LastIndexByte(value, ','); i >= 0 {
			last = value[i+1:]
		}
		c.chunked = bytes.EqualFold(bytes.TrimSpace(last), []byte("chunked"))
	}
}

// endHead records the verdict of a complete head and moves to its body.
func (c *framingConn) endHead() {
	c.cur.clAndTE = c.sawCL && c.sawTE
	switch {
	case c.cur.confused:
		// A framing the scanner could not read: nothing after it can be
		// framed (the handler refuses the head and closes the connection).
		c.state = stOff
	case c.sawTE && c.chunked:
		c.state = stChunkSize
	case c.sawTE:
		// Not chunked: net/http refuses it; nothing after it can be framed.
		c.state = stOff
	case c.sawCL && c.cl > 0:
		c.remain, c.state = c.cl, stBody
	default:
		c.state = stHead
	}
	c.started, c.sawCL, c.cl, c.sawTE, c.chunked = false, false, 0, false, false
	c.queueVerdict()
}

// queueVerdict queues the head's verdict now: the handler may run before
// the body has been read. Past maxVerdicts the scanner stops for good.
func (c *framingConn) queueVerdict() {
	if len(c.verdicts) >= maxVerdicts {
		c.verdicts[len(c.verdicts)-1].confused = true
		c.state = stOff
		c.cur = framingVerdict{}
		return
	}
	c.verdicts = append(c.verdicts, c.cur)
	c.cur = framingVerdict{}
}

// finish ends a chunked body; a bare LF inside its framing marks the verdict
// already queued for its head.
func (c *framingConn) finish() {
	if c.cur.bareLF && len(c.verdicts) > 0 {
		c.verdicts[len(c.verdicts)-1].bareLF = true
	}
	c.cur = framingVerdict{}
}

func (c *framingConn) lost() {
	if len(c.verdicts) > 0 {
		c.verdicts[len(c.verdicts)-1].confused = true
	}
	c.state = stOff
}
