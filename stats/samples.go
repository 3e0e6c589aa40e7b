package stats

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cutover/cutover/compare"
)

// SampleOptions bound what the store keeps of mismatches. Every zero value
// means the default in parentheses.
type SampleOptions struct {
	// MaxGroups caps the difference shapes kept per route (20); mismatches of
	// further shapes are counted in DiffsView.OverflowGroups.
	MaxGroups int
	// PerGroup caps the samples kept per shape, newest first (3).
	PerGroup int
	// Refresh is how long a full group keeps its samples before a newer
	// mismatch may replace the oldest (1 min): it bounds the redaction and
	// copying work of a mismatch storm to a few samples per minute.
	Refresh time.Duration
	// MaxBody caps the bytes kept of each body (16 KiB).
	MaxBody int
	// MaxDiffs caps the differences kept per sample (50) and MaxValue the
	// bytes of each old/new value (1 KiB).
	MaxDiffs int
	MaxValue int
}

func (o *SampleOptions) defaults() {
	if o.MaxGroups <= 0 {
		o.MaxGroups = 20
	}
	if o.PerGroup <= 0 {
		o.PerGroup = 3
	}
	if o.Refresh <= 0 {
		o.Refresh = time.Minute
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 16 << 10
	}
	if o.MaxDiffs <= 0 {
		o.MaxDiffs = 50
	}
	if o.MaxValue <= 0 {
		o.MaxValue = 1 << 10
	}
}

// Sample is one mismatch as kept: redacted before it was stored.
type Sample struct {
	At       time.Time `json:"at"`
	Override string    `json:"override,omitempty"`
	Phase    string    `json:"phase,omitempty"`
	Primary  string    `json:"primary,omitempty"`
	// Write marks the comparison of a write's two answers.
	Write   bool                 `json:"write,omitempty"`
	Request Request              `json:"request"`
	Old     SampleAnswer         `json:"old"`
	New     SampleAnswer         `json:"new"`
	Diffs   []compare.Difference `json:"diffs"`
	// DiffsOmitted counts differences beyond SampleOptions.MaxDiffs.
	DiffsOmitted int `json:"diffs_omitted,omitempty"`
}

// SampleAnswer is one backend's answer in a sample.
type SampleAnswer struct {
	Status int         `json:"status"`
	Header http.Header `json:"header,omitempty"`
	// Body is the (redacted) body, cut at MaxBody bytes on a UTF-8 boundary.
	Body      string `json:"body"`
	Size      int    `json:"size"`
	Truncated bool   `json:"truncated,omitempty"`
	// Withheld is set when redaction paths are configured but the body is not
	// JSON, so it could not be redacted and was not kept.
	Withheld bool `json:"withheld,omitempty"`
}

// PathKind is one folded path of a difference shape and how it differs.
type PathKind struct {
	Path string       `json:"path"`
	Kind compare.Kind `json:"kind"`
}

// Group is the mismatches of one route that share a difference shape: the
// same folded paths with the same kinds.
type Group struct {
	Fingerprint string     `json:"fingerprint"`
	Count       int64      `json:"count"`
	FirstSeen   time.Time  `json:"first_seen"`
	LastSeen    time.Time  `json:"last_seen"`
	Write       bool       `json:"write,omitempty"`
	Paths       []PathKind `json:"paths"`
	// Suggested is a YAML snippet that would silence this shape, for the
	// user to judge: a suggestion, never applied.
	Suggested string `json:"suggested_rule"`
	// Samples, newest first.
	Samples []Sample `json:"samples"`

	unordered []string  // array paths whose elements only moved
	sampledAt time.Time // when the newest sample was taken
}

// shape returns the folded, sorted, de-duplicated difference shape of ds and
// its fingerprint.
func shape(ds []compare.Difference, write bool) ([]PathKind, string) {
	pks := make([]PathKind, 0, len(ds))
	for _, d := range ds {
		pks = append(pks, PathKind{Path: foldPath(d.Path), Kind: d.Kind})
	}
	sort.Slice(pks, func(i, j int) bool {
		if pks[i].Path != pks[j].Path {
			return pks[i].Path < pks[j].Path
		}
		return pks[i].Kind < pks[j].Kind
	})
	pks = slices.Compact(pks)
	h := sha256.New()
	if write {
		h.Write([]byte("write\n"))
	}
	for _, pk := range pks {
		h.Write([]byte(pk.Path))
		h.Write([]byte{0})
		h.Write([]byte(pk.Kind))
		h.Write([]byte{'\n'})
	}
	return pks, hex.EncodeToString(h.Sum(nil)[:6])
}

