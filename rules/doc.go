// Package rules reads cutover's YAML configuration, validates it with the
// line and column of every problem, and compiles it into an immutable [Set]:
// routes with their phases and overrides, compare options, limits and
// readiness thresholds. [Live] holds the current Set and swaps it whole on
// reload, keeping the last good one when a new file is bad.
//
// It knows nothing of HTTP servers: the gateway asks it which route a request
// belongs to and what to do with it.
package rules
