package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5/middleware"
	bolt "go.etcd.io/bbolt"

	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// What the gateway checks before any backend sees a request: the body can be
// read whole and within bounds, the target can be forwarded byte for byte.
// A request that fails gets a 4xx from the gateway itself.

// The reasons a request is refused before any backend sees it.
var (
	errBodyTooLarge     = errors.New("request body too large")
	errBodyRead         = errors.New("request body could not be read")
	errAmbiguousFraming = errors.New("ambiguous request framing (bare LF, or Content-Length with Transfer-Encoding)")
	errBadTarget        = errors.New("the request path has characters that must be percent-encoded (RFC 3986 section 3.3)")
	errNoTunnel         = errors.New("CONNECT asks for a tunnel, and cutover is no tunnel")
	errKeyTooLong       = fmt.Errorf("the resource a write names is longer than the retry queue can index (%d bytes)", maxResourceKey)
)

// maxResourceKey bounds the resource key of a write the secondary gets: the
// queue indexes queued writes by it, in a bbolt key with a length before it
// and the write's order after it.
const maxResourceKey = bolt.MaxKeySize - binary.MaxVarintLen64 - 8

// keyTooLong reports whether ex is a write whose copy the secondary would
// get, with a resource key the queue cannot index: it would be lost on
// the next restart.
func keyTooLong(ex *exchange, r *http.Request) bool {
	return !ex.read && ex.copiesWrite() && len(ex.resourceKey(r)) > maxResourceKey
}

// targetKeptAsSent reports whether the path can be forwarded byte for byte.
// net/url re-escapes a path holding characters RFC 3986 does not allow raw
// (", <, |, spaces, raw UTF-8...), so the backends would get another path
// than the client sent; such a request is refused instead.
func targetKeptAsSent(r *http.Request) bool {
	raw := r.RequestURI
	if raw == "*" {
		// asterisk-form is for OPTIONS only (RFC 9112 section 3.2.4); forwarded,
		// it would become "/%2A".
		return false
	}
	if raw == "" {
		return true
	}
	if i := strings.Index(raw, "://"); i >= 0 && !strings.HasPrefix(raw, "/") {
		// absolute-form: the path starts after the authority
		rest := raw[i+3:]
		j := strings.IndexAny(rest, "/?")
		if j < 0 {
			return true
		}
		raw = rest[j:]
	}
	path, _, _ := strings.Cut(raw, "?")
	return path == "" || path == r.URL.EscapedPath()
}

// bufferBody reads the body of in (a shallow copy of the client's request)
// so it can be sent to both backends, and replaces it with the buffer. A
// body that cannot be read whole is refused before any backend sees it: a
// backend must never get a truncated body it would take for a whole one.
func (p *Proxy) bufferBody(w http.ResponseWriter, in *http.Request, ex *exchange, set *rules.Set) (int, error) {
	if in.Body == nil || in.Body == http.NoBody || in.ContentLength == 0 {
		return 0, nil
	}
	limit := set.Server.MaxRequestBody
	if in.ContentLength > limit {
		return http.StatusRequestEntityTooLarge, errBodyTooLarge
	}
	keep := min(limit, set.Shadow.WriteBuffer)
	body, more, err := readBounded(in.Body, keep, in.ContentLength)
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("%w: %v", errBodyRead, err)
	}
	rest := in.Body
	in.TransferEncoding = nil
	// Reading the body told the client to go on (net/http answers its
	// Expect: 100-continue as the handler reads): the backends get the body
	// with the request, not an Expect of their own, whose 100 the client
	// would get a second time.
	in.Header.Del("Expect")
	if !more {
		ex.body = body
		in.ContentLength = int64(len(body))
		in.Body = io.NopCloser(bytes.NewReader(body))
		return 0, nil
	}
	if keep >= limit {
		return http.StatusRequestEntityTooLarge, errBodyTooLarge
	}
	// Larger than the replay buffer but allowed: it streams to the primary
	// and the secondary cannot get it.
	ex.bodyPartial = true
	// The byte readBounded read past keep goes with it.
	read := body[:keep+1]
	in.Body = io.NopCloser(io.MultiReader(bytes.NewReader(read), http.MaxBytesReader(w, rest, limit-keep-1)))
	return 0, nil
}

// reject answers a request that no backend will see.
func (p *Proxy) reject(w http.ResponseWriter, r *http.Request, ex *exchange, status int, err error) {
	// Debug, not Info: whoever sends bad requests would otherwise choose
	// the log's volume; cutover_requests_refused_total counts them all.
	p.log.Debug("request refused", slog.String(keyRoute, ex.route.Name), slog.String("client", clientIP(r)),
		slog.Int("status", status), slog.String("error", err.Error()))
	p.metrics.refused.WithLabelValues(ex.route.Name, refusedReason(err)).Inc()
	if ex.read {
		// A read that reached no backend is still a read that entered the
		// gateway: it ends so the counts add up, as skipped, since neither
		// backend failed it (an error would count against the new one).
		p.recordRead(ex, stats.Skipped, stats.ReasonRefused, nil)
	}
	w.Header().Set("Connection", "close")
	http.Error(w, http.StatusText(status), status)
}

func refusedReason(err error) string {
	switch {
	case errors.Is(err, errBodyTooLarge):
		return "body_too_large"
	case errors.Is(err, errAmbiguousFraming):
		return "ambiguous_framing"
	case errors.Is(err, errBadTarget), errors.Is(err, errNoTunnel):
		return "bad_target"
	case errors.Is(err, errKeyTooLong):
		return "key_too_long"
	case errors.Is(err, errClosing):
		return "shutting_down"
	case errors.Is(err, errQueuedAhead):
		return "queued_ahead"
	case errors.Is(err, errClientLeft):
		return "client_gone"
	case errors.Is(err, errBodyRead):
		return "body_unreadable"
	}
	// A refusal without its own reason yet: named, not counted as another.
	return "other"
}

// clientIP is the client's address for logs: the one chi's middleware
// found behind trusted proxies, or the peer's.
func clientIP(r *http.Request) string {
	if ip := middleware.GetClientIP(r.Context()); ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// matchPath is the path routes are matched against: decoded, except that
// an escaped slash stays "%2F" inside its segment. "/%6Frders/1" is
// "/orders/1", as RFC 3986 section 6.2.2.2 says and backends read it
// (matched as sent, a write there took the unmatched route's phase and
// never reached the new backend), and the parameter of "/users/a%40b.com"
// is "a@b.com", for overrides and resource keys; "/a%2Fb" is still one
// segment, as Go's ServeMux and most routers read it. The backends get the
// path as sent.
func matchPath(u *url.URL) string {
	if u.RawPath == "" {
		// Path has no escaped slash: one would have kept RawPath.
		return u.Path
	}
	segments := strings.Split(u.RawPath, "/")
	for i, seg := range segments {
		if d, err := url.PathUnescape(seg); err == nil {
			segments[i] = strings.ReplaceAll(d, "/", "%2F")
		}
	}
	return strings.Join(segments, "/")
}
