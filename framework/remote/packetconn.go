package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
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
// Where there is no SOCK_SEQPACKET (macOS: handoffStream) the pair is
// SOCK_STREAM, and where no fds pass (Windows: handoffConnect) the relay is
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
// its header, or longer than pktHeaderMax+maxDatagram, is invalid; the
// receiver drops it (the host counts and logs the first few) and keeps
// going: one bad datagram never ends the relay.
const (
	pktFamily4    = 4
	pktFamily6    = 6
	pktHeader4    = 3 + 4
	pktHeaderMax  = 3 + 16
	maxDatagram   = 1<<16 - 1
	pktMessageMax = pktHeaderMax + maxDatagram
	// pktSocketBuffer is the SO_SNDBUF/SO_RCVBUF asked for on both ends:
	// a uTP window of 16 KiB loopback datagrams fits without blocking.
	pktSocketBuffer = 4 << 20
)

// errBadDatagram is the decoder's error for a malformed message.
var errBadDatagram = errors.New("malformed datagram header")

// putDatagramHeader writes the header for ap at the end of b[:pktHeaderMax]
// and returns where it starts, so that the payload at b[pktHeaderMax:]
// follows it without a copy.
func putDatagramHeader(b []byte, ap netip.AddrPort) int {
	a := ap.Addr()
	if a.Is4() {
		off := pktHeaderMax - pktHeader4
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

// decodeDatagram splits one relay message into its peer address and its
// payload (a sub-slice of msg).
func decodeDatagram(msg []byte) (netip.AddrPort, []byte, error) {
	if len(msg) < pktHeader4 || len(msg) > pktMessageMax {
		return netip.AddrPort{}, nil, fmt.Errorf("%w: message of %d bytes", errBadDatagram, len(msg))
	}
	port := binary.BigEndian.Uint16(msg[1:3])
	switch msg[0] {
	case pktFamily4:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(msg[3:7])), port), msg[pktHeader4:], nil
	case pktFamily6:
		if len(msg) < pktHeaderMax {
			return netip.AddrPort{}, nil, fmt.Errorf("%w: IPv6 message of %d bytes", errBadDatagram, len(msg))
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(msg[3:19])), port), msg[pktHeaderMax:], nil
	}
	return netip.AddrPort{}, nil, fmt.Errorf("%w: family %d", errBadDatagram, msg[0])
}

// udpAddrPort turns a destination into an AddrPort.
func udpAddrPort(addr net.Addr) (netip.AddrPort, error) {
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

// ---- host side ----

// udpShare relays the swarm's shared UDP socket to the running plugin
// instance. One reader of pc lives as long as the share; each instance gets
// its own link (a socketpair end and a writer back to pc).
type udpShare struct {
	p    *proc
	pc   net.PacketConn
	log  *slog.Logger
	link atomic.Pointer[udpLink]

	attachMu sync.Mutex // serializes attach: one hand-off per instance

	mu      sync.Mutex
	closed  bool
	links   sync.WaitGroup // writers of every link
	readEnd chan struct{}  // closed when the pc reader returns

	bad     atomic.Uint64 // malformed messages from the plugin
	dropped atomic.Uint64 // datagrams for the plugin that found no link
}

// udpLink is one instance's end of a relay.
type udpLink struct {
	inst *instance
	uc   msgConn
}

// startUDPShare begins relaying pc; attach gives it to an instance.
func startUDPShare(p *proc, pc net.PacketConn) *udpShare {
	s := &udpShare{p: p, pc: pc, log: p.log, readEnd: make(chan struct{})}
	go s.readLoop()
	return s
}

// attach hands a fresh socketpair to inst (the UsePacketConn RPC) and
// starts relaying its datagrams to pc. It replaces the previous link.
// Attaching an instance that already has the link is a no-op.
func (s *udpShare) attach(ctx context.Context, inst *instance, use func(context.Context, *pb.UsePacketConnRequest) (*pb.ErrorReply, error)) error {
	s.attachMu.Lock()
	defer s.attachMu.Unlock()
	if l := s.link.Load(); l != nil && l.inst == inst {
		return nil
	}
	tok, slot := inst.fds.alloc()
	defer inst.fds.release(tok)
	reply, err := use(ctx, &pb.UsePacketConnRequest{Token: tok, Local: addrToProto(s.pc.LocalAddr())})
	if err != nil {
		return err
	}
	if err := decodeError(reply.GetError()); err != nil {
		return err
	}
	h, err := inst.fds.take(ctx, slot)
	if err != nil {
		return err
	}
	uc, err := inst.fds.packetLinkOf(h)
	if err != nil {
		return err
	}
	l := &udpLink{inst: inst, uc: uc}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		uc.Close()
		return fmt.Errorf("%w: plugin %s is closed", ErrUnavailable, s.p.name)
	}
	s.links.Add(1)
	old := s.link.Swap(l)
	s.mu.Unlock()
	if old != nil {
		old.uc.Close()
	}
	go s.writeLoop(l)
	return nil
}

// readLoop relays datagrams from the shared socket to the current link
// until pc fails or the share closes. The payload is read behind room for
// the longest header, which is then written just before it.
func (s *udpShare) readLoop() {
	defer close(s.readEnd)
	buf := make([]byte, pktMessageMax)
	for {
		n, addr, err := s.pc.ReadFrom(buf[pktHeaderMax:])
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			var ne net.Error
			if !closed && errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(time.Millisecond) // someone else's deadline: keep reading
				continue
			}
			if !closed {
				s.log.Debug("shared udp socket: relay to the plugin ends", "err", err)
			}
			return
		}
		ap, err := udpAddrPort(addr)
		if err != nil {
			continue
		}
		l := s.link.Load()
		if l == nil {
			s.dropped.Add(1)
			continue
		}
		off := putDatagramHeader(buf, ap)
		if err := l.uc.writeMsg(buf[off : pktHeaderMax+n]); err != nil {
			s.dropped.Add(1) // the instance is gone; its successor gets the next ones
		}
	}
}

