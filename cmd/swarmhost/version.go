package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version overrides the module version when set at build time with
// -ldflags "-X main.version=...".
var version = ""

// versionString describes this binary from its build info: the module
// version ("(devel)" for a build from a checkout), the VCS revision and
// time, and "+dirty" when the work tree had uncommitted changes — as
// `go build` records them (https://pkg.go.dev/runtime/debug#BuildInfo).
func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Sprintf("swarmhost %s (no build info) %s", orDev(version), runtime.Version())
	}
	return describeBuild(bi, version)
}

func orDev(v string) string {
	if v == "" {
		return "dev"
	}
	return v
}

// describeBuild formats bi; override, when set, replaces the module version.
func describeBuild(bi *debug.BuildInfo, override string) string {
	v := override
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	out := "swarmhost " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		out += " rev " + rev
		if at != "" {
			out += " " + at
		}
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	return out + " " + goVersion
}
