package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
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
// connection limits and the dial limits ([DialLimits]) allow. A peer the
// dial limits hold stays in the queue, other peers go first, and a timer
// on the swarm's clock wakes the loop when the first held one may go.
func (s *Swarm) dialLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.wake:
		case <-s.closeCh:
			return
		}
		s.mu.Lock()
		// this pass also serves a wake-up sent since the receive
		select {
		case <-s.wake:
		default:
		}
		s.wakePending = false
		s.dialPass()
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// dialPass starts the dials the limits allow now. Caller holds s.mu.
func (s *Swarm) dialPass() {
	lim := s.cfg.dialLimits
	now := s.cfg.clock.Now()
	var held []*entry
	var hold time.Duration // shortest wait of a held dial
	byPorts := 0
	noteHold := func(d time.Duration) {
		if hold == 0 || d < hold {
			hold = d
		}
	}
	for !s.closed && s.queue.len() > 0 && s.canDialLocked() {
		if d := s.b.global.wait(now, lim.Rate, lim.Burst); d > 0 {
			noteHold(d)
			break
		}
		e := s.queue.pop()
		if d, ports := s.destWait(e, now); d > 0 {
			if !e.held {
				e.held = true
				if ports {
					s.b.st.HeldPorts++
				} else {
					s.b.st.HeldRate++
				}
			}
			if ports {
				byPorts++
			}
			held = append(held, e)
			noteHold(d)
			continue
		}
		s.b.global.take(now, lim.Rate, lim.Burst)
		s.takeDest(e, now)
		e.held = false
		s.startDial(e)
	}
	for _, e := range held {
		s.queue.push(e, e.prio)
	}
	if s.queue.len() > 0 && hold > 0 && !s.closed {
		s.holdUntil(now, hold)
	}
	// Flush does not wait for peers only the ports window holds (up to a
	// PortWindow): every ready peer is held by it
	was := s.b.portsHeld
	s.b.portsHeld = s.queue.len() > 0 && byPorts == s.queue.len()
	if was != s.b.portsHeld {
		s.notifyLocked()
	}
}

// startDial dials queue entry e in the background. Caller holds s.mu.
func (s *Swarm) startDial(e *entry) {
	s.setState(e, stDialing)
	s.dialing++
	peer := e.peer
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		conn, typ, err := s.dialPeer(s.dialCtx, peer, false)
		s.dialed(e, conn, typ, err)
	}()
}

// dialed records the outcome of a queue dial.
func (s *Swarm) dialed(e *entry, d dialResult, typ string, err error) {
	nc := d.nc
	s.mu.Lock()
	s.dialing--
	s.notifyLocked()
	s.wakeDialler()
	if s.closed {
		s.unclaimLocked(d.hs)
		s.mu.Unlock()
		if nc != nil {
			nc.Close()
		}
		return
	}
	k := d.keeper
	if err != nil && k == nil && d.hs != nil && d.hs.refusal == nil && errors.Is(err, secure.ErrRefused) {
		// the responder refused: most likely it keeps the session it
		// dialled to us (S5), then open here
		if o := s.byKey[d.hs.key]; o != nil && !o.client {
			k = o
		}
	}
	if err != nil && k != nil && (errors.Is(err, ErrDuplicate) || errors.Is(err, secure.ErrRefused)) {
		if _, open := s.conns[k]; open && s.peers[e.key] == e && e.state == stDialing {
			// a duplicate of an open session, refused in the handshake:
			// dialled again when that session ends
			s.setState(e, stDuplicate)
			k.shadowLocked(e)
			s.mu.Unlock()
			return
		}
	}
	if err != nil {
		s.log.Debug("dial failed", "peer", e.peer.String(), "err", err)
		s.bus.publish(&DialFailedEvent{Peer: e.peer, Err: err})
		if s.peers[e.key] == e && e.state == stDialing {
			if errors.Is(err, ErrSelf) {
				s.banEntry(e) // our own address: never again
			} else {
				s.failed(e)
			}
		}
		if want, ok := s.pins[e.peer.Topic]; ok {
			s.refreshPeerLocked(want)
		}
		s.mu.Unlock()
		return
	}
	peer := e.peer
	c := &Conn{Conn: nc, s: s, typ: typ, client: true, peer: &peer, entry: e}
	c.topics = append([]Topic(nil), e.topics...)
	if d.sess != nil {
		c.Conn, c.sess = d.sess, d.sess
		c.proven.Store(true)
		c.admitLocked(d.w, d.hs)
		return
	}
	s.connectedLocked(c)
	s.registerLocked(c)
	s.mu.Unlock()
	s.handle(c)
}

