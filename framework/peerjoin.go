package framework

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// PeerTopicPrefix is hashed before a public key to make its peer topic
// (see [PeerTopic]).
const PeerTopicPrefix = "dwebswarm peer v1"

// PeerTopic returns the topic under which the swarm with public key pub
// is findable: SHA-256("dwebswarm peer v1" || pub), the 17 bytes of
// [PeerTopicPrefix] followed by the 32 bytes of the key. It is a topic
// like any other: discoveries announce and look it up, the DHT's infohash
// is derived from it by the rule of every topic
// (SHA-256("dwebswarm:topic:" || topic)[:20], see plugins/dht), and the
// session's topic proof uses it as for any topic.
//
// The raw key never appears on the DHT or on the LAN (mDNS): only this
// hash does. Anyone who knows the key can compute the topic and find the
// addresses of the swarm, which is the point; someone who sees only the
// topic learns neither the key nor can link it to the key without knowing
// the key. The prefix keeps a peer topic apart from a topic that is the
// hash of some other use of the same 32 bytes.
func PeerTopic(pub secure.PublicKey) Topic {
	h := sha256.New()
	h.Write([]byte(PeerTopicPrefix))
	h.Write(pub[:])
	return Topic(h.Sum(nil))
}

// ErrPlaintext: the operation needs sessions (keys), and the swarm runs in
// plaintext mode ([WithPlaintext]).
var ErrPlaintext = errors.New("dwebswarm: not available in plaintext mode")

// ErrWrongKey: the remote swarm proved another key than the one
// [Swarm.JoinPeer] asked for; the session is refused in the handshake.
var ErrWrongKey = errors.New("dwebswarm: remote key is not the one asked for")

// Findability says when a swarm announces its own peer topic
// ([PeerTopic] of its public key), so that [Swarm.JoinPeer] finds it (see
// [WithFindable]).
type Findability int

const (
	// FindableWhenAnnouncing (the default): the swarm announces its peer
	// topic while it announces at least one topic, that is while it is a
	// server; a swarm that only looks up stays off the DHT and the LAN.
	FindableWhenAnnouncing Findability = iota
	// FindableAlways: the swarm announces its peer topic from Start to
	// Close, whether or not it announces any topic.
	FindableAlways
	// FindableNever: the swarm never announces its peer topic and refuses
	// inbound sessions that name it (unless WithAcceptTopics lists it).
	FindableNever
)

// WithFindable sets when the swarm announces its own peer topic
// ([PeerTopic] of [Swarm.PublicKey]) through its discoveries (default
// [FindableWhenAnnouncing]: while it announces any topic, as a server
// would). Unless f is [FindableNever] the swarm also accepts inbound
// sessions that prove its peer topic, without WithAcceptTopics: a peer
// that knows our key may open a session to us. The peer topic is no
// secret (mDNS shows the LAN the topics it announces): restrict who may
// connect by key with [WithFirewall]. The own peer topic is not
// listed by [Swarm.Topics]; [Swarm.Status] and [Swarm.Flushed] answer for
// it. It has no effect in plaintext mode.
func WithFindable(f Findability) Option {
	return func(c *config) error {
		if f < FindableWhenAnnouncing || f > FindableNever {
			return invalid("findability %d", f)
		}
		c.findable = f
		return nil
	}
}

// wantFindableLocked reports whether the swarm should announce its own
// peer topic now. Caller holds s.mu.
func (s *Swarm) wantFindableLocked() bool {
	if s.cfg.plaintext || s.closed {
		return false
	}
	switch s.cfg.findable {
	case FindableAlways:
		return true
	case FindableNever:
		return false
	}
	self := PeerTopic(s.key.Public)
	for t, j := range s.topics {
		if t != self && j.status.Announce {
			return true
		}
	}
	return false
}

// syncFindable joins or leaves the own peer topic as [WithFindable]
// wants. Caller holds s.joinMu. A failure is logged: the join that
// triggered it stands.
func (s *Swarm) syncFindable(ctx context.Context) {
	self := PeerTopic(s.key.Public)
	s.mu.Lock()
	if !s.started {
		s.mu.Unlock()
		return
	}
	want := s.wantFindableLocked()
	j := s.topics[self]
	s.mu.Unlock()
	switch {
	case want && j == nil:
		if err := s.joinLocked(ctx, self, JoinStatus{Announce: true}, true); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("announcing the peer topic failed", "topic", self.Short(), "err", err)
		}
	case !want && j != nil && j.self:
		if err := s.leaveLocked(ctx, self); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("un-announcing the peer topic failed", "topic", self.Short(), "err", err)
		}
	}
}

