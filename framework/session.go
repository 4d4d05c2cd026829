package framework

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
	"github.com/jonboulle/clockwork"
)

// KeyValidator is an optional interface of a [PeerValidator]: the engine
// calls ValidateKey with the remote swarm's public key during every
// handshake, inbound and outbound, once the key is authenticated and
// before the connection is reported; an error refuses the session. It is
// not called in plaintext mode ([WithPlaintext]). Like Validate it is fast
// and safe for concurrent use.
type KeyValidator interface {
	ValidateKey(ctx context.Context, remote secure.PublicKey) error
}

// FirewallInfo describes a session being set up, for [WithFirewall].
type FirewallInfo struct {
	// Client is true when this swarm dialled the connection.
	Client bool
	// Remote is the transport address of the other end.
	Remote net.Addr
	// Transport is the transport's name ("tcp", "utp").
	Transport string
	// Topic is the topic of the session: the one we dial for (client) or
	// the one the initiator proved (server); zero when none.
	Topic Topic

	manual bool             // a Swarm.Connect: exempt from the dialling side's duplicate check (see duplicateLocked)
	key    secure.PublicKey // the key the dialled peer must prove (Peer.Key)
}

// Defaults of [HandshakeLimits].
const (
	// DefaultHandshakeTimeout bounds every handshake, inbound and outbound.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultPendingHandshakes caps the inbound handshakes in progress.
	DefaultPendingHandshakes = 64
	// DefaultPendingHandshakesPerIP caps the inbound handshakes in
	// progress from one IP address (IPv6: one /64).
	DefaultPendingHandshakesPerIP = 8
)

// HandshakeLimits bounds the session handshakes (see [WithHandshakeLimits]).
// A zero field takes its default; a negative count means unlimited.
type HandshakeLimits struct {
	// Timeout bounds each handshake, on the swarm's clock
	// (DefaultHandshakeTimeout). A handshake still running then is
	// abandoned and its connection closed.
	Timeout time.Duration
	// Pending caps the inbound handshakes in progress
	// (DefaultPendingHandshakes); PendingPerIP those from one IP, IPv6 /64
	// (DefaultPendingHandshakesPerIP). An inbound connection over the
	// per-IP cap is closed at once (an [InboundRefusedEvent] with Limit
	// "handshakesPerIP"). At the total cap, the oldest handshake of the IP
	// with the most pending makes room for it, provided that IP has more
	// pending than the newcomer's ([HandshakeStats].Evicted): a few IPs
	// that fill the cap with handshakes that never finish cannot lock out
	// an IP with fewer; only when no IP has more than the newcomer's is
	// it closed at once (Limit "handshakes").
	Pending, PendingPerIP int
}

// HandshakeStats counts the swarm's session handshakes (see [Stats]).
type HandshakeStats struct {
	// InProgress is the number of inbound handshakes running; they hold
	// no maxPeers slot.
	InProgress int
	// Completed counts handshakes that made a session, both directions.
	Completed uint64
	// TimedOut counts handshakes abandoned at the handshake timeout.
	TimedOut uint64
	// Refused counts handshakes this side refused: a banned key, the
	// firewall ([WithFirewall]), a [KeyValidator], a connection to self.
	Refused uint64
	// Failed counts the other failed handshakes (a malformed or foreign
	// handshake, a wrong topic, the remote refused, the transport failed).
	Failed uint64
	// Overflow counts inbound connections closed at once because the
	// handshake limits were reached ([HandshakeLimits]).
	Overflow uint64
	// Evicted counts inbound handshakes abandoned to make room for a new
	// one when the total cap was reached: the oldest of the source IP
	// (/64) with the most handshakes pending ([HandshakeLimits]).
	Evicted uint64
	// Deduplicated counts sessions dropped because another session with
	// the same remote key was kept.
	Deduplicated uint64
}

// ErrFirewalled: the firewall ([WithFirewall]) refused the remote key.
var ErrFirewalled = errors.New("dwebswarm: refused by the firewall")

// PublicKey returns the swarm's static public key: its identity, which
// every session proves to the other side.
func (s *Swarm) PublicKey() secure.PublicKey { return s.key.Public }

