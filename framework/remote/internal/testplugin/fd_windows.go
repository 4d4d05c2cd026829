package main

import (
	"net"
	"os"
)

// sendFD does nothing: no fds pass on windows.
func sendFD(*net.UnixConn, []byte, *os.File) {}
