package framework

import (
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
)

// This file bounds what discovery can make the swarm hold and dial
// (DiscoveryLimits, DialLimits; semantics.md D6–D8, L5–L7): the peers taken
// per discovery cycle, the never-connected peers known, the ports of one IP
// known per topic, and the rate and spread of the swarm's own dials.

// topicDest is one destination (IP, IPv6 /64, or host name) under one topic.
type topicDest struct {
	topic Topic
	dest  string
}

// bounds is the bookkeeping of the limits. Guarded by Swarm.mu.
type bounds struct {
	fresh      map[Topic]map[*entry]struct{} // never-connected entries per topic
	freshTotal int                           // never-connected entries
	ports      map[topicDest]int             // entries per (topic, destination)
	seq        uint64                        // entry creation order

	global    bucket                // new dials, every destination
	dests     map[string]*destState // per destination
	gcSize    int                   // len(dests) after the last sweep
	timer     clockwork.Timer       // wakes the dialler when a held dial may go
	timerAt   time.Time
	portsHeld bool // the last dial pass held every ready entry by PortsPerIP

	st BoundStats
}

// BoundStats counts what the discovery and dial limits held back, since the
// swarm started. The daemon exports each as a dwebswarm_* metric.
type BoundStats struct {
	DroppedCycle    uint64 // reports over PeersPerCycle (per discovery, topic, cycle)
	DroppedReferrer uint64 // reports over PeersPerReferrer
	DroppedPending  uint64 // reports dropped with Pending peers awaiting validation
	DroppedPorts    uint64 // new peers at an IP already known at PortsPerIP ports (per topic)
	DroppedKnown    uint64 // new peers dropped at a known-peer cap with nothing evictable
	Evicted         uint64 // never-connected peers evicted for a new one at a known-peer cap
	RejectedPrivate uint64 // peers rejected with ErrPrivateAddress
	HeldRate        uint64 // dials postponed by the global or per-IP dial rate
	HeldPorts       uint64 // dials postponed by the distinct-ports-per-IP window
	NeverConnected  int    // never-connected peers known now (gauge)
}

func newBounds() bounds {
	return bounds{
		fresh: make(map[Topic]map[*entry]struct{}),
		ports: make(map[topicDest]int),
		dests: make(map[string]*destState),
	}
}

// destKey is the destination a limit counts a host under: an IPv4
// address, an IPv6 /64, or a host name (lowercase).
func destKey(host string) string {
	ip, ok := hostIP(host)
	if !ok {
		return strings.ToLower(host)
	}
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

// account adds (on) or removes e's share of the counts: its
// (topic, destination) pairs and, while it never connected, its place in
// each topic's never-connected set. Call it with on=false before changing
// e.topics or e.proven and with on=true after; every entry in s.peers is
// accounted exactly once. Caller holds s.mu.
func (s *Swarm) account(e *entry, on bool) {
	if e.acct == on {
		return
	}
	e.acct = on
	d := 1
	if !on {
		d = -1
	}
	b := &s.b
	for _, t := range e.topics {
		k := topicDest{t, e.dest}
		if b.ports[k] += d; b.ports[k] <= 0 {
			delete(b.ports, k)
		}
		if e.proven {
			continue
		}
		set := b.fresh[t]
		if on {
			if set == nil {
				set = make(map[*entry]struct{})
				b.fresh[t] = set
			}
			set[e] = struct{}{}
		} else if set != nil {
			delete(set, e)
			if len(set) == 0 {
				delete(b.fresh, t)
			}
		}
	}
	if !e.proven {
		b.freshTotal += d
	}
}

// evictRank orders evictable entries, least useful first (lower rank);
// ok is false for entries that are never evicted.
func evictRank(e *entry) (rank int, ok bool) {
	if e.proven {
		return 0, false
	}
	switch e.state {
	case stUnresponsive:
		return 0, true
	case stWaiting:
		return 1, true
	case stReady:
		return 2, true
	}
	return 0, false // dialling, connected, banned, duplicate
}

// leastUseful returns the entry of set to evict first, or nil.
func leastUseful(set map[*entry]struct{}) *entry {
	var best *entry
	var bestRank int
	for e := range set {
		r, ok := evictRank(e)
		if !ok {
			continue
		}
		if best == nil || r < bestRank ||
			(r == bestRank && (e.retries > best.retries || (e.retries == best.retries && e.seq < best.seq))) {
			best, bestRank = e, r
		}
	}
	return best
}

// makeRoom evicts never-connected peers until a new one of topic fits
// under KnownPerTopic and KnownTotal; false when it cannot.
func (s *Swarm) makeRoom(topic Topic) bool {
	lim := s.cfg.discLimits
	b := &s.b
	for len(b.fresh[topic]) >= lim.KnownPerTopic {
		v := leastUseful(b.fresh[topic])
		if v == nil {
			return false
		}
		s.evict(v)
	}
	for b.freshTotal >= lim.KnownTotal {
		// from the topic with the most never-connected peers first
		var v *entry
		most := 0
		for _, set := range b.fresh {
			if len(set) <= most {
				continue
			}
			if c := leastUseful(set); c != nil {
				v, most = c, len(set)
			}
		}
		if v == nil {
			return false
		}
		s.evict(v)
	}
	return true
}

func (s *Swarm) evict(e *entry) {
	s.b.st.Evicted++
	s.log.Debug("peer evicted at a known-peer cap", "peer", e.peer.String(), "state", e.state.String(), "retries", e.retries)
	s.forget(e)
}

// takeReport applies the per-cycle caps of sink k to one report; false
// drops it. Caller holds s.mu.
func (s *Swarm) takeReport(k *sink, p Peer) bool {
	lim := s.cfg.discLimits
	b := &s.b
	if len(s.intake) >= lim.Pending {
		b.st.DroppedPending++
		return false
	}
	if k.taken >= lim.PeersPerCycle {
		b.st.DroppedCycle++
		return false
	}
	if p.Referrer != nil {
		rk := destKey(p.Referrer.Host)
		if k.perRef[rk] >= lim.PeersPerReferrer {
			b.st.DroppedReferrer++
			return false
		}
		if k.perRef == nil {
			k.perRef = make(map[string]int)
		}
		k.perRef[rk]++
	}
	k.taken++
	return true
}

// bucket is a token bucket on the swarm's clock.
type bucket struct {
	tokens float64
	last   time.Time
	init   bool
}

// refill brings b up to now; rate is per second, burst the capacity.
func (b *bucket) refill(now time.Time, rate float64, burst int) {
	if !b.init {
		b.tokens, b.last, b.init = float64(burst), now, true
		return
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+dt.Seconds()*rate)
		b.last = now
	}
}

