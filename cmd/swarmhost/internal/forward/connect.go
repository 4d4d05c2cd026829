package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/dwebswarm/dwebswarm-go/framework"
	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// peerSet is the known peers of one topic, tried round robin.
type peerSet struct {
	list   []framework.Peer
	next   int
	failed map[string]time.Time // addr → last failure
}

// MaxPeersPerTopic bounds the forwarding targets the manager remembers per
// topic, whatever discovery reports: at the bound a new peer replaces the
// one that failed longest ago, or, when none failed, the oldest.
const MaxPeersPerTopic = 256

// AddPeer records a peer of p.Topic as a forwarding target. The manager
// calls it for every PeerEvent; call it yourself for peers found before the
// manager existed. Known addresses are ignored; at [MaxPeersPerTopic] the
// new peer replaces an old one.
func (m *Manager) AddPeer(p framework.Peer) {
	if p.Validate() != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.peers[p.Topic]
	if ps == nil {
		ps = &peerSet{failed: map[string]time.Time{}}
		m.peers[p.Topic] = ps
	}
	for _, q := range ps.list {
		if q.Addr() == p.Addr() {
			return
		}
	}
	if len(ps.list) >= MaxPeersPerTopic {
		ps.evict()
	}
	ps.list = append(ps.list, p)
	close(m.peersChanged)
	m.peersChanged = make(chan struct{})
}

// evict drops one peer: the one whose last failure is oldest, or the
// oldest peer when none failed.
func (ps *peerSet) evict() {
	victim := 0
	var oldest time.Time
	for i, q := range ps.list {
		if t, ok := ps.failed[q.Addr()]; ok && (oldest.IsZero() || t.Before(oldest)) {
			victim, oldest = i, t
		}
	}
	delete(ps.failed, ps.list[victim].Addr())
	ps.list = append(ps.list[:victim], ps.list[victim+1:]...)
}

// Peers returns the peers known for topic.
func (m *Manager) Peers(topic framework.Topic) []framework.Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps := m.peers[topic]; ps != nil {
		return append([]framework.Peer(nil), ps.list...)
	}
	return nil
}

// WaitPeer blocks until at least one peer of topic is known, ctx is done or
// the manager closes. While it waits it asks the swarm for an on-demand
// lookup of topic, at most once per RefreshInterval.
func (m *Manager) WaitPeer(ctx context.Context, topic framework.Topic) error {
	_, err := m.candidates(ctx, topic, true, nil)
	return err
}

// candidates returns the peers to try for one connection: round robin,
// peers that failed recently last, peers in exclude (already tried) left
// out. With wait, when there is none it asks for an on-demand lookup
// (rate-limited, again every RefreshInterval) and waits for one.
func (m *Manager) candidates(ctx context.Context, topic framework.Topic, wait bool, exclude map[string]bool) ([]framework.Peer, error) {
	var tick <-chan time.Time
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, framework.ErrClosed
		}
		if ps := m.peers[topic]; ps != nil && len(ps.list) > 0 {
			n := len(ps.list)
			start := ps.next % n
			ps.next++
			now := time.Now()
			var good, bad []framework.Peer
			for i := range n {
				p := ps.list[(start+i)%n]
				switch t, failed := ps.failed[p.Addr()]; {
				case exclude[p.Addr()]:
				case failed && now.Sub(t) < peerFailCooldown:
					bad = append(bad, p)
				default:
					good = append(good, p)
				}
			}
			if len(good)+len(bad) > 0 {
				m.mu.Unlock()
				return append(good, bad...), nil
			}
		}
		ch := m.peersChanged
		m.mu.Unlock()
		if !wait {
			return nil, fmt.Errorf("%w %s", ErrNoPeer, topic.Short())
		}
		m.refresh(topic)
		if tick == nil {
			t := time.NewTicker(m.opt.RefreshInterval)
			defer t.Stop()
			tick = t.C
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w %s", ErrNoPeer, topic.Short())
			}
			return nil, ctx.Err()
		case <-m.ctx.Done():
			return nil, framework.ErrClosed
		}
	}
}

