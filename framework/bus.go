package framework

import "sync"

// Subscription receives the swarm's events in the order they happened. It
// never drops an event and never blocks the swarm: events wait in an
// unbounded queue until read, so read C until it is closed (the swarm closes
// it after its last event, at Close) or call Close to stop.
type Subscription struct {
	c      chan Event
	mu     sync.Mutex
	queue  []Event
	signal chan struct{}
	done   chan struct{} // closed by Close (unsubscribe)
	ended  bool          // the bus closed: drain then close c
	b      *bus
	once   sync.Once
}

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

func (b *bus) subscribe() *Subscription {
	s := &Subscription{c: make(chan Event), signal: make(chan struct{}, 1), done: make(chan struct{}), b: b}
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
