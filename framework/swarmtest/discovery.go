// Package swarmtest has helpers for testing code that uses a swarm: a
// discovery driven by the test, a transport that counts and gates dials, and
// an event recorder.
package swarmtest

import (
	"context"
	"sync"

	"github.com/dwebswarm/dwebswarm-go/framework"
)

var _ framework.Discovery = (*Discovery)(nil)

// Discovery is a [framework.Discovery] driven by the test: it reports what
// the test tells it to. With AutoFlush it calls Flushed and Updated on Join.
// It stands for a test network on loopback: Emit marks every peer
// [framework.Peer.PrivateNet] unless PublicNet is set.
type Discovery struct {
	NameValue string // default "manual"
	AutoFlush bool
	// PublicNet reports peers as a discovery of the public internet does:
	// PrivateNet stays as the test set it, so the swarm refuses
	// non-global addresses by default.
	PublicNet bool

	mu     sync.Mutex
	sinks  map[framework.Topic]framework.DiscoverySink
	reqs   map[framework.Topic]framework.JoinRequest
	joins  []framework.DiscoverySink
	leaves []framework.Topic
	closed bool
}

// NewDiscovery returns a manual discovery that flushes on join.
func NewDiscovery() *Discovery { return &Discovery{AutoFlush: true} }

// Name implements framework.Discovery.
func (d *Discovery) Name() string {
	if d.NameValue == "" {
		return "manual"
	}
	return d.NameValue
}

// Join implements framework.Discovery.
func (d *Discovery) Join(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return framework.ErrClosed
	}
	if d.sinks == nil {
		d.sinks = map[framework.Topic]framework.DiscoverySink{}
		d.reqs = map[framework.Topic]framework.JoinRequest{}
	}
	d.sinks[req.Topic] = sink
	d.reqs[req.Topic] = req
	d.joins = append(d.joins, sink)
	auto := d.AutoFlush
	d.mu.Unlock()
	if auto {
		sink.Flushed()
		sink.Updated()
	}
	return nil
}

// Leave implements framework.Discovery.
func (d *Discovery) Leave(ctx context.Context, t framework.Topic) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.sinks, t)
	delete(d.reqs, t)
	d.leaves = append(d.leaves, t)
	return nil
}

// Close implements framework.Discovery.
func (d *Discovery) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	d.sinks = nil
	return nil
}

func (d *Discovery) sink(t framework.Topic) framework.DiscoverySink {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sinks[t]
}

// Emit reports peers for their topic (p.Topic); it reports false when the
// topic is not joined. Without PublicNet every peer is marked PrivateNet.
func (d *Discovery) Emit(peers ...framework.Peer) bool {
	ok := true
	d.mu.Lock()
	public := d.PublicNet
	d.mu.Unlock()
	for _, p := range peers {
		if !public {
			p.PrivateNet = true
		}
		s := d.sink(p.Topic)
		if s == nil {
			ok = false
			continue
		}
		s.Peer(p)
	}
	return ok
}

// Flush calls Flushed for the topic.
func (d *Discovery) Flush(t framework.Topic) {
	if s := d.sink(t); s != nil {
		s.Flushed()
	}
}

// Update calls Updated for the topic.
func (d *Discovery) Update(t framework.Topic) {
	if s := d.sink(t); s != nil {
		s.Updated()
	}
}

// Request returns the last join request of a joined topic.
func (d *Discovery) Request(t framework.Topic) (framework.JoinRequest, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.reqs[t]
	return r, ok
}

// Leaves returns the topics left so far, in order.
func (d *Discovery) Leaves() []framework.Topic {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]framework.Topic(nil), d.leaves...)
}

// Sinks returns every sink handed to Join, oldest first (stale ones
// included), so tests can check that the engine ignores them.
func (d *Discovery) Sinks() []framework.DiscoverySink {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]framework.DiscoverySink(nil), d.joins...)
}