// JoinPeer keeps a session to the swarm whose public key is remote,
// wherever it is: it joins remote's peer topic ([PeerTopic]) for lookup
// only, through the swarm's discoveries (DHT, mDNS, static lists), so the
// peers found are queued and dialled like those of any topic, with the
// same hole punching and the queue's backoff, and redialled when the
// session drops. While no session with remote is open, every dropped
// session and failed dial for the peer topic also asks the discoveries
// for a new cycle ([Swarm.Refresh]), so that a peer that moved is found
// again without waiting for the DHT's next round. The peer must be findable ([WithFindable]), or listed
// under the peer topic by a static discovery.
//
// Every session dialled for the peer topic must prove remote as its key:
// any other key is refused in the handshake ([ErrWrongKey]), before a
// connection is reported. When a session with remote exists already (made
// for a topic, or inbound), JoinPeer is satisfied by it: the
// deduplication by key keeps one session, and a new address of remote is
// dialled when that session ends. The session's [Conn.Topics] include
// PeerTopic(remote) (a [TopicEvent] when the session existed before),
// and [Conn.FoundByKey] reports true.
//
// JoinPeer returns once every discovery accepted the join, not when the
// session is made: watch the [ConnectionEvent]s. Calling it again for the
// same key is harmless. It fails with [ErrPlaintext] in plaintext mode, an
// error wrapping [secure.ErrBadKey] for the zero key, [ErrSelf] for the
// swarm's own key, and as [Swarm.Join] does otherwise.
func (s *Swarm) JoinPeer(ctx context.Context, remote secure.PublicKey) error {
	t, err := s.peerTopicOf(remote)
	if err != nil {
		return err
	}
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	s.mu.Lock()
	s.pins[t] = remote // before the join: the first dial already checks it
	s.mu.Unlock()
	if err := s.joinLocked(ctx, t, JoinStatus{Lookup: true}, false); err != nil {
		return fmt.Errorf("join peer %s: %w", remote.Short(), err)
	}
	s.mu.Lock()
	if c := s.byKey[remote]; c != nil && !slices.Contains(c.topics, t) {
		c.topics = append(c.topics, t)
		if c.registered {
			s.bus.publish(&TopicEvent{Conn: c, Topic: t})
		}
	}
	s.mu.Unlock()
	s.log.Debug("joined peer", "key", remote.Short(), "topic", t.Short())
	return nil
}

// LeavePeer stops what [Swarm.JoinPeer] started: the peer topic of remote
// is left, its addresses are not dialled any more and a dropped session
// is not redialled. An open session stays open (it may serve topics too);
// close it to end it. It fails with [ErrNotJoined] when remote was not
// joined, and as [Swarm.Leave] does otherwise.
func (s *Swarm) LeavePeer(ctx context.Context, remote secure.PublicKey) error {
	t, err := s.peerTopicOf(remote)
	if err != nil {
		return err
	}
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	if err := s.leaveLocked(ctx, t); err != nil {
		return fmt.Errorf("leave peer %s: %w", remote.Short(), err)
	}
	return nil
}

// peerTopicOf checks a key given to JoinPeer or LeavePeer.
func (s *Swarm) peerTopicOf(remote secure.PublicKey) (Topic, error) {
	switch {
	case s.cfg.plaintext:
		return Topic{}, fmt.Errorf("%w: a peer is joined by its key, and plaintext sessions have none", ErrPlaintext)
	case remote.IsZero():
		return Topic{}, fmt.Errorf("%w: the zero key", secure.ErrBadKey)
	case remote == s.key.Public:
		return Topic{}, fmt.Errorf("%w: %s is this swarm's own key", ErrSelf, remote.Short())
	}
	return PeerTopic(remote), nil
}

// checkPinLocked refuses a dialled session whose remote key is not the one
// asked for: the peer's Key, or the key of a JoinPeer topic. Caller holds
// s.mu.
func (s *Swarm) checkPinLocked(remote secure.PublicKey, info FirewallInfo) error {
	if !info.Client {
		return nil
	}
	if !info.key.IsZero() && remote != info.key {
		return fmt.Errorf("%w: dialled %s for key %s, it proved %s", ErrWrongKey, info.Remote, info.key.Short(), remote.Short())
	}
	if want, ok := s.pins[info.Topic]; ok && remote != want {
		return fmt.Errorf("%w: dialled %s for key %s, it proved %s", ErrWrongKey, info.Remote, want.Short(), remote.Short())
	}
	return nil
}

// peerTopicsLocked fixes the topics of a new session c before it is
// admitted: it loses the JoinPeer topics of other keys (an address found
// under several topics when multiplexing) and gains its remote key's when
// that key is joined. Caller holds s.mu.
func (s *Swarm) peerTopicsLocked(c *Conn) {
	key := c.sess.RemotePublicKey()
	c.topics = slices.DeleteFunc(c.topics, func(t Topic) bool {
		want, ok := s.pins[t]
		return ok && want != key
	})
	if t := PeerTopic(key); s.pins[t] == key && s.topics[t] != nil && !slices.Contains(c.topics, t) {
		c.topics = append(c.topics, t)
	}
}

// refreshPeerLocked asks the discoveries for a new cycle of the peer
// topic of remote when it is joined and no session with remote is open:
// the session dropped or a dial failed, and the peer may have moved (a
// DHT lookup would otherwise wait for its next round). Dials of an
// address are paced by the requeue schedule, and so are these requests.
// Caller holds s.mu, and s is not closed.
func (s *Swarm) refreshPeerLocked(remote secure.PublicKey) {
	t := PeerTopic(remote)
	if s.pins[t] != remote || s.topics[t] == nil || s.byKey[remote] != nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.dialCtx, DefaultDiscoveryCallTimeout)
		defer cancel()
		if err := s.Refresh(ctx, t); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrNotJoined) {
			s.log.Debug("refreshing a peer topic failed", "topic", t.Short(), "err", err)
		}
	}()
}

// FoundByKey reports whether the connection serves a peer join: this
// swarm joined the remote's key ([Swarm.JoinPeer]), or the remote dialled
// the peer topic of this swarm's key (it found us by our key).
func (c *Conn) FoundByKey() bool {
	if c.sess == nil {
		return false
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return slices.Contains(c.topics, PeerTopic(c.sess.RemotePublicKey())) ||
		slices.Contains(c.topics, PeerTopic(c.s.key.Public))
}
