//go:build !unix

package utp

import "syscall"

// sysReadBuffer returns 0 (unknown) where SO_RCVBUF is not read.
func sysReadBuffer(syscall.Conn) int { return 0 }