// serverTopics returns the topics inbound sessions may name: those joined
// with announce and those of WithAcceptTopics.
func (s *Swarm) serverTopics() [][32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][32]byte, 0, len(s.cfg.acceptTopics)+len(s.topics))
	for _, t := range s.cfg.acceptTopics {
		out = append(out, t)
	}
	for t, j := range s.topics {
		if j.status.Announce && !slices.Contains(s.cfg.acceptTopics, t) {
			out = append(out, t)
		}
	}
	// the own peer topic: a peer that knows our key may reach us (WithFindable)
	if self := PeerTopic(s.key.Public); s.cfg.findable != FindableNever && !s.cfg.plaintext && !slices.Contains(out, [32]byte(self)) {
		out = append(out, self)
	}
	return out
}

// keyBannedLocked reports whether k is banned. Caller holds s.mu.
func (s *Swarm) keyBannedLocked(k secure.PublicKey) bool {
	until, ok := s.bannedKeys[k]
	if !ok {
		return false
	}
	if !until.IsZero() && !s.cfg.clock.Now().Before(until) {
		delete(s.bannedKeys, k)
		return false
	}
	return true
}

// banKeyLocked bans k for the forget-banned period. Caller holds s.mu.
func (s *Swarm) banKeyLocked(k secure.PublicKey) {
	if k.IsZero() {
		return
	}
	var until time.Time
	if s.cfg.forgetBanned != Forever {
		until = s.cfg.clock.Now().Add(s.cfg.forgetBanned)
	}
	s.bannedKeys[k] = until
}

// accept is the sessions' Accept: it runs inside every handshake once the
// remote key is known.
func (s *Swarm) accept(ctx context.Context, remote secure.PublicKey, info FirewallInfo, hs *hsState) error {
	err := s.acceptKey(ctx, remote, info, hs)
	if err != nil {
		s.mu.Lock()
		if errors.Is(err, ErrDuplicate) {
			s.hs.Deduplicated++
		} else {
			s.hs.Refused++
		}
		s.mu.Unlock()
		hs.refusal = err
	}
	return err
}

// hsState is what one handshake's Accept learnt, and its claim on the
// remote key (see acceptKey).
type hsState struct {
	refusal error  // why Accept refused
	keeper  *Conn  // the open session kept instead (ErrDuplicate)
	limit   string // the inbound limit that refused it (InboundRefusedEvent)
	key     secure.PublicKey
	client  bool
	claimed bool // on s.claims[key]
}

func (s *Swarm) acceptKey(ctx context.Context, remote secure.PublicKey, info FirewallInfo, hs *hsState) error {
	if remote == s.key.Public {
		return fmt.Errorf("%w: the remote key is ours", ErrSelf)
	}
	s.mu.Lock()
	if err := s.checkPinLocked(remote, info); err != nil {
		s.mu.Unlock()
		return err
	}
	banned := s.keyBannedLocked(remote)
	keeper, dup := s.duplicateLocked(remote, info)
	s.mu.Unlock()
	if banned {
		return fmt.Errorf("%w: key %s", ErrBanned, remote.Short())
	}
	if dup {
		// refused in the handshake: neither side reports this session
		hs.keeper = keeper
		return fmt.Errorf("%w: a session with key %s is open and kept", ErrDuplicate, remote.Short())
	}
	if fw := s.cfg.firewall; fw != nil && !fw(remote, info) {
		return fmt.Errorf("%w: key %s", ErrFirewalled, remote.Short())
	}
	for _, v := range s.validators {
		if kv, ok := As[KeyValidator](v); ok {
			if err := kv.ValidateKey(ctx, remote); err != nil {
				return fmt.Errorf("%w by %s: %w", ErrRejected, v.Name(), err)
			}
		}
	}
	// the decision, final on this side: again under s.mu, since other
	// handshakes with the same key may have been decided meanwhile
	s.mu.Lock()
	defer s.mu.Unlock()
	if keeper, dup := s.duplicateLocked(remote, info); dup {
		hs.keeper = keeper
		return fmt.Errorf("%w: a session with key %s is open and kept", ErrDuplicate, remote.Short())
	}
	if !info.Client {
		if limit, err := s.refuseInboundLocked(); err != nil {
			hs.limit = limit
			return err
		}
		s.srvClaims++
	}
	hs.key, hs.client, hs.claimed = remote, info.Client, true
	s.claims[remote] = append(s.claims[remote], hs)
	return nil
}

