// Package testenv decides what a test does when something it needs from the
// machine is missing: root and iproute2 for the network-namespace lab,
// nftables for NATs, Node.js and pinned npm packages for the interop tests.
//
// Outside CI such a test skips with one line that says what it needs and the
// command that provides it, so that a newcomer's `go test ./...` passes. With
// CI=true (as .ci/run runs) nothing skips: CI installs every prerequisite, so
// a missing one is a failure, never a silently skipped test.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI (the environment variable CI
// is "true", as CI systems and .ci/run set it).
func InCI() bool { return os.Getenv("CI") == "true" }

// Require stops tb when err, a missing prerequisite, is not nil: it fails
// under CI and skips otherwise, with err as the one line of explanation.
// With err == nil it does nothing.
func Require(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if InCI() {
		tb.Fatalf("prerequisite missing (CI=true, so this fails instead of skipping): %v", err)
	}
	tb.Skipf("skipped, needs %v", err)
}

// Tool returns nil when the program name is on PATH, else an error that
// names the Debian package providing it.
func Tool(name, debianPackage string) error {
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("%s (apt-get install %s)", name, debianPackage)
	}
	return nil
}

// Root returns nil when the process runs as root.
func Root() error {
	if os.Geteuid() != 0 {
		return errors.New("root (network namespaces; run the tests as root, as CI does)")
	}
	return nil
}

var npmMu sync.Mutex

// NodeModules makes sure that dir/node_modules holds the npm package pkg,
// pinned by dir/package-lock.json: when it is absent and npm is on PATH, it
// runs `npm ci --prefix dir` once (bounded to 5 minutes; the npm registry is
// the only host contacted). It returns the path of the node binary, or an
// error that gives the one command that installs what is missing.
func NodeModules(dir, pkg string) (nodeBin string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	install := fmt.Sprintf("npm ci --prefix %s --no-audit --no-fund", abs)
	nodeBin, err = exec.LookPath("node")
	if err != nil {
		return "", fmt.Errorf("node, the Node.js runtime (apt-get install nodejs npm, then %s)", install)
	}
	want := filepath.Join(abs, "node_modules", pkg, "package.json")
	npmMu.Lock()
	defer npmMu.Unlock()
	if _, err := os.Stat(want); err == nil {
		return nodeBin, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm package %s (apt-get install npm, then %s)", pkg, install)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "npm", "ci", "--prefix", abs, "--no-audit", "--no-fund").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("npm package %s: `%s` failed: %v\n%s", pkg, install, err, out)
	}
	if _, err := os.Stat(want); err != nil {
		return "", fmt.Errorf("npm package %s: %s did not install it (%v)", pkg, install, err)
	}
	return nodeBin, nil
}
