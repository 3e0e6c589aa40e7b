package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/cutover/cutover/stats"
)

// noise is the optional third backend, a second instance of old
// (backends.noise). What differs between old and noise for the same request
// is noise (timestamps, random ids, replica lag), not a difference the
// migration made: Diffy's idea. Only shadowed reads are sent to it; a write
// would change old's twin behind old's back.
type noise struct {
	target *url.URL
	client secondaryClient // bounded by the noise backend's own timeout
}

func newNoise(stop context.Context, b *rules.Backend, maxIdle int) *noise {
	if b == nil || b.URL == nil {
		return nil
	}
	target := backendTarget(*b)
	// Reads only: no idempotency header makes anything replayable here.
	return &noise{target: target, client: newSecondaryClient(stop, target, b.Timeout, maxIdle, "")}
}

// fetchNoise asks the noise backend the same read, on the shadow worker's
// slot, bounded by the noise backend's own timeout.
func (p *Proxy) fetchNoise(ex *exchange) answer {
	req := p.secondaryRequest(ex.method, p.noise.target, ex.outURL, ex.outHeader, ex.body)
	return fetchAnswer(p.noise.client, req, p.shadowCfg.MaxBody, stats.ReasonSecondaryFailed)
}

// fetchAnswer sends req on rt and reads the whole answer, bounded by max.
// Failures carry failReason; an answer over max is too_large.
func fetchAnswer(rt http.RoundTripper, req *http.Request, max int64, failReason string) answer {
	res, err := rt.RoundTrip(req)
	if err != nil {
		return answer{err: err, reason: failReason}
	}
	defer res.Body.Close()
	body, over, err := readBounded(res.Body, max, res.ContentLength)
	switch {
	case err != nil:
		return answer{err: err, reason: failReason}
	case over:
		return answer{err: errors.New("answer larger than shadow.max_body"), reason: stats.ReasonTooLarge}
	}
	return answer{resp: compare.Response{Status: res.StatusCode, Header: res.Header, Body: body}}
}

// cancelNoise compares old with noise and takes out of res the differences
// at paths where old disagreed with itself on this very request. It returns
// the old-vs-noise result for the statistics' per-field noise rates, and
// whether every difference of res was noise.
func cancelNoise(route *rules.Route, res *compare.Result, old, noise answer) (*compare.Result, bool) {
	if noise.err != nil {
		return nil, false
	}
	nr := route.Compare.Compare(old.resp, noise.resp)
	if res.Outcome != compare.Mismatch || nr.Outcome != compare.Mismatch || !twinOf(&nr) {
		return &nr, false
	}
	real, cancelled := compare.Cancel(res.Diffs, nr.Diffs)
	if len(cancelled) == 0 {
		return &nr, false
	}
	res.Diffs = real
	if len(real) == 0 && res.MoreDiffs == 0 {
		res.Outcome = compare.Match
		return &nr, true
	}
	return &nr, false
}

// twinOf says whether the noise backend answered as old's twin: with old's
// status and a body of old's kind, differing at most field by field. A
// failing twin (a 503 page against old's JSON) differs at "status" and at
// "$"; taken as noise, those would cancel the very differences a new
// backend that lacks the resource shows, and turn them into a match.
func twinOf(nr *compare.Result) bool {
	for _, d := range nr.Diffs {
		if d.Path == "status" || d.Path == "$" {
			return false
		}
	}
	return true
}
