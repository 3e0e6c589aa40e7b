package gateway

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// secondaryClient sends a backend, as secondary, its copies of reads and its
// queued writes. Each exchange is bounded by the backend's own timeout (and
// by the request context's deadline, when earlier), and an answer's body
// reports the backend's own time (see backendTime).
type secondaryClient interface {
	http.RoundTripper
	CloseIdleConnections()
	// closeExpired closes the idle connections kept longer than allowed.
	closeExpired()
	// close closes the idle connections for good, when the gateway closes,
	// after its stop context ended (h1Client waits for that context's cut
	// of the exchanges in flight).
	close()
}

// newSecondaryClient returns the client for one backend as secondary: h1Client
// for http:// backends, net/http's Transport for https:// ones. stop is the
// context the gateway's copies carry (its own stop context): see h1Client's
// stop field.
func newSecondaryClient(stop context.Context, target *url.URL, timeout time.Duration, maxIdle int, idempotencyHeader string) secondaryClient {
	if target.Scheme != "http" {
		return &transportClient{t: newTransport(timeout, maxIdle), timeout: timeout}
	}
	c := newH1Client(target, timeout, maxIdle)
	// replayable looks the name up in the map, where the gateway's
	// Header.Set put it in canonical form.
	c.idempotencyHeader = textproto.CanonicalMIMEHeaderKey(idempotencyHeader)
	c.stop = stop
	c.cutDone = make(chan struct{})
	c.unwatchStop = context.AfterFunc(stop, c.cutWatched)
	return c
}

// newPrimaryClient returns the client for a plain-HTTP backend's reads as
// primary, nil for an https:// backend (its reads take the Transport). Its
// timeout bounds the wait for an answer's head, as the Transport's
// ResponseHeaderTimeout does: a long answer streams for as long as the
// client reads it.
func newPrimaryClient(target *url.URL, timeout time.Duration, maxIdle int) *h1Client {
	if target.Scheme != "http" {
		return nil
	}
	c := newH1Client(target, timeout, maxIdle)
	c.headOnly, c.maxHead = true, maxPrimaryHead
	return c
}

func newH1Client(target *url.URL, timeout time.Duration, maxIdle int) *h1Client {
	port := target.Port()
	if port == "" {
		port = "80"
	}
	return &h1Client{
		addr:        net.JoinHostPort(target.Hostname(), port),
		dial:        dialBackend,
		timeout:     timeout,
		maxIdle:     maxIdle,
		idleTimeout: idleConnTimeout,
		maxHead:     maxAnswerHead,
		now:         time.Now,
	}
}

// h1Client speaks HTTP/1.1 to one plain-HTTP backend on connections it pools
// itself, and does each exchange on the caller's goroutine. net/http's
// Transport keeps two goroutines per connection (a reader and a writer) and
// hands every request across both; with a slow secondary, hundreds of
// shadowed reads in flight meant three goroutine stacks each, plus two per
// idle connection, for the garbage collector to scan, and those long scans
// set the client's p99 (README, "Performance"). Here a read in flight is one
// goroutine and an idle connection none.
//
// What it keeps of the Transport's behaviour: requests are written by
// net/http (Request.Write, as the Transport does), answers parsed by
// http.ReadResponse (framing, chunked bodies, trailers, HEAD), 1xx answers
// skipped, a connection reused only after its answer was read to the end
// and neither side asked to close it, a request retried once on a new
// connection when a reused one turns out to be closed before any answer
// (only replayable requests, as the Transport), the context's deadline and
// cancellation applied to the connection. The backend's time is measured
// here, from the request flushed to the answer's first byte; no httptrace
// hook is called but Got1xxResponse, through which ReverseProxy passes 1xx
// answers on to the client when the client serves the primary's reads.
type h1Client struct {
	addr    string
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	timeout time.Duration // of one exchange, from dialling to the body's end
	// headOnly: the timeout ends once the answer's head is read, and the
	// body has none; the request's context still cuts it.
	headOnly bool
	maxHead  int64 // bytes of an answer's head (readHead)
	// idempotencyHeader makes a request replayable, as Idempotency-Key does.
	idempotencyHeader string
	maxIdle           int
	idleTimeout       time.Duration
	now               func() time.Time
	writers           sync.Pool // *bufio.Writer, only needed while a request is written
	// stop, when set, is the context every request of a secondary client
	// carries: the gateway's own, which ends at shutdown. An exchange under
	// any other context registers with it (context.AfterFunc) to cut its
	// connection when it ends. Under stop, that was an allocation per
	// exchange, and a thousand registrations in that one context while a
	// slow secondary holds a thousand reads. So the client registers once
	// (cutWatched) and keeps the connections in an exchange under stop in
	// watched, under mu.
	stop        context.Context
	unwatchStop func() bool
	cutDone     chan struct{} // closed when cutWatched has run

	mu      sync.Mutex
	idle    []*h1Conn // least recently used first
	closed  bool      // close ran: nothing is pooled any more
	watched []*h1Conn // in an exchange under stop; see h1Conn.slot
	cut     bool      // stop ended: cutWatched ran, and no exchange under stop starts
}

