// Package e2e holds end-to-end tests: real traffic through a real gateway
// to real loopback backends, read back through the admin surface (JSON,
// /metrics and the dashboard in Chromium) as a user or a CI gate would.
// It has no code of its own.
package e2e
