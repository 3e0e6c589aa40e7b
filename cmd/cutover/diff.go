package main

// This file: `cutover diff`: two files compared offline with the gateway's
// engine.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/rules"
)

// maxDiffFile bounds what `cutover diff` reads of each file.
const maxDiffFile = 256 << 20

// runDiff compares two JSON files with the engine the gateway uses, under
// the rules of a route (--config, --route) or exactly: exit 0 when they are
// the same, 1 when they differ, 2 when they cannot be compared.
func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("diff", stderr)
	config := fs.String("config", "", "configuration whose rules apply (default: compare exactly)")
	route := fs.String("route", "", "route whose rules apply (default: the defaults)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	maxDiffs := fs.Int("max-diffs", compare.DefaultMaxDiffs, "differences to list; the rest are counted")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cutover diff [--config F] [--route NAME] [--json] [--max-diffs N] old.json new.json")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return flagsExit(err)
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return 2
	}
	if fs.Arg(0) == "-" && fs.Arg(1) == "-" {
		fmt.Fprintln(stderr, "cutover diff: stdin can give one of the two answers, not both: name a file for the other")
		return 2
	}
	opts, routeName, err := diffOptions(*config, *route, *maxDiffs)
	if err != nil {
		fmt.Fprintf(stderr, "cutover diff: %v\n", err)
		return 2
	}
	var answers [2]compare.Response
	for i, name := range fs.Args() {
		if answers[i], err = readDiffFile(name); err != nil {
			fmt.Fprintf(stderr, "cutover diff: %v\n", err)
			return 2
		}
	}
	r := opts.Compare(answers[0], answers[1])
	if *asJSON {
		writeJSONResult(stdout, opts, routeName, r)
	} else {
		p := printer{w: stdout, color: isTerminal(stdout) && os.Getenv("NO_COLOR") == ""}
		p.result(opts, r)
	}
	switch r.Outcome {
	case compare.Match:
		return 0
	case compare.Mismatch:
		return 1
	}
	if !*asJSON {
		side := map[string]string{"old": fs.Arg(0), "new": fs.Arg(1), "both": fs.Arg(0) + " and " + fs.Arg(1)}[r.Side]
		fmt.Fprintf(stderr, "cutover diff: cannot compare %s: %s: %s\n", side, r.Reason, r.Detail)
	}
	return 2
}

// diffOptions returns the rules to compare under: none without a
// configuration, else the route's (or the defaults'). They are recompiled
// with offline limits: files as large as maxDiffFile, and maxDiffs listed.
func diffOptions(config, route string, maxDiffs int) (*compare.Options, string, error) {
	if maxDiffs <= 0 {
		return nil, "", fmt.Errorf("--max-diffs %d: give a positive number", maxDiffs)
	}
	lim := compare.Limits{MaxBodyBytes: maxDiffFile, MaxDiffs: maxDiffs}
	if config == "" {
		if route != "" {
			return nil, "", fmt.Errorf("--route %s needs --config", route)
		}
		o, err := compare.New(nil, lim, compare.NoiseThresholds{})
		return o, "", err
	}
	set, err := rules.LoadFile(config)
	if err != nil {
		return nil, "", missingConfig(err, "pass --config FILE or set CUTOVER_CONFIG")
	}
	r := set.Default
	if route != "" {
		if r = set.Route(route); r == nil {
			names := []string{}
			for _, r := range set.Routes {
				names = append(names, r.Name)
			}
			return nil, "", fmt.Errorf("%s has no route %q (routes: %s)", config, route, strings.Join(names, ", "))
		}
	}
	o, err := compare.New(r.Compare.Rules(), lim, r.Compare.Noise())
	return o, r.Name, err
}

// readDiffFile reads a file ("-" for stdin) as a JSON answer with status
// 200; a gzip file is decoded like a gzip body.
func readDiffFile(name string) (compare.Response, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return compare.Response{}, err
		}
		defer f.Close()
		r = f
	}
	body, err := io.ReadAll(io.LimitReader(r, maxDiffFile+1))
	if err != nil {
		return compare.Response{}, fmt.Errorf("read %s: %w", name, err)
	}
	if len(body) > maxDiffFile {
		return compare.Response{}, fmt.Errorf("%s is larger than %d bytes", name, maxDiffFile)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		h.Set("Content-Encoding", "gzip")
	}
	return compare.Response{Status: http.StatusOK, Header: h, Body: body}, nil
}

// printer writes a result for people.
type printer struct {
	w     io.Writer
	color bool
}

const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	faint  = "\x1b[2m"
	reset  = "\x1b[0m"
)

func (p printer) paint(color, s string) string {
	if !p.color || s == "" {
		return s
	}
	return color + s + reset
}

func (p printer) result(o *compare.Options, r compare.Result) {
	for _, d := range r.Diffs {
		switch d.Kind {
		case compare.Missing:
			fmt.Fprintf(p.w, "%s %s: %s\n", p.paint(red, "-"), d.Path, p.paint(red, d.Old))
		case compare.Extra:
			fmt.Fprintf(p.w, "%s %s: %s\n", p.paint(green, "+"), d.Path, p.paint(green, d.New))
		default:
			mark, note := "~", ""
			if d.Kind == compare.Type {
				mark, note = "!", p.paint(faint, " (type)")
			}
			fmt.Fprintf(p.w, "%s %s: %s → %s%s\n", p.paint(yellow, mark), d.Path, p.paint(red, d.Old), p.paint(green, d.New), note)
		}
	}
	if r.MoreDiffs > 0 {
		fmt.Fprintf(p.w, "… and %d more\n", r.MoreDiffs)
	}
	if n := len(r.Diffs) + r.MoreDiffs; n > 0 {
		fmt.Fprintf(p.w, "%d difference%s\n", n, plural(n))
	}
	if len(r.Hits) > 0 {
		fmt.Fprintln(p.w, p.paint(faint, "absorbed by rules:"))
		for _, h := range r.Hits {
			fmt.Fprintln(p.w, p.paint(faint, fmt.Sprintf("  %d × %s", h.Count, &o.Rules()[h.Rule])))
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// diffJSON is the --json output: the Result, with rules named.
type diffJSON struct {
	Route     string               `json:"route,omitempty"`
	Outcome   compare.Outcome      `json:"outcome"`
	Reason    string               `json:"reason,omitempty"`
	Detail    string               `json:"detail,omitempty"`
	Side      string               `json:"side,omitempty"`
	Diffs     []compare.Difference `json:"diffs"`
	MoreDiffs int                  `json:"more_diffs"`
	Absorbed  []absorbedJSON       `json:"absorbed"`
}

type absorbedJSON struct {
	Rule  string `json:"rule"`
	Count int    `json:"count"`
}

func writeJSONResult(w io.Writer, o *compare.Options, route string, r compare.Result) {
	out := diffJSON{Route: route, Outcome: r.Outcome, Reason: r.Reason, Detail: r.Detail, Side: r.Side,
		Diffs: r.Diffs, MoreDiffs: r.MoreDiffs, Absorbed: []absorbedJSON{}}
	if out.Diffs == nil {
		out.Diffs = []compare.Difference{}
	}
	for _, h := range r.Hits {
		out.Absorbed = append(out.Absorbed, absorbedJSON{o.Rules()[h.Rule].String(), h.Count})
	}
	sort.SliceStable(out.Absorbed, func(i, j int) bool { return out.Absorbed[i].Count > out.Absorbed[j].Count })
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(out)
}
