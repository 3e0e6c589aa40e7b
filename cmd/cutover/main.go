// Command cutover is a reverse proxy for migrating a REST service from an old
// backend to a new one: it writes to both, shadows reads to both, compares
// the answers under YAML rules and shows per route whether the new backend
// is ready to take over. See README.md and DESIGN.md.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `cutover: a migration proxy (dual write, shadow read, JSON diff, readiness)

Usage:
  cutover serve --config cutover.yaml [--data-dir DIR]   run the gateway
  cutover demo                                          sample backends, gateway, dashboard and traffic
  cutover check [--print] cutover.yaml                  validate (and print) a configuration
  cutover diff [--config F] [--route NAME] [--json] [--max-diffs N] old.json new.json
                                                        compare two answers under the rules
  cutover bench [--rounds 3] [--duration 5s] [--sizes 1024,16384]
                                                        measure against a plain Go proxy (and nginx)
  cutover version                                       print the version

Every flag also reads an environment variable: --data-dir from CUTOVER_DATA_DIR, and so on.
`

// run is main without the exit, so tests can call it.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(rest, stdout, stderr)
	case "demo":
		return runDemo(rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "diff":
		return runDiff(rest, stdout, stderr)
	case "bench":
		return runBench(rest, stdout, stderr)
	case "bench-baseline":
		return runBenchBaseline(rest, stdout, stderr)
	case "bench-backend":
		return runBenchBackend(rest, stdout, stderr)
	case "version", "--version", "-version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cutover: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