// movedArrays returns the folded array paths whose differences are only
// changed elements with the same multiset of values on both sides: the
// elements moved, which an unordered rule forgives.
func movedArrays(ds []compare.Difference) []string {
	type bag struct {
		old, new []string
		ok       bool
	}
	bags := map[string]*bag{}
	for _, d := range ds {
		i := strings.LastIndexByte(d.Path, '[')
		if i <= 0 || !strings.HasSuffix(d.Path, "]") || d.Path[i+1] == '\'' {
			continue // not a direct array element
		}
		parent := foldPath(d.Path[:i])
		b := bags[parent]
		if b == nil {
			b = &bag{ok: true}
			bags[parent] = b
		}
		if d.Kind != compare.Changed {
			b.ok = false
		}
		b.old = append(b.old, d.Old)
		b.new = append(b.new, d.New)
	}
	var out []string
	for p, b := range bags {
		if !b.ok || len(b.old) < 2 {
			continue
		}
		slices.Sort(b.old)
		slices.Sort(b.new)
		if slices.Equal(b.old, b.new) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// suggestRule writes a YAML snippet for the route's compare section that
// would silence a shape: unordered for arrays whose elements only moved,
// ignore for body paths, ignore_headers for headers. A status difference
// gets no rule: it is a real difference to fix, and the snippet says so.
func suggestRule(route string, pks []PathKind, unordered []string) string {
	var ignore, headers, notes []string
	covered := func(p string) bool {
		for _, u := range unordered {
			if strings.HasPrefix(p, u+"[*]") {
				return true
			}
		}
		return false
	}
	for _, pk := range pks {
		switch {
		case pk.Path == "status":
			notes = append(notes, "# the status code differs: no rule should hide that; fix the backend")
		case strings.HasPrefix(pk.Path, "header:"):
			headers = append(headers, strings.TrimPrefix(pk.Path, "header:"))
		case covered(pk.Path):
		default:
			ignore = append(ignore, shortPath(pk.Path))
		}
	}
	var b strings.Builder
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	if len(ignore)+len(headers)+len(unordered) == 0 {
		return b.String()
	}
	b.WriteString("routes:\n  - name: " + yamlString(route) + "\n    compare:\n")
	list := func(key string, vs []string) {
		if len(vs) == 0 {
			return
		}
		vs = slices.Compact(vs)
		b.WriteString("      " + key + ":\n")
		for _, v := range vs {
			b.WriteString("        - " + yamlString(v) + "\n")
		}
	}
	short := make([]string, len(unordered))
	for i, u := range unordered {
		short[i] = shortPath(u)
	}
	list("unordered", short)
	list("ignore", ignore)
	list("ignore_headers", headers)
	return b.String()
}

// yamlString quotes s as a YAML double-quoted scalar (a JSON string is one).
func yamlString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// truncate cuts s to at most n bytes on a UTF-8 boundary.
func truncate(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

// buildSample redacts and copies what a mismatch sample keeps. It runs
// outside every lock: redaction may decode both bodies.
func buildSample(ev *ReadEvent, at time.Time, red *redactor, o *SampleOptions) Sample {
	s := Sample{At: at, Override: ev.Override, Phase: ev.Phase, Primary: ev.Primary, Write: ev.Write}
	if ev.Request != nil {
		s.Request = Request{Method: ev.Request.Method, Target: red.target(ev.Request.Target), Header: red.header(ev.Request.Header)}
	}
	var oldB, newB redactedBody
	if ev.Old != nil {
		oldB = red.body(ev.Old.Body)
		s.Old = answer(ev.Old, oldB, red, o)
	}
	if ev.New != nil {
		newB = red.body(ev.New.Body)
		s.New = answer(ev.New, newB, red, o)
	}
	if ev.Result != nil {
		ds := ev.Result.Diffs
		if len(ds) > o.MaxDiffs {
			s.DiffsOmitted = len(ds) - o.MaxDiffs
			ds = ds[:o.MaxDiffs]
		}
		s.Diffs = red.diffs(ds, oldB, newB)
		for i := range s.Diffs {
			s.Diffs[i].Old, _ = truncate(s.Diffs[i].Old, o.MaxValue)
			s.Diffs[i].New, _ = truncate(s.Diffs[i].New, o.MaxValue)
		}
	}
	return s
}

func answer(r *compare.Response, b redactedBody, red *redactor, o *SampleOptions) SampleAnswer {
	a := SampleAnswer{Status: r.Status, Header: red.header(r.Header), Size: len(r.Body), Withheld: b.withheld}
	if !b.withheld {
		a.Body, a.Truncated = truncate(string(b.text), o.MaxBody)
	}
	return a
}
