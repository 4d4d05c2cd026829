//go:build !unix

package udpmux

import "syscall"

// KernelReadBuffer returns 0 (unknown) where SO_RCVBUF is not read.
func KernelReadBuffer(syscall.Conn) int { return 0 }