// duplicateLocked decides whether a new session with remote, described by
// info, is a duplicate to refuse in its handshake, and which open session
// is kept instead (nil when the one kept is still in its handshake).
// Caller holds s.mu.
//
// The rules (S5) make both sides refuse the same session before either
// reports it. A session counts here from its Accept on: a dialled one is
// pending until the responder's confirmation, an accepted one is decided
// (the confirmation follows its Accept). A session is never replaced once
// decided:
//   - a new dialled session (initiator, Accept after msg2) is refused when
//     any session with the key is open, decided, or pending;
//   - a new accepted session (responder, Accept after msg3) is refused when
//     our own dialled session with the key is open; when it is pending, the
//     two race, and the one dialled by the smaller key stays (the other
//     side, holding the same two, picks the same); beside accepted ones it
//     stays too (the dialler decides: it dials no second session unless it
//     lost the first).
//
// Swarm.Connect (info.manual) skips the first rule only.
func (s *Swarm) duplicateLocked(remote secure.PublicKey, info FirewallInfo) (*Conn, bool) {
	open := s.byKey[remote]
	var claimClient, claimServer bool
	for _, h := range s.claims[remote] {
		if h.client {
			claimClient = true
		} else {
			claimServer = true
		}
	}
	if info.Client {
		if info.manual {
			return nil, false
		}
		return open, open != nil || claimClient || claimServer
	}
	if open != nil && open.client {
		return open, true
	}
	if claimClient && bytesLess(s.key.Public, remote) {
		return nil, true
	}
	return nil, false
}

// unclaimLocked drops hs's claim on its key. Caller holds s.mu.
func (s *Swarm) unclaimLocked(hs *hsState) {
	if hs == nil || !hs.claimed {
		return
	}
	hs.claimed = false
	if !hs.client {
		s.srvClaims--
	}
	l := slices.DeleteFunc(s.claims[hs.key], func(h *hsState) bool { return h == hs })
	if len(l) == 0 {
		delete(s.claims, hs.key)
	} else {
		s.claims[hs.key] = l
	}
}

// watcher links a session's OnClose to its Conn, which exists only once
// the handshake returned.
type watcher struct {
	mu    sync.Mutex
	c     *Conn
	ended bool
	err   error
}

func (w *watcher) onClose(err error) {
	w.mu.Lock()
	if w.c == nil {
		w.ended, w.err = true, err
		w.mu.Unlock()
		return
	}
	c := w.c
	w.mu.Unlock()
	c.sessionEnded(err)
}

// attach hands the session's end to c, at once if it ended already.
func (w *watcher) attach(c *Conn) {
	w.mu.Lock()
	w.c = c
	ended, err := w.ended, w.err
	w.mu.Unlock()
	if ended {
		c.sessionEnded(err)
	}
}

// sessionConfig returns the session configuration of one end.
func (s *Swarm) sessionConfig(ctx context.Context, w *watcher, info FirewallInfo, hs *hsState) secure.Config {
	return secure.Config{
		KeyPair:      s.key,
		Topic:        info.Topic,
		Topics:       s.serverTopics,
		AllowNoTopic: s.cfg.allowNoTopic,
		Accept: func(remote secure.PublicKey, topic [32]byte) error {
			i := info
			if !i.Client {
				i.Topic = topic
			}
			return s.accept(ctx, remote, i, hs)
		},
		Clock:   s.cfg.clock,
		OnClose: w.onClose,
		Logger:  s.log,
	}
}

// handshake runs one end of a session on nc, bounded by ctx and the
// handshake timeout (on the swarm's clock).
func (s *Swarm) handshake(ctx context.Context, nc net.Conn, info FirewallInfo, p *pendingHS) (*secure.Conn, *watcher, *hsState, error) {
	d := s.cfg.hsLimits.Timeout
	if p == nil {
		p = s.newPendingHS(ctx, "")
	}
	ctx = p.ctx
	defer p.cancel()
	defer p.timer.Stop()
	timedOut := &p.timedOut
	w := &watcher{}
	hs := &hsState{}
	cfg := s.sessionConfig(ctx, w, info, hs)
	var sess *secure.Conn
	var err error
	if info.Client {
		sess, err = secure.Client(ctx, nc, cfg)
		if err == nil {
			// report only what the responder kept (S5): its verdict comes
			// one round trip after msg3
			select {
			case <-sess.Confirmed():
			case <-sess.Done():
				err = sess.Err()
			case <-ctx.Done():
				err = fmt.Errorf("%w: awaiting the confirmation: %w", secure.ErrHandshake, ctx.Err())
			}
			if err != nil {
				sess.Close()
				sess = nil
			}
		}
	} else {
		cfg.Relayed = isRelayed(nc)
		sess, err = secure.Server(ctx, nc, cfg)
	}
	s.mu.Lock()
	if err != nil {
		s.unclaimLocked(hs)
	}
	switch {
	case err == nil:
		s.hs.Completed++
	case p.evicted:
		// counted when evicted
		err = fmt.Errorf("evicted for a newer inbound handshake: %w", err)
	case timedOut.Load():
		s.hs.TimedOut++
		err = fmt.Errorf("handshake timeout %v: %w", d, err)
	case hs.refusal != nil:
		// counted by accept; the secure error need not wrap ours
		if !errors.Is(err, hs.refusal) {
			err = fmt.Errorf("%w (%w)", err, hs.refusal)
		}
	default:
		s.hs.Failed++
	}
	s.notifyLocked()
	s.mu.Unlock()
	if err != nil {
		return nil, nil, hs, fmt.Errorf("session with %s: %w", nc.RemoteAddr(), err)
	}
	return sess, w, hs, nil
}

