//go:build !linux

// Package netlab builds throw-away virtual networks out of Linux network
// namespaces for tests. It exists on Linux only: elsewhere the package is
// empty, and the tests that use it build on Linux only (//go:build linux).
package netlab