// wait returns how long until one token is available (0: now).
func (b *bucket) wait(now time.Time, rate float64, burst int) time.Duration {
	if math.IsInf(rate, 1) {
		return 0
	}
	b.refill(now, rate, burst)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / rate * float64(time.Second)))
}

func (b *bucket) take(now time.Time, rate float64, burst int) {
	if math.IsInf(rate, 1) {
		return
	}
	b.refill(now, rate, burst)
	b.tokens--
}

// destState is the dial history of one destination.
type destState struct {
	rate  bucket
	ports map[int]time.Time // port → start of its last dial
}

// destWait returns how long e's dial must wait for its destination's
// limits (0: it may go now) and whether the distinct-ports window holds it.
func (s *Swarm) destWait(e *entry, now time.Time) (time.Duration, bool) {
	lim := s.cfg.dialLimits
	ds := s.b.dests[e.dest]
	if ds == nil {
		return 0, false
	}
	if lim.PortsPerIP < math.MaxInt {
		var oldest time.Time
		for port, at := range ds.ports {
			if now.Sub(at) >= lim.PortWindow {
				delete(ds.ports, port)
			} else if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
		}
		if _, ok := ds.ports[e.peer.Port]; !ok && len(ds.ports) >= lim.PortsPerIP {
			return oldest.Add(lim.PortWindow).Sub(now), true
		}
	}
	return ds.rate.wait(now, lim.PerIPRate, lim.PerIPBurst), false
}

// takeDest records e's dial against its destination's limits.
func (s *Swarm) takeDest(e *entry, now time.Time) {
	lim := s.cfg.dialLimits
	b := &s.b
	ds := b.dests[e.dest]
	if ds == nil {
		if len(b.dests) >= 2*b.gcSize+64 {
			s.sweepDests(now)
		}
		ds = &destState{ports: make(map[int]time.Time)}
		b.dests[e.dest] = ds
	}
	ds.rate.take(now, lim.PerIPRate, lim.PerIPBurst)
	if lim.PortsPerIP < math.MaxInt {
		ds.ports[e.peer.Port] = now
	}
}

// sweepDests forgets destinations whose limits are back at rest: every
// port out of the window and the rate bucket full.
func (s *Swarm) sweepDests(now time.Time) {
	lim := s.cfg.dialLimits
	for k, ds := range s.b.dests {
		idle := true
		for _, at := range ds.ports {
			if now.Sub(at) < lim.PortWindow {
				idle = false
				break
			}
		}
		if idle && !math.IsInf(lim.PerIPRate, 1) {
			ds.rate.refill(now, lim.PerIPRate, lim.PerIPBurst)
			idle = ds.rate.tokens >= float64(lim.PerIPBurst)
		}
		if idle {
			delete(s.b.dests, k)
		}
	}
	s.b.gcSize = len(s.b.dests)
}

// holdUntil arms the dialler's wake-up for when a held dial may go.
func (s *Swarm) holdUntil(now time.Time, d time.Duration) {
	at := now.Add(d)
	b := &s.b
	if b.timer != nil {
		if !b.timerAt.After(at) {
			return
		}
		b.timer.Stop()
	}
	b.timerAt = at
	var t clockwork.Timer
	t = s.cfg.clock.AfterFunc(d, func() {
		s.mu.Lock()
		if s.b.timer == t {
			s.b.timer = nil
		}
		s.wakeDialler()
		s.mu.Unlock()
	})
	b.timer = t
}