// connectedLocked marks the entry c was dialled for connected, with c as
// its connection and proven (its retries start again), unless the entry
// was forgotten or banned while dialling: then c stays, without the
// entry. Caller holds s.mu.
func (s *Swarm) connectedLocked(c *Conn) {
	e := c.entry
	if e == nil {
		return
	}
	if s.peers[e.key] == e && e.state == stDialing {
		s.setState(e, stConnected)
		e.retries = 0
		s.account(e, false)
		e.proven = true
		s.account(e, true)
		e.conn = c
	} else {
		c.entry = nil
	}
}

// Connect dials peer by hand, outside the queue (seed: swarm.connect). The
// connection is announced like any other (connection event, handler) and
// counts toward the limits, but is not redialled when it drops. The
// session names peer.Topic (none when it is zero). Connect always makes a
// new session, even to a swarm we have one with: on this side sessions
// made by Connect are exempt from the automatic deduplication by key. The
// other side applies its rules (it cannot tell a Connect from a queue
// dial): towards a swarm whose own dial to us is open it refuses, and
// Connect fails with an error wrapping secure.ErrRefused; Connect returns
// only once the other side confirmed the session, so it never returns a
// connection the other side discards.
func (s *Swarm) Connect(ctx context.Context, peer Peer) (*Conn, error) {
	if err := peer.Validate(); err != nil {
		return nil, err
	}
	if !peer.Key.IsZero() && s.cfg.plaintext {
		return nil, fmt.Errorf("%w: a peer's key cannot be pinned", ErrPlaintext)
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
	d, typ, err := s.dialPeer(ctx, peer, true)
	nc := d.nc

	s.mu.Lock()
	s.dialing--
	s.notifyLocked()
	s.wakeDialler()
	if s.closed {
		// Close ended or outran this dial: not a failed dial to report
		s.unclaimLocked(d.hs)
		s.mu.Unlock()
		if nc != nil {
			nc.Close()
		}
		return nil, ErrClosed
	}
	if err != nil {
		s.bus.publish(&DialFailedEvent{Peer: peer, Err: err, Manual: true})
		s.mu.Unlock()
		return nil, err
	}
	c := &Conn{Conn: nc, s: s, typ: typ, client: true, peer: &peer, topics: []Topic{peer.Topic}}
	if d.sess != nil {
		c.Conn, c.sess = d.sess, d.sess
		c.proven.Store(true)
		c.manual = true
		return c.admitLocked(d.w, d.hs), nil
	}
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
		if f, ok := As[DialFilter](t); ok && !f.WantsPeer(peer) {
			continue
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return s.transports
	}
	return out
}

// DefaultConnectionAttemptDelay is how long the engine waits for one
// transport's dial before it also starts the next transport's (RFC 8305's
// "Connection Attempt Delay", whose recommended value it is); see
// [WithConnectionAttemptDelay].
const DefaultConnectionAttemptDelay = 250 * time.Millisecond

// WithConnectionAttemptDelay sets the Happy Eyeballs delay (RFC 8305,
// default [DefaultConnectionAttemptDelay]) between dial attempts to one peer
// over its transports. The transports are tried in (Order, Name) order, TCP
// first: the first at once; the next when an attempt started so far has
// failed, or once d has passed since the last attempt started without a
// connection. Hole punches towards the peer start at once, so a uTP dial
// that follows finds the path open. The first connection wins; attempts
// still in flight are cancelled and any connection they make is closed
// without a byte written. The delay runs on the swarm's clock
// ([WithClock]). d must be positive.
func WithConnectionAttemptDelay(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return invalid("connection attempt delay %v: must be positive", d)
		}
		c.attemptDelay = d
		return nil
	}
}

