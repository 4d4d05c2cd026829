package framework

import "bytes"

// deduplicate implements Conn.Deduplicate.
//
// Both sides pick the same physical connection to drop:
//   - equal ids: a connection to ourselves; drop it (and ban the peer);
//   - different transports: TCP beats anything else;
//   - same transport, opposite directions: with cmp = compare(localID,
//     remoteID), drop this connection when cmp > 0 and we are its client,
//     or cmp < 0 and we are its server; otherwise drop the other one. So
//     the connection dialled by the side with the smaller id survives, as
//     in hyperswarm v2 (lib/queue.js);
//   - same transport, same direction (we dialled both, or accepted both:
//     two topics without multiplex, a Connect beside a queue dial): the
//     order in which each side deduplicates may differ, so only the
//     dialling side decides — it keeps the connection it deduplicated
//     first and drops the other; the accepting side drops neither and
//     learns of the dialler's choice when that connection closes.
//
// A dropped client connection's peer is softly banned and requeued at the
// lowest priority when the surviving connection closes.
func (s *Swarm) deduplicate(c *Conn, localID, remoteID []byte) bool {
	if len(localID) == 0 || len(remoteID) == 0 {
		return false
	}
	cmp := bytes.Compare(localID, remoteID)
	s.mu.Lock()
	if c.deduped || !c.registered {
		s.mu.Unlock()
		return false
	}
	if _, open := s.conns[c]; !open {
		s.mu.Unlock()
		return false
	}
	c.deduped = true
	if cmp == 0 {
		c.dropErr = ErrSelf
		if e := c.entry; e != nil && e.conn == c && s.peers[e.key] == e {
			e.conn = nil
			s.banEntry(e)
		}
		s.mu.Unlock()
		c.closeWith(ErrSelf)
		return true
	}
	key := string(remoteID)
	other := s.dedup[key]
	if other == nil {
		s.dedup[key] = c
		c.dedupKey = key
		s.mu.Unlock()
		return false
	}
	drop, keep := pickDuplicate(c, other, cmp)
	if drop == nil { // both accepted: the dialler decides
		s.mu.Unlock()
		return false
	}
	s.dedup[key] = keep
	keep.dedupKey = key
	drop.dedupKey = ""
	drop.dropErr = ErrDuplicate
	if e := drop.entry; e != nil && e.conn == drop && s.peers[e.key] == e && e.state == stConnected {
		e.conn = nil
		s.setState(e, stDuplicate)
		keep.shadowed = append(keep.shadowed, e)
	}
	s.mu.Unlock()
	drop.closeWith(ErrDuplicate)
	return drop == c
}

// pickDuplicate returns (drop, keep) for two connections to the same
// remote, c being the one deduplicated last; (nil, nil) when this side does
// not decide.
func pickDuplicate(c, other *Conn, cmp int) (drop, keep *Conn) {
	if c.typ != other.typ {
		if other.typ == "tcp" {
			return c, other
		}
		if c.typ == "tcp" {
			return other, c
		}
	}
	if c.client == other.client {
		if c.client {
			return c, other
		}
		return nil, nil
	}
	if (cmp > 0 && c.client) || (cmp < 0 && !c.client) {
		return c, other
	}
	return other, c
}