// pendingHS is one handshake in progress: its context, bounded by the
// handshake timeout (armed at once, on the swarm's clock), and, inbound,
// its place in s.hsPending.
type pendingHS struct {
	ctx      context.Context
	cancel   context.CancelFunc
	timer    clockwork.Timer
	timedOut atomic.Bool
	ip       string // inbound: the source IP (/64)
	seq      uint64 // inbound: arrival order
	evicted  bool   // inbound: made room for a newer one; guarded by s.mu
}

func (s *Swarm) newPendingHS(ctx context.Context, ip string) *pendingHS {
	p := &pendingHS{ip: ip}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.timer = s.cfg.clock.AfterFunc(s.cfg.hsLimits.Timeout, func() { p.timedOut.Store(true); p.cancel() })
	return p
}

// evictFor makes room at the handshake cap for a new inbound handshake
// from ip: it abandons the oldest handshake of the IP with the most
// pending, if that IP has more than ip. Caller holds s.mu.
func (s *Swarm) evictFor(ip string) bool {
	var victim *pendingHS
	most := 0
	for _, l := range s.hsPending {
		if len(l) > most || (len(l) == most && victim != nil && l[0].seq < victim.seq) {
			most, victim = len(l), l[0]
		}
	}
	if victim == nil || most <= len(s.hsPending[ip]) {
		return false
	}
	s.removePendingLocked(victim)
	victim.evicted = true
	victim.cancel()
	s.hs.Evicted++
	s.log.Debug("inbound handshake evicted at the cap", "ip", victim.ip, "pending", most)
	return true
}

// removePendingLocked takes p off s.hsPending. Caller holds s.mu.
func (s *Swarm) removePendingLocked(p *pendingHS) {
	s.hsInflight--
	l := slices.DeleteFunc(s.hsPending[p.ip], func(q *pendingHS) bool { return q == p })
	if len(l) == 0 {
		delete(s.hsPending, p.ip)
	} else {
		s.hsPending[p.ip] = l
	}
}

// acceptedSecure starts the handshake of an inbound connection, within
// the handshake limits; it holds no maxPeers slot until it completes.
func (s *Swarm) acceptedSecure(nc net.Conn, t Transport) {
	s.mu.Lock()
	limit, err := s.refuseInboundLocked()
	if err == nil {
		lim := s.cfg.hsLimits
		ip := destKey(hostOf(nc.RemoteAddr()))
		switch {
		case len(s.hsPending[ip]) >= lim.PendingPerIP:
			limit, err = "handshakesPerIP", fmt.Errorf("%w: %d inbound handshakes in progress from %s", ErrLimit, lim.PendingPerIP, ip)
		case s.hsInflight >= lim.Pending && !s.evictFor(ip):
			limit, err = "handshakes", fmt.Errorf("%w: %d inbound handshakes in progress", ErrLimit, lim.Pending)
		}
		if err != nil {
			s.hs.Overflow++
			s.notifyLocked()
		} else {
			p := s.newPendingHS(s.dialCtx, ip)
			s.hsSeq++
			p.seq = s.hsSeq
			s.hsInflight++
			s.hsPending[ip] = append(s.hsPending[ip], p)
			s.wg.Add(1)
			s.notifyLocked()
			s.mu.Unlock()
			go s.serverSession(nc, t, p)
			return
		}
	}
	s.mu.Unlock()
	s.log.Debug("inbound refused", "remote", nc.RemoteAddr().String(), "reason", err)
	nc.Close()
	s.inboundRefused(nc, t, limit, err)
}

