package framework

import (
	"math/rand/v2"
	"time"

	"github.com/jonboulle/clockwork"
)

// Queue priorities (higher is dialled first; ties are shuffled). These are
// hyperswarm v2's: a peer that connected before and dropped is retried
// before fresh peers; a peer that never connected falls to the bottom.
const (
	PriorityNeverConnected = 0 // tried, never connected (or a released duplicate)
	PriorityThirdRetry     = 1 // proven peer after 3 failures
	PriorityRemote         = 2 // fresh peer from the DHT or a static list
	PriorityLocal          = 3 // fresh peer from the LAN
	PrioritySecondRetry    = 4 // proven peer after 2 failures
	PriorityFirstRetry     = 5 // proven peer after 1 failure
	numPriorities          = 6
)

type entryState int

const (
	stNew          entryState = iota // just created
	stReady                          // waiting in a priority bucket
	stDialing                        // a dial is in flight
	stConnected                      // a client connection is open
	stWaiting                        // requeue timer running
	stUnresponsive                   // requeue schedule exhausted; forget timer running
	stBanned                         // banned; forget timer running (or never)
	stDuplicate                      // dropped as a duplicate; waits for the survivor to close
)

var stateNames = [...]string{"new", "ready", "dialing", "connected", "waiting", "unresponsive", "banned", "duplicate"}

func (s entryState) String() string { return stateNames[s] }

// entry is a known peer: in the queue, being dialled, connected, or
// remembered as unresponsive or banned. Guarded by Swarm.mu.
type entry struct {
	key     string
	peer    Peer
	topics  []Topic
	state   entryState
	retries int
	proven  bool // connected at least once
	prio    int
	idx     int // index in its bucket while stReady
	timer   clockwork.Timer
	gen     uint64 // bumps on every state change; stale timers compare it
	conn    *Conn  // open client connection while stConnected
	orphan  bool   // every topic left while dialling or connected: forget on close
	dest    string // destKey(peer.Host): what the per-IP limits count
	seq     uint64 // creation order (eviction: oldest first)
	acct    bool   // counted in Swarm.b (see account)
	held    bool   // a dial limit holds it (counted once in BoundStats)
}

// priority computes the queue priority from retries and history.
func (e *entry) priority() int {
	switch {
	case e.retries == 0 && e.peer.Local:
		return PriorityLocal
	case e.retries == 0:
		return PriorityRemote
	case !e.proven:
		return PriorityNeverConnected
	case e.retries == 1:
		return PriorityFirstRetry
	case e.retries == 2:
		return PrioritySecondRetry
	default:
		return PriorityThirdRetry
	}
}

// queue holds the ready entries in priority buckets.
type queue struct {
	buckets [numPriorities][]*entry
	n       int
}

func (q *queue) push(e *entry, prio int) {
	e.state = stReady
	e.prio = prio
	e.idx = len(q.buckets[prio])
	q.buckets[prio] = append(q.buckets[prio], e)
	q.n++
}

func (q *queue) remove(e *entry) {
	b := q.buckets[e.prio]
	last := len(b) - 1
	b[e.idx] = b[last]
	b[e.idx].idx = e.idx
	b[last] = nil
	q.buckets[e.prio] = b[:last]
	q.n--
}

// pop removes and returns a random entry of the highest non-empty priority.
func (q *queue) pop() *entry {
	for p := numPriorities - 1; p >= 0; p-- {
		if b := q.buckets[p]; len(b) > 0 {
			e := b[rand.IntN(len(b))]
			q.remove(e)
			e.state = stNew // out of the buckets; the caller sets the next state
			return e
		}
	}
	return nil
}

func (q *queue) len() int { return q.n }

// schedule runs fn after d on the swarm's clock unless the entry changes
// state first. d >= Forever never fires.
func (s *Swarm) schedule(e *entry, d time.Duration, fn func(*entry)) {
	s.stopTimer(e)
	if d >= Forever {
		return
	}
	gen := e.gen
	e.timer = s.cfg.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || e.gen != gen || s.peers[e.key] != e {
			return
		}
		e.timer = nil
		fn(e)
		s.notifyLocked()
	})
}

func (s *Swarm) stopTimer(e *entry) {
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
}

// setState moves e to a new state, invalidating its pending timer.
func (s *Swarm) setState(e *entry, st entryState) {
	if e.state == stReady {
		s.queue.remove(e)
	}
	s.stopTimer(e)
	e.gen++
	e.state = st
}

// enqueue makes e ready at prio and wakes the dialler.
func (s *Swarm) enqueue(e *entry, prio int) {
	s.setState(e, stReady)
	s.queue.push(e, prio)
	s.b.portsHeld = false // until the dialler looked at it
	s.wakeDialler()
}

// forget removes e from the known peers.
func (s *Swarm) forget(e *entry) {
	s.setState(e, stUnresponsive)
	s.account(e, false)
	delete(s.peers, e.key)
}

// failed records a failed dial or a dropped client connection: requeue after
// the next step of the schedule, or mark unresponsive when it is exhausted.
func (s *Swarm) failed(e *entry) {
	if e.orphan {
		s.forget(e)
		return
	}
	e.retries++
	if e.retries > len(s.cfg.requeue) {
		s.setState(e, stUnresponsive)
		s.schedule(e, s.cfg.forgetUnresponsive, s.forget)
		return
	}
	s.setState(e, stWaiting)
	s.schedule(e, s.cfg.requeue[e.retries-1], func(e *entry) { s.enqueue(e, e.priority()) })
}

// banEntry bans e for the forget-banned period.
func (s *Swarm) banEntry(e *entry) {
	s.setState(e, stBanned)
	s.schedule(e, s.cfg.forgetBanned, s.forget)
}
