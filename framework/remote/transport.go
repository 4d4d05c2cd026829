package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire"
	pb "github.com/dwebswarm/dwebswarm-go/framework/remote/internal/wire/proto"
)

var (
	_ framework.Transport      = (*Transport)(nil)
	_ framework.Ordered        = (*Transport)(nil)
	_ framework.PacketConnUser = (*Transport)(nil)
)

// Transport is a [framework.Transport] served by a plugin binary. Kernel
// sockets the plugin dials, accepts or listens on are handed to the host
// by fd: the host uses them natively (full speed) and they survive the
// plugin. Connections of user-space transports are relayed through a
// socketpair; they end with an error wrapping [ErrCrashed] if the plugin
// dies. Listeners that stay in the plugin are re-opened on the same port
// after a restart.
//
// Where no fds can be passed (Windows) every connection is relayed and
// every listener stays in the plugin.
//
// A plugin whose transport uses the swarm's shared UDP socket (uTP) gets
// it relayed: see [Transport.UsePacketConn].
type Transport struct {
	p     *proc
	order int
	pu    *packetUser
}

// NewTransport starts the plugin binary and checks that it serves a
// transport. Close it when done (the swarm does not close transports).
func NewTransport(cfg Config) (*Transport, error) {
	p, err := newProc(cfg, KindTransport)
	if err != nil {
		return nil, err
	}
	t := &Transport{p: p, order: int(p.info.GetOrder())}
	t.pu = &packetUser{p: p, use: func(inst *instance) func(context.Context, *pb.UsePacketConnRequest) (*pb.ErrorReply, error) {
		return func(ctx context.Context, req *pb.UsePacketConnRequest) (*pb.ErrorReply, error) {
			return inst.transport().UsePacketConn(ctx, req)
		}
	}}
	p.prepare = t.pu.prepare
	return t, nil
}

// UsePacketConn implements [framework.PacketConnUser]. When the plugin's
// transport uses the shared UDP socket ([Transport.WantsPacketConn]), the
// host relays pc's datagrams to and from the plugin through a socketpair,
// handed again to every restarted instance; otherwise it does nothing. It
// never closes pc. Call it once, before Dial (the swarm does, at Start).
func (t *Transport) UsePacketConn(pc net.PacketConn) error { return t.pu.usePacketConn(pc) }

// WantsPacketConn reports whether the plugin's transport uses the shared
// UDP socket (its Info said so).
func (t *Transport) WantsPacketConn() bool { return t.pu.wants() }

// Name returns the plugin's name (or Config.Name).
func (t *Transport) Name() string { return t.p.name }

// Order returns the plugin's order (framework.Ordered).
func (t *Transport) Order() int { return t.order }

// PID returns the process id of the running plugin, 0 while none runs.
func (t *Transport) PID() int { return t.p.pid() }

// Close stops the plugin. Connections and listeners handed off by fd stay
// open; relayed connections and remote listeners end.
func (t *Transport) Close() error {
	t.pu.close()
	t.p.close()
	return nil
}

func (inst *instance) transport() pb.TransportClient { return pb.NewTransportClient(inst.conn) }

