package framework

import (
	"context"
	"fmt"
)

// JoinStatus is a joined topic's mode (seed: swarm.status(topic)).
type JoinStatus struct {
	Announce bool
	Lookup   bool
}

// JoinOption configures a join.
type JoinOption func(*JoinStatus)

// Announce lists this swarm under the topic as a connectable target
// (seed: announce, default false).
func Announce(on bool) JoinOption { return func(j *JoinStatus) { j.Announce = on } }

// Lookup looks for peers of the topic and connects to them (seed: lookup,
// default true).
func Lookup(on bool) JoinOption { return func(j *JoinStatus) { j.Lookup = on } }

// Join joins topic: discoveries start announcing and/or looking it up, and
// found peers are queued and dialled. By default it looks up and does not
// announce. Joining a joined topic replaces its options. Join returns once
// every discovery accepted the join; [Swarm.Flushed] waits until the topic is
// fully announced.
func (s *Swarm) Join(ctx context.Context, topic Topic, opts ...JoinOption) error {
	st := JoinStatus{Lookup: true}
	for _, o := range opts {
		o(&st)
	}
	if !st.Announce && !st.Lookup {
		return ErrInvalidJoin
	}
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	if err := s.joinLocked(ctx, topic, st, false); err != nil {
		return err
	}
	s.syncFindable(ctx)
	return nil
}

// joinLocked is Join with s.joinMu held; self marks the swarm's own peer
// topic, joined by the swarm itself (see [WithFindable]).
func (s *Swarm) joinLocked(ctx context.Context, topic Topic, st JoinStatus, self bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if !s.started {
		s.mu.Unlock()
		return fmt.Errorf("%w: call Start before Join", ErrInvalidOption)
	}
	s.joinGen++ // never reused, not even after a Leave: a stale sink never matches
	j := &joined{status: st, self: self, gen: s.joinGen, flushed: make(chan struct{}), done: make(chan struct{}), pending: make(map[Discovery]bool)}
	if old := s.topics[topic]; old != nil {
		old.end(j)
	}
	for _, d := range s.discoveries {
		j.pending[d] = true
	}
	s.topics[topic] = j
	if len(j.pending) == 0 {
		s.flushLocked(topic, j)
	}
	port := s.port
	s.notifyLocked()
	s.mu.Unlock()

	for _, d := range s.discoveries {
		req := JoinRequest{Topic: topic, Announce: st.Announce, Lookup: st.Lookup, Port: port}
		if err := d.Join(ctx, req, &sink{s: s, d: d, topic: topic, gen: j.gen}); err != nil {
			lctx, cancel := context.WithTimeout(context.Background(), DefaultDiscoveryCallTimeout)
			_ = s.leaveLocked(lctx, topic)
			cancel()
			return fmt.Errorf("join %s: discovery %s: %w", topic.Short(), d.Name(), err)
		}
	}
	s.log.Debug("joined", "topic", topic.Short(), "announce", st.Announce, "lookup", st.Lookup)
	return nil
}

// Leave leaves topic: discoveries stop announcing and looking it up, and its
// queued peers are not dialled any more. Open connections stay open. It
// returns when every discovery has un-announced; leaving a topic that is not
// joined returns [ErrNotJoined].
func (s *Swarm) Leave(ctx context.Context, topic Topic) error {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	err := s.leaveLocked(ctx, topic)
	s.syncFindable(ctx)
	return err
}

// leaveLocked is Leave with s.joinMu held.
func (s *Swarm) leaveLocked(ctx context.Context, topic Topic) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	j, ok := s.topics[topic]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotJoined, topic.Short())
	}
	delete(s.topics, topic)
	j.end(nil)
	for _, e := range s.peers {
		s.dropTopic(e, topic)
	}
	s.notifyLocked()
	s.mu.Unlock()

	var first error
	for _, d := range s.discoveries {
		if err := d.Leave(ctx, topic); err != nil && first == nil {
			first = fmt.Errorf("leave %s: discovery %s: %w", topic.Short(), d.Name(), err)
		}
	}
	return first
}

// dropTopic removes topic from e; an entry left without topics stops being
// dialled. Caller holds s.mu.
func (s *Swarm) dropTopic(e *entry, topic Topic) {
	i := -1
	for k, t := range e.topics {
		if t == topic {
			i = k
		}
	}
	if i < 0 {
		return
	}
	s.account(e, false)
	e.topics = append(e.topics[:i], e.topics[i+1:]...)
	if len(e.topics) > 0 {
		s.account(e, true)
		return
	}
	switch e.state {
	case stReady, stWaiting, stUnresponsive, stDuplicate:
		s.setState(e, stUnresponsive)
		delete(s.peers, e.key)
		return
	case stDialing, stConnected:
		e.orphan = true
	case stBanned:
		// keep the ban
	}
	s.account(e, true) // still known, under no topic
}

