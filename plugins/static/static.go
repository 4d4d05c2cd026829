// Package static is the built-in [framework.Discovery] for peers listed
// explicitly: users on private networks name their peers' addresses, and
// tests and demos get a discovery that needs no network.
//
// On each join with lookup, every address listed for the topic (or for all
// topics) is reported at once, then Flushed and Updated follow; the list is
// reported again every Interval so that peers the swarm forgot come back,
// and at once on Refresh.
// Announcing is a no-op: the peers are configured elsewhere. An entry that
// is this swarm itself (the joined port on a loopback, unspecified or local
// interface address) is never reported.
package static

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/internal/selfaddr"
)

var (
	_ framework.Discovery = (*Discovery)(nil)
	_ framework.Refresher = (*Discovery)(nil)
)

// DefaultInterval is how often the list is reported again.
const DefaultInterval = time.Minute

// Entry is one listed peer.
type Entry struct {
	Addr   string            // host:port
	Topics []framework.Topic // topics it serves; empty means every topic
}

// Config configures the static discovery.
type Config struct {
	Peers    []Entry
	Interval time.Duration // 0: DefaultInterval
}

// Discovery reports configured peers.
type Discovery struct {
	interval time.Duration
	peers    []Entry

	mu     sync.Mutex
	closed bool
	joins  map[framework.Topic]*join
	wg     sync.WaitGroup
}

type join struct {
	stop    chan struct{}
	done    chan struct{}
	refresh chan struct{} // Refresh: report the list again now
}

// New validates every address and returns the discovery.
func New(cfg Config) (*Discovery, error) {
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("%w: static interval %v is negative", framework.ErrInvalidOption, cfg.Interval)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	for _, e := range cfg.Peers {
		if _, err := framework.ParsePeerAddr(e.Addr, framework.Topic{}); err != nil {
			return nil, fmt.Errorf("static peer: %w", err)
		}
	}
	return &Discovery{interval: cfg.Interval, peers: append([]Entry(nil), cfg.Peers...), joins: map[framework.Topic]*join{}}, nil
}

// FromAddrs lists addresses for every topic.
func FromAddrs(addrs ...string) (*Discovery, error) {
	cfg := Config{}
	for _, a := range addrs {
		cfg.Peers = append(cfg.Peers, Entry{Addr: a})
	}
	return New(cfg)
}

// Name returns "static".
func (d *Discovery) Name() string { return "static" }

func (d *Discovery) peersFor(t framework.Topic) []framework.Peer {
	var out []framework.Peer
	for _, e := range d.peers {
		match := len(e.Topics) == 0
		for _, x := range e.Topics {
			match = match || x == t
		}
		if match {
			p, _ := framework.ParsePeerAddr(e.Addr, t)
			p.PrivateNet = true // the operator's own list: any address is meant
			out = append(out, p)
		}
	}
	return out
}

// Join starts reporting the topic's peers (when req.Lookup) to sink.
func (d *Discovery) Join(ctx context.Context, req framework.JoinRequest, sink framework.DiscoverySink) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return framework.ErrClosed
	}
	d.stopLocked(req.Topic)
	j := &join{stop: make(chan struct{}), done: make(chan struct{}), refresh: make(chan struct{}, 1)}
	d.joins[req.Topic] = j
	peers := d.peersFor(req.Topic)
	if !req.Lookup {
		peers = nil
	}
	// never report this swarm itself: a cluster usually hands every node
	// the same list
	peers = slices.DeleteFunc(peers, func(p framework.Peer) bool {
		return p.Port == req.Port && selfaddr.IsLocal(p.Host)
	})
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer close(j.done)
		t := time.NewTicker(d.interval)
		defer t.Stop()
		for first := true; ; first = false {
			for _, p := range peers {
				sink.Peer(p)
			}
			if first {
				sink.Flushed()
			}
			sink.Updated()
			select {
			case <-t.C:
			case <-j.refresh:
			case <-j.stop:
				return
			}
		}
	}()
	return nil
}

// Refresh implements [framework.Refresher]: the topic's list is reported
// again now (then Updated), as at every Interval. A topic not joined is a
// no-op.
func (d *Discovery) Refresh(_ context.Context, t framework.Topic) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return framework.ErrClosed
	}
	if j := d.joins[t]; j != nil {
		select {
		case j.refresh <- struct{}{}:
		default: // a request is pending already
		}
	}
	return nil
}

// stopLocked stops the topic's reporter and waits for it, so its sink hears
// nothing more.
func (d *Discovery) stopLocked(t framework.Topic) {
	if j := d.joins[t]; j != nil {
		close(j.stop)
		<-j.done
		delete(d.joins, t)
	}
}

// Leave stops reporting the topic.
func (d *Discovery) Leave(ctx context.Context, t framework.Topic) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked(t)
	return nil
}

// Close stops every reporter.
func (d *Discovery) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	for t := range d.joins {
		d.stopLocked(t)
	}
	d.wg.Wait()
	return nil
}
