//go:build unix

package utp

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// sysReadBuffer returns SO_RCVBUF of sc's socket (0: unknown).
func sysReadBuffer(sc syscall.Conn) int {
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
