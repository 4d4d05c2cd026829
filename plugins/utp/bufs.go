package utp

// byteQueue is a FIFO of bytes in a ring: bytes are appended at the tail
// and consumed from the head, and only growing the ring (doubling it)
// moves them. (A slice compacted to the front when full moved the
// bytes still queued, up to a whole receive window, every time the
// tail reached the end: a third of the CPU of a bulk transfer.)
type byteQueue struct {
	buf   []byte // the ring
	head  int    // index of the first byte queued
	n     int    // bytes queued
	limit int    // what the queue may hold at most (0: unknown): the ring grows no larger
}

// minQueueRing is the smallest ring a queue allocates.
const minQueueRing = 4 << 10

func (q *byteQueue) len() int { return q.n }

// push appends b, growing the ring when b does not fit.
func (q *byteQueue) push(b []byte) {
	if q.n+len(b) > len(q.buf) {
		q.grow(q.n + len(b))
	}
	tail := q.head + q.n
	if tail >= len(q.buf) {
		tail -= len(q.buf)
	}
	k := copy(q.buf[tail:], b)
	copy(q.buf, b[k:])
	q.n += len(b)
}

// grow replaces the ring with one of at least need bytes (twice the
// last, within limit), the queued bytes first.
func (q *byteQueue) grow(need int) {
	size := max(len(q.buf)*2, minQueueRing)
	if q.limit > 0 {
		size = min(size, q.limit)
	}
	ring := make([]byte, max(size, need))
	q.copyOut(ring, q.n)
	q.buf, q.head = ring, 0
}

// copyOut copies the first n ≤ len bytes into b without consuming them.
func (q *byteQueue) copyOut(b []byte, n int) {
	if n == 0 {
		return
	}
	k := copy(b[:n], q.buf[q.head:])
	copy(b[k:n], q.buf)
}

// read moves up to len(b) bytes out.
func (q *byteQueue) read(b []byte) int {
	n := min(len(b), q.n)
	q.copyOut(b, n)
	q.consume(n)
	return n
}

func (q *byteQueue) consume(n int) {
	q.n -= n
	if q.n == 0 {
		q.head = 0
		return
	}
	if q.head += n; q.head >= len(q.buf) {
		q.head -= len(q.buf)
	}
}

// release drops the ring (after the connection ended).
func (q *byteQueue) release() { q.buf, q.head, q.n = nil, 0, 0 }

// notify wakes one waiter on a 1-buffered channel without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
