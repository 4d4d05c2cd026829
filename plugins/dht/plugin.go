package dht

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var (
	_ framework.Discovery      = (*Plugin)(nil)
	_ framework.PacketConnUser = (*Plugin)(nil)
	_ framework.HolePuncher    = (*Plugin)(nil)
	_ framework.HolePuncher    = (*Node)(nil)
	_ framework.Refresher      = (*Plugin)(nil)
)

// Plugin is the DHT discovery as a swarm plugin: it starts its node on the
// swarm's shared UDP socket (the one uTP uses, bound on the swarm's port)
// when the swarm starts, so the DHT never owns or closes that socket.
type Plugin struct {
	cfg Config

	mu      sync.Mutex
	d       *Node
	closed  bool
	onRelay func(infohash [20]byte)
}

// SetOnRelayRequest installs the handler of accepted relay requests (see
// [Node.SetOnRelayRequest]) on the node, now or when the swarm starts it.
func (p *Plugin) SetOnRelayRequest(f func(infohash [20]byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onRelay = f
	if p.d != nil {
		p.d.SetOnRelayRequest(f)
	}
}

// New returns the DHT discovery of a swarm: it checks cfg and opens
// nothing; the plugin starts its [Node] when the swarm hands it the shared
// socket (at [framework.Swarm.Start]). cfg.PacketConn and cfg.ListenAddr
// must be unset. For a standalone node on a socket of its own use
// [ListenNode].
func New(cfg Config) (*Plugin, error) {
	if cfg.PacketConn != nil || cfg.ListenAddr != "" {
		return nil, fmt.Errorf("%w: dht plugin: the swarm provides the socket; leave PacketConn and ListenAddr unset", framework.ErrInvalidOption)
	}
	check := cfg
	if err := check.setDefaults(); err != nil {
		return nil, err
	}
	return &Plugin{cfg: cfg}, nil
}

// Name returns "dht".
func (p *Plugin) Name() string { return Name }

// UsePacketConn starts the DHT node on the swarm's shared socket.
func (p *Plugin) UsePacketConn(pc net.PacketConn) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errClosed()
	}
	if p.d != nil {
		return fmt.Errorf("%w: dht plugin already started", framework.ErrInvalidOption)
	}
	cfg := p.cfg
	cfg.PacketConn = pc
	d, err := ListenNode(cfg)
	if err != nil {
		return err
	}
	if p.onRelay != nil {
		d.SetOnRelayRequest(p.onRelay)
	}
	p.d = d
	return nil
}

// Node returns the running DHT node, or nil before the swarm started it.
func (p *Plugin) Node() *Node {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.d
}

func (p *Plugin) node() (*Node, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errClosed()
	}
	if p.d == nil {
		return nil, fmt.Errorf("%w: dht plugin not started (the swarm starts it)", framework.ErrInvalidOption)
	}
	return p.d, nil
}

// Join implements framework.Discovery.
func (p *Plugin) Join(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	d, err := p.node()
	if err != nil {
		return err
	}
	return d.Join(ctx, req, sink)
}

// Leave implements framework.Discovery.
func (p *Plugin) Leave(ctx context.Context, topic framework.Topic) error {
	d, err := p.node()
	if err != nil {
		return nil
	}
	return d.Leave(ctx, topic)
}

// Close stops the DHT node; the shared socket stays open for the swarm to close.
func (p *Plugin) Close() error {
	p.mu.Lock()
	d := p.d
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if already || d == nil {
		return nil
	}
	return d.Close()
}

// HolePunch asks the peer's referrer to relay a hole punch (see the package
// doc). It implements framework.HolePuncher.
func (p *Plugin) HolePunch(ctx context.Context, peer framework.Peer) error {
	d, err := p.node()
	if err != nil {
		return err
	}
	return d.HolePunch(ctx, peer)
}

// Refresh runs the topic's next lookup round now (see
// [Node.Refresh]). It implements framework.Refresher.
func (p *Plugin) Refresh(ctx context.Context, topic framework.Topic) error {
	d, err := p.node()
	if err != nil {
		return nil
	}
	return d.Refresh(ctx, topic)
}
