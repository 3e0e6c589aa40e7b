package compare

// This file: content decoding (gzip, deflate, with a size bound) and the
// media type that decides how a body is compared.

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// decodeBody undoes the Content-Encoding of a body (gzip, deflate, in the
// reverse of the order they were applied) and bounds the result by max, so
// a few kilobytes of gzip cannot become gigabytes.
func decodeBody(h http.Header, body []byte, max int64) ([]byte, *failure) {
	var encs []string
	for _, v := range h.Values("Content-Encoding") {
		for _, e := range strings.Split(v, ",") {
			if e = strings.ToLower(strings.TrimSpace(e)); e != "" && e != "identity" {
				encs = append(encs, e)
			}
		}
	}
	if int64(len(body)) > max {
		return nil, &failure{ReasonTooLarge, fmt.Sprintf("a body of %d bytes, more than %d", len(body), max)}
	}
	if len(body) == 0 {
		// Nothing was encoded: the answer to a HEAD, a 204 or a 304 keeps
		// the Content-Encoding its GET would have.
		return body, nil
	}
	for i := len(encs) - 1; i >= 0; i-- {
		var r io.Reader
		var err error
		switch encs[i] {
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(bytes.NewReader(body))
		case "deflate":
			// RFC 9110 says zlib; some servers send raw deflate.
			if r, err = zlib.NewReader(bytes.NewReader(body)); err != nil {
				r, err = flate.NewReader(bytes.NewReader(body)), nil
			}
		default:
			return nil, &failure{ReasonBadEncoding, fmt.Sprintf("unsupported Content-Encoding %q", encs[i])}
		}
		if err != nil {
			return nil, &failure{ReasonBadEncoding, fmt.Sprintf("%s: %v", encs[i], err)}
		}
		out, err := io.ReadAll(io.LimitReader(r, max+1))
		switch {
		case err != nil:
			return nil, &failure{ReasonBadEncoding, fmt.Sprintf("%s: %v", encs[i], err)}
		case int64(len(out)) > max:
			return nil, &failure{ReasonTooLarge, fmt.Sprintf("%s decodes to more than %d bytes", encs[i], max)}
		}
		body = out
	}
	return body, nil
}

// class is how a body is compared.
type class uint8

const (
	classEmpty class = iota
	classJSON        // parsed and compared as JSON under the rules
	classText        // compared as text
	classBytes       // compared as bytes
)

// classify reads the media type: application/json and any +json type are
// JSON (parameters such as charset do not matter), text/* and XML are text,
// anything else is bytes. Without a usable Content-Type, a body that starts
// like an object or an array is JSON and UTF-8 is text.
func classify(h http.Header, body []byte) class {
	if len(body) == 0 {
		return classEmpty
	}
	ct := h.Get("Content-Type")
	// The common cases without ParseMediaType, which allocates a map per
	// call (measured at 1.6 % of a shadow read's allocations).
	switch strings.ToLower(ct) {
	case "application/json", "application/json; charset=utf-8", "application/json;charset=utf-8":
		return classJSON
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		switch {
		case mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json"):
			return classJSON
		case strings.HasPrefix(mt, "text/") || mt == "application/xml" || strings.HasSuffix(mt, "+xml") ||
			mt == "application/javascript" || mt == "application/x-www-form-urlencoded":
			return classText
		}
		return classBytes
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		return classJSON
	}
	if utf8.Valid(body) {
		return classText
	}
	return classBytes
}

// describe renders a body that is not compared as JSON (or not on both
// sides) as the Old or New of a difference.
func (c *comparison) describe(k class, body []byte) string {
	switch k {
	case classEmpty:
		return ""
	case classJSON:
		return truncate(compact(nil, body), c.lim.MaxValueBytes)
	case classText:
		if !utf8.Valid(body) {
			// As text, each side's bad bytes would read U+FFFD alike.
			break
		}
		s := body
		if len(s) > c.lim.MaxValueBytes {
			// At a character boundary, as truncate cuts.
			cut := c.lim.MaxValueBytes
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			s = s[:cut]
		}
		text := appendJSONString(nil, string(s))
		if len(s) < len(body) {
			return string(text[:len(text)-1]) + `…"`
		}
		return string(text)
	}
	sum := sha256.Sum256(body)
	return fmt.Sprintf(`"%d bytes, sha256 %s"`, len(body), hex.EncodeToString(sum[:8]))
}
