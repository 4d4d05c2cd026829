//go:build unix

package main

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// sendFD writes m with f's fd on a SOCK_SEQPACKET fd channel.
func sendFD(c *net.UnixConn, m []byte, f *os.File) {
	if c != nil {
		c.WriteMsgUnix(m, unix.UnixRights(int(f.Fd())), nil)
	}
}
