package rules

import (
	"errors"
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration, at a place in the file.
type Problem struct {
	File string
	Line int // 1-based; 0 when the problem has no single place (printed as 1:1)
	Col  int
	Msg  string
	// Hint says what to do about it, when there is something to say.
	Hint string
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	line, col := p.Line, p.Col
	if line == 0 {
		// No single place: the file's start, so that every problem reads
		// as file:line:col for the scripts that parse them.
		line, col = 1, 1
	}
	fmt.Fprintf(&b, ":%d:%d", line, col)
	b.WriteString(": ")
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString(" (")
		b.WriteString(p.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Problems is every problem found in one configuration, in file order.
// Load returns it as its error when the configuration is not valid.
type Problems []*Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find each problem.
func (ps Problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// AsProblems returns the problems inside err, or nil when err carries none.
func AsProblems(err error) Problems {
	var ps Problems
	if errors.As(err, &ps) {
		return ps
	}
	var p *Problem
	if errors.As(err, &p) {
		return Problems{p}
	}
	return nil
}
