package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// The shared UDP socket, out of process.
//
// A plugin whose implementation is a framework.PacketConnUser (the DHT,
// uTP) says so in its Info reply (wants_packet_conn). When the swarm hands
// the host-side adapter its side of the shared socket, the host calls the
// UsePacketConn RPC with a token; the plugin makes an AF_UNIX SOCK_SEQPACKET
// socketpair, sends one end on the fd channel under the token (before it
// replies, like every hand-off) and gives the implementation the other end
// wrapped as a net.PacketConn. After a plugin restart the host asks again:
// every instance gets a fresh pair. The host relays datagrams both ways
// between the shared socket and its end; the pair is SOCK_SEQPACKET, so
// message boundaries are kept, a closed end reads as EOF on the other, and
// a full buffer blocks the writer (the host's reader then falls behind and
// the socket's queue drops, as a kernel socket buffer would).
//
// Where there is no SOCK_SEQPACKET (macOS: HandoffStream) the pair is
// SOCK_STREAM, and where no fds pass (Windows: HandoffConnect) the relay is
// a loopback TCP connection the plugin makes to the host (connect.go); on
// both, every message is a frame (framing.go), with the same semantics.
//
// Every message on the pair, both ways, is one UDP datagram behind the
// address of its peer (the sender for host → plugin, the destination for
// plugin → host):
//
//	 0        1        3                 3+n
//	+--------+--------+-----------------+---------------------------+
//	| family | port   | IP address      | UDP payload (0–65535)     |
//	|  (1)   | (2,BE) | (n = 4 or 16)   |                           |
//	+--------+--------+-----------------+---------------------------+
//	family 4: IPv4, n = 4; family 6: IPv6 (IPv4-mapped included), n = 16.
//	Any other family byte is invalid and the message is dropped. IPv6 zones
//	are not carried.
//
// So a header is 7 bytes for IPv4 and 19 for IPv6. A message shorter than
// its header, or longer than PktHeaderMax+MaxDatagram, is invalid; the
// receiver drops it (the host counts and logs the first few) and keeps
// going: one bad datagram never ends the relay.
const (
	pktFamily4 = 4
	pktFamily6 = 6
	pktHeader4 = 3 + 4
	// PktHeaderMax is the longest header (IPv6).
	PktHeaderMax = 3 + 16
	// MaxDatagram is the longest UDP payload.
	MaxDatagram = 1<<16 - 1
	// PktMessageMax is the longest valid message.
	PktMessageMax = PktHeaderMax + MaxDatagram
	// pktSocketBuffer is the SO_SNDBUF/SO_RCVBUF asked for on both ends:
	// a uTP window of 16 KiB loopback datagrams fits without blocking.
	pktSocketBuffer = 4 << 20
)

// ErrBadDatagram is the decoder's error for a malformed message.
var ErrBadDatagram = errors.New("malformed datagram header")

// PutDatagramHeader writes the header for ap at the end of b[:PktHeaderMax]
// and returns where it starts, so that the payload at b[PktHeaderMax:]
// follows it without a copy.
func PutDatagramHeader(b []byte, ap netip.AddrPort) int {
	a := ap.Addr()
	if a.Is4() {
		off := PktHeaderMax - pktHeader4
		b[off] = pktFamily4
		binary.BigEndian.PutUint16(b[off+1:], ap.Port())
		ip := a.As4()
		copy(b[off+3:], ip[:])
		return off
	}
	b[0] = pktFamily6
	binary.BigEndian.PutUint16(b[1:], ap.Port())
	ip := a.As16()
	copy(b[3:], ip[:])
	return 0
}

// DecodeDatagram splits one relay message into its peer address and its
// payload (a sub-slice of msg).
func DecodeDatagram(msg []byte) (netip.AddrPort, []byte, error) {
	if len(msg) < pktHeader4 || len(msg) > PktMessageMax {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: message of %d bytes", ErrBadDatagram, len(msg))
	}
	port := binary.BigEndian.Uint16(msg[1:3])
	switch msg[0] {
	case pktFamily4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(msg[3:7])), port), msg[pktHeader4:], nil
	case pktFamily6:
		if len(msg) < PktHeaderMax {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: IPv6 message of %d bytes", ErrBadDatagram, len(msg))
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(msg[3:19])), port), msg[PktHeaderMax:], nil
	}
	return netip.AddrPort{}, nil, fmt.Errorf("%w: family %d", ErrBadDatagram, msg[0])
}

