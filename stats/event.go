package stats

import (
	"net/http"
	"time"

	"github.com/cutover/cutover/compare"
)

// Outcome is how one read ended (DESIGN.md guarantee 8): exactly one per read
// that entered the gateway.
type Outcome string

// The read outcomes.
const (
	Match    Outcome = "match"
	Mismatch Outcome = "mismatch"
	Skipped  Outcome = "skipped"
	Error    Outcome = "error"
	Pending  Outcome = "pending"
	// Transient is a mismatch that went away: re-read from both backends
	// after queue.recheck_after, the answers agreed. The new backend was
	// behind, not wrong.
	Transient Outcome = "transient"
)

// Reasons for Skipped and Error. The set is fixed: reasons are metric label
// values.
const (
	ReasonPhase         = "phase"          // skipped: the phase does not compare reads
	ReasonSampledOut    = "sampled_out"    // skipped: not in the route's sample
	ReasonTooLarge      = "too_large"      // skipped: an answer exceeded shadow.max_body
	ReasonBusy          = "busy"           // skipped: every shadow worker was busy
	ReasonSecondarySlow = "secondary_slow" // skipped: the route's reads waiting on the secondary had reached shadow.lag_factor times its requests in flight, past the global bound
	ReasonQueued        = "queued"         // skipped (a write's answers): its copy waits in the queue behind earlier writes of its resource
	ReasonBreakerOpen   = "breaker_open"   // skipped: the secondary's breaker is open
	ReasonClientGone    = "client_gone"    // skipped: the client went away before its answer was written
	ReasonRefused       = "refused"        // skipped: the gateway refused the request before any backend saw it
	ReasonShutdown      = "shutdown"       // skipped: the gateway stopped before the comparison ran
	ReasonUpgrade       = "upgrade"        // skipped: a protocol switch (WebSocket) cannot be shadowed
	ReasonStream        = "stream"         // skipped: the primary answered a text/event-stream
	ReasonNoise         = "noise"          // match: every difference also showed between old and backends.noise

	ReasonPrimaryFailed   = "primary_failed"   // error: no answer from the primary
	ReasonSecondaryFailed = "secondary_failed" // error: no answer from the secondary
	// Error outcomes from the compare engine carry its own reason
	// (invalid_json, duplicate_key, ...), prefixed by nothing.
)

// Request is what a sample keeps of the request that produced it. Headers are
// redacted before they reach the store.
type Request struct {
	Method string      `json:"method"`
	Target string      `json:"target"` // path and raw query, as received
	Header http.Header `json:"header,omitempty"`
}

// ReadEvent is one read's outcome, or one write whose two answers were
// compared (Write set).
type ReadEvent struct {
	Route string
	// Override is the name of the override that chose the phase, or "".
	Override string
	Phase    string
	Outcome  Outcome
	Reason   string
	// Write marks the comparison of a write's two answers, kept apart from
	// reads.
	Write bool
	// Latencies of the two legs; zero when a leg did not run.
	OldLatency, NewLatency time.Duration
	// Primary is "old" or "new".
	Primary string
	At      time.Time

	// Set for comparisons (match and mismatch): the differences and, for
	// mismatches, both answers to keep as a sample.
	Result  *compare.Result
	Request *Request
	Old     *compare.Response
	New     *compare.Response

	// Noise is the comparison of old with a second old instance
	// (backends.noise) for the same request, when one is configured: what
	// differs there is noise, not a migration difference.
	Noise *compare.Result
}

// WriteOutcome is how one secondary write ended, in the words of the
// cutover_secondary_writes_total metric.
type WriteOutcome string

// The secondary write outcomes.
const (
	WriteOK        WriteOutcome = "ok"         // the first attempt landed
	WriteFailed    WriteOutcome = "failed"     // the first attempt failed; the write was queued for retry
	WriteRetriedOK WriteOutcome = "retried_ok" // a retry landed
	WriteGaveUp    WriteOutcome = "gave_up"    // retries stopped; the write is kept for inspection
)

// WriteEvent is one secondary write's outcome.
type WriteEvent struct {
	Route    string
	Override string
	Outcome  WriteOutcome
	Reason   string
	At       time.Time
	// Recorded is when the write entered the gateway (zero: unknown). The
	// outcomes of a write recorded before its route's evidence was reset
	// belong to the evidence before it, and are not counted in it.
	Recorded time.Time
}