type h1Conn struct {
	conn net.Conn
	head limitedConn // what br reads through: bounded while a head is read
	// headLeft is what the last head read left of its bound.
	headLeft int64
	br       *bufio.Reader
	idleAt   time.Time
	slot     int // 1 + its index in the client's watched, 0 when not there
}

// limitedConn reads from conn at most n more bytes, or without bound when n
// is negative.
type limitedConn struct {
	conn net.Conn
	n    int64
}

func (l *limitedConn) Read(p []byte) (int, error) {
	if l.n == 0 {
		return 0, errors.New("answer head too large")
	}
	if l.n > 0 && int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.conn.Read(p)
	if l.n > 0 {
		l.n -= int64(n)
	}
	return n, err
}

// errStale marks a reused connection the backend had closed before it
// answered: nothing of an answer was read, so a replayable request may be
// sent again on a new connection.
type errStale struct{ err error }

func (e errStale) Error() string { return "reused connection closed by the backend: " + e.err.Error() }
func (e errStale) Unwrap() error { return e.err }

// longAgo is a deadline that makes every pending read and write fail at once.
var longAgo = time.Unix(1, 0)

// maxAnswerHead bounds an answer's status line and headers (and each 1xx
// answer's): http.ReadResponse has no bound of its own, and a backend that
// streams an endless header must not fill the gateway's memory.
const maxAnswerHead = 1 << 20

// maxPrimaryHead is the bound on the primary's leg: net/http's Transport's
// default, which the client's answers had before reads left it.
const maxPrimaryHead = 10 << 20

// RoundTrip implements http.RoundTripper.
func (c *h1Client) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// One deadline for the whole exchange: dialling, a retry and the body.
	deadline := c.now().Add(c.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fail := func(err error) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		// A retry never takes a pooled connection: it may be as dead as
		// the one that failed.
		pc, reused, err := c.get(ctx, deadline, attempt > 0)
		if err != nil {
			return fail(c.explain(ctx, deadline, err))
		}
		res, err := c.exchange(ctx, pc, req, reused, deadline)
		if err == nil {
			return res, nil
		}
		pc.conn.Close()
		var stale errStale
		if attempt > 0 || !errors.As(err, &stale) || !c.replayable(req) {
			return fail(err)
		}
		if req.GetBody != nil {
			body, berr := req.GetBody()
			if berr != nil {
				return fail(err)
			}
			again := *req
			again.Body = body
			req = &again
		}
	}
}

// explain names the context's end or the exchange's deadline in an error
// they caused (the connection only says "i/o timeout"), so callers can tell
// a shutdown or a timeout from a backend's failure.
func (c *h1Client) explain(ctx context.Context, deadline time.Time, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w: %v", cerr, err)
	}
	if !deadline.IsZero() && !c.now().Before(deadline) {
		return fmt.Errorf("%w: %v", context.DeadlineExceeded, err)
	}
	return err
}

// replayable says whether a request may be sent again after a connection
// failed under it: the Transport's rule (idempotent method or an
// idempotency key, and a body it can produce again), with the gateway's
// own idempotency header counted as a key.
func (c *h1Client) replayable(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	for _, h := range [...]string{"Idempotency-Key", "X-Idempotency-Key", c.idempotencyHeader} {
		if _, ok := req.Header[h]; ok && h != "" {
			return true
		}
	}
	return false
}

