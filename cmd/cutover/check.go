package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/cutover/cutover/rules"
)

// runCheck validates a configuration: every problem as file:line:col:
// message, exit 1; exit 0 when it is valid.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	print := fs.Bool("print", false, "print the configuration as understood, defaults applied and secrets masked")
	config := fs.String("config", "", "the file to check, when not given as the argument")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cutover check [--print] cutover.yaml (or --config F, or CUTOVER_CONFIG)")
	}
	if err := parseFlags(fs, args); err != nil {
		return flagsExit(err)
	}
	given := false // --config on the command line, not from CUTOVER_CONFIG
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "config" })
	file := *config
	switch {
	case fs.NArg() == 1 && given:
		fmt.Fprintf(stderr, "cutover check: --config %s and the argument %s name two files: give one\n", *config, fs.Arg(0))
		return 2
	case fs.NArg() == 1:
		file = fs.Arg(0) // the argument wins over CUTOVER_CONFIG
	case fs.NArg() > 1 || file == "":
		fs.Usage()
		return 2
	}
	set, err := rules.LoadFile(file)
	if err != nil {
		if ps := rules.AsProblems(err); ps != nil {
			for _, p := range ps {
				fmt.Fprintln(stderr, p)
			}
			fmt.Fprintf(stderr, "%d problem(s); the configuration was not loaded\n", len(ps))
			return 1
		}
		fmt.Fprintln(stderr, missingConfig(err, "give the file to check as the argument, or with --config FILE or CUTOVER_CONFIG"))
		return 1
	}
	if *print {
		if err := set.Print(stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	// What the file names is read as serve reads it, and told, without
	// failing the check: it may run where the secrets are not (a CI job).
	if _, err := credentials(set.Admin.Auth); err != nil {
		err = positioned(set, err)
		for _, e := range joined(err) {
			fmt.Fprintf(stderr, "warning: %v; serve refuses to start where this is so\n", e)
		}
	}
	if _, err := redactOptions(set.Redact); err != nil {
		fmt.Fprintf(stderr, "warning: %v; serve refuses to start where this is so\n", positioned(set, err))
	}
	// A bound that can never act is said, not refused: the file does what
	// it says, only not what its author may think. Workers set this low
	// are in the file (the default is 1024), lag_factor may not be.
	if sh := set.Shadow; sh.LagFactor > 0 && sh.Workers < rules.LagFloor {
		fmt.Fprintf(stderr, "warning: %v\n", set.Problem("$.shadow.workers",
			fmt.Sprintf("raise workers to %d or more for it to act, or set shadow.lag_factor: 0 to say it is off", rules.LagFloor),
			"shadow.workers (%d) allows fewer shadow requests in flight than the %d shadow.lag_factor waits for: it never acts", sh.Workers, rules.LagFloor))
	}
	for _, w := range slices.Concat(set.Warnings, writesOffWarnings(set), methodWarnings(set)) {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d routes, version %s)\n", file, len(set.Routes), set.Version)
	return 0
}

// writesOffWarnings says where secondary_writes: off meets a phase whose
// point is writing both backends (dual-write, backfill, shadow-read): new
// then gets none of those writes and drifts from old. README gives off for
// cutover, where it stops writing old; a file may mean it elsewhere (new
// being rebuilt), so it is said, not refused.
func writesOffWarnings(set *rules.Set) []*rules.Problem {
	var out []*rules.Problem
	check := func(path, name string, phase rules.Phase, mode rules.WriteMode) {
		if mode != rules.Off || !phase.WritesSecondary() || phase == rules.Cutover {
			return
		}
		out = append(out, set.Problem(path,
			"off is meant for phase cutover (old no longer written); use async or sync, or phase prepare to stop writing new",
			"%s: secondary_writes is off in phase %s, so new gets none of its writes and drifts from old", name, phase))
	}
	routes := func(yield func(string, *rules.Route) bool) {
		for i, r := range set.Routes {
			if !yield(fmt.Sprintf("$.routes[%d]", i), r) {
				return
			}
		}
		yield("$.defaults", set.Default)
	}
	for path, r := range routes {
		if !writes(r) {
			continue // nothing it matches is a write
		}
		name := fmt.Sprintf("route %q", r.Name)
		at := path + ".secondary_writes"
		if !set.Written(at) && set.Written("$.defaults.secondary_writes") {
			at, name = "$.defaults.secondary_writes", name+" (off from defaults)"
		}
		check(at, name, r.Phase, r.SecondaryWrites)
		for j, ov := range r.Overrides {
			check(fmt.Sprintf("%s.overrides[%d].phase", path, j), fmt.Sprintf("%s, override %q", name, ov.Name), ov.Phase, r.SecondaryWrites)
		}
	}
	return out
}

// writes says whether any request the route matches is a write.
func writes(r *rules.Route) bool {
	if r.Methods() == nil {
		return !r.IsRead(http.MethodPost)
	}
	for _, m := range r.Methods() {
		if !r.IsRead(m) {
			return true
		}
	}
	return false
}

// knownMethod says whether m is in IANA's HTTP Method Registry (HTTP,
// WebDAV and its extensions, CalDAV, QUERY) or is PURGE, which caches take.
func knownMethod(m string) bool {
	switch m {
	case "ACL", "BASELINE-CONTROL", "BIND", "CHECKIN", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET", "HEAD",
		"LABEL", "LINK", "LOCK", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MKREDIRECTREF", "MKWORKSPACE",
		"MOVE", "OPTIONS", "ORDERPATCH", "PATCH", "POST", "PRI", "PROPFIND", "PROPPATCH", "PUT", "QUERY",
		"REBIND", "REPORT", "SEARCH", "TRACE", "UNBIND", "UNCHECKOUT", "UNLINK", "UNLOCK", "UPDATE",
		"UPDATEREDIRECTREF", "VERSION-CONTROL", "PURGE":
		return true
	}
	return false
}

// methodWarnings says where a route names a method no client is likely to
// send (a typo such as GTE leaves the route unused for it), and CONNECT,
// which the gateway refuses whatever the routes say. A custom method is
// legal HTTP, so it is said, not refused.
func methodWarnings(set *rules.Set) []*rules.Problem {
	var out []*rules.Problem
	for i, r := range set.Routes {
		for j, m := range r.Methods() {
			path := fmt.Sprintf("$.routes[%d].match.methods[%d]", i, j)
			switch {
			case m == http.MethodConnect:
				out = append(out, set.Problem(path, "take it out: cutover is no tunnel",
					"route %q: CONNECT is refused by the gateway (400), whatever the routes say", r.Name))
			case !knownMethod(m):
				out = append(out, set.Problem(path, "check the spelling; a method of your own is fine if clients send exactly it",
					"route %q: %s is not in IANA's registry of HTTP methods, so the route sees only requests that send exactly %s", r.Name, m, m))
			}
		}
	}
	return out
}

// joined returns the errors errors.Join put together, or err alone.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