// refresh asks the swarm for an on-demand lookup of topic, unless one was
// asked for less than RefreshInterval ago.
func (m *Manager) refresh(topic framework.Topic) {
	m.mu.Lock()
	now := time.Now()
	if last, ok := m.refreshed[topic]; ok && now.Sub(last) < m.opt.RefreshInterval {
		m.mu.Unlock()
		return
	}
	m.refreshed[topic] = now
	m.mu.Unlock()
	if err := m.sw.Refresh(m.ctx, topic); err != nil {
		m.log.Debug("on-demand lookup not started", "topic", topic.Short(), "err", err)
		return
	}
	m.log.Debug("on-demand lookup", "topic", topic.Short())
}

func (m *Manager) peerResult(p framework.Peer, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ps := m.peers[p.Topic]; ps != nil {
		if err != nil {
			ps.failed[p.Addr()] = time.Now()
		} else {
			delete(ps.failed, p.Addr())
		}
	}
}

// Dial opens a new forwarding connection to a peer of topic: it tries up to
// DialAttempts known peers, each bounded by DialTimeout, and returns the
// first that answers StatusOK. When no peer is known, or every known one
// failed, it asks for an on-demand lookup ([framework.Swarm.Refresh],
// rate-limited by RefreshInterval) and waits for a new peer, all within
// PeerWait of the call. The caller owns the returned connection.
func (m *Manager) Dial(ctx context.Context, topic framework.Topic) (*framework.Conn, error) {
	return m.dial(ctx, topic, secure.PublicKey{}, nil)
}

// DialKey is Dial to the one peer whose public key is key (zero: Dial):
// the candidates are the peers found under framework.PeerTopic(key) (join
// it with Swarm.JoinPeer), each dialled for topic with its key pinned.
func (m *Manager) DialKey(ctx context.Context, topic framework.Topic, key secure.PublicKey) (*framework.Conn, error) {
	return m.dial(ctx, topic, key, nil)
}

// dial is DialKey for svc (nil: none); a connect service's pinned
// ServerKey is checked on every session, and refusals are counted in its
// metrics.
func (m *Manager) dial(ctx context.Context, topic framework.Topic, key secure.PublicKey, svc *service) (*framework.Conn, error) {
	lookup := topic // the topic whose peers are the candidates
	if !key.IsZero() {
		lookup = framework.PeerTopic(key)
	}
	wctx := ctx
	if m.opt.PeerWait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, m.opt.PeerWait)
		defer cancel()
	}
	wait := m.opt.PeerWait > 0
	peers, err := m.candidates(wctx, lookup, wait, nil)
	if err != nil {
		return nil, err
	}
	tried := map[string]bool{}
	var errs []error
	for {
		for _, p := range peers {
			if len(tried) == m.opt.DialAttempts || ctx.Err() != nil {
				break
			}
			tried[p.Addr()] = true
			var c *framework.Conn
			release, err := m.setupSlot(ctx, p.Host)
			if err == nil {
				c, err = m.dialPeer(ctx, dialAs(p, topic, key), svc)
				release()
			}
			m.peerResult(p, err)
			if err == nil {
				return c, nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", p.Addr(), err))
		}
		if len(tried) == m.opt.DialAttempts || ctx.Err() != nil || !wait {
			break
		}
		// every known peer failed: look up again, wait for a new one
		if peers, err = m.candidates(wctx, lookup, true, tried); err != nil {
			errs = append(errs, err)
			break
		}
	}
	return nil, errors.Join(errs...)
}

// setupSlots is a semaphore of the setups in flight to one peer IP.
type setupSlots struct {
	ch   chan struct{}
	refs int // callers holding or waiting for a slot
}

