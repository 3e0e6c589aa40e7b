// Package compare decides whether two backend answers are the same under a
// set of rules, and explains every difference it finds.
//
// It works on bytes and decoded JSON only: it knows nothing of HTTP servers,
// routes or configuration files. The rules package compiles YAML into an
// [Options] value; the gateway and the `cutover diff` command call
// [Options.Compare].
package compare
