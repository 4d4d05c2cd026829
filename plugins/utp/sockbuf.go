package utp

import (
	"net"
	"syscall"

	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
)

// defaultSocketBuffer is the receive buffer assumed for a socket that does
// not tell its own: Linux's default (net.core.rmem_default, 208 KiB).
const defaultSocketBuffer = 208 << 10

// readBufferSizer is a PacketConn that tells the size of the receive
// buffer behind it (*udpmux.Conn: the shared socket's kernel buffer).
type readBufferSizer interface {
	ReadBufferSize() int
}

// socketReadBuffer returns the receive buffer of the socket pc reads
// from, in the kernel's accounting: pc's ReadBufferSize, else SO_RCVBUF of
// a syscall.Conn (a *net.UDPConn), else defaultSocketBuffer.
func socketReadBuffer(pc net.PacketConn) int {
	if r, ok := pc.(readBufferSizer); ok {
		if n := r.ReadBufferSize(); n > 0 {
			return n
		}
	}
	if sc, ok := pc.(syscall.Conn); ok {
		if n := udpmux.KernelReadBuffer(sc); n > 0 {
			return n
		}
	}
	return defaultSocketBuffer
}

// windowCap is the largest receive window a connection on a socket with a
// readBuf-byte receive buffer (the kernel's accounting) advertises: a
// quarter of it, at least two of the largest datagrams we take. A sender
// may have a whole window in flight, and a BEP 29 sender (libutp) sends it
// in bursts as our acks open it; what the socket cannot hold until our
// read loop takes it, the kernel drops. The kernel charges a datagram with
// its overhead (on Linux a 1 400-byte datagram costs ≈ 2.3 KB: the default
// 208 KiB hold 92, ≈ 129 KB of payload), and acks and other connections
// share the buffer: with half of it as the window our socket still
// dropped 2–41 of libutp's datagrams per 16 MiB, with a quarter none
// (before, with the 4 MiB ReadBuffer as the window: 45–257).
func windowCap(readBuf int, cfg *Config) int {
	return max(readBuf/4, 2*max(cfg.PacketSize, cfg.LoopbackPacketSize))
}
