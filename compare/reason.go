package compare

// Reasons an answer could not be compared. They are metric label values, so
// the set is fixed and small; [Result.Detail] carries the specifics.
const (
	ReasonInvalidJSON  = "invalid_json"  // a JSON body that does not parse
	ReasonDuplicateKey = "duplicate_key" // an object names a member twice
	ReasonInvalidUTF8  = "invalid_utf8"  // bytes or a \u escape that are not UTF-8 text
	ReasonTrailingData = "trailing_data" // something follows the JSON value
	ReasonTooDeep      = "too_deep"      // nesting beyond Limits.MaxDepth
	ReasonTooLarge     = "too_large"     // a decoded body beyond Limits.MaxBodyBytes, or a number's exponent beyond 1,000 digits
	ReasonBadEncoding  = "bad_encoding"  // a Content-Encoding that is corrupt or unsupported
	ReasonPanic        = "panic"         // the comparison panicked (a bug; recovered)
	// ReasonInconsistent means the fast path saw a difference that go-cmp
	// could not find: a bug, reported rather than guessed at.
	ReasonInconsistent = "inconsistent"
)

// Reasons returns every reason a [Result] can carry: the fixed set that
// statistics count without a map and metrics use as label values.
func Reasons() []string {
	return []string{
		ReasonInvalidJSON, ReasonDuplicateKey, ReasonInvalidUTF8, ReasonTrailingData,
		ReasonTooDeep, ReasonTooLarge, ReasonBadEncoding, ReasonPanic, ReasonInconsistent,
	}
}

// failure is why one body could not be compared.
type failure struct {
	reason string
	detail string
}

func (f *failure) Error() string { return f.reason + ": " + f.detail }