// Dial asks the plugin to dial peer and adopts the connection.
func (t *Transport) Dial(ctx context.Context, peer framework.Peer) (net.Conn, error) {
	if err := peer.Validate(); err != nil {
		return nil, err
	}
	var conn net.Conn
	err := t.p.call(ctx, "Dial", func(ctx context.Context, inst *instance) error {
		tok, s := inst.fds.Alloc()
		reply, err := inst.transport().Dial(ctx, &pb.DialRequest{Peer: wire.PeerToProto(peer), Token: tok})
		if err != nil {
			inst.fds.Release(tok)
			return err
		}
		conn, err = inst.adoptConn(ctx, tok, s, reply)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", t.p.name, peer.Addr(), err)
	}
	return conn, nil
}

// adoptConn turns a connection reply into a net.Conn. It releases the token
// on error and for fd hand-offs; a relay keeps it until the conn closes.
func (inst *instance) adoptConn(ctx context.Context, tok uint64, s *wire.Slot, reply *pb.ConnReply) (net.Conn, error) {
	if reply == nil {
		inst.fds.Release(tok)
		return nil, wire.BadReply("empty reply")
	}
	if err := wire.DecodeError(reply.GetError()); err != nil {
		inst.fds.Release(tok)
		return nil, err
	}
	kind, local, remote, err := wire.CheckHandoff(reply.GetConn(), tok)
	if err != nil {
		inst.fds.Release(tok)
		return nil, err
	}
	h, err := inst.fds.Take(ctx, s)
	if err != nil {
		inst.fds.Release(tok)
		return nil, err
	}
	if kind == pb.Handoff_HANDOFF_FD {
		inst.fds.Release(tok)
		return inst.fds.ConnOf(h)
	}
	uc, err := inst.fds.RelayOf(h)
	if err != nil {
		inst.fds.Release(tok)
		return nil, err
	}
	return &relayConn{uc: uc, local: local, remote: remote, fds: inst.fds, tok: tok, s: s, plugin: inst.p.name}, nil
}

// Listen asks the plugin to listen. A kernel listener is handed off and
// accepted on natively; otherwise the host accepts through the plugin.
func (t *Transport) Listen(ctx context.Context, host string, port int) (framework.Listener, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d out of range 0-65535", framework.ErrInvalidOption, port)
	}
	var l framework.Listener
	err := t.p.call(ctx, "Listen", func(ctx context.Context, inst *instance) error {
		var err error
		l, err = inst.listen(ctx, host, port, t)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: listen %s: %w", t.p.name, net.JoinHostPort(host, fmt.Sprint(port)), err)
	}
	return l, nil
}

func (inst *instance) listen(ctx context.Context, host string, port int, t *Transport) (framework.Listener, error) {
	tok, s := inst.fds.Alloc()
	defer inst.fds.Release(tok)
	reply, err := inst.transport().Listen(ctx, &pb.ListenRequest{Host: host, Port: int32(port), Token: tok})
	if err != nil {
		return nil, err
	}
	if err := wire.DecodeError(reply.GetError()); err != nil {
		return nil, err
	}
	addr, err := wire.AddrFromProto(reply.GetAddr())
	if err != nil {
		return nil, err
	}
	switch reply.GetKind() {
	case pb.Handoff_HANDOFF_FD:
		if reply.GetToken() != tok {
			return nil, wire.BadReply("listener token %d, want %d", reply.GetToken(), tok)
		}
		h, err := inst.fds.Take(ctx, s)
		if err != nil {
			return nil, err
		}
		return inst.fds.ListenerOf(h)
	case pb.Handoff_HANDOFF_REMOTE:
		if reply.GetListenerId() == 0 {
			return nil, wire.BadReply("remote listener without an id")
		}
		if wire.AddrPort(addr) == 0 && port != 0 {
			return nil, wire.BadReply("listener address %s reports no port", addr)
		}
		ctx, cancel := context.WithCancel(context.Background())
		return &remoteListener{t: t, host: host, port: wire.AddrPort(addr), addr: addr, inst: inst, id: reply.GetListenerId(), ctx: ctx, cancel: cancel}, nil
	}
	return nil, wire.BadReply("listener hand-off kind %v", reply.GetKind())
}

// remoteListener accepts through the plugin (user-space listeners).
type remoteListener struct {
	t      *Transport
	host   string
	port   int
	addr   net.Addr
	ctx    context.Context // cancelled by Close: ends a pending Accept
	cancel context.CancelFunc

	mu     sync.Mutex
	inst   *instance
	id     uint64
	native net.Listener // after a restart handed the listener off by fd
	closed bool
}

func (l *remoteListener) Addr() net.Addr { return l.addr }

func (l *remoteListener) closedErr() error {
	return &net.OpError{Op: "accept", Net: l.addr.Network(), Addr: l.addr, Err: net.ErrClosed}
}

// Accept returns the next connection. After a plugin crash it fails with
// ErrUnavailable until the plugin is back, then listens again on the same
// port (the swarm's accept loop retries with backoff).
func (l *remoteListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, l.closedErr()
	}
	inst, id, native := l.inst, l.id, l.native
	l.mu.Unlock()
	if native != nil {
		return native.Accept()
	}
	if inst.dead() {
		if err := l.relisten(); err != nil {
			return nil, err
		}
		return l.Accept()
	}
	tok, s := inst.fds.Alloc()
	reply, err := inst.transport().Accept(l.ctx, &pb.AcceptRequest{ListenerId: id, Token: tok})
	if err != nil {
		inst.fds.Release(tok)
		if l.ctx.Err() != nil {
			return nil, l.closedErr()
		}
		if inst.dead() {
			return nil, fmt.Errorf("%s: accept: %w: the plugin exited", l.t.p.name, ErrUnavailable)
		}
		return nil, fmt.Errorf("%s: accept: %w", l.t.p.name, l.t.p.mapErr(l.ctx, l.ctx, "Accept", inst, err))
	}
	if e := reply.GetError(); e != nil && e.GetCode() == pb.Error_NET_CLOSED {
		inst.fds.Release(tok)
		return nil, l.closedErr()
	}
	ctx, cancel := context.WithTimeout(l.ctx, l.t.p.cfg.CallTimeout)
	defer cancel()
	c, err := inst.adoptConn(ctx, tok, s, reply)
	if err != nil {
		return nil, fmt.Errorf("%s: accept: %w", l.t.p.name, err)
	}
	return c, nil
}

