// Package deadline is a settable read or write deadline for user-space
// connections (the pattern of net.Pipe): Wait returns a channel that is
// closed once the deadline has passed.
package deadline

import (
	"errors"
	"sync"
	"time"
)

// ErrStopped is returned by [Deadline.Set] after [Deadline.Stop]: the
// connection is gone and its deadline can no longer change.
var ErrStopped = errors.New("deadline: stopped")

// Deadline is one settable deadline. Use New; it is safe for concurrent use.
// Every method returns at once, before and after Stop.
type Deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	cancel  chan struct{} // closed when the deadline passes
	stopped bool
}

// New returns a disarmed deadline.
func New() Deadline { return Deadline{cancel: make(chan struct{})} }

// Set arms the deadline for t; the zero time disarms it, a past time
// expires it at once. After Stop it changes nothing and returns
// [ErrStopped].
func (d *Deadline) Set(t time.Time) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return ErrStopped
	}
	d.disarmLocked()
	closed := Closed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return nil
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return nil
	}
	if !closed {
		close(d.cancel)
	}
	return nil
}

// disarmLocked stops the armed timer, if any. When the timer has already
// fired, it waits for the timer's close of the channel to be visible (the
// timer's function does not take d.mu, so this wait is short). Caller holds
// d.mu.
func (d *Deadline) disarmLocked() {
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel
	}
	d.timer = nil
}

// Wait returns the channel closed when the current deadline passes.
func (d *Deadline) Wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// Stop disarms the timer for good (the connection is gone): later calls to
// Set return [ErrStopped] at once. A deadline that had already passed stays
// passed. Stop may be called more than once.
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.stopped = true
	d.disarmLocked()
}

// Closed reports whether c is closed, without blocking.
func Closed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
