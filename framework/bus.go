package framework

import (
	"sync"
	"sync/atomic"
)

// Subscription receives the swarm's events in the order they happened. It
// never blocks the swarm: events wait in the subscription's own queue until
// read. Read C until it is closed (the swarm closes it after its last event,
// at Close: the disconnection events of Close come first), or call Close to
// stop.
//
// By default the queue is unbounded and no event is ever dropped; the cost
// is memory: every event waiting to be read is kept, a few hundred bytes
// each (300 000 unread events take about 100 MiB), and an unread
// subscription keeps them, and the goroutine that feeds C, even after the
// swarm closed, until it is read or closed. A subscription made with
// [BufferSize] is bounded instead: see there for its policy.
type Subscription struct {
	c       chan Event
	mu      sync.Mutex
	queue   []Event
	limit   int // bound of queue; 0: unbounded
	dropped atomic.Uint64
	signal  chan struct{}
	done    chan struct{} // closed by Close (unsubscribe)
	ended   bool          // the bus closed: drain then close c
	b       *bus
	once    sync.Once
}

// SubscribeOption configures a subscription made by [Swarm.Subscribe].
type SubscribeOption func(*Subscription)

// BufferSize bounds a subscription to n waiting events, with a drop-oldest
// policy: when an event arrives while n events wait to be read, the oldest
// waiting event is dropped to make room, and [Subscription.Dropped] counts
// it. So a slow reader loses the oldest events and catches up with the most
// recent ones; at most n events wait, plus the one being handed to C. A
// bounded subscription still ends at Close like any other. n <= 0 means
// unbounded, the default.
func BufferSize(n int) SubscribeOption {
	return func(s *Subscription) { s.limit = max(n, 0) }
}

// Dropped returns how many events this subscription has dropped so far
// because its buffer was full (always 0 for an unbounded subscription).
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// C returns the event channel.
func (s *Subscription) C() <-chan Event { return s.c }

// Close unsubscribes; C is closed soon after. Safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.b.remove(s)
		close(s.done)
	})
}

func (s *Subscription) push(ev Event) {
	s.mu.Lock()
	if s.limit > 0 && len(s.queue) >= s.limit {
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.dropped.Add(1)
	}
	s.queue = append(s.queue, ev)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *Subscription) end() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *Subscription) pump() {
	defer close(s.c)
	for {
		s.mu.Lock()
		var ev Event
		if len(s.queue) > 0 {
			ev = s.queue[0]
			s.queue[0] = nil
			s.queue = s.queue[1:]
		}
		ended := s.ended
		s.mu.Unlock()
		if ev == nil {
			if ended {
				return
			}
			select {
			case <-s.signal:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.c <- ev:
		case <-s.done:
			return
		}
	}
}

// bus fans events out to subscriptions.
type bus struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newBus() *bus { return &bus{subs: make(map[*Subscription]struct{})} }

func (b *bus) subscribe(opts ...SubscribeOption) *Subscription {
	s := &Subscription{c: make(chan Event), signal: make(chan struct{}, 1), done: make(chan struct{}), b: b}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.ended = true
	} else {
		b.subs[s] = struct{}{}
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); s.pump() }()
	return s
}

func (b *bus) remove(s *Subscription) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// publish queues ev for every subscription; it never blocks.
func (b *bus) publish(ev Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for s := range b.subs {
		s.push(ev)
	}
}

// close ends every subscription after its queued events are read (or it is
// closed). It does not wait for readers.
func (b *bus) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	for s := range b.subs {
		s.end()
	}
	b.subs = nil
	b.mu.Unlock()
}
