package main

import "testing"

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
