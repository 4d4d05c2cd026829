package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionComesFromTheBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/dwebswarm/dwebswarm-go", Version: "v0.3.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "60bb85b1234567890abcdef"},
			{Key: "vcs.time", Value: "2026-12-01T20:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     string
	}{
		{"release with revision", bi, "", "swarmhost v0.3.0 rev 60bb85b12345+dirty 2026-12-01T20:00:00Z go1.26.8"},
		{"ldflags override", bi, "v9.9.9", "swarmhost v9.9.9 rev 60bb85b12345+dirty 2026-12-01T20:00:00Z go1.26.8"},
		{"checkout without vcs info", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, "", "swarmhost (devel) go1.26.8"},
	} {
		if got := describeBuild(tc.bi, tc.override); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
	// The test binary has build info too: never "dev".
	if got := versionString(); !strings.HasPrefix(got, "swarmhost ") || strings.Contains(got, " dev ") {
		t.Errorf("versionString() = %q", got)
	}
}
