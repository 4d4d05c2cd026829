//go:build unix

package udpmux

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// KernelReadBuffer returns the receive buffer the kernel granted the
// socket behind sc (SO_RCVBUF; 0: unknown).
func KernelReadBuffer(sc syscall.Conn) int {
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil {
			n = v
		}
	})
	return n
}
