package dhttest

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
)

var violations atomic.Uint64

// Violations counts packets that a loopback-only socket refused to send
// (to a non-loopback address). Tests assert it stays zero.
func Violations() uint64 { return violations.Load() }

// LoopbackConn is a UDP socket on 127.0.0.1 that refuses to send to any
// address outside 127.0.0.0/8 and ::1: the network-safety net of tests and
// testnets. It counts the packets it sends.
type LoopbackConn struct {
	*net.UDPConn
	sent atomic.Uint64
}

// ListenLoopback opens a LoopbackConn on 127.0.0.1:port (0: any port).
func ListenLoopback(port int) (*LoopbackConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return nil, err
	}
	// A testnet node answers bursts (a hundred nodes bootstrapping from it
	// at once): a larger receive buffer keeps the kernel from dropping
	// them. Best effort: the kernel caps it at net.core.rmem_max.
	_ = c.SetReadBuffer(4 << 20)
	return &LoopbackConn{UDPConn: c}, nil
}

// IsLoopback reports whether addr is a UDP/IP address in 127.0.0.0/8 or ::1.
func IsLoopback(addr net.Addr) bool {
	var ap netip.AddrPort
	switch a := addr.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		if addr == nil {
			return false
		}
		var err error
		if ap, err = netip.ParseAddrPort(addr.String()); err != nil {
			return false
		}
	}
	return ap.Addr().Unmap().IsLoopback()
}

// WriteTo implements net.PacketConn, refusing non-loopback destinations.
func (c *LoopbackConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !IsLoopback(addr) {
		violations.Add(1)
		return 0, fmt.Errorf("dhttest: refusing to send to non-loopback address %v", addr)
	}
	c.sent.Add(1)
	return c.UDPConn.WriteTo(b, addr)
}

// Sent counts the packets sent.
func (c *LoopbackConn) Sent() uint64 { return c.sent.Load() }
