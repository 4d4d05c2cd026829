package utp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/deadline"
)

var (
	_ framework.Transport      = (*Transport)(nil)
	_ framework.PacketConnUser = (*Transport)(nil)
	_ framework.Listener       = (*Listener)(nil)
)

// Name is the transport's name, reported as the connection type.
const Name = "utp"

// Defaults of Config.
const (
	DefaultDialTimeout = 10 * time.Second
	DefaultIdleTimeout = 30 * time.Second
	DefaultKeepAlive   = 10 * time.Second
	DefaultLinger      = 30 * time.Second
	DefaultReadBuffer  = 4 << 20
	DefaultWriteBuffer = 1 << 20
	// DefaultPacketSize is the largest datagram sent to a peer that is not
	// on loopback: 1400 bytes fit every common path MTU (Ethernet, PPPoE,
	// most tunnels) without fragmentation.
	DefaultPacketSize = 1400
	// DefaultLoopbackPacketSize is the largest datagram sent to a loopback
	// peer that said it reads that much (the loopback MTU is 64 KiB; see
	// doc.go for the measurements).
	DefaultLoopbackPacketSize = 16 << 10
	DefaultBacklog            = 128
)

// Config tunes a Transport. The zero value is valid: every zero field
// takes its default.
type Config struct {
	// DialTimeout bounds a dial when ctx has no earlier deadline.
	DialTimeout time.Duration
	// IdleTimeout: a connection whose peer sent nothing at all (data,
	// acks or keep-alives) for this long fails with ErrPeerSilent.
	IdleTimeout time.Duration
	// KeepAlive is how long a connection may stay quiet before it sends a
	// keep-alive (it also keeps NAT mappings open).
	KeepAlive time.Duration
	// Linger bounds how long a closed connection keeps delivering the data
	// written before Close.
	Linger time.Duration
	// ReadBuffer is the receive buffer per connection, in bytes. The
	// window advertised is at most ReadBuffer and at most a quarter of the
	// UDP socket's receive buffer (SO_RCVBUF; 208 KiB assumed for a
	// PacketConn that does not tell): a larger window lets a peer send
	// more in a burst than the kernel holds.
	ReadBuffer int
	// WriteBuffer is how many bytes Write queues beyond those in flight.
	WriteBuffer int
	// PacketSize is the largest datagram (header included) sent to a
	// peer. LoopbackPacketSize is the largest sent to a loopback peer that
	// said in its SYN or SYN-ACK that it reads datagrams that large (ours
	// do; libutp and anacrolix/utp do not say, and anacrolix/utp reads
	// only 8 KiB, so they get PacketSize datagrams).
	PacketSize         int
	LoopbackPacketSize int
	// Backlog is the number of inbound connections waiting for Accept.
	// A connection enters it once its peer answered our SYN-ACK; one that
	// answers while the backlog is full is reset.
	Backlog int

	// HalfOpenTimeout is how long a half-open connection (SYN received,
	// SYN-ACK sent, no answer from the peer yet) waits for the answer; it
	// then ends without a packet sent. Half-open connections do not count
	// toward Backlog (nor a swarm's maxPeers): Accept never sees them.
	HalfOpenTimeout time.Duration
	// MaxHalfOpen bounds the half-open connections; at the bound the
	// oldest gives way to a new one. MaxHalfOpenPerIP bounds those of
	// one source IP address; its further SYNs are dropped.
	MaxHalfOpen, MaxHalfOpenPerIP int
	// SynRate and SynBurst are a token bucket per source IP address:
	// SYNs (repeated ones included) beyond SynRate a second, after a burst
	// of SynBurst, are dropped unanswered. MaxSynSources bounds the
	// sources tracked; sources beyond it share one bucket.
	SynRate       float64
	SynBurst      int
	MaxSynSources int
}

// orDefault sets *p to def when it is zero or negative (unset).
func orDefault[T int | float64 | time.Duration](p *T, def T) {
	if *p <= 0 {
		*p = def
	}
}

