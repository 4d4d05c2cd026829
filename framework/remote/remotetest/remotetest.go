// Package remotetest helps plugin authors test a plugin binary: build it
// once for a test binary, run the tests, clean up, check for leaks.
package remotetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"go.uber.org/goleak"
)

// Main is a TestMain body: it builds the Go package pkg (a `go build`
// argument such as "." or "./internal/myplugin") into a temporary
// directory, stores the binary's path in *bin, runs the tests, removes the
// directory and, when the tests passed, fails on leaked goroutines. It
// exits the process.
func Main(m *testing.M, pkg string, bin *string) {
	os.Exit(run(m, pkg, bin))
}

func run(m *testing.M, pkg string, bin *string) int {
	dir, err := os.MkdirTemp("", "plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	name := filepath.Base(pkg)
	if name == "." {
		if wd, err := os.Getwd(); err == nil {
			name = filepath.Base(wd)
		}
	}
	*bin = filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		*bin += ".exe" // exec looks for an extension there
	}
	build := exec.Command("go", "build", "-o", *bin, pkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "building the plugin %s: %v\n", pkg, err)
		return 1
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}
