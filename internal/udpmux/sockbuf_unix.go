//go:build unix

package udpmux

import (
	"net"

	"golang.org/x/sys/unix"
)

// readBuffer returns the receive buffer the kernel granted conn
// (SO_RCVBUF; 0: unknown).
func readBuffer(conn *net.UDPConn) int {
	rc, err := conn.SyscallConn()
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