// UDPAddrPort turns a UDP destination into an AddrPort.
func UDPAddrPort(addr net.Addr) (netip.AddrPort, error) {
	switch a := addr.(type) {
	case *net.UDPAddr:
		if ap := a.AddrPort(); ap.Addr().IsValid() {
			return ap, nil
		}
		return netip.AddrPort{}, fmt.Errorf("bad udp address %v", addr)
	case nil:
		return netip.AddrPort{}, errors.New("nil address")
	}
	return netip.ParseAddrPort(addr.String())
}

// pluginPacketConn is the plugin's view of the swarm's shared UDP socket:
// a net.PacketConn over its end of the relay socketpair (NewPacketConn).
type pluginPacketConn struct {
	uc    MsgConn
	local net.Addr

	rmu  sync.Mutex
	wbuf sync.Pool
}

// NewPacketConn is the plugin's view of the swarm's shared UDP socket: a
// net.PacketConn at local over uc, the plugin's end of the relay. Closing it
// closes uc, which the host reads as the end of the relay.
func NewPacketConn(uc MsgConn, local net.Addr) net.PacketConn {
	return &pluginPacketConn{uc: uc, local: local,
		wbuf: sync.Pool{New: func() any { b := make([]byte, PktMessageMax); return &b }}}
}

func (c *pluginPacketConn) opErr(op string, addr net.Addr, err error) error {
	return &net.OpError{Op: op, Net: "udp", Source: c.local, Addr: addr, Err: err}
}

// ReadFrom returns the next datagram and its sender. A payload longer than
// b is truncated, as on a UDP socket. When the host ends the relay it
// fails with an error wrapping net.ErrClosed.
func (c *pluginPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		msg, err := c.uc.ReadMsg()
		if errors.Is(err, ErrBadDatagram) {
			continue
		}
		if errors.Is(err, io.EOF) {
			err = net.ErrClosed // the host closed its end
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, nil, err
			}
			if errors.Is(err, net.ErrClosed) {
				return 0, nil, c.opErr("read", nil, net.ErrClosed)
			}
			return 0, nil, c.opErr("read", nil, fmt.Errorf("%w: shared udp socket relay: %v", net.ErrClosed, err))
		}
		ap, payload, err := DecodeDatagram(msg)
		if err != nil {
			continue // not from a dwebswarm host: drop, as UDP drops junk
		}
		return copy(b, payload), net.UDPAddrFromAddrPort(ap), nil
	}
}

// WriteTo sends b to addr through the host's socket.
func (c *pluginPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ap, err := UDPAddrPort(addr)
	if err != nil {
		return 0, c.opErr("write", addr, err)
	}
	if len(b) > MaxDatagram {
		return 0, c.opErr("write", addr, syscall.EMSGSIZE)
	}
	bp := c.wbuf.Get().(*[]byte)
	defer c.wbuf.Put(bp)
	buf := *bp
	copy(buf[PktHeaderMax:], b)
	off := PutDatagramHeader(buf, ap)
	if err := c.uc.WriteMsg(buf[off : PktHeaderMax+len(b)]); err != nil {
		return 0, c.opErr("write", addr, err)
	}
	return len(b), nil
}

func (c *pluginPacketConn) Close() error                       { return c.uc.Close() }
func (c *pluginPacketConn) LocalAddr() net.Addr                { return c.local }
func (c *pluginPacketConn) SetDeadline(t time.Time) error      { return c.uc.SetDeadline(t) }
func (c *pluginPacketConn) SetReadDeadline(t time.Time) error  { return c.uc.SetReadDeadline(t) }
func (c *pluginPacketConn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

var _ net.PacketConn = (*pluginPacketConn)(nil)
