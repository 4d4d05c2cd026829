package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/dwebswarm/dwebswarm-go/internal/udpmux"
)

var netErrClosed = net.ErrClosed

// listen binds every transport (and the shared UDP socket when a plugin
// uses it) on one port number, following the port choice: exact port, else
// preferred, +1, +2, then random.
func (s *Swarm) listen(ctx context.Context) ([]Listener, *udpmux.Mux, int, error) {
	host := s.cfg.listenHost
	if s.cfg.port != 0 {
		ls, mux, port, err := s.listenAll(ctx, host, s.cfg.port)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("listen on port %d: %w", s.cfg.port, err)
		}
		return ls, mux, port, nil
	}
	var tries []int
	if p := s.cfg.preferredPort; p != 0 {
		for i := 0; i < 3 && p+i <= 65535; i++ {
			tries = append(tries, p+i)
		}
	}
	for range 8 {
		tries = append(tries, 0)
	}
	var last error
	for _, p := range tries {
		ls, mux, port, err := s.listenAll(ctx, host, p)
		if err == nil {
			return ls, mux, port, nil
		}
		if !errors.Is(err, ErrPortInUse) {
			return nil, nil, 0, fmt.Errorf("listen on port %d: %w", p, err)
		}
		last = err
	}
	return nil, nil, 0, fmt.Errorf("listen: no free port: %w", last)
}

// needsUDP reports whether any plugin uses the shared UDP socket.
func (s *Swarm) needsUDP() bool {
	for _, d := range s.discoveries {
		if usesPacketConn(d) {
			return true
		}
	}
	for _, t := range s.transports {
		if usesPacketConn(t) {
			return true
		}
	}
	return false
}

// listenAll binds every transport on port (0: the first transport picks),
// then the shared UDP socket on the same port number if needed.
func (s *Swarm) listenAll(ctx context.Context, host string, port int) ([]Listener, *udpmux.Mux, int, error) {
	var ls []Listener
	fail := func(err error) ([]Listener, *udpmux.Mux, int, error) {
		for _, x := range ls {
			x.Close()
		}
		return nil, nil, 0, err
	}
	for _, t := range s.transports {
		l, err := t.Listen(ctx, host, port)
		if err != nil {
			return fail(fmt.Errorf("%s: %w", t.Name(), err))
		}
		ls = append(ls, l)
		if port == 0 {
			port = addrPort(l.Addr())
		}
	}
	if !s.needsUDP() {
		return ls, nil, port, nil
	}
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			err = fmt.Errorf("%w: udp port %d", ErrPortInUse, port)
		}
		return fail(err)
	}
	return ls, udpmux.New(pc.(*net.UDPConn), udpmux.Options{}), port, nil
}

// shareUDP hands the shared socket's two sides to the plugins that use it.
func (s *Swarm) shareUDP(mux *udpmux.Mux) error {
	for _, d := range s.discoveries {
		if u, ok := As[PacketConnUser](d); ok {
			if err := u.UsePacketConn(mux.KRPC()); err != nil {
				return fmt.Errorf("discovery %s: shared udp socket: %w", d.Name(), err)
			}
		}
	}
	for _, t := range s.transports {
		if u, ok := As[PacketConnUser](t); ok {
			if err := u.UsePacketConn(mux.Other()); err != nil {
				return fmt.Errorf("transport %s: shared udp socket: %w", t.Name(), err)
			}
		}
	}
	return nil
}

func addrPort(a net.Addr) int {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.Port
	case *net.UDPAddr:
		return v.Port
	}
	_, p, err := net.SplitHostPort(a.String())
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscanf(p, "%d", &n)
	return n
}

// acceptLoop accepts inbound connections until the listener closes.
func (s *Swarm) acceptLoop(l Listener, t Transport) {
	defer s.wg.Done()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			select {
			case <-s.closeCh:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// transient (e.g. EMFILE): back off like net/http, bounded
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "transport", t.Name(), "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-s.closeCh:
				return
			}
			continue
		}
		delay = 0
		s.accepted(nc, t)
	}
}