// exchange writes req on pc and reads the answer's head. The body is read by
// the caller; closing it hands the connection back.
func (c *h1Client) exchange(ctx context.Context, pc *h1Conn, req *http.Request, reused bool, deadline time.Time) (*http.Response, error) {
	pc.conn.SetDeadline(deadline)
	stop, err := c.watch(ctx, pc)
	if err != nil {
		return nil, err
	}
	fail := func(err error, stale bool) (*http.Response, error) {
		stop.end()
		err = c.explain(ctx, deadline, err)
		if stale && reused && ctx.Err() == nil {
			return nil, errStale{err}
		}
		return nil, err
	}
	bw, _ := c.writers.Get().(*bufio.Writer)
	if bw == nil {
		bw = bufio.NewWriterSize(pc.conn, 4<<10)
	} else {
		bw.Reset(pc.conn)
	}
	werr := req.Write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	bw.Reset(nil)
	c.writers.Put(bw)
	if werr != nil {
		// A backend may answer (413, 401...) and close before reading the
		// whole request: that answer is the backend's, not a failure to
		// reach it. Look for it briefly; without one the write failed.
		if ctx.Err() == nil {
			pc.conn.SetReadDeadline(earliest(deadline, c.now().Add(50*time.Millisecond)))
			if res, err := pc.readHead(req, c.maxHead); err == nil && res.StatusCode >= 200 {
				res.Body = &h1Body{body: res.Body, pc: pc, c: c, ctx: ctx, deadline: c.bodyDeadline(ctx, pc, deadline, true), stop: stop, keep: false}
				return res, nil
			}
		}
		return fail(werr, true)
	}
	wrote := c.now()
	if _, err := pc.br.Peek(1); err != nil {
		return fail(err, errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
	}
	first := c.now()
	// Every head of the answer counts against one bound, 1xx ones
	// included, unless they go on to the client (as net/http's Transport
	// does): a backend streaming 100 Continue heads would keep the
	// exchange parsing until its timeout.
	limit := c.maxHead
	for {
		res, err := pc.readHead(req, limit)
		if err != nil {
			return fail(err, false)
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return fail(errors.New("the backend switched protocols on a shadowed request"), false)
		case res.StatusCode < 200:
			// 100 Continue, 103 Early Hints: the answer follows. On the
			// client's path ReverseProxy's trace hook passes them on.
			limit = pc.headLeft
			if trace := httptrace.ContextClientTrace(ctx); trace != nil && trace.Got1xxResponse != nil {
				if err := trace.Got1xxResponse(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
					return fail(err, false)
				}
				limit = c.maxHead
			}
			continue
		}
		res.Body = &h1Body{body: res.Body, pc: pc, c: c, ctx: ctx, deadline: c.bodyDeadline(ctx, pc, deadline, false), stop: stop,
			keep: !res.Close && !req.Close, took: first.Sub(wrote), timed: true}
		return res, nil
	}
}

// bodyDeadline is the deadline an answer's body is read under once its
// head is in, the exchange's or none for a headOnly client, and sets it on
// pc when it differs from the one set (reset: the head was looked for
// under a shorter one).
func (c *h1Client) bodyDeadline(ctx context.Context, pc *h1Conn, deadline time.Time, reset bool) time.Time {
	if c.headOnly {
		deadline, reset = time.Time{}, true
	}
	if reset {
		pc.conn.SetDeadline(deadline)
		if ctx.Err() != nil {
			// The context's cut came before the line above undid it: it
			// stands.
			pc.conn.SetDeadline(longAgo)
		}
	}
	return deadline
}

// readHead reads an answer's status line and headers, at most max bytes of
// them; its body is bounded by whoever reads it (shadow.max_body).
func (pc *h1Conn) readHead(req *http.Request, max int64) (*http.Response, error) {
	pc.head.n = max
	res, err := http.ReadResponse(pc.br, req)
	if err != nil && pc.head.n == 0 {
		err = fmt.Errorf("answer head larger than %d bytes", max)
	}
	pc.headLeft, pc.head.n = pc.head.n, -1
	return res, err
}

// watch is what ends an exchange when its context does: a registration
// with the context, or for one under the client's stop, the connection's
// place among the watched.
type watch struct {
	stop func() bool // context.AfterFunc's, when not under the client's stop
	c    *h1Client
	pc   *h1Conn
}

// end undoes the watch. It reports false when the context already cut the
// connection.
func (w watch) end() bool {
	if w.stop != nil {
		return w.stop()
	}
	return w.c.unwatch(w.pc)
}

// watch makes ctx's end cut pc's exchange: pending reads and writes fail at
// once. Under the client's stop, an exchange starting after the cut fails
// at once; one starting between stop's end and the cut is cut with the
// others. After close (which stops watching stop), an exchange under stop
// registers with it as any other.
func (c *h1Client) watch(ctx context.Context, pc *h1Conn) (watch, error) {
	if c.stop != nil && ctx == c.stop {
		c.mu.Lock()
		switch {
		case c.cut:
			c.mu.Unlock()
			return watch{}, cmp.Or(ctx.Err(), context.Canceled)
		case !c.closed:
			c.watched = append(c.watched, pc)
			pc.slot = len(c.watched)
			c.mu.Unlock()
			return watch{c: c, pc: pc}, nil
		}
		c.mu.Unlock()
	}
	return watch{stop: context.AfterFunc(ctx, func() { pc.conn.SetDeadline(longAgo) })}, nil
}

// unwatch takes pc out of the watched; false when cutWatched cut it.
func (c *h1Client) unwatch(pc *h1Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pc.slot == 0 {
		return false
	}
	i, last := pc.slot-1, len(c.watched)-1
	c.watched[i] = c.watched[last]
	c.watched[i].slot = i + 1
	c.watched[last] = nil
	c.watched = c.watched[:last]
	pc.slot = 0
	return true
}

// cutWatched runs when the client's stop ends: it cuts every exchange
// under it, and no later one starts.
func (c *h1Client) cutWatched() {
	defer close(c.cutDone)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = true
	for _, pc := range c.watched {
		pc.conn.SetDeadline(longAgo)
		pc.slot = 0
	}
	clear(c.watched)
	c.watched = nil
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// h1Body hands its connection back to the pool when it is closed after
// being read to the end; otherwise the connection is closed, so a body left
// unread never holds up the next request. Read and Close are called from
// one goroutine (fetchSecondary, fetchAnswer).
type h1Body struct {
	body     io.ReadCloser
	pc       *h1Conn
	c        *h1Client
	ctx      context.Context
	deadline time.Time
	stop     watch
	keep     bool
	eof      bool
	closed   bool
	took     time.Duration // from the request flushed to the answer's first byte
	timed    bool          // took is known: not for an answer read after a failed write
}

func (b *h1Body) backendTime() (time.Duration, bool) { return b.took, b.timed }

func (b *h1Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read on a closed body")
	}
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		err = b.c.explain(b.ctx, b.deadline, err)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	// stop reports false when the context already cut the connection.
	// Bytes left in the buffer after the answer's end (an unasked answer,
	// a body on a HEAD or 304) would be read as the next request's answer.
	if b.stop.end() && b.eof && b.keep && b.pc.br.Buffered() == 0 {
		b.c.put(b.pc)
		return nil
	}
	// Never the inner body's Close: for an answer read by ReadResponse it
	// reads what is left, which may be endless.
	return b.pc.conn.Close()
}

// get returns an idle connection that is still open, or dials one (always
// when fresh is set) within the exchange's deadline.
func (c *h1Client) get(ctx context.Context, deadline time.Time, fresh bool) (*h1Conn, bool, error) {
	now := c.now()
	c.mu.Lock()
	for !fresh && len(c.idle) > 0 {
		last := len(c.idle) - 1
		pc := c.idle[last]
		c.idle[last] = nil
		c.idle = c.idle[:last]
		c.mu.Unlock()
		if now.Sub(pc.idleAt) < c.idleTimeout && pc.br.Buffered() == 0 && stillOpen(pc.conn) {
			return pc, true, nil
		}
		pc.conn.Close()
		c.mu.Lock()
	}
	c.mu.Unlock()
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := c.dial(dctx, "tcp", c.addr)
	if err != nil {
		return nil, false, err
	}
	pc := &h1Conn{conn: conn, head: limitedConn{conn: conn, n: -1}}
	pc.br = bufio.NewReaderSize(&pc.head, 4<<10)
	return pc, false, nil
}

// put keeps a connection for the next request. The pool is bounded; the
// oldest connection goes when it is full or has been idle too long.
func (c *h1Client) put(pc *h1Conn) {
	pc.conn.SetDeadline(time.Time{})
	pc.idleAt = c.now()
	c.mu.Lock()
	if c.closed {
		// An answer still streaming when the gateway closed.
		c.mu.Unlock()
		pc.conn.Close()
		return
	}
	drop := c.evictLocked(pc.idleAt, c.maxIdle-1)
	c.idle = append(c.idle, pc)
	c.mu.Unlock()
	closeConns(drop)
}

// evictLocked takes out of the pool, oldest first, the connections idle
// too long at now and those beyond keep, for the caller to close outside
// the lock.
func (c *h1Client) evictLocked(now time.Time, keep int) []*h1Conn {
	var drop []*h1Conn
	for len(c.idle) > 0 && (len(c.idle) > keep || now.Sub(c.idle[0].idleAt) >= c.idleTimeout) {
		drop = append(drop, c.idle[0])
		c.idle[0] = nil
		c.idle = c.idle[1:]
	}
	return drop
}

func closeConns(conns []*h1Conn) {
	for _, pc := range conns {
		pc.conn.Close()
	}
}

// closeExpired closes the pooled connections idle for the idle timeout or
// longer: the oldest are first in the pool.
func (c *h1Client) closeExpired() {
	now := c.now()
	c.mu.Lock()
	drop := c.evictLocked(now, c.maxIdle)
	c.mu.Unlock()
	closeConns(drop)
}

// close closes every pooled connection, and from then on those handed back
// too: an answer may still stream to a client when the gateway closes. The
// gateway calls it once stop has ended, and it waits for cutWatched to be
// done. Called while stop goes on, it stops watching stop: an exchange
// under stop still in flight would then no longer be cut when stop ends
// (a later one registers with stop itself).
func (c *h1Client) close() {
	c.mu.Lock()
	again := c.closed
	c.closed = true
	c.mu.Unlock()
	if c.unwatchStop != nil && !again && !c.unwatchStop() {
		// stop ended and cutWatched runs: it is the client's to wait for.
		<-c.cutDone
	}
	c.CloseIdleConnections()
}

// CloseIdleConnections closes every pooled connection.
func (c *h1Client) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	closeConns(idle)
}

