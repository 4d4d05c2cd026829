package framework

import "context"

// AwaitQuiet (tests only) blocks until the swarm has nothing left to do
// before its clock moves on: no discovered peer awaits validation, no dial
// is in flight, the dialler has no wake-up pending (its last pass ran after
// the last change that asked for one), and every open client connection is
// one keep accepts (nil: none). Timer callbacks the clock fired but has not
// run yet are the caller's to await (the clock runs them).
func (s *Swarm) AwaitQuiet(ctx context.Context, keep func(*Conn) bool) error {
	return s.waitFor(ctx, func() (bool, error) {
		if s.closed {
			return false, ErrClosed
		}
		if len(s.intake) > 0 || s.admitting || s.dialing > 0 || s.wakePending {
			return false, nil
		}
		for c := range s.conns {
			if c.client && (keep == nil || !keep(c)) {
				return false, nil
			}
		}
		return true, nil
	})
}

// AwaitStats (tests only) blocks until cond holds for the swarm's
// counters; they change under the swarm's lock, which wakes it.
func (s *Swarm) AwaitStats(ctx context.Context, cond func(Stats) bool) error {
	return s.waitFor(ctx, func() (bool, error) { return cond(s.statsLocked()), nil })
}

// Claims (tests only) counts the sessions accepted in their handshake and
// not yet admitted or dropped (session.go), and the inbound ones of them.
func (s *Swarm) Claims() (all, inbound int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.claims {
		all += len(l)
	}
	return all, s.srvClaims
}