func (c *Config) setDefaults() error {
	orDefault(&c.DialTimeout, DefaultDialTimeout)
	orDefault(&c.IdleTimeout, DefaultIdleTimeout)
	orDefault(&c.KeepAlive, DefaultKeepAlive)
	orDefault(&c.Linger, DefaultLinger)
	orDefault(&c.ReadBuffer, DefaultReadBuffer)
	orDefault(&c.WriteBuffer, DefaultWriteBuffer)
	orDefault(&c.PacketSize, DefaultPacketSize)
	orDefault(&c.LoopbackPacketSize, DefaultLoopbackPacketSize)
	orDefault(&c.Backlog, DefaultBacklog)
	for _, v := range []struct {
		name string
		n    int
	}{{"PacketSize", c.PacketSize}, {"LoopbackPacketSize", c.LoopbackPacketSize}} {
		if v.n < headerLen+64 || v.n > maxPacket-64 {
			return fmt.Errorf("%w: utp %s %d out of range %d-%d", framework.ErrInvalidOption, v.name, v.n, headerLen+64, maxPacket-64)
		}
	}
	if c.ReadBuffer < c.LoopbackPacketSize || c.ReadBuffer < c.PacketSize {
		return fmt.Errorf("%w: utp ReadBuffer %d smaller than a packet", framework.ErrInvalidOption, c.ReadBuffer)
	}
	return c.halfOpenDefaults()
}

// Transport is the uTP transport. It runs on the swarm's shared UDP socket,
// which it receives through UsePacketConn; it never closes that socket.
type Transport struct {
	cfg Config

	mu      sync.Mutex
	sock    *socket
	pending *Listener // Listen called before UsePacketConn
}

// New returns a uTP transport tuned by cfg (the zero Config: every
// default). It opens nothing: the transport runs on the swarm's shared UDP
// socket, handed to it by UsePacketConn when the swarm starts. A cfg
// field out of range fails with an error wrapping
// [framework.ErrInvalidOption].
func New(cfg Config) (*Transport, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Transport{cfg: cfg}, nil
}

// Name returns "utp".
func (t *Transport) Name() string { return Name }