// setupSlot waits, within ctx, for one of the SetupsPerPeer setup slots
// of host and returns its release.
func (m *Manager) setupSlot(ctx context.Context, host string) (release func(), err error) {
	m.mu.Lock()
	ss := m.setups[host]
	if ss == nil {
		ss = &setupSlots{ch: make(chan struct{}, m.opt.SetupsPerPeer)}
		m.setups[host] = ss
	}
	ss.refs++
	m.mu.Unlock()
	unref := func() {
		m.mu.Lock()
		if ss.refs--; ss.refs == 0 {
			delete(m.setups, host)
		}
		m.mu.Unlock()
	}
	select {
	case ss.ch <- struct{}{}:
		return func() { <-ss.ch; unref() }, nil
	case <-ctx.Done():
		unref()
		return nil, ctx.Err()
	}
}

// dialAs is candidate p dialled for topic, with key pinned unless zero.
func dialAs(p framework.Peer, topic framework.Topic, key secure.PublicKey) framework.Peer {
	if !key.IsZero() {
		p.Topic, p.Key = topic, key
	}
	return p
}

// dialPeer connects to p, sends the header and reads the status.
func (m *Manager) dialPeer(ctx context.Context, p framework.Peer, svc *service) (*framework.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opt.DialTimeout)
	defer cancel()
	c, err := m.sw.Connect(ctx, p)
	if err != nil {
		return nil, err
	}
	if svc != nil && !svc.ServerKey.IsZero() && c.RemotePublicKey() != svc.ServerKey {
		// before the header: the peer's service sees nothing, and the
		// local client's bytes are never sent to it
		got := keyString(c.RemotePublicKey())
		c.Close()
		svc.refused(ReasonServerKey)
		svc.log.Warn("session refused: peer's key is not the pinned server key", "remote_key", got, "server_key", svc.ServerKey.String(), "remote", p.Addr())
		return nil, fmt.Errorf("%w: it proved %s, want %s", ErrServerKey, got, svc.ServerKey)
	}
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) }) // cancellation
	var st [1]byte
	// a session proved p.Topic in its handshake: the header names none
	var h Header
	if c.Session() == nil { // plaintext: the serving side learns it here
		h = Header{Named: true, Topic: p.Topic}
	}
	_, err = c.Write(AppendHeader(make([]byte, 0, PlaintextHeaderSize), h))
	if err == nil {
		_, err = io.ReadFull(c, st[:])
	}
	if !stop() || err != nil {
		c.Close()
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if err == nil {
				err = ctx.Err()
			} else {
				err = fmt.Errorf("%w: closed before answering (not a forwarding peer, or at its connection limit)", ErrRefused)
			}
		} else if ctx.Err() != nil {
			err = fmt.Errorf("handshake: %w", ctx.Err())
		}
		return nil, err
	}
	c.SetDeadline(time.Time{})
	if s := Status(st[0]); s != StatusOK {
		c.Close()
		return nil, fmt.Errorf("%w: %s", ErrRefused, s)
	}
	return c, nil
}

// acceptLoop accepts local connections until the listener closes.
func (s *service) acceptLoop() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		lc, err := s.ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// transient (e.g. EMFILE): back off like net/http, bounded
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-s.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		l := &link{local: lc}
		if !s.track(l) {
			lc.Close()
			return
		}
		go func() {
			defer s.untrack(l)
			s.connect(l)
		}()
	}
}

// connect obtains a fresh swarm connection for an accepted local
// connection and pipes them.
func (s *service) connect(l *link) {
	rc, err := s.m.dial(s.ctx, s.Topic, s.PeerKey, s)
	if err != nil {
		s.metrics.Failed.Add(1)
		if s.ctx.Err() == nil {
			s.log.Warn("forwarded connection closed: no peer answered", "local", l.local.RemoteAddr().String(), "err", err)
		}
		l.close()
		return
	}
	if !l.attach(rc) {
		return
	}
	s.forward(l)
}
