// Package deadline is a settable read or write deadline for user-space
// connections (the pattern of net.Pipe): Wait returns a channel that is
// closed once the deadline has passed.
package deadline

import (
	"sync"
	"time"
)

// Deadline is one settable deadline. Use New; it is safe for concurrent use.
type Deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

// New returns a disarmed deadline.
func New() Deadline { return Deadline{cancel: make(chan struct{})} }

// Set arms the deadline for t; the zero time disarms it, a past time
// expires it at once.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close to be visible
	}
	d.timer = nil
	closed := Closed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// Wait returns the channel closed when the current deadline passes.
func (d *Deadline) Wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// Stop disarms the timer for good (the connection is gone).
func (d *Deadline) Stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
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
