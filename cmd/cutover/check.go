package main

import (
	"fmt"
	"io"

	"github.com/cutover/cutover/rules"
)

// runCheck validates a configuration: every problem as file:line:col:
// message, exit 1; exit 0 when it is valid.
func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	print := fs.Bool("print", false, "print the configuration as understood, defaults applied and secrets masked")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: cutover check [--print] cutover.yaml") }
	if err := parseFlags(fs, args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	set, err := rules.LoadFile(fs.Arg(0))
	if err != nil {
		if ps := rules.AsProblems(err); ps != nil {
			for _, p := range ps {
				fmt.Fprintln(stderr, p)
			}
			fmt.Fprintf(stderr, "%d problem(s); the configuration was not loaded\n", len(ps))
			return 1
		}
		fmt.Fprintln(stderr, missingConfig(err, "give the file to check as the argument"))
		return 1
	}
	if *print {
		if err := set.Print(stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(stdout, "%s: ok (%d routes, version %s)\n", fs.Arg(0), len(set.Routes), set.Version)
	return 0
}
