package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/diff")

// TestDiffGolden runs `cutover diff` on the files of testdata/diff and
// holds its output and exit code to the golden files (go test -update
// rewrites them).
func TestDiffGolden(t *testing.T) {
	const dir = "testdata/diff"
	in := func(name string) string { return filepath.Join(dir, name) }
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"exact", []string{in("old.json"), in("new.json")}, 1},
		{"same", []string{in("old.json"), in("old.json")}, 0},
		{"defaults", []string{"--config", in("cutover.yaml"), in("old.json"), in("new.json")}, 1},
		{"route", []string{"--config", in("cutover.yaml"), "--route", "user", in("old.json"), in("new.json")}, 1},
		{"route-json", []string{"--config", in("cutover.yaml"), "--route", "user", "--json", in("old.json"), in("new.json")}, 1},
		{"gzip", []string{"--config", in("cutover.yaml"), "--route", "user", in("old.json"), in("new.json.gz")}, 1},
		{"duplicate-key", []string{in("dup.json"), in("old.json")}, 2},
		{"duplicate-key-json", []string{"--json", in("old.json"), in("dup.json")}, 2},
		{"unknown-route", []string{"--config", in("cutover.yaml"), "--route", "nope", in("old.json"), in("new.json")}, 2},
		{"route-without-config", []string{"--route", "user", in("old.json"), in("new.json")}, 2},
		{"missing-file", []string{in("old.json"), in("absent.json")}, 2},
		{"one-file", []string{in("old.json")}, 2},
		{"max-diffs", []string{"--max-diffs", "3", in("old.json"), in("new.json")}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := runDiff(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tt.code, stderr.String())
			}
			got := fmt.Sprintf("$ cutover diff %s\n# exit %d\n# stdout\n%s# stderr\n%s", strings.Join(tt.args, " "), code, stdout.String(), stderr.String())
			golden := filepath.Join(dir, tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// TestDiffNoColorOffTerminal: output that is not a terminal carries no
// escape codes (the golden files check the same for every case).
func TestDiffNoColorOffTerminal(t *testing.T) {
	var stdout, stderr bytes.Buffer
	runDiff([]string{"testdata/diff/old.json", "testdata/diff/new.json"}, &stdout, &stderr)
	if strings.Contains(stdout.String(), "\x1b[") {
		t.Error("colour escapes in output that is not a terminal")
	}
	p := printer{w: &stdout, color: true}
	if got := p.paint(red, "x"); got != "\x1b[31mx\x1b[0m" {
		t.Errorf("paint = %q", got)
	}
}

func TestDiffConfigFromEnvironment(t *testing.T) {
	t.Setenv("CUTOVER_CONFIG", "testdata/diff/cutover.yaml")
	t.Setenv("CUTOVER_ROUTE", "user")
	var stdout, stderr bytes.Buffer
	if code := runDiff([]string{"--json", "testdata/diff/old.json", "testdata/diff/new.json"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"route": "user"`) {
		t.Errorf("CUTOVER_CONFIG and CUTOVER_ROUTE were not used:\n%s", stdout.String())
	}
}

// Stdin gives one answer at most: "- -" compared whatever stdin held with
// an empty body and reported a mismatch.
func TestDiffRefusesStdinTwice(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"diff", "-", "-"}, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "not both") {
		t.Errorf("diff - -: exit %d, %q; want 2 and the reason", code, stderr.String())
	}
}
