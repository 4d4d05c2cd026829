package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

// The host side of the swarm's shared UDP socket, out of process: the
// relay between the socket and a plugin instance's end of its socketpair
// (layout and rules beside the wire code, internal/wire/packetconn.go),
// and the adapters' framework.PacketConnUser.

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
	uc   wire.MsgConn
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
	tok, slot := inst.fds.Alloc()
	defer inst.fds.Release(tok)
	reply, err := use(ctx, &pb.UsePacketConnRequest{Token: tok, Local: wire.AddrToProto(s.pc.LocalAddr())})
	if err != nil {
		return err
	}
	if err := wire.DecodeError(reply.GetError()); err != nil {
		return err
	}
	h, err := inst.fds.Take(ctx, slot)
	if err != nil {
		return err
	}
	uc, err := inst.fds.PacketLinkOf(h)
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
	buf := make([]byte, wire.PktMessageMax)
	for {
		n, addr, err := s.pc.ReadFrom(buf[wire.PktHeaderMax:])
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
		ap, err := wire.UDPAddrPort(addr)
		if err != nil {
			continue
		}
		l := s.link.Load()
		if l == nil {
			s.dropped.Add(1)
			continue
		}
		off := wire.PutDatagramHeader(buf, ap)
		if err := l.uc.WriteMsg(buf[off : wire.PktHeaderMax+n]); err != nil {
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
		msg, err := l.uc.ReadMsg()
		if errors.Is(err, wire.ErrBadDatagram) {
			if s.bad.Add(1) <= 10 {
				s.log.Warn("shared udp socket: dropping a malformed datagram from the plugin", "err", err)
			}
			continue
		}
		if err != nil { // EOF: the plugin's end is closed
			return
		}
		ap, payload, err := wire.DecodeDatagram(msg)
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