// writeLoop relays the datagrams one instance sends to the shared socket
// until the instance's end closes (the plugin exited, or a new link or
// Close replaced it).
func (s *udpShare) writeLoop(l *udpLink) {
	defer s.links.Done()
	defer l.uc.Close()
	for {
		msg, err := l.uc.readMsg()
		if errors.Is(err, errBadDatagram) {
			if s.bad.Add(1) <= 10 {
				s.log.Warn("shared udp socket: dropping a malformed datagram from the plugin", "err", err)
			}
			continue
		}
		if err != nil { // EOF: the plugin's end is closed
			return
		}
		ap, payload, err := decodeDatagram(msg)
		if err != nil {
			if s.bad.Add(1) <= 10 {
				s.log.Warn("shared udp socket: dropping a malformed datagram from the plugin", "err", err)
			}
			continue
		}
		if _, err := s.pc.WriteTo(payload, net.UDPAddrFromAddrPort(ap)); err != nil {
			s.log.Debug("shared udp socket: send failed", "to", ap.String(), "err", err)
		}
	}
}

// close stops relaying: it unblocks the reader without closing pc (the
// swarm owns it), ends every link and waits for the relay goroutines.
func (s *udpShare) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	l := s.link.Swap(nil)
	s.mu.Unlock()
	if l != nil {
		l.uc.Close()
	}
	_ = s.pc.SetReadDeadline(time.Unix(1, 0))
	<-s.readEnd
	_ = s.pc.SetReadDeadline(time.Time{})
	s.links.Wait()
}

// ---- plugin side ----

// pluginPacketConn is the plugin's view of the swarm's shared UDP socket:
// a net.PacketConn over its end of the relay socketpair.
type pluginPacketConn struct {
	uc    msgConn
	local net.Addr

	rmu  sync.Mutex
	wbuf sync.Pool
}

func newPluginPacketConn(uc msgConn, local net.Addr) *pluginPacketConn {
	return &pluginPacketConn{uc: uc, local: local,
		wbuf: sync.Pool{New: func() any { b := make([]byte, pktMessageMax); return &b }}}
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
		msg, err := c.uc.readMsg()
		if errors.Is(err, errBadDatagram) {
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
		ap, payload, err := decodeDatagram(msg)
		if err != nil {
			continue // not from a dwebswarm host: drop, as UDP drops junk
		}
		return copy(b, payload), net.UDPAddrFromAddrPort(ap), nil
	}
}

// WriteTo sends b to addr through the host's socket.
func (c *pluginPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ap, err := udpAddrPort(addr)
	if err != nil {
		return 0, c.opErr("write", addr, err)
	}
	if len(b) > maxDatagram {
		return 0, c.opErr("write", addr, syscall.EMSGSIZE)
	}
	bp := c.wbuf.Get().(*[]byte)
	defer c.wbuf.Put(bp)
	buf := *bp
	copy(buf[pktHeaderMax:], b)
	off := putDatagramHeader(buf, ap)
	if err := c.uc.writeMsg(buf[off : pktHeaderMax+len(b)]); err != nil {
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

// ---- host-side adapters ----

// packetUser is the framework.PacketConnUser part of the host-side
// adapters: it hands the shared socket to the plugin when the plugin asked
// for it (Info's wants_packet_conn), and again to every restarted instance.
type packetUser struct {
	p   *proc
	use func(*instance) func(context.Context, *pb.UsePacketConnRequest) (*pb.ErrorReply, error)

	mu     sync.Mutex
	share  *udpShare
	closed bool
}

func (u *packetUser) wants() bool { return u.p.info.GetWantsPacketConn() }

// usePacketConn starts relaying pc to the plugin.
func (u *packetUser) usePacketConn(pc net.PacketConn) error {
	if !u.wants() {
		return nil // the plugin does not use the socket
	}
	if pc == nil {
		return fmt.Errorf("%s: UsePacketConn: nil PacketConn", u.p.name)
	}
	u.mu.Lock()
	switch {
	case u.closed:
		u.mu.Unlock()
		return fmt.Errorf("%s: UsePacketConn: %w", u.p.name, ErrUnavailable)
	case u.share != nil:
		u.mu.Unlock()
		return fmt.Errorf("%s: UsePacketConn called twice", u.p.name)
	}
	share := startUDPShare(u.p, pc)
	u.share = share
	u.mu.Unlock()
	err := u.p.call(context.Background(), "UsePacketConn", func(ctx context.Context, inst *instance) error {
		return share.attach(ctx, inst, u.use(inst))
	})
	if err != nil {
		u.mu.Lock()
		if u.share == share {
			u.share = nil
		}
		u.mu.Unlock()
		share.close()
		return fmt.Errorf("%s: shared udp socket: %w", u.p.name, err)
	}
	return nil
}

// prepare hands the socket to a restarted instance before it serves calls.
func (u *packetUser) prepare(inst *instance) error {
	u.mu.Lock()
	share := u.share
	u.mu.Unlock()
	if share == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), u.p.cfg.CallTimeout)
	defer cancel()
	if err := share.attach(ctx, inst, u.use(inst)); err != nil {
		return fmt.Errorf("hand the shared udp socket to the restarted plugin: %w", err)
	}
	return nil
}

// close stops relaying (pc stays open: the swarm owns it).
func (u *packetUser) close() {
	u.mu.Lock()
	u.closed = true
	share := u.share
	u.share = nil
	u.mu.Unlock()
	if share != nil {
		share.close()
	}
}