// refuseInboundLocked reports why an inbound connection must be refused,
// or nil, with the name of the limit that refuses it.
func (s *Swarm) refuseInboundLocked() (string, error) {
	c := s.cfg
	servers := s.servers + s.srvClaims // inbound sessions accepted in their handshake hold their slot
	switch {
	case s.closed:
		return "", ErrClosed
	case c.maxServerSockets == -1:
		return "refuseInbound", fmt.Errorf("%w: maxServerSockets -1 refuses inbound connections", ErrLimit)
	case c.maxServerSockets > 0 && servers >= c.maxServerSockets:
		return "maxServerSockets", fmt.Errorf("%w: maxServerSockets %d", ErrLimit, c.maxServerSockets)
	case s.clients+servers+s.dialing >= c.maxPeers:
		return "maxPeers", fmt.Errorf("%w: maxPeers %d", ErrLimit, c.maxPeers)
	case servers >= c.maxPeers-s.reserve:
		return "inboundShare", fmt.Errorf("%w: inbound share %d of maxPeers %d (%d kept for dials)", ErrLimit, c.maxPeers-s.reserve, c.maxPeers, s.reserve)
	}
	return "", nil
}

// maxDisplace bounds how many silent connections one inbound connection
// displaces while other accept loops take the freed slots.
const maxDisplace = 4

// accepted admits nc, displacing the oldest unproven inbound connection
// when a limit is reached, or refuses it.
func (s *Swarm) accepted(nc net.Conn, t Transport) {
	if !s.cfg.plaintext {
		s.acceptedSecure(nc, t)
		return
	}
	for try := 0; ; try++ {
		s.mu.Lock()
		limit, err := s.refuseInboundLocked()
		if err == nil {
			break // s.mu held
		}
		var victim *Conn
		if errors.Is(err, ErrLimit) && limit != "refuseInbound" && try < maxDisplace {
			victim = s.oldestSilentLocked()
		}
		if victim == nil {
			s.mu.Unlock()
			s.log.Debug("inbound refused", "remote", nc.RemoteAddr().String(), "reason", err)
			nc.Close()
			s.inboundRefused(nc, t, limit, err)
			return
		}
		s.mu.Unlock()
		s.log.Debug("silent inbound connection displaced", "remote", remoteString(victim), "by", nc.RemoteAddr().String(), "limit", limit)
		victim.closeWith(fmt.Errorf("%w by %s at the %s limit", ErrDisplaced, nc.RemoteAddr(), limit))
	}
	c := &Conn{Conn: nc, s: s, typ: t.Name()}
	s.registerLocked(c)
	s.watchLocked(c)
	s.mu.Unlock()
	s.handle(c)
}

// watchLocked tracks a new inbound connection until it proves itself: it
// joins the silent list (oldest first) and, with an unproven timeout, gets
// a timer that closes it. Caller holds s.mu.
func (s *Swarm) watchLocked(c *Conn) {
	s.silent = append(s.silent, c)
	c.silent = true
	if d := s.cfg.unprovenTimeout; d > 0 {
		c.proofTimer = s.cfg.clock.AfterFunc(d, func() { s.unprovenTimeout(c, d) })
	}
}

// oldestSilentLocked takes the oldest unproven inbound connection off the
// silent list, or returns nil. Caller holds s.mu.
func (s *Swarm) oldestSilentLocked() *Conn {
	if len(s.silent) == 0 {
		return nil
	}
	c := s.silent[0]
	s.unsilenceLocked(c)
	return c
}

// unsilenceLocked takes c off the silent list and stops its timer. Caller
// holds s.mu.
func (s *Swarm) unsilenceLocked(c *Conn) {
	if !c.silent {
		return
	}
	c.silent = false
	if i := slices.Index(s.silent, c); i >= 0 {
		s.silent = slices.Delete(s.silent, i, i+1)
	}
	if c.proofTimer != nil {
		c.proofTimer.Stop()
	}
}

// proved marks c proven: a Read returned a byte.
func (s *Swarm) proved(c *Conn) {
	s.mu.Lock()
	s.unsilenceLocked(c)
	s.mu.Unlock()
}

// unprovenTimeout closes c if it is still silent after d.
func (s *Swarm) unprovenTimeout(c *Conn, d time.Duration) {
	s.mu.Lock()
	silent := c.silent
	s.unsilenceLocked(c)
	s.mu.Unlock()
	if silent {
		s.log.Debug("silent inbound connection closed", "remote", remoteString(c), "after", d)
		c.closeWith(fmt.Errorf("%w: no byte read within %v", ErrUnproven, d))
	}
}
