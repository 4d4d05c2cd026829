//go:build !unix

package udpmux

import "net"

// readBuffer returns the buffer size asked for where SO_RCVBUF is not read.
func readBuffer(*net.UDPConn) int { return SocketBuffer }
