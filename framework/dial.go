package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// canDialLocked reports whether the limits allow one more dial.
func (s *Swarm) canDialLocked() bool {
	c := s.cfg
	if c.maxClientSockets == -1 {
		return false
	}
	if c.maxClientSockets > 0 && s.clients+s.dialing >= c.maxClientSockets {
		return false
	}
	return s.clients+s.servers+s.dialing < c.maxPeers
}

// dialLoop takes ready peers off the queue, highest priority first, while the
// limits allow.
func (s *Swarm) dialLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.wake:
		case <-s.closeCh:
			return
		}
		s.mu.Lock()
		for !s.closed && s.queue.len() > 0 && s.canDialLocked() {
			e := s.queue.pop()
			s.setState(e, stDialing)
			s.dialing++
			peer := e.peer
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				conn, typ, err := s.dialPeer(s.dialCtx, peer)
				s.dialed(e, conn, typ, err)
			}()
		}
		s.mu.Unlock()
	}
}

// dialed records the outcome of a queue dial.
func (s *Swarm) dialed(e *entry, nc net.Conn, typ string, err error) {
	s.mu.Lock()
	s.dialing--
	s.notifyLocked()
	s.wakeDialler()
	if s.closed {
		s.mu.Unlock()
		if nc != nil {
			nc.Close()
		}
		return
	}
	if err != nil {
		s.log.Debug("dial failed", "peer", e.peer.String(), "err", err)
		s.bus.publish(&DialFailedEvent{Peer: e.peer, Err: err})
		if s.peers[e.key] == e && e.state == stDialing {
			s.failed(e)
		}
		s.mu.Unlock()
		return
	}
	peer := e.peer
	c := &Conn{Conn: nc, s: s, typ: typ, client: true, peer: &peer, entry: e}
	c.topics = append([]Topic(nil), e.topics...)
	if s.peers[e.key] == e && e.state == stDialing {
		s.setState(e, stConnected)
		e.retries = 0
		e.proven = true
		e.conn = c
	} else {
		c.entry = nil // forgotten or banned while dialling: keep the conn, not the entry
	}
	s.registerLocked(c)
	s.mu.Unlock()
	s.handle(c)
}

// Connect dials peer by hand, outside the queue (seed: swarm.connect). The
// connection is announced like any other (connection event, handler) and
// counts toward the limits, but is not redialled when it drops.
func (s *Swarm) Connect(ctx context.Context, peer Peer) (*Conn, error) {
	if err := peer.Validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if !s.started {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: call Start before Connect", ErrInvalidOption)
	}
	if e := s.peers[s.peerKey(peer)]; e != nil && e.state == stBanned {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrBanned, peer)
	}
	s.dialing++
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.dialCtx, cancel)
	defer stop()
	nc, typ, err := s.dialPeer(ctx, peer)

	s.mu.Lock()
	s.dialing--
	s.notifyLocked()
	s.wakeDialler()
	if err == nil && s.closed {
		nc.Close()
		err = ErrClosed
	}
	if err != nil {
		s.bus.publish(&DialFailedEvent{Peer: peer, Err: err, Manual: true})
		s.mu.Unlock()
		return nil, err
	}
	c := &Conn{Conn: nc, s: s, typ: typ, client: true, peer: &peer, topics: []Topic{peer.Topic}}
	s.registerLocked(c)
	s.mu.Unlock()
	s.handle(c)
	return c, nil
}

// dialTransports returns the transports to try for peer (see DialFilter).
func (s *Swarm) dialTransports(peer Peer) []Transport {
	if len(s.transports) == 1 {
		return s.transports
	}
	var out []Transport
	for _, t := range s.transports {
		if f, ok := t.(DialFilter); ok && !f.WantsPeer(peer) {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return s.transports
	}
	return out
}

// dialPeer dials peer through its transports at once, bounded by the
// connect timeout. The first connection wins; the others are closed.
func (s *Swarm) dialPeer(ctx context.Context, peer Peer) (net.Conn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.connectTimeout)
	defer cancel()
	transports := s.dialTransports(peer)
	s.holePunch(ctx, peer, transports)
	if len(transports) == 1 {
		t := transports[0]
		c, err := t.Dial(ctx, peer)
		if err != nil {
			return nil, "", fmt.Errorf("dial %s over %s: %w", peer.Addr(), t.Name(), err)
		}
		return c, t.Name(), nil
	}
	type result struct {
		c   net.Conn
		typ string
		err error
	}
	results := make(chan result, len(transports))
	for _, t := range transports {
		go func() {
			c, err := t.Dial(ctx, peer)
			if err != nil {
				err = fmt.Errorf("%s: %w", t.Name(), err)
			}
			results <- result{c, t.Name(), err}
		}()
	}
	var errs []error
	for i := range transports {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		// the first connection wins: stop the others, and close any that
		// connect anyway, without making the winner wait for them
		cancel()
		if rest := len(transports) - i - 1; rest > 0 {
			go func() {
				for range rest {
					if l := <-results; l.c != nil {
						l.c.Close()
					}
				}
			}()
		}
		return r.c, r.typ, nil
	}
	return nil, "", fmt.Errorf("dial %s: %w", peer.Addr(), errors.Join(errs...))
}

// holePunch starts the discoveries' hole punches towards peer in the
// background when it has a referrer and a UDP transport will dial it. They
// end with ctx (the dial's).
func (s *Swarm) holePunch(ctx context.Context, peer Peer, transports []Transport) {
	if peer.Referrer == nil {
		return
	}
	udp := false
	for _, t := range transports {
		if usesPacketConn(t) {
			udp = true
		}
	}
	if !udp {
		return
	}
	for _, d := range s.discoveries {
		if hp, ok := d.(HolePuncher); ok {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := hp.HolePunch(ctx, peer); err != nil {
					s.log.Debug("hole punch failed", "peer", peer.String(), "discovery", d.Name(), "err", err)
				}
			}()
		}
	}
}
