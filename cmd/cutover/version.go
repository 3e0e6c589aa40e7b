package main

import (
	"fmt"
	"io"
	"runtime/debug"
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
		return bi
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
	return bi
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
