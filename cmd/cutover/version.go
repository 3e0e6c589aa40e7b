package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// Stamped by the linker (deploy/build.sh passes -X main.version=... and
// -X main.revision=...): a container build has no .git for the toolchain's
// own VCS stamping, so the image would otherwise say "(devel)". They are
// never written at run time.
var (
	version  string
	revision string
)

// buildInfo is the module version and VCS revision stamped by the Go
// toolchain (go build with VCS stamping, or go install module@version).
type buildInfo struct {
	Version   string
	Revision  string
	Time      string
	Modified  bool
	GoVersion string
}

func readBuildInfo() buildInfo {
	bi := buildInfo{Version: "(devel)", Revision: "unknown"}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return bi.stamped(version, revision)
	}
	bi.GoVersion = info.GoVersion
	if info.Main.Version != "" {
		bi.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			bi.Revision = s.Value
		case "vcs.time":
			bi.Time = s.Value
		case "vcs.modified":
			bi.Modified = s.Value == "true"
		}
	}
	return bi.stamped(version, revision)
}

// stamped overrides what the toolchain recorded with the linker-stamped
// version and revision, when set.
func (b buildInfo) stamped(version, revision string) buildInfo {
	if version != "" {
		b.Version = version
	}
	if revision != "" {
		b.Revision, b.Modified = revision, false
	}
	return b
}

func (b buildInfo) String() string {
	rev := b.Revision
	if b.Modified {
		rev += "+dirty"
	}
	s := fmt.Sprintf("cutover %s (revision %s", b.Version, rev)
	if b.Time != "" {
		s += ", " + b.Time
	}
	return s + ", " + b.GoVersion + ")"
}

func runVersion(_ []string, stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, readBuildInfo())
	return 0
}