// transportClient is net/http's Transport with the backend's timeout
// applied to each exchange, for https:// backends.
type transportClient struct {
	t       *http.Transport
	timeout time.Duration
}

func (c *transportClient) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), c.timeout)
	timer := newLegTimer(time.Now)
	res, err := c.t.RoundTrip(req.WithContext(timer.context(ctx)))
	if err != nil {
		cancel()
		return nil, err
	}
	res.Body = &timedBody{ReadCloser: res.Body, cancel: cancel, timer: timer}
	return res, nil
}

func (c *transportClient) CloseIdleConnections() { c.t.CloseIdleConnections() }

// close implements secondaryClient: the Transport has no state to end
// beyond its idle connections.
func (c *transportClient) close() { c.t.CloseIdleConnections() }

// closeExpired is the Transport's own business (IdleConnTimeout).
func (c *transportClient) closeExpired() {}

// timedBody ends its exchange's timeout when closed and reports the
// backend's time as httptrace saw it.
type timedBody struct {
	io.ReadCloser
	cancel context.CancelFunc
	timer  *legTimer
}

func (b *timedBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func (b *timedBody) backendTime() (time.Duration, bool) {
	d := b.timer.latency(-1)
	return d, d >= 0
}

// backendTime returns the backend's own time for an answer from a
// secondaryClient, from its request written to its first byte, or fallback.
func backendTime(res *http.Response, fallback time.Duration) time.Duration {
	if t, ok := res.Body.(interface{ backendTime() (time.Duration, bool) }); ok {
		if d, ok := t.backendTime(); ok {
			return d
		}
	}
	return fallback
}
