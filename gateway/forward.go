package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cutover/cutover/rules"
)

// dialBackend opens a connection to a backend, for the Transports and
// h1Client alike.
func dialBackend(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return d.DialContext(ctx, network, addr)
}

// idleConnTimeout is how long an idle connection to a backend is kept.
const idleConnTimeout = 90 * time.Second

// newTransport builds a transport for one leg to one backend. Never the
// default transport: it honours HTTP_PROXY, has no response-header timeout
// and keeps 2 idle connections per host (REFERENCE.md).
func newTransport(headerTimeout time.Duration, idlePerHost int) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialBackend,
		MaxIdleConns:          4 * idlePerHost,
		MaxIdleConnsPerHost:   idlePerHost,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		// Bodies pass through as the backend encoded them: the client gets
		// the primary's bytes, and the comparison decodes gzip itself.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
	}
}

// stripH2CUpgrade removes an "Upgrade: h2c" request: ReverseProxy would
// forward it, and a backend that accepts it would switch protocols under the
// proxy (REFERENCE.md).
func stripH2CUpgrade(h http.Header) {
	if isH2CUpgrade(h) {
		h.Del("Upgrade")
		h.Del("Http2-Settings")
	}
}

// isH2CUpgrade reports whether the request's Upgrade names h2c, which
// stripH2CUpgrade removes: no switch can follow.
func isH2CUpgrade(h http.Header) bool { return hasToken(h.Values("Upgrade"), "h2c") }

// isEventStream reports whether an answer is a text/event-stream.
func isEventStream(h http.Header) bool {
	ct, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && ct == "text/event-stream"
}

// no1xx keeps the 1xx answers ReverseProxy passes on from an HTTP/1.0
// client.
type no1xx struct{ http.ResponseWriter }

func (w no1xx) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w no1xx) Flush()                      { http.NewResponseController(w.ResponseWriter).Flush() }
func (w no1xx) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// switcher is the ResponseWriter of an upgrade request: ReverseProxy
// hijacks it only once it accepted the primary's 101 (a 101 it refuses is
// answered 502 on a connection that stays HTTP). Then the connection is
// no request in flight, its framing scanner stops, a write the secondary
// does not get is no longer in flight to its primary, and the bytes the
// client sent after its head, which net/http buffered, go to the backend
// first (ReverseProxy reads the bare net.Conn, golang/go#80875).
type switcher struct {
	http.ResponseWriter
	p   *Proxy
	ex  *exchange
	ctx context.Context
}

func (w switcher) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	stopFraming(w.ctx)
	w.p.endClient(w.ex)
	if w.ex.direct {
		w.ex.direct = false
		w.p.queue.endDirect(w.ex.key, w.ex.primary, false)
	}
	if brw.Reader.Buffered() > 0 {
		c = &bufferedConn{Conn: c, r: brw.Reader}
	}
	return c, brw, nil
}

func (w switcher) Flush()                      { http.NewResponseController(w.ResponseWriter).Flush() }
func (w switcher) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bufferedConn reads what a bufio.Reader holds of a connection first.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// switchRefused says why ReverseProxy will refuse the primary's 101, with
// its checks, byte for byte (handleUpgradeResponse): the protocol switched
// to must be printable ASCII and, folding ASCII case only, the one the
// request asked for. ReverseProxy does not close the backend's connection
// when it refuses (golang/go#80875); once it does, this can go, as
// bufferedConn can.
func switchRefused(res *http.Response) error {
	got, asked := upgradeType(res.Header), upgradeType(res.Request.Header)
	for i := 0; i < len(got); i++ {
		if got[i] < ' ' || got[i] > '~' {
			return fmt.Errorf("the primary switched to the invalid protocol %q", got)
		}
	}
	if !asciiEqualFold(got, asked) {
		return fmt.Errorf("the primary switched to protocol %q when %q was asked for", got, asked)
	}
	return nil
}

