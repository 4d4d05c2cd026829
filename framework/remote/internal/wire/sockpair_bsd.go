//go:build unix && !linux

package wire

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// DefaultHandoff on macOS and the BSDs, which have no AF_UNIX
// SOCK_SEQPACKET: fds over a framed AF_UNIX SOCK_STREAM channel.
const DefaultHandoff = HandoffStream

// socketpair makes a close-on-exec AF_UNIX socketpair. There is no
// SOCK_CLOEXEC here: the fds are marked under syscall.ForkLock, so no
// concurrent fork+exec inherits them in between.
func socketpair(typ int) ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ, 0)
	if err != nil {
		return fds, err
	}
	unix.CloseOnExec(fds[0])
	unix.CloseOnExec(fds[1])
	return fds, nil
}
