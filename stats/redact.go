package stats

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
	"github.com/theory/jsonpath"
	"github.com/theory/jsonpath/spec"
)

// DefaultRedactedHeaders are always redacted unless explicitly narrowed with
// RedactOptions.Unredact (which logs a warning).
var defaultRedactedHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"}

// DefaultRedactedHeaders returns the headers redacted by default.
func DefaultRedactedHeaders() []string { return append([]string(nil), defaultRedactedHeaders...) }

// RedactOptions say what must never be stored in clear.
type RedactOptions struct {
	// Headers are redacted in addition to the default list.
	Headers []string
	// Unredact removes names from the default list. It exists for the rare
	// header that is known harmless; every use is logged as a warning.
	Unredact []string
	// Paths are JSONPath expressions (RFC 9535) whose values are redacted in
	// both bodies and in the differences.
	Paths []string
	// Query names query parameters whose values are masked in stored
	// request targets.
	Query []string
	// Key keys the hash that replaces a redacted value. Nil picks a random
	// key per process: hashes then compare old with new within one sample,
	// and nothing written to disk helps guess a secret.
	Key []byte
}

// redactor applies RedactOptions. It is immutable once built.
type redactor struct {
	headers map[string]bool // canonical names
	paths   []*jsonpath.Path
	query   []string
	key     []byte
}

func newRedactor(o RedactOptions, log *slog.Logger) (*redactor, error) {
	r := &redactor{headers: map[string]bool{}, key: o.Key, query: o.Query}
	for _, h := range defaultRedactedHeaders {
		r.headers[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range o.Headers {
		r.headers[http.CanonicalHeaderKey(h)] = true
	}
	for _, h := range o.Unredact {
		h = http.CanonicalHeaderKey(h)
		if r.headers[h] {
			log.Warn("a header is no longer redacted in mismatch samples: its values will be stored and shown in clear", "header", h)
			delete(r.headers, h)
		}
	}
	for _, p := range o.Paths {
		jp, err := jsonpath.Parse(p)
		if err != nil {
			return nil, fmt.Errorf("redact path %q: %w", p, err)
		}
		r.paths = append(r.paths, jp)
	}
	if r.key == nil {
		r.key = make([]byte, 32)
		if _, err := rand.Read(r.key); err != nil {
			return nil, fmt.Errorf("redaction key: %w", err)
		}
	}
	return r, nil
}

// value replaces a secret by a keyed hash prefix, so that two equal secrets
// show the same mark and two different ones different marks.
// target masks the configured query parameters of a request target.
func (r *redactor) target(t string) string { return rules.RedactQuery(t, r.query) }

func (r *redactor) value(v string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(v))
	return redactedMark + hex.EncodeToString(m.Sum(nil)[:4]) + "]"
}

// redactedMark begins every redacted value.
const redactedMark = "[redacted "

var errTrailingData = errors.New("data after the JSON document")

// header returns a redacted copy of h.
func (r *redactor) header(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		cp := make([]string, len(vs))
		for i, v := range vs {
			if r.headers[ck] {
				v = r.value(v)
			}
			cp[i] = v
		}
		out[k] = cp
	}
	return out
}

// redactedBody is one body after redaction: its decoded form (nil when it is
// not JSON or no path is configured) and the places that were redacted.
type redactedBody struct {
	text   []byte
	places []spec.NormalizedPath
	// secrets are the texts of the values redacted at places (a string's
	// content too), for diffs whose path does not say they hold one.
	secrets []string
	// withheld is set when paths are configured but the body could not be
	// parsed, so redaction could not be applied: the body is not kept.
	withheld bool
}

func (r *redactor) body(b []byte) redactedBody {
	if len(r.paths) == 0 || len(bytes.TrimSpace(b)) == 0 {
		return redactedBody{text: b}
	}
	tree, err := decodeJSON(b)
	if err != nil {
		return redactedBody{withheld: true}
	}
	var places []spec.NormalizedPath
	for _, p := range r.paths {
		for _, n := range p.SelectLocated(tree) {
			places = append(places, n.Path)
		}
	}
	if len(places) == 0 {
		return redactedBody{text: b}
	}
	var secrets []string
	keep := func(s string) {
		if len(s) >= minSecret {
			secrets = append(secrets, s)
		}
	}
	for _, np := range places {
		tree = replaceAt(tree, np, func(v any) any {
			c := compact(v)
			keep(c)
			if s, ok := v.(string); ok {
				keep(s)
				keep(strings.Trim(c, `"`)) // as escaped in JSON text
			}
			return r.value(c)
		})
	}
	text, err := json.Marshal(tree)
	if err != nil {
		return redactedBody{withheld: true}
	}
	return redactedBody{text: text, places: places, secrets: secrets}
}

// minSecret is the shortest redacted value looked for in a difference's
// text: a shorter one (true, 42) would redact most differences.
const minSecret = 4