// serverSession runs an inbound handshake and admits the session.
func (s *Swarm) serverSession(nc net.Conn, t Transport, p *pendingHS) {
	defer s.wg.Done()
	remote := nc.RemoteAddr()
	sess, w, hs, err := s.handshake(p.ctx, nc, FirewallInfo{Remote: remote, Transport: t.Name()}, p)
	s.mu.Lock()
	if !p.evicted {
		s.removePendingLocked(p)
	}
	s.notifyLocked()
	if err != nil {
		s.mu.Unlock()
		s.log.Debug("inbound handshake failed", "remote", remote.String(), "err", err)
		if hs.limit != "" {
			s.inboundRefused(nc, t, hs.limit, err)
		}
		return
	}
	if s.closed {
		s.unclaimLocked(hs)
		s.mu.Unlock()
		sess.Close()
		return
	}
	c := &Conn{Conn: sess, s: s, typ: t.Name(), sess: sess}
	c.proven.Store(true)
	c.topics = nil
	if tp := Topic(sess.Topic()); tp != (Topic{}) {
		c.topics = []Topic{tp}
	}
	c.admitLocked(w, hs)
}

// admitLocked registers the new session c, accepted by both sides (its
// claim hs, made in the handshake, ends here), and hands it to the user.
// Caller holds s.mu; admitLocked releases it. It returns the connection
// kept for the key: c, or, when a peer that breaks the rules of S5 made
// a second session beside one that stays, that one.
func (c *Conn) admitLocked(w *watcher, hs *hsState) *Conn {
	s := c.s
	key := c.sess.RemotePublicKey()
	s.peerTopicsLocked(c)
	s.unclaimLocked(hs)
	if other := s.byKey[key]; other != nil && !c.manual && (c.client || other.client) {
		// cannot happen with a peer that follows S5: both sides refused
		// the duplicate in its handshake
		s.hs.Deduplicated++
		s.notifyLocked()
		s.mu.Unlock()
		s.log.Warn("duplicate session dropped before it was reported: the peer broke the deduplication rules", "key", key.Short(), "client", c.client, "transport", c.typ)
		c.sess.Close()
		if e := c.entry; e != nil {
			s.mu.Lock()
			if s.peers[e.key] == e && e.state == stDialing {
				s.failed(e)
			}
			s.mu.Unlock()
		}
		return other
	}
	s.connectedLocked(c)
	if s.byKey[key] == nil {
		s.byKey[key] = c
	}
	s.registerLocked(c)
	s.mu.Unlock()
	w.attach(c)
	s.handle(c)
	return c
}

// shadowLocked records e, dropped as a duplicate of c, to be requeued when
// c closes; the topics of e join c's. Caller holds s.mu.
func (c *Conn) shadowLocked(e *entry) {
	c.shadowed = append(c.shadowed, e)
	for _, t := range e.topics {
		if !slices.Contains(c.topics, t) {
			c.topics = append(c.topics, t)
			if c.registered {
				c.s.bus.publish(&TopicEvent{Conn: c, Topic: t})
			}
		}
	}
}

func bytesLess(a, b secure.PublicKey) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// clientSession runs the initiator's handshake on a dialled connection.
func (s *Swarm) clientSession(ctx context.Context, nc net.Conn, peer Peer, typ string, manual bool) (*secure.Conn, *watcher, *hsState, error) {
	return s.handshake(ctx, nc, FirewallInfo{Client: true, Remote: nc.RemoteAddr(), Transport: typ, Topic: peer.Topic, manual: manual, key: peer.Key}, nil)
}

// sessionEnded is the session's OnClose: the swarm learns that the session
// ended whether or not the user reads.
func (c *Conn) sessionEnded(err error) {
	if err == nil {
		return // a local Close: closeWith runs already
	}
	if errors.Is(err, secure.ErrClosedByPeer) && (err == secure.ErrClosedByPeer || errors.Is(err, io.EOF)) {
		// a clean close; the peer ended first unless we had half-closed
		if !c.writeDone.Load() {
			c.peerFirst.Store(true)
		}
		c.endWith(nil)
		return
	}
	c.endWith(err) // a reset, a timeout, tampering: Err says which
}

// endWith records the end of a session that ended by itself: the bytes it
// had received stay readable until the user closes it.
func (c *Conn) endWith(reason error) {
	c.once.Do(func() {
		c.byPeer = c.peerFirst.Load()
		c.sessGone.Store(true)
		c.s.onConnClosed(c, reason)
	})
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
