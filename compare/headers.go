package compare

// This file: header comparison for the headers rules name.

import (
	"net/http"
	"slices"
)

// notCompared reports the headers that "compare_headers: ['*']" leaves
// out: they describe one connection (RFC 9110 section 7.6.1), or the length
// of a body that is compared by value.
func notCompared(name string) bool {
	switch name {
	case "Connection", "Content-Length", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// compareHeaders compares the headers the rules name. Values are compared
// as the ordered list of a header's field values.
func (o *Options) compareHeaders(c *comparison, a, b http.Header) {
	if !o.compareAll && len(o.headerNames) == 0 {
		return
	}
	var names []string
	for _, h := range o.headerNames {
		names = append(names, h.name)
	}
	if o.compareAll {
		for _, hs := range []http.Header{a, b} {
			for k := range hs {
				if k = http.CanonicalHeaderKey(k); !notCompared(k) {
					names = append(names, k)
				}
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	for _, name := range names {
		va, vb := a.Values(name), b.Values(name)
		same := slices.Equal(va, vb)
		if i := slices.IndexFunc(o.ignoreHeaders, func(h headerRule) bool { return h.name == name }); i >= 0 {
			if !same {
				c.hits.add(o, o.ignoreHeaders[i].rule)
			}
			continue
		}
		if same {
			continue
		}
		d := Difference{Path: "header:" + name, Kind: Changed, Old: truncate([]byte(headerText(va)), c.lim.MaxValueBytes), New: truncate([]byte(headerText(vb)), c.lim.MaxValueBytes)}
		switch {
		case len(va) == 0:
			d.Kind = Extra
		case len(vb) == 0:
			d.Kind = Missing
		}
		c.add(d)
	}
}

// headerText renders a header's values: one as a JSON string, several as
// an array of strings, none as "".
func headerText(vs []string) string {
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return string(appendJSONString(nil, vs[0]))
	}
	b := []byte{'['}
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, v)
	}
	return string(append(b, ']'))
}