// UsePacketConn hands the transport the UDP socket to run on (the swarm's
// shared socket, non-KRPC side). It is called once; the transport reads
// every packet from pc and never closes it.
func (t *Transport) UsePacketConn(pc net.PacketConn) error {
	if pc == nil {
		return errors.New("utp: nil PacketConn")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sock != nil {
		return errors.New("utp: UsePacketConn called twice")
	}
	port := addrPort(pc.LocalAddr())
	if l := t.pending; l != nil && l.port != 0 && l.port != port {
		return fmt.Errorf("utp: the listener is on port %d but the shared UDP socket on port %d", l.port, port)
	}
	t.sock = newSocket(pc, &t.cfg)
	if l := t.pending; l != nil {
		t.pending = nil
		t.attachLocked(l)
	}
	t.sock.start()
	return nil
}

func (t *Transport) attachLocked(l *Listener) {
	s := t.sock
	s.mu.Lock()
	l.sock = s
	if !l.isClosed() {
		s.ln = l
	}
	s.mu.Unlock()
	close(l.attached)
}

// Listen returns a listener on the shared UDP socket. The swarm binds that
// socket on the same port number as its other transports: when
// UsePacketConn was called already, port must be 0 or the socket's port;
// when it was not (the engine binds transports first, then the socket), the
// listener reserves the port number (port 0: a free UDP port is picked)
// and starts accepting once UsePacketConn hands it the socket. Accept on a
// listener that never got a socket fails with ErrNoPacketConn.
func (t *Transport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pending != nil {
		return nil, fmt.Errorf("%w: utp transport already listening", framework.ErrPortInUse)
	}
	if s := t.sock; s != nil {
		sp := addrPort(s.pc.LocalAddr())
		if port != 0 && port != sp {
			return nil, fmt.Errorf("%w: utp cannot listen on port %d: its shared UDP socket is bound on port %d", framework.ErrPortInUse, port, sp)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.ln != nil {
			return nil, fmt.Errorf("%w: utp transport already listening", framework.ErrPortInUse)
		}
		if s.closing || s.err != nil {
			return nil, fmt.Errorf("utp: listen: %w", net.ErrClosed)
		}
		l := newListener(t, host, sp)
		l.sock = s
		close(l.attached)
		s.ln = l
		return l, nil
	}
	if port == 0 {
		// pick a free UDP port for the swarm to bind its socket on
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("utp: pick a udp port: %w", err)
		}
		port = addrPort(pc.LocalAddr())
		pc.Close()
	}
	l := newListener(t, host, port)
	t.pending = l
	return l, nil
}

// Dial connects to peer.Addr() within Config.DialTimeout or ctx, whichever
// ends first. A peer that answers with RESET (nothing listens) fails at
// once with an error wrapping syscall.ECONNREFUSED; a silent one fails at
// the timeout with an error wrapping context.DeadlineExceeded.
func (t *Transport) Dial(ctx context.Context, peer framework.Peer) (net.Conn, error) {
	t.mu.Lock()
	s := t.sock
	t.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("utp: dial %s: %w", peer.Addr(), ErrNoPacketConn)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("utp: dial %s: %w", peer.Addr(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	ap, err := resolve(ctx, peer)
	if err != nil {
		return nil, fmt.Errorf("utp: dial %s: %w", peer.Addr(), err)
	}
	c, err := s.newClientConn(ap)
	if err != nil {
		return nil, fmt.Errorf("utp: dial %s: %w", peer.Addr(), err)
	}
	rto := 250 * time.Millisecond
	timer := time.NewTimer(0)
	defer timer.Stop()
	tries := 0
	for {
		select {
		case <-c.established:
			return c, nil
		case <-c.done:
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return nil, fmt.Errorf("utp: dial %s: %w", peer.Addr(), err)
		case <-ctx.Done():
			c.mu.Lock()
			c.fail(ctx.Err())
			c.mu.Unlock()
			select {
			case <-c.established: // raced: the peer has a connection; tell it
				c.mu.Lock()
				c.sendReset()
				c.mu.Unlock()
			default:
			}
			if tries > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("utp: dial %s: no answer to %d SYNs: %w", peer.Addr(), tries, ctx.Err())
			}
			return nil, fmt.Errorf("utp: dial %s: %w", peer.Addr(), ctx.Err())
		case <-timer.C:
			c.mu.Lock()
			c.sendSyn()
			c.mu.Unlock()
			tries++
			timer.Reset(rto)
			rto = min(2*rto, 2*time.Second)
		}
	}
}

// sendSyn sends (or repeats) the SYN of a dial (c.mu held).
func (c *Conn) sendSyn() {
	if c.state != csSynSent {
		return
	}
	if c.synCount == 0 {
		c.synAt = time.Now()
	}
	c.synCount++
	var b [headerLen + extDatagramLen]byte
	h := c.header(stSyn, c.isn)
	h.connID = c.key.id // a SYN carries our receive id
	h.maxDgram = maxPacket
	n := putHeader(b[:], &h)
	c.write(b[:n])
	c.seqNr = c.isn + 1
}

// Close stops the transport: every connection is reset, the listener (if
// any) stops and the read loop ends. The shared socket stays open. The
// swarm does not need to call it: closing the socket has the same effect.
func (t *Transport) Close() error {
	t.mu.Lock()
	s, l := t.sock, t.pending
	t.mu.Unlock()
	if l != nil {
		l.Close()
	}
	if s != nil {
		s.mu.Lock()
		l = s.ln
		s.mu.Unlock()
		if l != nil {
			l.Close()
		}
		s.close()
	}
	return nil
}

// Stats are counters of a transport's socket.
type Stats struct {
	// Conns is the number of live connections (including closed ones still
	// delivering their last data).
	Conns int
	// Ignored counts datagrams that were not uTP or matched no connection.
	Ignored uint64
	// Retransmits counts data and FIN packets sent again; Timeouts counts
	// retransmission timeouts.
	Retransmits, Timeouts uint64
	// SpuriousRecoveries counts loss recoveries undone because the
	// resend that began them proved unneeded: the peer's ack was sent
	// before the resend reached it (its timestamps tell), so the
	// original had arrived and the congestion window is restored.
	SpuriousRecoveries uint64
	// HalfOpen is the number of half-open connections (SYN-ACK sent, no
	// answer yet), included in Conns.
	HalfOpen int
	// SynsAnswered counts half-open connections whose peer answered
	// (they went to the accept backlog).
	SynsAnswered uint64
	// SynsRateLimited and SynsOverCap count SYNs dropped unanswered: over
	// their source's SYN rate, or over its half-open share.
	SynsRateLimited, SynsOverCap uint64
	// HalfOpenEvicted counts half-open connections that gave way at
	// MaxHalfOpen; HalfOpenExpired those whose peer never answered;
	// BacklogFull answered connections reset because the backlog was full.
	HalfOpenEvicted, HalfOpenExpired, BacklogFull uint64
}

// Stats returns the transport's counters (zero before UsePacketConn).
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	s := t.sock
	t.mu.Unlock()
	if s == nil {
		return Stats{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Conns: len(s.conns), Ignored: s.ignored.Load(),
		Retransmits: s.retransmits.Load(), Timeouts: s.timeouts.Load(),
		SpuriousRecoveries: s.spurious.Load(),
		HalfOpen:           s.half.Len(), SynsAnswered: s.synsAnswered.Load(),
		SynsRateLimited: s.synsLimited.Load(), SynsOverCap: s.synsOverCap.Load(),
		HalfOpenEvicted: s.halfEvicted.Load(), HalfOpenExpired: s.halfExpired.Load(),
		BacklogFull: s.backlogFull.Load()}
}

// Listener accepts uTP connections on the shared socket.
type Listener struct {
	t        *Transport
	host     string
	port     int
	backlog  chan *Conn
	attached chan struct{} // closed once the socket is known
	sock     *socket       // set when attached (under the socket's mu)

	closeOnce sync.Once
	closed    chan struct{}
}

func newListener(t *Transport, host string, port int) *Listener {
	return &Listener{
		t: t, host: host, port: port,
		backlog:  make(chan *Conn, t.cfg.Backlog),
		attached: make(chan struct{}),
		closed:   make(chan struct{}),
	}
}

func (l *Listener) isClosed() bool { return deadline.Closed(l.closed) }

// Accept waits for an inbound connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case <-l.attached:
	case <-l.closed:
		return nil, l.opErr(net.ErrClosed)
	default:
		return nil, l.opErr(ErrNoPacketConn)
	}
	select {
	case c := <-l.backlog:
		return c, nil
	case <-l.closed:
		return nil, l.opErr(net.ErrClosed)
	case <-l.sock.done:
		return nil, l.opErr(net.ErrClosed)
	}
}

