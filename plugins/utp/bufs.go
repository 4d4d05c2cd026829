package utp

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

// notify wakes one waiter on a 1-buffered channel without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
