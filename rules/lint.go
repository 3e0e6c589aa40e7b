package rules

// This file: what a file says that is accepted but likely not what its
// author meant; check prints it and serve logs it at each load
// (Set.Warnings).

import (
	"fmt"
	"net/http"
)

// lint warns of a compiled set's settings that are valid but likely not
// meant. paths[i] is where s.Routes[i] is in the file.
func (c *compiler) lint(s *Set, paths []string) {
	// A bound that can never act. Workers set this low are in the file
	// (the default is 1024), lag_factor may not be.
	if sh := s.Shadow; sh.LagFactor > 0 && sh.Workers < LagFloor {
		c.warn("$.shadow.workers",
			fmt.Sprintf("raise workers to %d or more for it to act, or set shadow.lag_factor: 0 to say it is off", LagFloor),
			"shadow.workers (%d) allows fewer shadow requests in flight than the %d shadow.lag_factor waits for: it never acts", sh.Workers, LagFloor)
	}
	for i, r := range s.Routes {
		c.lintWritesOff(paths[i], r)
		c.lintMethods(paths[i], r)
	}
	c.lintWritesOff("$.defaults", s.Default)
}

// lintWritesOff says where secondary_writes: off meets a phase whose point
// is writing both backends (dual-write, backfill, shadow-read): new then
// gets none of those writes and drifts from old. README gives off for
// cutover, where it stops writing old; a file may mean it elsewhere (new
// being rebuilt), so it is said, not refused.
func (c *compiler) lintWritesOff(path string, r *Route) {
	if r.SecondaryWrites != Off || !r.writes() {
		return
	}
	name := fmt.Sprintf("route %q", r.Name)
	at := path + ".secondary_writes"
	if _, own := c.loc.pos[at]; !own {
		if _, inherited := c.loc.pos["$.defaults.secondary_writes"]; inherited {
			at, name = "$.defaults.secondary_writes", name+" (off from defaults)"
		}
	}
	warn := func(at, name string, phase Phase) {
		if phase.WritesSecondary() && phase != Cutover {
			c.warn(at, "off is meant for phase cutover (old no longer written); use async or sync, or phase prepare to stop writing new",
				"%s: secondary_writes is off in phase %s, so new gets none of its writes and drifts from old", name, phase)
		}
	}
	warn(at, name, r.Phase)
	for j, ov := range r.Overrides {
		warn(fmt.Sprintf("%s.overrides[%d].phase", path, j), fmt.Sprintf("%s, override %q", name, ov.Name), ov.Phase)
	}
}

// writes says whether any request the route matches is a write.
func (r *Route) writes() bool {
	if r.methods == nil {
		return !r.IsRead(http.MethodPost)
	}
	for _, m := range r.methods {
		if !r.IsRead(m) {
			return true
		}
	}
	return false
}

// lintMethods says where a route names a method no client is likely to
// send (a typo such as GTE leaves the route unused for it), and CONNECT,
// which the gateway refuses whatever the routes say. A method of one's
// own is legal HTTP, so it is said, not refused.
func (c *compiler) lintMethods(path string, r *Route) {
	for j, m := range r.methods {
		at := fmt.Sprintf("%s.match.methods[%d]", path, j)
		switch {
		case m == http.MethodConnect:
			c.warn(at, "take it out: cutover is no tunnel", "route %q: CONNECT is refused by the gateway (400), whatever the routes say", r.Name)
		case !knownMethod(m):
			c.warn(at, "check the spelling; a method of your own is fine if clients send exactly it",
				"route %q: %s is not in IANA's registry of HTTP methods, so the route sees only requests that send exactly %s", r.Name, m, m)
		}
	}
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
