package framework

import (
	"errors"

	"github.com/dwebswarm/dwebswarm-go/framework/secure"
)

// registerLocked adds an open connection and announces it. Caller holds s.mu.
func (s *Swarm) registerLocked(c *Conn) {
	c.registered = true
	s.conns[c] = struct{}{}
	if c.client {
		s.clients++
	} else {
		s.servers++
	}
	s.bus.publish(&ConnectionEvent{Conn: c})
	s.notifyLocked()
}

// handle hands a new connection to the user's handler.
func (s *Swarm) handle(c *Conn) {
	if h := s.cfg.handler; h != nil {
		go h(c)
	}
}

// onConnClosed runs exactly once per connection, after its socket closed.
func (s *Swarm) onConnClosed(c *Conn, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.registered {
		return
	}
	delete(s.conns, c)
	s.unsilenceLocked(c)
	if c.client {
		s.clients--
	} else {
		s.servers--
	}
	if c.dedupKey != "" && s.dedup[c.dedupKey] == c {
		delete(s.dedup, c.dedupKey)
	}
	if c.sess != nil {
		if k := c.sess.RemotePublicKey(); s.byKey[k] == c {
			delete(s.byKey, k)
		}
	}
	if c.dropErr != nil {
		reason = c.dropErr
	}
	why := c.disconnectReason(reason)
	switch why {
	case ReasonUnproven:
		s.unprovenClosed++
	case ReasonDisplaced:
		s.displaced++
	}
	if !s.closed {
		// duplicates dropped in favour of this connection may dial again
		for _, e := range c.shadowed {
			if s.peers[e.key] == e && e.state == stDuplicate {
				s.enqueue(e, PriorityNeverConnected)
			}
		}
		if e := c.entry; e != nil && e.conn == c && s.peers[e.key] == e && e.state == stConnected {
			e.conn = nil
			s.failed(e) // a dropped client connection is requeued with backoff
		}
		if c.sess != nil {
			s.refreshPeerLocked(c.sess.RemotePublicKey())
		}
	}
	c.shadowed = nil
	s.log.Debug("connection closed", "transport", c.typ, "client", c.client, "remote", remoteString(c), "reason", why, "err", reason)
	s.bus.publish(&DisconnectionEvent{Conn: c, Reason: why, Err: reason})
	s.notifyLocked()
	s.wakeDialler()
}

// ban closes c and bans its peer.
func (s *Swarm) ban(c *Conn) {
	s.mu.Lock()
	if c.banned {
		s.mu.Unlock()
		return
	}
	c.banned = true
	if c.dropErr == nil {
		c.dropErr = ErrBanned
	}
	if c.sess != nil && !s.closed {
		s.banKeyLocked(c.sess.RemotePublicKey())
	}
	if c.peer != nil && !s.closed {
		key := s.peerKey(*c.peer)
		e := s.peers[key]
		if e == nil {
			e = &entry{key: key, peer: *c.peer, topics: []Topic{c.peer.Topic}, dest: destKey(c.peer.Host)}
			s.peers[key] = e
			s.account(e, true)
		}
		if e.conn == c {
			e.conn = nil
		}
		s.banEntry(e)
		s.notifyLocked()
	}
	s.mu.Unlock()
	c.closeWith(ErrBanned)
}

// backoff adds one requeue step to a client connection's peer.
func (s *Swarm) backoff(c *Conn) error {
	if !c.client {
		return ErrNotClient
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := c.entry; e != nil && s.peers[e.key] == e {
		e.retries++
	}
	return nil
}

// disconnectReason classifies the end of c: err is why the swarm closed it
// (nil when its user closed it or both directions are done).
func (c *Conn) disconnectReason(err error) DisconnectReason {
	switch {
	case err == nil && c.byPeer:
		return ReasonClosedByPeer
	case err == nil:
		return ReasonClosedLocally
	case errors.Is(err, ErrSelf):
		return ReasonSelf
	case errors.Is(err, ErrDuplicate):
		return ReasonDeduplicated
	case errors.Is(err, ErrBanned):
		return ReasonBanned
	case errors.Is(err, ErrClosed):
		return ReasonSwarmClosed
	case errors.Is(err, ErrUnproven):
		return ReasonUnproven
	case errors.Is(err, ErrDisplaced):
		return ReasonDisplaced
	case errors.Is(err, secure.ErrTimeout):
		return ReasonTimeout
	}
	return ReasonIOError
}

func remoteString(c *Conn) string {
	if a := c.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}