// Close stops accepting: later SYNs are answered with RESET and
// connections waiting in the backlog are reset. Established connections
// stay open.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.t.mu.Lock()
		if l.t.pending == l {
			l.t.pending = nil
		}
		s := l.t.sock
		l.t.mu.Unlock()
		if s != nil {
			s.mu.Lock()
			if s.ln == l {
				s.ln = nil
			}
			s.mu.Unlock()
		}
		for {
			select {
			case c := <-l.backlog:
				c.Close()
				continue
			default:
			}
			break
		}
	})
	return nil
}

// Addr is the shared UDP socket's address (before the socket is handed
// over: host and the reserved port).
func (l *Listener) Addr() net.Addr {
	select {
	case <-l.attached:
		return l.sock.pc.LocalAddr()
	default:
	}
	ip := net.ParseIP(l.host)
	return &net.UDPAddr{IP: ip, Port: l.port}
}

func (l *Listener) opErr(err error) error {
	return &net.OpError{Op: "accept", Net: "utp", Addr: l.Addr(), Err: err}
}

// resolve turns a peer into a UDP address (host names go through the
// resolver with ctx).
func resolve(ctx context.Context, p framework.Peer) (netip.AddrPort, error) {
	if p.Port < 1 || p.Port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %d out of range", p.Port)
	}
	ip, err := netip.ParseAddr(p.Host)
	if err != nil {
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", p.Host)
		if err != nil {
			return netip.AddrPort{}, err
		}
		if len(ips) == 0 {
			return netip.AddrPort{}, fmt.Errorf("no address for %q", p.Host)
		}
		ip = ips[0]
	}
	return netip.AddrPortFrom(ip.Unmap().WithZone(""), uint16(p.Port)), nil
}

func addrPort(a net.Addr) int {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.Port
	}
	if a == nil {
		return 0
	}
	_, ps, err := net.SplitHostPort(a.String())
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(ps)
	return n
}

// WantsPeer implements framework.DialFilter: beside other transports, uTP
// is tried for peers with a referrer (found on the DHT: possibly behind a
// NAT, reachable after a hole punch), as the semantics' dial order says.
// A swarm whose only transport is uTP dials every peer with it.
func (t *Transport) WantsPeer(p framework.Peer) bool { return p.Referrer != nil }

// Drain waits until every connection, closed ones still delivering their
// last data included, has finished, or ctx ends. The swarm calls it at
// Close before it closes the shared socket, so that data written before a
// Close is not lost when the process exits (what the kernel does for TCP).
func (t *Transport) Drain(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for st := t.Stats(); st.Conns > st.HalfOpen; st = t.Stats() { // half-open ones have nothing to deliver
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
