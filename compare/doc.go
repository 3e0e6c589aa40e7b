// Package compare decides whether two backend answers are the same under a
// set of rules, and explains every difference it finds.
//
// A comparison always looks at the status code, at the headers a rule names,
// and at the body: content encodings (gzip, deflate) are undone first, the
// media type decides whether the bodies are JSON, text or bytes, and JSON is
// decoded by a strict parser that compares numbers by exact value, strings
// after unescaping, and reports duplicate keys, invalid UTF-8, trailing data
// and excessive nesting as errors instead of calling such answers equal.
//
// Equal answers are recognised by a fast path (identical bytes, then a
// walker over both parsed documents that applies the rules); only when that
// walker sees a difference are the documents handed to go-cmp, whose
// [cmp.Reporter] collects the differing JSON paths. The two paths are tested
// against each other so that they always reach the same verdict.
//
// The package works on bytes and decoded JSON only: it knows nothing of HTTP
// servers, routes or configuration files, and it does not parse JSONPath
// text. The rules package compiles YAML (and JSONPath, with
// github.com/theory/jsonpath) into [Rule] values and calls [New]; the gateway
// and the `cutover diff` command call [Options.Compare].
//
// [cmp.Reporter]: https://pkg.go.dev/github.com/google/go-cmp/cmp#Reporter
package compare