// diffs redacts the values of differences that touch a redacted place: a
// header in the list, a redacted path, or an ancestor of one (whose value
// text contains the secret), and of any difference whose text holds a
// value redacted in either body. A difference's path is in new's terms
// (after renames) and, in an unordered array, at old's index: its path
// alone does not always say. A redacted value is the keyed hash of the
// difference's own text, so old and new still show whether they differ.
func (r *redactor) diffs(ds []compare.Difference, old, new redactedBody) []compare.Difference {
	out := make([]compare.Difference, len(ds))
	for i, d := range ds {
		if name, ok := strings.CutPrefix(d.Path, "header:"); ok {
			if r.headers[http.CanonicalHeaderKey(name)] {
				d.Old, d.New = r.maybe(d.Old), r.maybe(d.New)
			}
			out[i] = d
			continue
		}
		if d.Path == "status" {
			out[i] = d // status codes, not a body's values
			continue
		}
		if old.withheld || new.withheld {
			d.Old, d.New = r.maybe(d.Old), r.maybe(d.New)
			out[i] = d
			continue
		}
		if len(old.places) == 0 && len(new.places) == 0 {
			out[i] = d
			continue
		}
		np, ok := parseNormalized(d.Path)
		if !ok {
			// A path we cannot place: be safe rather than sorry.
			d.Old, d.New = r.maybe(d.Old), r.maybe(d.New)
			out[i] = d
			continue
		}
		if touches(np, old.places) || touches(np, new.places) {
			d.Old, d.New = r.jsonValue(d.Old), r.jsonValue(d.New)
		}
		if holdsSecret(d.Old, old, new) {
			d.Old = r.jsonValue(d.Old)
		}
		if holdsSecret(d.New, old, new) {
			d.New = r.jsonValue(d.New)
		}
		out[i] = d
	}
	return out
}

// holdsSecret reports whether a difference's text holds a value redacted
// in either body.
func holdsSecret(v string, bodies ...redactedBody) bool {
	if v == "" || strings.HasPrefix(v, `"`+redactedMark) {
		return false
	}
	for _, b := range bodies {
		for _, s := range b.secrets {
			if strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}

// jsonValue redacts a difference's JSON text as the body shows a redacted
// value: a JSON string holding the keyed hash of the value's text (the
// same mark as in the body when the texts are the same).
func (r *redactor) jsonValue(v string) string {
	if v == "" || strings.HasPrefix(v, `"`+redactedMark) {
		return v
	}
	return compact(r.value(v))
}

func (r *redactor) maybe(v string) string {
	if v == "" {
		return ""
	}
	return r.value(v)
}

// touches reports whether np equals, contains or lies inside one of places.
func touches(np spec.NormalizedPath, places []spec.NormalizedPath) bool {
	for _, p := range places {
		if isPrefix(p, np) || isPrefix(np, p) {
			return true
		}
	}
	return false
}

func isPrefix(a, b spec.NormalizedPath) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// decodeJSON decodes one JSON document; anything after it is an error, so
// that a body with a second document is withheld, not kept as it came.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailingData
	}
	return v, nil
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}

// replaceAt returns tree with the value at np replaced by f of it.
func replaceAt(tree any, np spec.NormalizedPath, f func(any) any) any {
	if len(np) == 0 {
		return f(tree)
	}
	switch sel := np[0].(type) {
	case spec.Name:
		if m, ok := tree.(map[string]any); ok {
			if v, ok := m[string(sel)]; ok {
				m[string(sel)] = replaceAt(v, np[1:], f)
			}
		}
	case spec.Index:
		if a, ok := tree.([]any); ok && int(sel) >= 0 && int(sel) < len(a) {
			a[sel] = replaceAt(a[sel], np[1:], f)
		}
	}
	return tree
}

// parseNormalized reads an RFC 9535 normalized path ($['a'][0]).
func parseNormalized(p string) (spec.NormalizedPath, bool) {
	rest, ok := strings.CutPrefix(p, "$")
	if !ok {
		return nil, false
	}
	var np spec.NormalizedPath
	for rest != "" {
		if len(rest) < 3 || rest[0] != '[' {
			return nil, false
		}
		if rest[1] == '\'' {
			var name strings.Builder
			i := 2
			for ; i < len(rest) && rest[i] != '\''; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
					switch rest[i] {
					case 'b':
						name.WriteByte('\b')
					case 'f':
						name.WriteByte('\f')
					case 'n':
						name.WriteByte('\n')
					case 'r':
						name.WriteByte('\r')
					case 't':
						name.WriteByte('\t')
					case 'u':
						if i+4 >= len(rest) {
							return nil, false
						}
						n, err := strconv.ParseUint(rest[i+1:i+5], 16, 32)
						if err != nil {
							return nil, false
						}
						name.WriteRune(rune(n))
						i += 4
					default:
						name.WriteByte(rest[i])
					}
					continue
				}
				name.WriteByte(rest[i])
			}
			if i+1 >= len(rest) || rest[i+1] != ']' {
				return nil, false
			}
			np = append(np, spec.Name(name.String()))
			rest = rest[i+2:]
			continue
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, false
		}
		n, err := strconv.Atoi(rest[1:end])
		if err != nil {
			return nil, false
		}
		np = append(np, spec.Index(n))
		rest = rest[end+1:]
	}
	return np, true
}
