package main

import (
	"os/exec"
	"strings"
	"testing"
)

func TestStampedVersionWinsOverToolchain(t *testing.T) {
	toolchain := buildInfo{Version: "(devel)", Revision: "abc", Modified: true, GoVersion: "go1.26.8"}
	tests := []struct {
		name              string
		version, revision string
		want              buildInfo
	}{
		{"nothing stamped", "", "", toolchain},
		{"version only", "v1.2.3", "", buildInfo{Version: "v1.2.3", Revision: "abc", Modified: true, GoVersion: "go1.26.8"}},
		{"both", "v1.2.3", "def", buildInfo{Version: "v1.2.3", Revision: "def", GoVersion: "go1.26.8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toolchain.stamped(tt.version, tt.revision); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A test binary carries no VCS stamp, as under `go run`: the bench then
// names the checkout's revision, read from git.
func TestBenchNamesTheCheckoutWithoutAStamp(t *testing.T) {
	if bi := readBuildInfo(); bi.Revision != "unknown" {
		t.Fatalf("the test binary is stamped (%s): this test needs one that is not", bi)
	}
	head, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		// No git, or not a checkout: the bench still runs, unnamed.
		if got := benchBuild().Revision; got != "unknown" {
			t.Errorf("git cannot name the checkout (%v), yet the bench names revision %q", err, got)
		}
		return
	}
	if got, want := benchBuild().Revision, strings.TrimSpace(string(head)); got != want {
		t.Errorf("bench names revision %q, the checkout is at %q", got, want)
	}
}
