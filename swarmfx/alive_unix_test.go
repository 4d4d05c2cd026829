//go:build unix

package swarmfx_test

import (
	"errors"
	"syscall"
)

// processAlive reports whether process pid exists (a plugin the host closed
// has been waited for, so it is gone, not a zombie).
func processAlive(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