// relisten opens the listener again on the restarted plugin.
func (l *remoteListener) relisten() error {
	ctx, cancel := context.WithTimeout(l.ctx, l.t.p.cfg.CallTimeout)
	defer cancel()
	inst, err := l.t.p.acquire(ctx)
	if err != nil {
		if l.ctx.Err() != nil {
			return l.closedErr()
		}
		return fmt.Errorf("%s: accept: %w", l.t.p.name, err)
	}
	nl, err := inst.listen(ctx, l.host, l.port, l.t)
	if err != nil {
		return fmt.Errorf("%s: accept: listen again after a restart: %w", l.t.p.name, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		nl.Close()
		return l.closedErr()
	}
	if rl, ok := nl.(*remoteListener); ok {
		l.inst, l.id = rl.inst, rl.id
		rl.cancel()
	} else {
		l.native = nl
	}
	l.t.p.log.Info("listening again after a plugin restart", "addr", l.addr.String())
	return nil
}

// Close ends a pending Accept and closes the listener in the plugin.
func (l *remoteListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	inst, id, native := l.inst, l.id, l.native
	l.mu.Unlock()
	l.cancel()
	if native != nil {
		return native.Close()
	}
	if inst.dead() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.t.p.cfg.CallTimeout)
	defer cancel()
	reply, err := inst.transport().CloseListener(ctx, &pb.CloseListenerRequest{ListenerId: id})
	if err != nil {
		if inst.dead() {
			return nil
		}
		return l.t.p.mapErr(ctx, ctx, "CloseListener", inst, err)
	}
	if err := wire.DecodeError(reply.GetError()); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// relayWait bounds how long a relayed connection waits, at EOF, to learn
// whether the plugin ended it cleanly.
const relayWait = 5 * time.Second

// relayConn is the host end of a relayed connection: a unix socket that
// reports the true addresses, and turns an EOF caused by the plugin's death
// into an error wrapping ErrCrashed (a truncated stream must not look whole).
type relayConn struct {
	uc            wire.StreamConn
	local, remote net.Addr
	fds           *wire.FDChan
	tok           uint64
	s             *wire.Slot
	plugin        string
	once          sync.Once
}

func (c *relayConn) Read(b []byte) (int, error) {
	n, err := c.uc.Read(b)
	if errors.Is(err, io.EOF) || (err != nil && wire.IsConnReset(err)) {
		if eerr := c.endErr(); eerr != nil {
			return n, eerr
		}
	}
	return n, err
}

// endErr returns nil for a clean end, else why the relay was cut.
func (c *relayConn) endErr() error {
	select {
	case <-c.s.Ended():
		return c.s.EndErr()
	default:
	}
	t := time.NewTimer(relayWait)
	defer t.Stop()
	select {
	case <-c.s.Ended():
		return c.s.EndErr()
	case <-c.fds.Dead():
		select {
		case <-c.s.Ended():
			return c.s.EndErr()
		default:
		}
		return fmt.Errorf("%w: plugin %s died; the relayed connection to %s was cut", ErrCrashed, c.plugin, c.remote)
	case <-t.C:
		return wire.BadReply("plugin %s closed a relayed connection without saying how it ended", c.plugin)
	}
}

func (c *relayConn) Write(b []byte) (int, error) {
	n, err := c.uc.Write(b)
	if err != nil && wire.IsConnReset(err) {
		select {
		case <-c.fds.Dead():
			return n, fmt.Errorf("%w: plugin %s died; the relayed connection to %s was cut: %w", ErrCrashed, c.plugin, c.remote, err)
		default:
		}
	}
	return n, err
}

// CloseWrite half-closes: the plugin half-closes its connection in turn
// when it supports that.
func (c *relayConn) CloseWrite() error { return c.uc.CloseWrite() }

func (c *relayConn) Close() error {
	err := c.uc.Close()
	c.once.Do(func() { c.fds.Release(c.tok) })
	return err
}

func (c *relayConn) LocalAddr() net.Addr                { return c.local }
func (c *relayConn) RemoteAddr() net.Addr               { return c.remote }
func (c *relayConn) SetDeadline(t time.Time) error      { return c.uc.SetDeadline(t) }
func (c *relayConn) SetReadDeadline(t time.Time) error  { return c.uc.SetReadDeadline(t) }
func (c *relayConn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }
