package framework_test

import (
	"context"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
)

// callbackClock is a fake clock that knows when the AfterFunc callbacks
// it fired have run: clockwork runs each in a goroutine of its own, which
// may not have started when Advance returns. Paired with
// [framework.Swarm.AwaitQuiet] it tells a test when the swarm has done
// everything a step of the clock asked for.
type callbackClock struct {
	*clockwork.FakeClock
	mu      sync.Mutex // held across Advance: no timer is armed meanwhile
	armed   map[*callbackTimer]struct{}
	running int           // callbacks fired and not returned
	changed chan struct{} // closed and replaced when a callback returns
}

func newCallbackClock() *callbackClock {
	return &callbackClock{FakeClock: clockwork.NewFakeClock(), armed: map[*callbackTimer]struct{}{}, changed: make(chan struct{})}
}

type callbackTimer struct {
	clockwork.Timer
	c   *callbackClock
	f   func()
	exp time.Time
	gen int // which arming fired (Reset re-arms)
}

// Advance moves the clock; the callbacks it fires run in the background
// (see AwaitCallbacks).
func (c *callbackClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.FakeClock.Advance(d)
}

// AfterFunc is clockwork's, tracked.
func (c *callbackClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &callbackTimer{c: c, f: f}
	c.armLocked(t, d)
	return t
}

// armLocked (re)arms t to fire after d. Caller holds c.mu.
func (c *callbackClock) armLocked(t *callbackTimer, d time.Duration) {
	t.gen++
	gen := t.gen
	t.exp = c.FakeClock.Now().Add(d)
	c.armed[t] = struct{}{}
	t.Timer = c.FakeClock.AfterFunc(d, func() {
		c.mu.Lock()
		if t.gen != gen { // re-armed meanwhile: this firing is stale
			c.mu.Unlock()
			return
		}
		delete(c.armed, t)
		c.running++
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.running--
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}()
		t.f()
	})
}

// Stop is clockwork's; a stopped timer is no longer awaited.
func (t *callbackTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	ok := t.Timer.Stop()
	if ok {
		delete(t.c.armed, t)
	}
	return ok
}

// Reset re-arms the timer to fire f after d (the sessions' keep-alive
// timers do), reporting whether it was still armed.
func (t *callbackTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	ok := t.Timer.Stop()
	delete(t.c.armed, t)
	t.c.armLocked(t, d)
	return ok
}

// AwaitCallbacks blocks until every callback the clock fired so far has
// returned.
func (c *callbackClock) AwaitCallbacks(ctx context.Context) error {
	for {
		c.mu.Lock()
		busy := c.running > 0
		now := c.FakeClock.Now()
		for t := range c.armed {
			if !t.exp.After(now) {
				busy = true // fired, its goroutine not started yet
				break
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if !busy {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// idle reports whether no fired callback is left to run.
func (c *callbackClock) idle() bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return c.AwaitCallbacks(ctx) == nil
}
