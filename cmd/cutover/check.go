package main

import (
	"flag"
	"fmt"
	"io"

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
		for _, e := range joined(err) {
			fmt.Fprintf(stderr, "warning: %v; serve refuses to start where this is so\n", positioned(set, e))
		}
	}
	if _, err := redactOptions(set.Redact); err != nil {
		fmt.Fprintf(stderr, "warning: %v; serve refuses to start where this is so\n", positioned(set, err))
	}
	for _, w := range set.Warnings {
		fmt.Fprintf(stderr, "warning: %v\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok (%d routes, version %s)\n", file, len(set.Routes), set.Version)
	return 0
}

// joined returns the errors errors.Join put together, or err alone.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
