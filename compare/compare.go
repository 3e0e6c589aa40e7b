package compare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
)

// Response is one backend's answer as the comparison sees it.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Outcome is the verdict of one comparison.
type Outcome uint8

const (
	Match    Outcome = iota // the answers are the same under the rules
	Mismatch                // at least one difference survived the rules
	Error                   // the answers could not be compared; Result.Reason says why
)

func (o Outcome) String() string {
	switch o {
	case Match:
		return "match"
	case Mismatch:
		return "mismatch"
	default:
		return "error"
	}
}

// Kind says how a value differs.
type Kind string

const (
	Changed Kind = "changed" // present in both, different values
	Missing Kind = "missing" // present in old, absent in new
	Extra   Kind = "extra"   // absent in old, present in new
	Type    Kind = "type"    // present in both, different JSON types
)

// Difference is one place where old and new disagree.
type Difference struct {
	// Path is a normalized JSONPath ($['a'][0]) for body differences,
	// "status" for the status code and "header:Name" for a header.
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// Old and New hold the compact JSON text of each side's value; empty
	// when that side has no value there.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// Result is the verdict of one comparison with its explanation.
type Result struct {
	Outcome Outcome
	// Reason is set when Outcome is Error (e.g. "invalid_json", "duplicate_key").
	Reason string
	Diffs  []Difference
}

// Options are compiled comparison rules. The zero value compares exactly.
// TEMPORARY: a minimal placeholder until the compare engine lands.
type Options struct {
	IgnoreHeaders  []string
	CompareHeaders []string
}

// Compare compares old and new under o. A nil o compares exactly.
func (o *Options) Compare(old, new Response) Result {
	var diffs []Difference
	if old.Status != new.Status {
		diffs = append(diffs, Difference{Path: "status", Kind: Changed, Old: fmt.Sprint(old.Status), New: fmt.Sprint(new.Status)})
	}
	if o != nil {
		for _, h := range o.CompareHeaders {
			if a, b := old.Header.Get(h), new.Header.Get(h); a != b {
				diffs = append(diffs, Difference{Path: "header:" + http.CanonicalHeaderKey(h), Kind: Changed, Old: a, New: b})
			}
		}
	}
	if !bytes.Equal(old.Body, new.Body) {
		var a, b any
		da := json.NewDecoder(bytes.NewReader(old.Body))
		da.UseNumber()
		db := json.NewDecoder(bytes.NewReader(new.Body))
		db.UseNumber()
		errA, errB := da.Decode(&a), db.Decode(&b)
		if errA != nil || errB != nil {
			if len(diffs) > 0 {
				return Result{Outcome: Mismatch, Diffs: diffs}
			}
			return Result{Outcome: Error, Reason: "invalid_json"}
		}
		walk("$", a, b, &diffs)
	}
	if len(diffs) > 0 {
		return Result{Outcome: Mismatch, Diffs: diffs}
	}
	return Result{Outcome: Match}
}

func walk(path string, a, b any, out *[]Difference) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			*out = append(*out, Difference{Path: path, Kind: Type, Old: text(a), New: text(b)})
			return
		}
		keys := make([]string, 0, len(av))
		for k := range av {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "['" + strings.ReplaceAll(k, "'", "\\'") + "']"
			if bx, ok := bv[k]; ok {
				walk(p, av[k], bx, out)
			} else {
				*out = append(*out, Difference{Path: p, Kind: Missing, Old: text(av[k])})
			}
		}
		for k, v := range bv {
			if _, ok := av[k]; !ok {
				*out = append(*out, Difference{Path: path + "['" + k + "']", Kind: Extra, New: text(v)})
			}
		}
	case []any:
		bv, ok := b.([]any)
		if !ok {
			*out = append(*out, Difference{Path: path, Kind: Type, Old: text(a), New: text(b)})
			return
		}
		for i := range max(len(av), len(bv)) {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(bv):
				*out = append(*out, Difference{Path: p, Kind: Missing, Old: text(av[i])})
			case i >= len(av):
				*out = append(*out, Difference{Path: p, Kind: Extra, New: text(bv[i])})
			default:
				walk(p, av[i], bv[i], out)
			}
		}
	default:
		if !reflect.DeepEqual(a, b) {
			*out = append(*out, Difference{Path: path, Kind: Changed, Old: text(a), New: text(b)})
		}
	}
}

func text(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