// upgradeType is the protocol a message's Upgrade names when its
// Connection has the upgrade token, else "", as ReverseProxy reads it.
func upgradeType(h http.Header) string {
	if !isUpgrade(h) {
		return ""
	}
	return h.Get("Upgrade")
}

// isUpgrade reports whether the message asks to switch protocols (e.g. a
// WebSocket): an Upgrade, and the upgrade token in Connection, read as
// net/http reads tokens (comma separated, optional spaces and tabs, ASCII
// case). Such requests are proxied to the primary and never shadowed.
func isUpgrade(h http.Header) bool {
	return h.Get("Upgrade") != "" && hasToken(h.Values("Connection"), "upgrade")
}

// hasToken reports whether a comma-separated header's values hold token,
// read as net/http reads tokens (optional spaces and tabs, ASCII case).
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for tok := range strings.SplitSeq(v, ",") {
			if asciiEqualFold(strings.Trim(tok, " \t"), token) {
				return true
			}
		}
	}
	return false
}

// asciiEqualFold is strings.EqualFold for ASCII letters only: the Kelvin
// sign is not a K in a protocol name.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// trustedPrefixes says whose X-Forwarded-* headers are kept; everyone
// else's are replaced (a client must not choose the address a backend sees).
type trustedPrefixes []netip.Prefix

func (t trustedPrefixes) trusts(remoteAddr string) bool {
	if len(t) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	for _, p := range t {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// rewrite prepares the primary's outbound request: the backend's URL, the
// forwarding headers and the idempotency key. The secondary copy is cloned
// from the result, so both backends get the same headers.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest, ex *exchange) {
	pr.SetURL(ex.target)
	// ReverseProxy re-encodes a query it cannot parse (";" separators) and
	// drops the parameters it could not read (Go issue 54663); the backends
	// must get the query the client sent, byte for byte.
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	if p.trusted.trusts(pr.In.RemoteAddr) {
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
			if v, ok := pr.In.Header[h]; ok {
				pr.Out.Header[h] = v
			}
		}
		prior := pr.Out.Header.Get("X-Forwarded-Proto")
		host := pr.Out.Header.Get("X-Forwarded-Host")
		pr.SetXForwarded()
		if prior != "" {
			pr.Out.Header.Set("X-Forwarded-Proto", prior)
		}
		if host != "" {
			pr.Out.Header.Set("X-Forwarded-Host", host)
		}
	} else {
		pr.SetXForwarded()
	}
	stripH2CUpgrade(pr.Out.Header)
	if !pr.In.ProtoAtLeast(1, 1) {
		// RFC 9110 section 7.8: ignored; ReverseProxy put it back.
		pr.Out.Header.Del("Upgrade")
		pr.Out.Header.Del("Connection")
	}
	if ex.idempotencyKey != "" {
		pr.Out.Header.Set(p.shadowCfg.IdempotencyHeader, ex.idempotencyKey)
	}
	if _, ok := pr.Out.Header["User-Agent"]; !ok {
		// As ReverseProxy does: no Go default User-Agent on either copy.
		pr.Out.Header.Set("User-Agent", "")
	}
	ex.outHeader = pr.Out.Header
	ex.outURL = pr.Out.URL
	if ex.shadow != nil {
		p.startShadow(ex)
	}
}

// secondaryRequest builds the secondary's copy of a request from the
// primary's outbound header: same method, path, query, headers and body, plus
// the marker header, aimed at the other backend, under the gateway's stop
// context.
func (p *Proxy) secondaryRequest(method string, target, u *url.URL, header http.Header, body []byte) *http.Request {
	out := *u
	out.Scheme, out.Host = target.Scheme, target.Host
	if target.Path != "" || target.RawPath != "" {
		out.Path = singleJoin(target.Path, u.Path)
		out.RawPath = ""
		if target.RawPath != "" || u.RawPath != "" {
			out.RawPath = singleJoin(target.EscapedPath(), u.EscapedPath())
		}
	}
	h := cloneWith(header, p.marker, "1")
	req := &http.Request{
		Method:        method,
		URL:           &out,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Host:          out.Host,
		ContentLength: int64(len(body)),
		Body:          http.NoBody,
	}
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	return req.WithContext(p.stop)
}

