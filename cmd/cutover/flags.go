package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// newFlagSet returns a flag set whose usage goes to stderr and whose errors
// are returned, not fatal.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cutover "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// flagsExit is the exit status for parseFlags' error: 0 for -h and
// --help, which asked for the usage, 2 for a mistake.
func flagsExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// parseFlags parses args, taking each flag not given on the command line
// from its environment variable: --data-dir from CUTOVER_DATA_DIR. Errors
// are printed to the flag set's output, as the flag package prints those of
// the command line.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := envName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				want, _ := flag.UnquoteUsage(f)
				if want == "" {
					want = "true or false"
				}
				err = errors.Join(err, fmt.Errorf("%s=%q: %v, want %s (unset it, or give --%s on the command line)", env, v, e, want, f.Name))
			}
		}
	})
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
	}
	return err
}

func envName(flagName string) string {
	return "CUTOVER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// signalContext ends on SIGINT or SIGTERM: how every command is stopped.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
