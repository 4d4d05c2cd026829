package utp

import (
	"os"
	"sync"
	"time"
)

// byteQueue is a FIFO of bytes that reuses its array: bytes are appended
// at the end and consumed from the front.
type byteQueue struct {
	buf []byte
	off int
}

func (q *byteQueue) len() int { return len(q.buf) - q.off }

// push appends b, compacting the array first when that avoids growing it.
func (q *byteQueue) push(b []byte) {
	if q.off > 0 && len(q.buf)+len(b) > cap(q.buf) {
		n := copy(q.buf, q.buf[q.off:])
		q.buf, q.off = q.buf[:n], 0
	}
	q.buf = append(q.buf, b...)
}

// read copies up to len(b) bytes out.
func (q *byteQueue) read(b []byte) int {
	n := copy(b, q.buf[q.off:])
	q.consume(n)
	return n
}

// peek returns the first n bytes (n ≤ len) without consuming them.
func (q *byteQueue) peek(n int) []byte { return q.buf[q.off : q.off+n] }

func (q *byteQueue) consume(n int) {
	q.off += n
	if q.off == len(q.buf) {
		q.buf, q.off = q.buf[:0], 0
	}
}

// release drops the array (after the connection ended).
func (q *byteQueue) release() { q.buf, q.off = nil, 0 }

var errDeadline = os.ErrDeadlineExceeded

// deadline is a settable deadline: wait returns a channel closed once the
// deadline has passed (the pattern of net.Pipe).
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

// set arms the deadline for t; the zero time disarms it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for its close to be visible
	}
	d.timer = nil
	closed := isClosed(d.cancel)
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

func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

// stop disarms the timer (the connection is gone).
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// notify wakes one waiter on a 1-buffered channel without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
