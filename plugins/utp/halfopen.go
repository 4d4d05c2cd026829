package utp

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"
)

// Defaults of the half-open limits of Config (issue 13: one source opened
// 11 000 half-open connections in 2 s, and each SYN was answered by a
// SYN-ACK and three more packets).
const (
	// DefaultHalfOpenTimeout is how long a half-open connection waits for
	// the peer's answer: longer than the peer's keep-alive interval
	// (DefaultKeepAlive), so that a lost answer is repaired by the peer's
	// keep-alive.
	DefaultHalfOpenTimeout = 15 * time.Second
	// DefaultMaxHalfOpen bounds the half-open connections of a socket.
	DefaultMaxHalfOpen = 1024
	// DefaultMaxHalfOpenPerIP bounds the half-open connections from one
	// source IP address.
	DefaultMaxHalfOpenPerIP = 128
	// DefaultSynRate and DefaultSynBurst are the token bucket of SYNs per
	// source IP address: DefaultSynRate a second, DefaultSynBurst at once.
	DefaultSynRate  = 32
	DefaultSynBurst = 128
	// DefaultMaxSynSources bounds the source addresses whose SYN rate is
	// tracked; sources beyond it share one bucket.
	DefaultMaxSynSources = 4096
)

// maxSynAcks is how many SYN-ACKs a half-open connection sends at most:
// the answer to the SYN and three retries (answers to repeated SYNs).
const maxSynAcks = 4

var (
	errHalfOpenExpired = fmt.Errorf("utp: half-open connection expired: the peer never answered: %w", syscall.ETIMEDOUT)
	errHalfOpenEvicted = errors.New("utp: half-open connection evicted by a newer one")
	errBacklogFull     = fmt.Errorf("utp: accept backlog full: %w", syscall.ECONNREFUSED)
)

// halfOpenDefaults fills the zero half-open fields of c.
func (c *Config) halfOpenDefaults() error {
	orDefault(&c.HalfOpenTimeout, DefaultHalfOpenTimeout)
	orDefault(&c.MaxHalfOpen, DefaultMaxHalfOpen)
	orDefault(&c.MaxHalfOpenPerIP, DefaultMaxHalfOpenPerIP)
	orDefault(&c.SynRate, DefaultSynRate)
	orDefault(&c.SynBurst, DefaultSynBurst)
	orDefault(&c.MaxSynSources, DefaultMaxSynSources)
	return nil
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// take refills b for the time since its last use and takes a token if it
// has one.
func (b *bucket) take(now time.Time, rate, burst float64) bool {
	b.refill(now, rate, burst)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst, b.tokens+d.Seconds()*rate)
	}
	b.last = now
}

// synLimiter rate-limits SYNs per source IP address with a bounded map of
// token buckets. When the map is full, buckets that refilled (as good as
// new) are dropped, at most once a second; sources that still find no room
// share one overflow bucket.
type synLimiter struct {
	buckets   map[netip.Addr]*bucket
	overflow  bucket
	lastSweep time.Time
}

// allow reports whether a SYN from ip may be answered now.
func (l *synLimiter) allow(ip netip.Addr, now time.Time, cfg *Config) bool {
	rate, burst := cfg.SynRate, float64(cfg.SynBurst)
	if l.buckets == nil {
		l.buckets = make(map[netip.Addr]*bucket)
	}
	b := l.buckets[ip]
	if b == nil {
		if len(l.buckets) >= cfg.MaxSynSources && now.Sub(l.lastSweep) >= time.Second {
			l.lastSweep = now
			for k, x := range l.buckets {
				if x.refill(now, rate, burst); x.tokens >= burst {
					delete(l.buckets, k)
				}
			}
		}
		if len(l.buckets) >= cfg.MaxSynSources {
			return l.overflow.take(now, rate, burst)
		}
		b = &bucket{}
		l.buckets[ip] = b
	}
	return b.take(now, rate, burst)
}

// synAllowed applies the SYN rate of src (s.mu held).
func (s *socket) synAllowed(src netip.Addr, now time.Time) bool {
	if !s.syn.allow(src, now, s.cfg) {
		s.synsLimited.Add(1)
		return false
	}
	return true
}

// admitHalfOpen decides whether a new half-open connection from src may
// open (s.mu held). It returns false when src is over its half-open share;
// when the socket is at MaxHalfOpen it also returns the oldest half-open
// connection, taken off the books, for the caller to end once s.mu is
// released.
func (s *socket) admitHalfOpen(src netip.Addr) (ok bool, evict *Conn) {
	if s.halfPerIP[src] >= s.cfg.MaxHalfOpenPerIP {
		s.synsOverCap.Add(1)
		return false, nil
	}
	if s.half.Len() >= s.cfg.MaxHalfOpen {
		evict = s.half.Front().Value.(*Conn)
		s.dropHalfLocked(evict)
		if s.conns[evict.key] == evict {
			delete(s.conns, evict.key)
		}
		s.halfEvicted.Add(1)
	}
	return true, evict
}

// addHalfLocked records c as half-open (s.mu held).
func (s *socket) addHalfLocked(c *Conn) {
	if s.halfPerIP == nil {
		s.halfPerIP = make(map[netip.Addr]int)
	}
	c.halfElem = s.half.PushBack(c)
	s.halfPerIP[c.key.addr.Addr()]++
}

// dropHalfLocked takes c off the half-open books, if it is on them (s.mu
// held).
func (s *socket) dropHalfLocked(c *Conn) {
	if c.halfElem == nil {
		return
	}
	s.half.Remove(c.halfElem)
	c.halfElem = nil
	ip := c.key.addr.Addr()
	if s.halfPerIP[ip]--; s.halfPerIP[ip] <= 0 {
		delete(s.halfPerIP, ip)
	}
}

// endHalfOpen ends a half-open connection without a word to its peer.
func (c *Conn) endHalfOpen(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.halfOpen = false
	c.fail(err)
}

// promote makes a half-open connection whose peer answered a connection
// waiting for Accept (c.mu held). It returns false when c is gone: evicted
// meanwhile, or refused because the backlog is full (then reset).
func (c *Conn) promote() bool {
	s := c.s
	s.mu.Lock()
	if c.halfElem == nil {
		s.mu.Unlock()
		return false // evicted: being ended
	}
	s.dropHalfLocked(c)
	ok := false
	if ln := s.ln; ln != nil && !s.closing {
		select {
		case ln.backlog <- c:
			ok = true
		default:
		}
	}
	s.mu.Unlock()
	c.halfOpen = false
	if !ok {
		s.backlogFull.Add(1)
		c.sendReset() // the peer answered: it may be told
		c.fail(errBacklogFull)
		return false
	}
	s.synsAnswered.Add(1)
	return true
}

// receiveHalfOpen handles a packet of a half-open connection (c.mu held).
// It returns true when the packet is the peer's answer (the connection is
// then promoted) and must be processed as any other.
func (c *Conn) receiveHalfOpen(h *header) bool {
	switch h.typ {
	case stSyn:
		if c.synCount < maxSynAcks {
			c.sendSynAck() // our SYN-ACK was lost
		}
		return false
	case stReset:
		c.halfOpen = false
		c.fail(errReset)
		return false
	}
	// an answer acks our SYN-ACK's seq_nr: a random number that a sender
	// of spoofed SYNs never saw
	if h.ack != c.isn-1 {
		return false
	}
	return c.promote()
}
