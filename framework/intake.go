package framework

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// peerKey is the identity of a queued peer: host:port@topic, or host:port
// alone when multiplexing.
func (s *Swarm) peerKey(p Peer) string {
	if s.cfg.multiplex {
		return p.Addr()
	}
	return p.Addr() + "@" + p.Topic.String()
}

// intakeLoop validates discovered peers one at a time, outside the lock, and
// queues the accepted ones.
func (s *Swarm) intakeLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		var f found
		var have bool
		if len(s.intake) > 0 && !s.closed {
			f, have = s.intake[0], true
			s.intake[0] = found{}
			s.intake = s.intake[1:]
			s.admitting = true
		}
		s.mu.Unlock()
		if !have {
			select {
			case <-s.intakeCh:
				continue
			case <-s.closeCh:
				return
			}
		}
		s.admit(f)
		s.mu.Lock()
		s.admitting = false
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// admit runs one discovered peer through the rules: known peers are ignored
// (or gain a topic when multiplexing), unknown ones are validated and queued.
func (s *Swarm) admit(f found) {
	p := f.peer
	s.mu.Lock()
	if !s.relevantLocked(f) {
		s.notifyLocked()
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	reason := p.Validate()
	if reason == nil {
		reason = s.checkScope(p)
	}
	if reason == nil {
		reason = s.validate(p)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	if !s.relevantLocked(f) {
		return
	}
	if reason != nil {
		if errors.Is(reason, ErrPrivateAddress) {
			s.b.st.RejectedPrivate++
		}
		s.log.Debug("peer rejected", "peer", p.String(), "reason", reason)
		s.bus.publish(&PeerRejectedEvent{Peer: p, Reason: reason})
		return
	}
	key := s.peerKey(p)
	if e := s.peers[key]; e != nil {
		// a known address found on a new topic (multiplex), or on a topic
		// re-joined while its connection stayed open
		s.account(e, false)
		e.topics = append(e.topics, p.Topic)
		s.account(e, true)
		e.orphan = false
		if e.state == stBanned || e.state == stUnresponsive {
			return // remembered as banned or unresponsive: not queued
		}
		s.bus.publish(&PeerEvent{Peer: p})
		// the connection serves the topic once; a TopicEvent reports a
		// topic new to it, which only multiplexing brings (without it a
		// re-joined topic is the connection's own)
		if e.state == stConnected && e.conn != nil && !slices.Contains(e.conn.topics, p.Topic) {
			e.conn.topics = append(e.conn.topics, p.Topic)
			if s.cfg.multiplex {
				s.bus.publish(&TopicEvent{Conn: e.conn, Topic: p.Topic})
			}
		}
		return
	}
	dest := destKey(p.Host)
	if s.b.ports[topicDest{p.Topic, dest}] >= s.cfg.discLimits.PortsPerIP {
		s.b.st.DroppedPorts++
		s.log.Debug("peer dropped: its IP is known at the ports-per-IP cap", "peer", p.String())
		return
	}
	if !s.makeRoom(p.Topic) {
		s.b.st.DroppedKnown++
		s.log.Debug("peer dropped: known-peer cap reached, nothing to evict", "peer", p.String())
		return
	}
	s.b.seq++
	e := &entry{key: key, peer: p, topics: []Topic{p.Topic}, dest: dest, seq: s.b.seq}
	s.peers[key] = e
	s.account(e, true)
	s.bus.publish(&PeerEvent{Peer: p})
	s.enqueue(e, e.priority())
}

// relevantLocked reports whether a found peer still needs work: its join is
// current and it is not already known under its topic.
func (s *Swarm) relevantLocked(f found) bool {
	j := s.topics[f.peer.Topic]
	if s.closed || j == nil || j.gen != f.gen {
		return false
	}
	e := s.peers[s.peerKey(f.peer)]
	return e == nil || !slices.Contains(e.topics, f.peer.Topic)
}

// validate runs the validators in order; a panic is contained as a rejection.
func (s *Swarm) validate(p Peer) (err error) {
	for _, v := range s.validators {
		if err = s.validateOne(v, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Swarm) validateOne(v PeerValidator, p Peer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: validator %s panicked: %v", ErrRejected, v.Name(), r)
		}
	}()
	ctx, cancel := context.WithTimeout(s.dialCtx, DefaultDiscoveryCallTimeout)
	defer cancel()
	if err := v.Validate(ctx, p); err != nil {
		return fmt.Errorf("%s: %w", v.Name(), err)
	}
	return nil
}
