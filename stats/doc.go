// Package stats keeps the evidence for a cutover: per route and per override,
// the outcome of every read and secondary write, and the views the admin API
// and the dashboard show.
//
// It records what the gateway reports and knows nothing of HTTP servers or
// of how requests are proxied.
package stats
