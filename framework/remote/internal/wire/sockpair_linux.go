package wire

import "golang.org/x/sys/unix"

// DefaultHandoff on Linux: fds over an AF_UNIX SOCK_SEQPACKET channel.
const DefaultHandoff = HandoffSeqpacket

// socketpair makes a close-on-exec AF_UNIX socketpair in one call.
func socketpair(typ int) ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
}