// cloneWith is header.Clone() with key (canonical) set to value: the clone
// is sized for it and its value shares the other values' array. Header.Set
// on a clone allocated the value apart, and one more map group once the
// header had 8 keys: per copy sent, and kept by every read waiting on the
// secondary (BenchmarkCollectionWithReadsWaiting).
func cloneWith(header http.Header, key, value string) http.Header {
	n := 1
	for _, vv := range header {
		n += len(vv)
	}
	values := make([]string, n)
	h := make(http.Header, len(header)+1)
	for k, vv := range header {
		if vv == nil {
			// As Clone: a nil value stays nil (ReverseProxy's way of
			// keeping a header out).
			h[k] = nil
			continue
		}
		n := copy(values, vv)
		h[k] = values[:n:n]
		values = values[n:]
	}
	values[0] = value
	h[key] = values[:1:1]
	return h
}

// singleJoin joins a backend path prefix and a request path as
// ReverseProxy.SetURL does.
func singleJoin(a, b string) string {
	as, bs := strings.HasSuffix(a, "/"), strings.HasPrefix(b, "/")
	switch {
	case as && bs:
		return a + b[1:]
	case !as && !bs:
		return a + "/" + b
	}
	return a + b
}

// readBounded reads at most limit bytes of r. It reports whether r held more
// (the rest is left unread), and passes read errors through. To know that r
// held more it read one byte past the limit: that byte is body[:limit+1][limit],
// and a caller that goes on reading r must take it first.
func readBounded(r io.Reader, limit int64, sizeHint int64) ([]byte, bool, error) {
	return readBoundedInto(nil, r, limit, sizeHint)
}

// readBoundedInto is readBounded reading into buf when it has room (a
// pooled buffer), growing it when it does not.
func readBoundedInto(buf []byte, r io.Reader, limit int64, sizeHint int64) ([]byte, bool, error) {
	switch {
	case sizeHint >= 0 && sizeHint <= limit:
		// Room for one byte more than the declared length: the read
		// that finds the end needs it, and so does telling a body of
		// exactly limit bytes from a longer one.
		if int64(cap(buf)) < sizeHint+1 {
			buf = make([]byte, 0, sizeHint+1)
		}
	case cap(buf) == 0:
		buf = make([]byte, 0, min(limit+1, unknownLengthStart))
	}
	for int64(len(buf)) <= limit {
		if len(buf) == cap(buf) {
			// Doubling, up to the limit and the byte past it.
			buf = slices.Grow(buf, int(min(int64(cap(buf)), limit+1-int64(len(buf)))))
		}
		room := min(int64(cap(buf)), limit+1)
		m, err := r.Read(buf[len(buf):room])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			// The byte past the limit may come with the end (net/http's
			// bodies report EOF with their last bytes).
			if int64(len(buf)) > limit {
				return buf[:limit], true, nil
			}
			return buf, false, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
	return buf[:limit], true, nil
}

// unknownLengthStart is the first room given to a body of unknown length
// read without a buffer: it grows by doubling from there.
const unknownLengthStart = 4 << 10

// errClosing refuses a write that arrives once the gateway is closing,
// before the primary gets it.
var errClosing = errors.New("the gateway is shutting down")

// statusClientGone is nginx's "client closed request": what the gateway
// records as the answer of a request whose client left.
const statusClientGone = 499

// errorStatus is the one place a primary failure becomes a status: 504 when
// the backend took too long, 499 (nginx's "client closed request") when the
// client went away, 502 otherwise.
func errorStatus(ctx context.Context, err error) int {
	var ne net.Error
	switch {
	case ctx.Err() == context.Canceled || errors.Is(err, context.Canceled):
		return statusClientGone
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

// backendTarget is a backend URL as the proxy aims requests at it.
func backendTarget(b rules.Backend) *url.URL {
	u := *b.URL
	return &u
}
