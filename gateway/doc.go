// Package gateway is cutover's request path: it routes each request by the
// rules in force, serves it from the primary of the route's phase, shadows
// reads to the secondary and compares the two answers off the request path,
// repeats accepted writes on the secondary in order per resource (with
// retries), and reports every outcome to the statistics and the metrics.
//
// Writes the secondary must get are kept in an outbox on disk
// (DATA_DIR/queue.db) from before the primary sees them until the secondary
// acknowledges them, so neither a crash nor a long outage loses one; writes
// whose primary outcome is unknown, and writes given up, are held for an
// operator.
//
// The client always gets the primary's answer; nothing the secondary does
// changes it or delays it. Rules, comparison and statistics live in their
// own packages; the admin surface is package web.
package gateway