// dialPeer dials peer through its transports (see
// [WithConnectionAttemptDelay] for the order), bounded by the connect
// timeout.
func (s *Swarm) dialPeer(ctx context.Context, peer Peer, manual bool) (dialResult, string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.connectTimeout)
	defer cancel()
	transports := s.dialTransports(peer)
	s.holePunch(ctx, peer, transports)
	// One transport too goes through the race: the connect timeout holds
	// even when the transport ignores its context.
	nc, typ, err := s.happyEyeballs(ctx, peer, transports)
	if err != nil || s.cfg.plaintext {
		return dialResult{nc: nc}, typ, err
	}
	// the losers of the race are closed already: only the winner runs the
	// handshake, so the other side never completes a session we discard
	sess, w, hs, err := s.clientSession(ctx, nc, peer, typ, manual)
	if err != nil {
		return dialResult{keeper: hs.keeper, hs: hs}, typ, fmt.Errorf("dial %s: %w", peer.Addr(), err)
	}
	return dialResult{nc: sess, sess: sess, w: w, hs: hs}, typ, nil
}

// dialResult is a dialled connection: the session and its watcher, or in
// plaintext mode the transport's connection.
type dialResult struct {
	nc   net.Conn
	sess *secure.Conn
	w    *watcher
	// keeper: the open session with the same key that the handshake gave
	// way to (the error wraps ErrDuplicate)
	keeper *Conn
	// hs: the handshake's state; its claim on the key holds until the
	// session is admitted or dropped
	hs *hsState
}

// attempt is the outcome of one transport's dial.
type attempt struct {
	c   net.Conn
	typ string
	err error
}

// happyEyeballs races the transports' dials to peer, staggered by the
// connection attempt delay, and returns the first connection. It returns as
// soon as it has a winner, every attempt failed or ctx ended; each attempt
// runs in a goroutine counted in s.wg (Close waits for it, even when its
// transport ignores ctx) that closes its connection itself when the race is
// over.
func (s *Swarm) happyEyeballs(ctx context.Context, peer Peer, transports []Transport) (net.Conn, string, error) {
	results := make(chan attempt) // unbuffered: a result is taken here, or its dialler closes it
	over := make(chan struct{})
	defer close(over)
	var (
		errs     []error
		next     int // index of the next transport to try
		inflight int
		timer    clockwork.Timer
	)
	stopTimer := func() {
		if timer != nil {
			timer.Stop()
			timer = nil
		}
	}
	defer stopTimer()
	startNext := func() {
		t := transports[next]
		next++
		inflight++
		stopTimer()
		if next < len(transports) {
			timer = s.cfg.clock.NewTimer(s.cfg.attemptDelay)
		}
		s.wg.Add(1) // the caller holds a count of s.wg: Close has not passed Wait
		go func() {
			defer s.wg.Done()
			c, err := t.Dial(ctx, peer)
			if err != nil {
				err = fmt.Errorf("%s: %w", t.Name(), err)
			}
			select {
			case results <- attempt{c, t.Name(), err}:
			case <-over:
				if c != nil {
					c.Close() // a loser: closed without a byte written
				}
			}
		}()
	}
	startNext()
	for {
		var delay <-chan time.Time
		if timer != nil {
			delay = timer.Chan()
		}
		select {
		case r := <-results:
			inflight--
			if r.err == nil {
				return r.c, r.typ, nil
			}
			errs = append(errs, r.err)
			switch {
			case next < len(transports):
				startNext() // a failure starts the next attempt at once
			case inflight == 0:
				return nil, "", fmt.Errorf("dial %s: %w", peer.Addr(), errors.Join(errs...))
			}
		case <-delay:
			timer = nil
			startNext()
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%d of %d transports tried: %w", next, len(transports), ctx.Err()))
			return nil, "", fmt.Errorf("dial %s: %w", peer.Addr(), errors.Join(errs...))
		}
	}
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
		if hp, ok := As[HolePuncher](d); ok {
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