// Status returns a joined topic's mode, or ok=false for a topic not joined
// (every topic, once the swarm is closed).
func (s *Swarm) Status(topic Topic) (status JoinStatus, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.topics[topic]
	if !ok {
		return JoinStatus{}, false
	}
	return j.status, true
}

// Topics returns the joined topics (none once the swarm is closed),
// including the peer topics of [Swarm.JoinPeer] but not the swarm's own
// peer topic, which it announces by itself (see [WithFindable]).
func (s *Swarm) Topics() []Topic {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Topic, 0, len(s.topics))
	for t, j := range s.topics {
		if j.self {
			continue
		}
		out = append(out, t)
	}
	return out
}

// Flushed blocks until topic is fully announced by every discovery (the
// seed's onjoin callback) and returns nil. It waits for the topic's current
// join: when a Join of the same topic replaces that join before it flushed,
// Flushed goes on waiting for the replacing join (the announcement under the
// new options). It returns instead:
//   - an error wrapping [ErrNotJoined] when the topic is not joined at the call;
//   - an error wrapping [ErrLeft] when the topic is left before it flushed
//     (by Leave, or by a Join whose discovery failed);
//   - [ErrClosed] when the swarm is closed, or closes while waiting;
//   - ctx.Err() when ctx is done first.
func (s *Swarm) Flushed(ctx context.Context, topic Topic) error {
	s.mu.Lock()
	j, ok := s.topics[topic]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotJoined, topic.Short())
	}
	for {
		select {
		case <-j.flushed:
			return nil
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closeCh:
		}
		select {
		case <-j.flushed:
			return nil // flushed, then ended: it did flush
		default:
		}
		s.mu.Lock()
		next, closed := j.next, s.closed
		s.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case next == nil:
			return fmt.Errorf("%w: %s, before it flushed", ErrLeft, topic.Short())
		}
		j = next
	}
}

// Flush blocks until every joined topic is flushed and every peer found so
// far has been tried: no peer waits in the queue (ready to dial) and no dial
// is in flight. Peers waiting for a requeue timer do not count. It returns
// [ErrClosed] once the swarm is closed.
func (s *Swarm) Flush(ctx context.Context) error {
	return s.waitFor(ctx, func() (bool, error) {
		if s.closed {
			return false, ErrClosed
		}
		for _, j := range s.topics {
			select {
			case <-j.flushed:
			default:
				return false, nil
			}
		}
		blocked := s.cfg.maxClientSockets == -1 || !s.canDialLocked() || s.b.portsHeld
		return len(s.intake) == 0 && !s.admitting && s.dialing == 0 && (s.queue.len() == 0 || blocked), nil
	})
}

func (s *Swarm) flushLocked(topic Topic, j *joined) {
	select {
	case <-j.flushed:
		return
	default:
	}
	close(j.flushed)
	s.bus.publish(&FlushedEvent{Topic: topic})
}

// sink is the DiscoverySink of one (discovery, topic, join generation).
type sink struct {
	s     *Swarm
	d     Discovery
	topic Topic
	gen   uint64

	// this cycle's reports taken (DiscoveryLimits), guarded by s.mu
	taken  int
	perRef map[string]int // by referrer destination
}

// current returns the join this sink belongs to, or nil when it is stale.
func (k *sink) current() *joined {
	j := k.s.topics[k.topic]
	if k.s.closed || j == nil || j.gen != k.gen {
		return nil
	}
	return j
}

func (k *sink) Peer(p Peer) {
	p.Topic = k.topic
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if want, ok := s.pins[k.topic]; ok {
		p.Key = want // a JoinPeer topic: the key is pinned
	}
	if k.current() == nil || !s.takeReport(k, p) {
		return
	}
	s.intake = append(s.intake, found{peer: p, gen: k.gen})
	select {
	case s.intakeCh <- struct{}{}:
	default:
	}
}

func (k *sink) Flushed() {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	j := k.current()
	if j == nil || !j.pending[k.d] {
		return
	}
	delete(j.pending, k.d)
	if len(j.pending) == 0 {
		s.flushLocked(k.topic, j)
		s.notifyLocked()
	}
}

func (k *sink) Updated() {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if k.current() == nil {
		return
	}
	k.taken = 0 // a new cycle: a new budget
	clear(k.perRef)
	s.bus.publish(&UpdatedEvent{Topic: k.topic, Discovery: k.d.Name()})
}
