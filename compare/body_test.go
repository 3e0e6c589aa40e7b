package compare

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"net/http"
	"strings"
	"testing"
)

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func deflated(s string, raw bool) []byte {
	var b bytes.Buffer
	if raw {
		w, _ := flate.NewWriter(&b, flate.BestSpeed)
		w.Write([]byte(s))
		w.Close()
	} else {
		w := zlib.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
	}
	return b.Bytes()
}

func resp(ct, ce string, body []byte) Response {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	if ce != "" {
		h.Set("Content-Encoding", ce)
	}
	return Response{Status: 200, Header: h, Body: body}
}

func TestBodies(t *testing.T) {
	const doc = `{"a":[1,2,3],"b":"x"}`
	bomb := gz(strings.Repeat("0", 9<<20))
	tests := []struct {
		name     string
		old, new Response
		want     Outcome
		reason   string
		diffs    string
	}{
		{"gzip against plain", resp("application/json", "gzip", gz(doc)), resp("application/json", "", []byte(doc)), Match, "", ""},
		{"zlib deflate", resp("application/json", "deflate", deflated(doc, false)), resp("application/json", "", []byte(doc)), Match, "", ""},
		{"raw deflate", resp("application/json", "deflate", deflated(doc, true)), resp("application/json", "x-gzip", gz(doc)), Match, "", ""},
		{"two encodings", resp("application/json", "gzip, gzip", gz(string(gz(doc)))), resp("application/json", "identity", []byte(doc)), Match, "", ""},
		{"gzip hides a difference", resp("application/json", "gzip", gz(`{"a":1}`)), resp("application/json", "gzip", gz(`{"a":2}`)), Mismatch, "", "changed $['a'] 1 → 2"},
		{"gzip bomb", resp("application/json", "gzip", bomb), resp("application/json", "gzip", bomb), Error, ReasonTooLarge, ""},
		{"corrupt gzip", resp("application/json", "gzip", []byte("nope")), resp("application/json", "", []byte(doc)), Error, ReasonBadEncoding, ""},
		{"unsupported encoding", resp("application/json", "br", []byte(doc)), resp("application/json", "br", []byte(doc)), Error, ReasonBadEncoding, ""},
		{"media type parameters", resp("application/json; charset=utf-8", "", []byte(doc)), resp("application/json", "", []byte(doc)), Match, "", ""},
		{"+json", resp("application/problem+json", "", []byte(`{"a":1}`)), resp("application/vnd.api+json", "", []byte(`{"a":1.0}`)), Match, "", ""},
		{"no content type, JSON-looking", resp("", "", []byte(` {"a":1}`)), resp("", "", []byte(`{"a":1.0}`)), Match, "", ""},
		{"text is text", resp("text/plain", "", []byte("a b")), resp("text/plain; charset=utf-8", "", []byte("a  b")), Mismatch, "", `changed $ "a b" → "a  b"`},
		{"text that is not UTF-8 is told by its digest", resp("text/plain", "", []byte("a\xff")), resp("text/plain", "", []byte("a\xfe")), Mismatch, "",
			`changed $ "2 bytes, sha256 8dd06b5ab6b59425" → "2 bytes, sha256 f6fabf9c378f8de9"`},
		{"text that looks like JSON", resp("text/plain", "", []byte("1")), resp("text/plain", "", []byte("1.0")), Mismatch, "", `changed $ "1" → "1.0"`},
		{"bytes", resp("image/png", "", []byte{1, 2}), resp("image/png", "", []byte{1, 3}), Mismatch, "",
			`changed $ "2 bytes, sha256 a12871fee210fb86" → "2 bytes, sha256 c79b932e1e1da3c0"`},
		{"same bytes", resp("application/octet-stream", "", []byte{0xff}), resp("application/octet-stream", "", []byte{0xff}), Match, "", ""},
		{"JSON against HTML", resp("application/json", "", []byte(`{"a":1}`)), resp("text/html", "", []byte("<p>oops</p>")), Mismatch, "", `type $ {"a":1} → "<p>oops</p>"`},
		{"empty against JSON", resp("application/json", "", nil), resp("application/json", "", []byte(`{}`)), Mismatch, "", `extra $ → {}`},
		{"both empty", resp("application/json", "", nil), resp("", "", nil), Match, "", ""},
		// Exact arithmetic on a huge exponent costs its length squared.
		{"exponent of 1,000 digits", resp("application/json", "", []byte("[1e"+strings.Repeat("7", 1000)+"]")), resp("application/json", "", []byte("[10e"+strings.Repeat("7", 999)+"6]")), Match, "", ""},
		{"exponent of 1,001 digits after zeros", resp("application/json", "", []byte("[1e"+strings.Repeat("0", 1001)+"1]")), resp("application/json", "", []byte("[10]")), Match, "", ""},
		{"exponent of 1,001 digits", resp("application/json", "", []byte("[1e"+strings.Repeat("7", 1001)+"]")), resp("application/json", "", []byte("[1e"+strings.Repeat("7", 1001)+"]")), Error, ReasonTooLarge, ""},
		// HEAD, 204 and 304 answers keep their GET's Content-Encoding.
		{"empty under gzip", resp("application/json", "gzip", nil), resp("application/json", "gzip", nil), Match, "", ""},
		{"empty under deflate and br", resp("application/json", "deflate", nil), resp("application/json", "br", nil), Match, "", ""},
		{"empty under gzip against gzipped JSON", resp("application/json", "gzip", nil), resp("application/json", "gzip", gz(doc)), Mismatch, "", `extra $ → {"a":[1,2,3],"b":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := (*Options)(nil).Compare(tt.old, tt.new)
			if r.Outcome != tt.want || r.Reason != tt.reason {
				t.Fatalf("got %s %s (%s), want %s %s", r.Outcome, r.Reason, r.Detail, tt.want, tt.reason)
			}
			if got := diffText(r); got != tt.diffs {
				t.Errorf("diffs:\n%s\nwant:\n%s", got, tt.diffs)
			}
		})
	}
}

func TestLimits(t *testing.T) {
	o, err := New(nil, Limits{MaxDiffs: 2, MaxValueBytes: 8, MaxBodyBytes: 64}, NoiseThresholds{})
	if err != nil {
		t.Fatal(err)
	}
	r := o.Compare(jsonResponse(`[1,2,3,"abcdefghijklmnop"]`), jsonResponse(`[4,5,6,"é"]`))
	if len(r.Diffs) != 2 || r.MoreDiffs != 2 {
		t.Errorf("diffs %d + %d more, want 2 + 2", len(r.Diffs), r.MoreDiffs)
	}
	r = o.Compare(jsonResponse(`["abcdefghijklmnop"]`), jsonResponse(`["ééééééé"]`))
	if got, want := diffText(r), `changed $[0] "abcdefg… → "ééé…`; got != want {
		t.Errorf("got %s, want %s (cut at 8 bytes, on a character boundary)", got, want)
	}
	if r := o.Compare(jsonResponse(strings.Repeat(" ", 65)+"1"), jsonResponse("1")); r.Reason != ReasonTooLarge {
		t.Errorf("got %s %s, want too_large", r.Outcome, r.Reason)
	}
}

// Two values that differ only past the cut at MaxValueBytes are shown
// around their first difference, not as two identical cut texts: a long
// string, a number of 301 digits, a text body.
func TestValuesThatDifferPastTheCutAreShownWhereTheyDiffer(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name     string
		old, new Response
		want     [2]string // in Old and New
	}{
		{"string", jsonResponse(`{"s":"` + long + `a"}`), jsonResponse(`{"s":"` + long + `b"}`), [2]string{`xa"`, `xb"`}},
		{"number", jsonResponse(`{"n":` + strings.Repeat("1", 300) + `2}`), jsonResponse(`{"n":` + strings.Repeat("1", 300) + `3}`), [2]string{`12`, `13`}},
		{"text", resp("text/plain", "", []byte(long+"a")), resp("text/plain", "", []byte(long+"b")), [2]string{`xa"`, `xb"`}},
	} {
		r := (*Options)(nil).Compare(tc.old, tc.new)
		if r.Outcome != Mismatch || len(r.Diffs) != 1 {
			t.Fatalf("%s: %s %+v, want one difference", tc.name, r.Outcome, r.Diffs)
		}
		d := r.Diffs[0]
		if d.Old == d.New || !strings.Contains(d.Old, tc.want[0]) || !strings.Contains(d.New, tc.want[1]) || len(d.Old) > DefaultMaxValueBytes+8 {
			t.Errorf("%s: old %q, new %q; want them apart, with %q and %q, and cut", tc.name, d.Old, d.New, tc.want[0], tc.want[1])
		}
	}
}
